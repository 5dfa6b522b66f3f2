"""The outbox's check: no message whose subject, text or SMS text holds a character the text
boundary refuses is queued, whatever path the text came by, so none reaches the SMTP server or
Twilio. The end-to-end test sends through the real dispatcher to the real SMTP and Twilio peers.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.extensions import db
from crisis.incidents.models import Supplier
from notifications.bulk import Outgoing, send_many
from notifications.dispatcher import Dispatcher
from notifications.models import Message
from notifications.service import UnsendableText, send
from tests.crisis.incidents.test_letters_helpers import make_people


def _send(context: dict, clock) -> None:
    send(
        db_session=db.session,
        kind="generic",
        context=context,
        channels=["email", "sms"],
        priority=0,
        idempotency_key="test:unsendable",
        now=clock.now(),
        to_email="anna@norr.se",
        to_mobile="+46701000001",
    )


def _messages() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message))


@pytest.mark.parametrize(
    ("context", "part"),
    [
        ({"subject": "Driftstörning\x00", "body": "Kamerorna är nere."}, "subject"),
        ({"subject": "Driftstörning", "body": "Kamerorna\x00 är nere."}, "body_text"),
        ({"subject": "\u202eGninrötsftird", "body": "Kamerorna är nere."}, "subject"),
        ({"subject": "Driftstörning", "body": "Kamerorna \x1b[31mär nere."}, "body_text"),
    ],
)
def test_a_message_holding_a_refused_character_is_not_queued(app, clock, context, part):
    with app.app_context():
        with pytest.raises(UnsendableText, match=part):
            _send(context, clock)
        db.session.rollback()
        assert _messages() == 0


def test_many_messages_at_once_are_checked_the_same_way(app, clock):
    items = [
        Outgoing(idempotency_key=f"test:many:{n}", context={"subject": "Hej", "body": text}, to_email=f"p{n}@ex.se")
        for n, text in enumerate(["Allt väl.", "Allt\x00 väl."])
    ]
    with app.app_context():
        with pytest.raises(UnsendableText):
            send_many(
                db_session=db.session, kind="generic", items=items, channels=["email"], priority=9, now=clock.now()
            )
        db.session.rollback()
        assert _messages() == 0


@pytest.fixture
def peer_app(make_app, peer_settings):
    return make_app(**peer_settings)


def test_no_nul_reaches_the_smtp_server_or_twilio(peer_app, clock, smtp_server, twilio_server, make_user, make_token):
    """A letter with NUL in its subject is refused at the API, a message with one cannot be
    queued, and the letter that does go out reaches every contact without one."""
    app = peer_app
    with app.app_context():
        make_people(clock)
        db.session.add(Supplier(name="Telia", email="drift@telia.se", is_active=True, created_at=clock.now()))
        db.session.commit()
    token = make_token(make_user("team")[0])
    client = app.test_client()

    def notice(subject: str):
        body = {
            "title": "GSM-störning",
            "service": "camera_supervision",
            "letter": {"subject": subject, "body": "Kamerorna når inte larmcentralen."},
        }
        return client.post("/api/v1/notices", json=body, headers={"Authorization": f"Bearer {token}"})

    assert notice("Driftstörning\x00 kameror").status_code == 400
    with app.app_context():
        with pytest.raises(UnsendableText):
            _send({"subject": "Hej\x00", "body": "x"}, clock)
        db.session.rollback()
    assert notice("Driftstörning kameror").status_code == 201
    Dispatcher(app, name="text-test", jitter=lambda: 1.0).run_until_idle(timeout=30)

    received = smtp_server.messages
    assert {address for message in received for address in message.rcpt_tos} >= {"anna@norr.se", "cia@soder.se"}
    assert all(b"\x00" not in message.raw for message in received)
    letters = [message for message in received if set(message.rcpt_tos) & {"anna@norr.se", "cia@soder.se"}]
    assert letters and all("Driftstörning kameror" in str(message.message["Subject"]) for message in letters)
    texts = [request.params["Body"] for request in twilio_server.messages]
    assert texts and all("\x00" not in text for text in texts)
