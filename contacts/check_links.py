"""Personal links of the monthly check, and recording an answer (by link, SMS or call).

A link is ``{PUBLIC_BASE_URL}/k/{token}`` with ``token = "{recipient_id}-{nonce}-{mac}"``: the
recipient row, its random nonce, and an HMAC-SHA256 of both under the application's secret key
(truncated to 128 bits, URL-safe base64), so a link is short enough for one SMS segment and
cannot be forged or altered. Validity is decided in the database, not in the token: a link
works while its check is open (until the next month's check opens), and a new nonce voids the
old links of a recipient. Opening a link never counts as answering (mail scanners open links).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from contacts.check_models import ANSWER_VIA, ANSWERS, CheckCorrection, CheckRecipient
from core.signed_links import InvalidLink, make_token, new_nonce, row_for_token, sign  # noqa: F401  (re-exported for the pages)

LINK_PATH = "/k/"
_PURPOSE = b"krisrutin monthly check link v1"


def _mac(secret: str, row_id: int, nonce: str) -> str:
    return sign(secret, _PURPOSE, row_id, nonce)


class CheckClosed(Exception):
    """The month's check has closed: answers are no longer recorded."""


def link_token(recipient: CheckRecipient, secret: str) -> str:
    return make_token(recipient.id, recipient.nonce, secret=secret, purpose=_PURPOSE)


def link_url(recipient: CheckRecipient, *, secret: str, base_url: str) -> str:
    return f"{base_url.rstrip('/')}{LINK_PATH}{link_token(recipient, secret)}"


def recipient_for_token(db_session: Session, token: str, *, secret: str, now: datetime) -> CheckRecipient:
    """The recipient a link belongs to, if it may still be used; raises InvalidLink."""
    recipient = row_for_token(db_session, CheckRecipient, token, secret=secret, purpose=_PURPOSE)
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
