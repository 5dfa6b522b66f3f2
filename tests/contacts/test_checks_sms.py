"""Answers to the check by SMS: "JA"/"NEJ" in any case and spacing count, "NEJ" brings the link to
the correction form, anything else a short help text, a late answer a clear reply; each reply is
queued once, also when Twilio retries."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from contacts.checks import parse_answer
from core.extensions import db
from notifications.inbound import UNMONITORED_REPLY
from notifications.models import Message
from tests.contacts.test_checks_helpers import local, make_register, recipient_of, run_tick
from tests.support.twilio_server import signature

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
BASE_URL = "https://krisrutin.kommun.example.se"
INBOUND_PATH = "/webhooks/twilio/inbound"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
ANNA = "+46701000001"
MONTH = "2026-06"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("JA", "yes"),
        (" ja ", "yes"),
        ("Ja!", "yes"),
        ("ja.", "yes"),
        ("Ja tack", "yes"),
        ("JA\n", "yes"),
        ("yes", "yes"),
        ("NEJ", "no"),
        ("nej", "no"),
        ("Nej tack!", "no"),
        ("  NeJ  ", "no"),
        ("no", "no"),
        ("ja men numret är fel", None),
        ("jaha", None),
        ("nejdå", None),
        ("", None),
        ("😀", None),
        ("1", None),
        ("Vi har fått ny enhetschef", None),
    ],
)
def test_answer_words(body, expected):
    assert parse_answer(body) == expected


@pytest.fixture
def app(make_app):
    return make_app(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=BASE_URL)


@pytest.fixture
def anna(app, clock):
    clock.set(local(date(2026, 5, 20), 9))
    with app.app_context():
        [contact_id] = make_register(
            clock, {"anna": {"provider": "Hemtjänst Norr", "name": "Anna Lind", "mobile": ANNA}}
        ).values()
        db.session.remove()
    return contact_id


def post(client, sid: str, body: str, sender: str = ANNA):
    params = {"MessageSid": sid, "From": sender, "To": "+46766861004", "Body": body, "AccountSid": "AC" + "0" * 32}
    headers = {"X-Twilio-Signature": signature(AUTH_TOKEN, BASE_URL + INBOUND_PATH, params)}
    response = client.post(INBOUND_PATH, data=params, headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def replies(app) -> list[tuple[str, str, str, int]]:
    with app.app_context():
        rows = db.session.execute(
            select(Message.idempotency_key, Message.kind, Message.body_text, Message.priority)
            .where(Message.idempotency_key.like("check-sms:%"))
            .order_by(Message.id)
        ).all()
        db.session.remove()
        return [tuple(row) for row in rows]


def test_ja_confirms_and_gets_a_thank_you_once(app, client, clock, anna):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    clock.set(local(date(2026, 6, 1), 9, 15))
    assert post(client, "SM" + "1" * 32, " Ja! ") == EMPTY_TWIML  # the reply goes through the outbox
    assert post(client, "SM" + "1" * 32, " Ja! ") == EMPTY_TWIML  # Twilio's retry
    [(key, kind, body, priority)] = replies(app)
    assert (kind, priority) == ("check.reply_yes", 5)
    assert key.startswith("check-sms:") and key.endswith(":reply:sms")
    assert body.startswith("Välfärdsteknik: Tack! Ditt svar JA är registrerat")
    with app.app_context():
        recipient = recipient_of(MONTH, anna)
        assert (recipient.answer, recipient.answered_via, recipient.answered_at) == ("yes", "sms", clock.now())


def test_nej_records_no_and_replies_with_the_correction_form_link(app, client, clock, anna):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    clock.set(local(date(2026, 6, 2), 10))
    post(client, "SM" + "2" * 32, "nej tack")
    [(_, kind, body, _)] = replies(app)
    with app.app_context():
        recipient = recipient_of(MONTH, anna)
        assert (recipient.answer, recipient.answered_via) == ("no", "sms")
        from contacts.check_links import link_url

        link = link_url(recipient, secret=app.config["SECRET_KEY"], base_url=BASE_URL) + "/korrigera"
    assert kind == "check.reply_no"
    assert body == f"Välfärdsteknik: Tack! Skriv vad som behöver ändras här: {link}"


def test_a_changed_mind_by_sms_replaces_the_earlier_answer(app, client, clock, anna):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    post(client, "SM" + "3" * 32, "NEJ")
    post(client, "SM" + "4" * 32, "JA")
    assert [row[1] for row in replies(app)] == ["check.reply_no", "check.reply_yes"]
    with app.app_context():
        assert recipient_of(MONTH, anna).answer == "yes"


def test_anything_else_during_the_check_gets_a_help_text_with_the_link(app, client, clock, anna):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    post(client, "SM" + "5" * 32, "ja men numret är fel")
    [(_, kind, body, _)] = replies(app)
    assert kind == "check.reply_help" and "/k/" in body and body.startswith("Välfärdsteknik: Svara JA om")
    with app.app_context():
        assert recipient_of(MONTH, anna).answer is None


def test_an_answer_after_the_check_closed_gets_a_clear_reply_and_changes_nothing(app, client, clock, anna):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    clock.set(local(date(2026, 7, 1), 8, 30))  # June's check closed at 08:00; July's not opened yet
    post(client, "SM" + "6" * 32, "JA")
    [(_, kind, body, _)] = replies(app)
    assert kind == "check.reply_closed" and "registrerades inte" in body
    with app.app_context():
        assert recipient_of(MONTH, anna).answer is None


def test_with_no_check_ever_sent_texts_are_left_to_the_unmonitored_reply(app, client, clock, anna):
    assert UNMONITORED_REPLY in post(client, "SM" + "7" * 32, "JA")
    assert replies(app) == []


def test_every_reply_fits_in_one_sms_segment_except_those_carrying_a_link():
    from notifications.rendering import render
    from notifications.segments import count_segments

    for kind in ("check.reply_yes", "check.reply_closed"):
        assert count_segments(render(kind, "sv", {}).sms).segments == 1
    link = BASE_URL + "/k/12345-abcdefghij-" + "A" * 22
    for kind in ("check.reply_no", "check.reply_help"):
        assert count_segments(render(kind, "sv", {"link": link + "/korrigera"}).sms).segments <= 2
