"""Personal links without an account: ``<row id>-<nonce>-<HMAC>``, short enough for one SMS.

One mechanism for every kind (the monthly check's ``/k/``, letters' ``/d/``, visits' ``/v/``):
each kind signs with a purpose of its own, so a token of one kind never opens another, and a
row's nonce is part of the signed text, so a new nonce voids the old link ("replaced").

A link page declares its token a secret with ``audit.secret_in_path("token", keep=KEPT_IN_LOG)``:
the audit log then holds the row id only (``/d/7-…``), which opens nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlalchemy.orm import Session

from core.numbers import record_id

_TOKEN = re.compile(r"([0-9]{1,10})-([A-Za-z0-9_-]{8,16})-([A-Za-z0-9_-]{22})")
KEPT_IN_LOG = r"[0-9]{1,12}-"  # the start of a token the audit log may keep: its row id


class InvalidLink(Exception):
    """The link cannot be used; ``reason`` says why (malformed, forged, unknown, replaced, or a
    kind's own reason such as closed), and the page says it in plain words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def new_nonce() -> str:
    return secrets.token_urlsafe(8)[:10]


def sign(secret: str, purpose: bytes, row_id: int, nonce: str) -> str:
    """The HMAC part of a token."""
    key = hmac.new(secret.encode(), purpose, hashlib.sha256).digest()
    digest = hmac.new(key, f"{row_id}:{nonce}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(row_id: int, nonce: str, *, secret: str, purpose: bytes) -> str:
    return f"{row_id}-{nonce}-{sign(secret, purpose, row_id, nonce)}"


def read_token(token: str, *, secret: str, purpose: bytes) -> tuple[int, str]:
    """``(row_id, nonce)`` of a well-formed token signed for ``purpose``; raises InvalidLink."""
    match = _TOKEN.fullmatch(token or "")
    row_id = record_id(match[1]) if match else None
    if row_id is None:
        raise InvalidLink("malformed")
    nonce, mac = match[2], match[3]
    if not hmac.compare_digest(mac, sign(secret, purpose, row_id, nonce)):
        raise InvalidLink("forged")
    return row_id, nonce


def row_for_token(db_session: Session, model, token: str, *, secret: str, purpose: bytes):
    """The ``model`` row (with a ``nonce`` column) a token signed for ``purpose`` belongs to;
    raises InvalidLink (malformed, forged, unknown, replaced)."""
    row_id, nonce = read_token(token, secret=secret, purpose=purpose)
    row = db_session.get(model, row_id)
    if row is None:
        raise InvalidLink("unknown")
    if not hmac.compare_digest(row.nonce, nonce):
        raise InvalidLink("replaced")
    return row
