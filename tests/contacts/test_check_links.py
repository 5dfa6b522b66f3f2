"""Personal links of the monthly check: only the link we sent works, and only while its check is
open; every other link gets a reason the public page can explain."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from contacts.check_links import InvalidLink, link_token, link_url, new_nonce, recipient_for_token
from contacts.check_models import CheckRecipient
from core.extensions import db
from notifications.models import Message
from tests.conftest import TEST_SECRET
from tests.contacts.test_checks_helpers import invite_anna_to_june, local, recipient_of

MONTH = "2026-06"
BASE_URL = "https://krisrutin.kommun.example.se"


@pytest.fixture
def app(make_app):
    return make_app(PUBLIC_BASE_URL=BASE_URL)


@pytest.fixture
def recipient_token(app, clock):
    """The link of a contact invited to June 2026's check, and the contact's id."""
    contact_id, recipient_id, _ = invite_anna_to_june(app, clock)
    with app.app_context():
        token = link_token(db.session.get(CheckRecipient, recipient_id), TEST_SECRET)
        db.session.remove()
    return token, contact_id


def reason(app, token, now) -> str:
    with app.app_context():
        try:
            recipient_for_token(db.session, token, secret=TEST_SECRET, now=now)
        except InvalidLink as error:
            return error.reason
        finally:
            db.session.remove()
    return "valid"


def test_a_valid_link_works_until_the_check_closes_and_not_after(app, clock, recipient_token):
    token, _ = recipient_token
    closes_at = local(date(2026, 7, 1), 8)
    assert reason(app, token, local(date(2026, 6, 1), 8)) == "valid"
    assert reason(app, token, closes_at - timedelta(seconds=1)) == "valid"
    assert reason(app, token, closes_at) == "closed"
    assert reason(app, token, closes_at + timedelta(days=40)) == "closed"


def test_the_link_sent_is_the_link_that_works(app, clock, recipient_token):
    token, contact_id = recipient_token
    with app.app_context():
        sms = db.session.scalars(
            select(Message).where(Message.idempotency_key.like(f"%:{contact_id}:invite:sms"))
        ).one()
        url = link_url(recipient_of(MONTH, contact_id), secret=TEST_SECRET, base_url=BASE_URL)
        assert url.endswith("/k/" + token) and url in sms.body_text
        db.session.remove()


def _with_other_nonce(token: str) -> str:
    """The token with its nonce (the 10 characters after the recipient id) replaced; the nonce
    and the signature may themselves contain "-", so the token is not split on it."""
    start = token.index("-") + 1
    nonce = token[start : start + 10]
    return token[:start] + ("x" * 10 if nonce != "x" * 10 else "y" * 10) + token[start + 10 :]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "forged"),  # the signature altered
        (_with_other_nonce, "forged"),  # the nonce altered
        (lambda t: "", "malformed"),
        (lambda t: "not-a-link", "malformed"),
        (lambda t: t + "/../admin", "malformed"),
    ],
)
def test_an_altered_or_malformed_link_is_refused(app, clock, recipient_token, change, expected):
    token, _ = recipient_token
    assert reason(app, change(token), local(date(2026, 6, 2), 9)) == expected


def test_a_link_signed_with_another_key_is_forged(app, clock, recipient_token):
    _, contact_id = recipient_token
    with app.app_context():
        other = link_token(recipient_of(MONTH, contact_id), "another-secret-key-of-the-same-length-0123456")
        db.session.remove()
    assert reason(app, other, local(date(2026, 6, 2), 9)) == "forged"


def test_a_replaced_nonce_voids_the_old_link(app, clock, recipient_token):
    token, contact_id = recipient_token
    with app.app_context():
        recipient = recipient_of(MONTH, contact_id)
        recipient.nonce = new_nonce()
        db.session.commit()
        new_token = link_token(recipient, TEST_SECRET)
        db.session.remove()
    assert reason(app, token, local(date(2026, 6, 2), 9)) == "replaced"
    assert reason(app, new_token, local(date(2026, 6, 2), 9)) == "valid"


def test_a_correctly_signed_link_of_an_unknown_recipient_is_unknown(app, clock, recipient_token):
    from types import SimpleNamespace

    forged_but_signed = link_token(SimpleNamespace(id=99999, nonce="abcdefghij"), TEST_SECRET)
    assert reason(app, forged_but_signed, local(date(2026, 6, 2), 9)) == "unknown"
