"""Twilio's status callback: only requests signed with our Auth Token for our public URL count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.extensions import db
from notifications.models import Message, MessageEvent
from tests.conftest import build_app, create_schema
from tests.support.twilio_server import signature

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
BASE_URL = "https://krisrutin.example.se"
STATUS_PATH = "/webhooks/twilio/status"


@pytest.fixture
def app(make_app):
    """The application with Twilio configured, behind the public URL Twilio calls."""
    return make_app(TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=BASE_URL)


def add_sms(app, clock, *, gateway_id="SM" + "a" * 32, status="sent") -> int:
    now = clock.now()
    with app.app_context():
        message = Message(
            idempotency_key=f"test:{gateway_id}",
            kind="test.kind",
            channel="sms",
            priority=5,
            to_address="+46701740605",
            body_text="Hej",
            status=status,
            attempts=1,
            next_attempt_at=now,
            gateway="twilio",
            gateway_id=gateway_id,
            created_at=now,
            updated_at=now,
            sent_at=now,
        )
        db.session.add(message)
        db.session.commit()
        return message.id


def stored(app, message_id) -> tuple[Message, list[str]]:
    with app.app_context():
        message = db.session.get(Message, message_id)
        events = db.session.scalars(select(MessageEvent.status).where(MessageEvent.message_id == message_id)).all()
        db.session.expunge(message)
        return message, list(events)


def post_signed(client, params, *, path=STATUS_PATH, signed_url=None, token=AUTH_TOKEN, sent=None):
    """POST ``sent`` (default: ``params``) signed over ``params`` for ``signed_url``."""
    url = signed_url or BASE_URL + path
    headers = {"X-Twilio-Signature": signature(token, url, params)}
    return client.post(path, data=sent if sent is not None else params, headers=headers)


def callback(sid="SM" + "a" * 32, status="delivered", **extra):
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32, **extra}


def test_signed_delivered_callback_marks_the_message_delivered(app, client, clock):
    message_id = add_sms(app, clock)
    clock.advance(minutes=1)
    response = post_signed(client, callback())
    assert response.status_code == 204
    message, events = stored(app, message_id)
    assert message.status == "delivered"
    assert message.delivered_at == clock.now()
    assert events[-1] == "delivered"


def test_failed_callback_records_the_error_code(app, client, clock):
    message_id = add_sms(app, clock)
    response = post_signed(client, callback(status="undelivered", ErrorCode="30005"))
    assert response.status_code == 204
    message, _ = stored(app, message_id)
    assert message.status == "undelivered"
    assert "30005" in message.last_error


def test_callback_with_our_message_id_in_the_url_finds_a_message_before_its_sid_is_stored(app, client, clock):
    message_id = add_sms(app, clock, gateway_id=None, status="sending")
    path = f"{STATUS_PATH}?message={message_id}"
    response = post_signed(client, callback(sid="SM" + "b" * 32, status="sent"), path=path)
    assert response.status_code == 204
    message, _ = stored(app, message_id)
    assert (message.status, message.gateway_id) == ("sent", "SM" + "b" * 32)


def test_callback_for_an_unknown_message_is_acknowledged_so_twilio_stops_retrying(app, client, clock, caplog):
    caplog.set_level("INFO", logger="notifications.webhooks")
    response = post_signed(client, callback(sid="SM" + "f" * 32))
    assert response.status_code == 204
    assert any(getattr(r, "gateway_id", None) == "SM" + "f" * 32 for r in caplog.records)


def test_unsigned_callback_is_refused_and_changes_nothing(app, client, clock):
    message_id = add_sms(app, clock)
    response = client.post(STATUS_PATH, data=callback())
    assert response.status_code == 403
    assert "error" in response.get_json()
    assert stored(app, message_id)[0].status == "sent"


def test_callback_signed_with_another_token_is_refused(app, client, clock):
    message_id = add_sms(app, clock)
    response = post_signed(client, callback(), token="f" * 32)
    assert response.status_code == 403
    assert stored(app, message_id)[0].status == "sent"


def test_signature_for_another_url_is_refused(app, client, clock):
    message_id = add_sms(app, clock)
    for other in (
        "https://attacker.example.com" + STATUS_PATH,
        BASE_URL + "/webhooks/twilio/inbound",
        BASE_URL + STATUS_PATH + "?message=1",
        "http://krisrutin.example.se" + STATUS_PATH,
    ):
        assert post_signed(client, callback(), signed_url=other).status_code == 403, other
    assert stored(app, message_id)[0].status == "sent"


def test_form_changed_after_signing_is_refused(app, client, clock):
    message_id = add_sms(app, clock)
    signed = callback(status="failed")
    for sent in (
        {**signed, "MessageStatus": "delivered"},  # a field changed
        {**signed, "ErrorCode": "30005"},  # a field added
        {k: v for k, v in signed.items() if k != "AccountSid"},  # a field left out
    ):
        assert post_signed(client, signed, sent=sent).status_code == 403, sent
    assert stored(app, message_id)[0].status == "sent"


def test_a_field_sent_twice_must_be_covered_by_the_signature(app, client, clock):
    message_id = add_sms(app, clock)
    params = callback(status="sent")
    headers = {"X-Twilio-Signature": signature(AUTH_TOKEN, BASE_URL + STATUS_PATH, params)}
    body = "&".join(f"{k}={v}" for k, v in params.items()) + "&MessageStatus=delivered"
    response = client.post(STATUS_PATH, data=body, headers=headers, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403
    assert stored(app, message_id)[0].status == "sent"


def test_callback_is_refused_when_twilio_is_not_configured(sqlite_url, clock):
    app = build_app(sqlite_url, clock, PUBLIC_BASE_URL=BASE_URL)  # no TWILIO_AUTH_TOKEN
    create_schema(app)
    message_id = add_sms(app, clock)
    response = post_signed(app.test_client(), callback())
    assert response.status_code == 403
    assert stored(app, message_id)[0].status == "sent"


@pytest.mark.parametrize("missing", ["MessageSid", "MessageStatus"])
def test_signed_callback_without_sid_or_status_is_a_bad_request(app, client, missing):
    params = {k: v for k, v in callback().items() if k != missing}
    response = post_signed(client, params)
    assert response.status_code == 400
    assert "MessageSid and MessageStatus" in response.get_json()["error"]


def test_late_sent_callback_does_not_take_a_delivered_message_back(app, client, clock):
    message_id = add_sms(app, clock)
    assert post_signed(client, callback(status="delivered")).status_code == 204
    clock.advance(timedelta(seconds=5))
    assert post_signed(client, callback(status="sent")).status_code == 204
    assert stored(app, message_id)[0].status == "delivered"
