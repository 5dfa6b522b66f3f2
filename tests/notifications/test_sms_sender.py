"""Every SMS names its sender: the organisation's name (ORGANISATION_NAME) starts each queued text,
once, whatever the kind — letters, visit alerts, check invitations and reminders, staff alerts —
because the outbox renders every SMS through one function. Counts agree with their nouns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.extensions import db
from core.words import count_noun
from notifications.models import Channel, Priority
from notifications.rendering import render
from notifications.service import send

ORGANISATION = "Lindesbergs kommun"
LINK = "https://krisrutin.example.se/x/1"
CHECK = {
    "name": "Anna",
    "provider": "Hemtjänst Norr",
    "month_label": "januari 2027",
    "last_day": "5 januari",
    "link": LINK,
}
KINDS = {
    "crisis.alert": {
        "escalation": False,
        "step": 1,
        "incident": {"title": "GSM-nätet nere", "service": "Kameratillsyn", "supplier": "Telia", "planned": False},
        "service": "Kameratillsyn",
        "link": LINK,
    },
    "crisis.visit.alert": {
        "again": False,
        "name": "Anna",
        "provider": "Hemtjänst Norr",
        "count": 1,
        "first_due": "kl. 02:30",
        "link": LINK,
    },
    "check.invite": CHECK,
    "check.reminder": CHECK,
    "crisis.followup.update_due": {"incident": {"title": "GSM"}, "since": "kl. 02:10", "link": LINK},
}


@pytest.fixture
def app(make_app):
    return make_app(ORGANISATION_NAME=ORGANISATION)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_queued_sms_starts_with_the_organisation_once(app, kind):
    now = datetime(2026, 11, 24, 1, 10, tzinfo=UTC)
    with app.app_context():
        [message] = send(
            db_session=db.session,
            kind=kind,
            context=KINDS[kind],
            channels=[Channel.SMS],
            priority=Priority.URGENT,
            idempotency_key=f"test:{kind}",
            now=now,
            to_mobile="+46701000001",
        )
        body = message.body_text
        db.session.rollback()
    assert body.startswith(f"{ORGANISATION}: ")
    assert body.count(ORGANISATION) == 1 and "Krisrutin:" not in body


def test_a_text_that_already_names_the_sender_is_not_signed_twice(app):
    with app.app_context():
        once = render("generic", "sv", {"subject": "Hej", "body": f"{ORGANISATION}: Hej!"}).sms
    assert once == f"{ORGANISATION}: Hej!"


def test_the_count_meets_its_noun():
    assert count_noun(1, "försenat besök", "försenade besök") == "1 försenat besök"
    assert count_noun(2, "försenat besök", "försenade besök") == "2 försenade besök"
    assert count_noun(0, "försenat besök", "försenade besök") == "0 försenade besök"
    one = render("crisis.visit.alert", "sv", {**KINDS["crisis.visit.alert"], "count": 1}).sms
    two = render("crisis.visit.alert", "sv", {**KINDS["crisis.visit.alert"], "count": 2}).sms
    assert "behöver göra 1 fysiskt besök," in one and "behöver göra 2 fysiska besök," in two
