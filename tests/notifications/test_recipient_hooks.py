"""The recipients' hooks: what the register's hooks do for the team, and notifications without
any hook, with the real dispatcher, SMTP server and Twilio-speaking HTTP server."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from contacts import recipients as register_recipients
from contacts.models import ContactPerson
from core.extensions import db
from notifications.dispatcher import Dispatcher
from notifications.models import Message
from notifications.recipients import HOOKS_EXTENSION, NO_HOOKS, register_hooks, registered_hooks
from notifications.service import deliveries, record_delivery_status
from tests.notifications.dispatcher_app import make_contact, queue, reload


@pytest.fixture
def app(make_app, peer_settings):
    """The application sending through the local SMTP server and Twilio-speaking server."""
    return make_app(**peer_settings)


@pytest.fixture
def alone(app):
    """The same application with no recipient hooks: notifications used on its own."""
    app.extensions[HOOKS_EXTENSION] = NO_HOOKS
    return app


def dispatch(app):
    return Dispatcher(app, name="hooks-test").run_until_idle(timeout=30)


def stored_contact(contact_id: int) -> ContactPerson:
    db.session.expire_all()
    return db.session.get(ContactPerson, contact_id)


def test_a_number_twilio_refuses_marks_the_contacts_mobile_failing_in_the_register(app, clock, twilio_server):
    with app.app_context():
        contact = make_contact(now=clock.now())
        [sms] = queue(now=clock.now(), key="refused", channels=["sms"], contact=contact, ref=("letter", 1))
    twilio_server.fail_for_number(contact.mobile, "invalid_number")

    report = dispatch(app)

    assert (report.sent, report.failed) == (0, 1)
    with app.app_context():
        assert reload(sms.id).status == "failed"
        person = stored_contact(contact.id)
        assert person.mobile_failing_since == clock.now()
        assert "21211" in person.mobile_failure_reason
        assert contact.mobile not in person.mobile_failure_reason
        assert person.email_failing_since is None


def test_without_hooks_messages_are_sent_and_stored_for_any_recipient(alone, clock, smtp_server, twilio_server):
    @dataclass
    class Person:  # not from the register: any object with id, email and mobile
        id: int | None
        email: str | None
        mobile: str | None

    with alone.app_context():
        messages = queue(
            now=clock.now(),
            key="alone",
            channels=["email", "sms"],
            contact=Person(None, "larm@example.se", "+46701740611"),
            ref=("letter", 2),
        )

    report = dispatch(alone)

    assert (report.sent, report.failed, report.errors) == (2, 0, 0)
    assert smtp_server.messages[0].rcpt_tos == ("larm@example.se",)
    assert twilio_server.wait_for(1)[0].params["To"] == "+46701740611"
    with alone.app_context():
        assert [reload(m.id).status for m in messages] == ["sent", "sent"]
        rows = deliveries(db_session=db.session, ref_type="letter", ref_id=2)
        assert [(d.contact_id, d.contact_name, d.organisation, d.to_address) for d in rows] == [
            (None, None, None, "larm@example.se"),
            (None, None, None, "+46701740611"),
        ]


def test_without_hooks_a_refused_address_fails_its_message_and_marks_nothing(alone, clock, smtp_server, twilio_server):
    with alone.app_context():
        contact = make_contact(now=clock.now())
        email, sms = queue(now=clock.now(), key="refused", channels=["email", "sms"], contact=contact)
    smtp_server.reject_recipient(contact.email)
    twilio_server.fail_for_number(contact.mobile, "invalid_number")

    report = dispatch(alone)

    assert (report.sent, report.failed) == (0, 2)
    with alone.app_context():
        assert [reload(m.id).status for m in (email, sms)] == ["failed", "failed"]
        person = stored_contact(contact.id)
        assert (person.email_failing_since, person.mobile_failing_since) == (None, None)


def test_without_hooks_an_unreachable_number_reported_by_twilio_marks_nothing(alone, clock):
    with alone.app_context():
        contact = make_contact(now=clock.now())
        [sms] = queue(now=clock.now(), key="late", channels=["sms"], contact=contact)
        db.session.execute(sa.update(Message).where(Message.id == sms.id).values(status="sent", gateway_id="SM5"))
        record_delivery_status(
            db_session=db.session, gateway_id="SM5", status="undelivered", error_code="30005", now=clock.now()
        )
        db.session.commit()

        assert reload(sms.id).status == "undelivered"
        assert stored_contact(contact.id).mobile_failing_since is None


def test_the_register_registers_each_hook_once_and_refuses_a_second_owner(app):
    hooks = registered_hooks(app)
    assert hooks.mark_failing is register_recipients.mark_address_failing
    assert hooks.find_sender is register_recipients.find_sender
    assert hooks.describe is register_recipients.describe

    assert register_hooks(app, describe=register_recipients.describe) == hooks, "the same function again is harmless"
    with pytest.raises(ValueError, match=r"describe is already registered: contacts\.recipients\.describe"):
        register_hooks(app, describe=lambda *, db_session, keys: {})
