"""Personal links of the monthly check, and recording an answer (by link, SMS or call).

A link is ``{PUBLIC_BASE_URL}/k/{token}`` with ``token = "{recipient_id}-{nonce}-{mac}"``: the
recipient row, its random nonce, and an HMAC-SHA256 of both under the application's secret key
(truncated to 128 bits, URL-safe base64), so a link is short enough for one SMS segment and
cannot be forged or altered. Validity is decided in the database, not in the token: a link
works while its check is open (until the next month's check opens), and a new nonce voids the
old links of a recipient. Opening a link never counts as answering (mail scanners open links).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from contacts.check_models import ANSWER_VIA, ANSWERS, CheckCorrection, CheckRecipient

LINK_PATH = "/k/"
_TOKEN = re.compile(r"^(\d{1,12})-([A-Za-z0-9_-]{8,16})-([A-Za-z0-9_-]{22})$")
_PURPOSE = b"krisrutin monthly check link v1"


class InvalidLink(Exception):
    """The link cannot be used; ``reason`` is ``malformed``, ``forged``, ``unknown``, ``replaced``
    or ``closed`` (the page says which in plain words)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CheckClosed(Exception):
    """The month's check has closed: answers are no longer recorded."""


def new_nonce() -> str:
    return secrets.token_urlsafe(8)[:10]


def _mac(secret: str, recipient_id: int, nonce: str) -> str:
    key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
    digest = hmac.new(key, f"{recipient_id}:{nonce}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_token(recipient: CheckRecipient, secret: str) -> str:
    return f"{recipient.id}-{recipient.nonce}-{_mac(secret, recipient.id, recipient.nonce)}"


def link_url(recipient: CheckRecipient, *, secret: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}{LINK_PATH}{link_token(recipient, secret)}"


def read_token(token: str, secret: str) -> tuple[int, str]:
    """``(recipient_id, nonce)`` of a well-formed, correctly signed token; raises InvalidLink."""
    match = _TOKEN.match(token or "")
    if not match:
        raise InvalidLink("malformed")
    recipient_id, nonce, mac = int(match[1]), match[2], match[3]
    if not hmac.compare_digest(mac, _mac(secret, recipient_id, nonce)):
        raise InvalidLink("forged")
    return recipient_id, nonce


def recipient_for_token(db_session: Session, token: str, *, secret: str, now: datetime) -> CheckRecipient:
    """The recipient a link belongs to, if it may still be used; raises InvalidLink."""
    recipient_id, nonce = read_token(token, secret)
    recipient = db_session.get(CheckRecipient, recipient_id)
    if recipient is None:
        raise InvalidLink("unknown")
    if not hmac.compare_digest(recipient.nonce, nonce):
        raise InvalidLink("replaced")
    if not recipient.check.is_open(now):
        raise InvalidLink("closed")
    return recipient


def record_opened(recipient: CheckRecipient, now: datetime) -> None:
    """Remember the first time the link was opened (shown to the team; not an answer)."""
    if recipient.first_opened_at is None:
        recipient.first_opened_at = now


def record_answer(db_session: Session, recipient: CheckRecipient, answer: str, *, via: str, now: datetime) -> bool:
    """Record "yes" or "no" for the recipient; an earlier answer is replaced (allowed until the
    check closes). A change from "no" to "yes" withdraws the recipient's corrections still
    waiting for review (status ``superseded``). Returns True when the answer changed. Raises
    :class:`CheckClosed` after the check has closed. Does not commit."""
    if answer not in ANSWERS:
        raise ValueError(f"answer must be one of {ANSWERS}")
    if via not in ANSWER_VIA:
        raise ValueError(f"via must be one of {ANSWER_VIA}")
    if not recipient.check.is_open(now):
        raise CheckClosed(recipient.check.month)
    changed = recipient.answer != answer
    recipient.answer = answer
    recipient.answered_at = now
    recipient.answered_via = via
    if changed and answer == "yes":
        db_session.execute(
            update(CheckCorrection)
            .where(CheckCorrection.recipient_id == recipient.id, CheckCorrection.status == "pending")
            .values(status="superseded", reviewed_at=now)
        )
    return changed
