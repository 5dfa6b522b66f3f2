"""The outbox service: messages are written with the caller's transaction, once per key, and
their delivery statuses only move forward."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from contacts.models import ContactPerson, Provider
from core.extensions import db
from notifications.models import Message, Priority
from notifications.service import (
    cancel,
    deliveries,
    record_delivery_status,
    send,
    stale_channels,
    status_summary,
)
from tests.notifications.dispatcher_app import events_of, make_contact, queue, reload, wait_until


def count_messages() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message))


def test_asking_twice_with_the_same_key_creates_one_message_per_channel(app, clock):
    with app.app_context():
        contact = make_contact(now=clock.now())
        first = queue(
            now=clock.now(), key="check:2026-12:contact:1:reminder:1", channels=["email", "sms"], contact=contact
        )
        again = queue(
            now=clock.now(), key="check:2026-12:contact:1:reminder:1", channels=["email", "sms"], contact=contact
        )

        assert [m.id for m in first] == [m.id for m in again]
        assert count_messages() == 2
        email, sms = first
        assert (email.channel, email.to_address, email.subject) == (
            "email",
            "kontakt1@example.se",
            "Test check:2026-12:contact:1:reminder:1",
        )
        assert email.idempotency_key == "check:2026-12:contact:1:reminder:1:email"
        assert email.body_html and "Meddelande" in email.body_text
        assert (sms.channel, sms.to_address, sms.subject, sms.segments) == ("sms", "+46700000001", None, 1)
        assert (email.status, email.attempts, email.next_attempt_at) == ("queued", 0, clock.now())
        assert events_of(email.id) == ["queued"]


def test_a_rolled_back_business_transaction_leaves_no_message(app, clock):
    with app.app_context():
        db.session.add(Provider(name="Utförare AB", kind="private", created_at=clock.now()))
        queue(now=clock.now(), key="letter:1", channels=["email", "sms"], commit=False)
        db.session.rollback()

        assert count_messages() == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Provider)) == 0


def test_messages_are_visible_to_others_only_when_the_caller_commits(app, clock):
    seen_before_commit = []

    def count_elsewhere():
        with app.app_context():  # another session, another connection
            seen_before_commit.append(count_messages())
            db.session.remove()

    with app.app_context():
        queue(now=clock.now(), key="letter:2", commit=False)
        reader = threading.Thread(target=count_elsewhere)
        reader.start()
        reader.join()
        db.session.commit()

    assert seen_before_commit == [0]
    with app.app_context():
        assert count_messages() == 1


def test_a_channel_without_an_address_is_left_out(app, clock):
    with app.app_context():
        contact = make_contact(now=clock.now(), mobile=None)
        messages = queue(now=clock.now(), key="letter:3", channels=["email", "sms"], contact=contact)

        assert [m.channel for m in messages] == ["email"]


def test_explicit_addresses_win_over_the_contacts(app, clock):
    with app.app_context():
        contact = make_contact(now=clock.now())
        [message] = queue(now=clock.now(), key="letter:4", contact=contact, to_email="other@example.se")

        assert (message.to_address, message.contact_id) == ("other@example.se", contact.id)


def _waiting_on_a_lock(app) -> int:
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    with app.app_context(), db.engine.connect() as connection:
        return connection.scalar(sa.text(query))


def test_concurrent_callers_with_the_same_key_create_one_message(postgres_url, clock):
    from tests.conftest import build_app, create_schema

    app = build_app(postgres_url, clock)
    create_schema(app)
    first_inserted = threading.Event()
    results: dict[str, list[int]] = {}

    def second_caller():
        with app.app_context():
            first_inserted.wait(5)
            # Waits on the unique key until the first transaction commits, then finds its row.
            results["second"] = [m.id for m in queue(now=clock.now(), key="same")]
            db.session.remove()

    with app.app_context():
        other = threading.Thread(target=second_caller)
        other.start()
        results["first"] = [m.id for m in queue(now=clock.now(), key="same", commit=False)]
        first_inserted.set()
        wait_until(lambda: _waiting_on_a_lock(app) >= 1, what="the second caller to wait on the key")
        db.session.commit()
        other.join(10)
        assert count_messages() == 1
        db.session.remove()
        db.engine.dispose()
    assert results["first"] == results["second"]


def test_deliveries_show_who_received_what_for_a_reference(app, clock):
    with app.app_context():
        anna = make_contact(now=clock.now(), number=1)
        bo = make_contact(now=clock.now(), number=2, mobile=None)
        queue(now=clock.now(), key="letter:7:anna", channels=["email", "sms"], contact=anna, ref=("letter", 7))
        queue(now=clock.now(), key="letter:7:bo", channels=["email", "sms"], contact=bo, ref=("letter", 7))
        queue(now=clock.now(), key="letter:8:anna", contact=anna, ref=("letter", 8))

        rows = deliveries(db_session=db.session, ref_type="letter", ref_id=7)

        assert [(d.contact_name, d.channel, d.status) for d in rows] == [
            ("Kontakt 1", "email", "queued"),
            ("Kontakt 1", "sms", "queued"),
            ("Kontakt 2", "email", "queued"),
        ]


def test_cancel_stops_queued_messages_and_leaves_the_others(app, clock):
    with app.app_context():
        email, sms = queue(now=clock.now(), key="letter:9", channels=["email", "sms"])
        sending = queue(now=clock.now(), key="letter:10", ref=("letter", 9))[0]
        db.session.execute(sa.update(Message).where(Message.id == sending.id).values(status="sending"))
        db.session.commit()

        assert (
            cancel(db_session=db.session, now=clock.now(), idempotency_key="letter:9", reason="letter withdrawn") == 2
        )
        assert cancel(db_session=db.session, now=clock.now(), ref=("letter", 9)) == 0
        db.session.commit()

        assert reload(email.id).status == reload(sms.id).status == "cancelled"
        assert reload(sending.id).status == "sending"
        assert events_of(email.id) == ["queued", "cancelled"]


def _as_sent(message_id: int, gateway_id: str, clock) -> None:
    db.session.execute(
        sa.update(Message)
        .where(Message.id == message_id)
        .values(status="sent", gateway="twilio", gateway_id=gateway_id, sent_at=clock.now())
    )
    db.session.commit()


def test_delivery_statuses_only_move_forward_when_callbacks_come_out_of_order(app, clock):
    with app.app_context():
        [sms] = queue(now=clock.now(), key="sms:1", channels=["sms"])
        _as_sent(sms.id, "SM1", clock)

        clock.advance(seconds=5)
        record_delivery_status(db_session=db.session, gateway_id="SM1", status="delivered", now=clock.now())
        clock.advance(seconds=1)
        late = record_delivery_status(db_session=db.session, gateway_id="SM1", status="sent", now=clock.now())
        record_delivery_status(db_session=db.session, gateway_id="SM1", status="delivered", now=clock.now())
        db.session.commit()

        assert late.status == "delivered"
        message = reload(sms.id)
        assert message.status == "delivered"
        assert message.delivered_at == clock.now().replace(second=5)
        assert events_of(sms.id) == ["queued", "delivered"]
        assert (
            record_delivery_status(db_session=db.session, gateway_id="SM-unknown", status="sent", now=clock.now())
            is None
        )


def test_an_sms_undelivered_to_an_unknown_number_marks_the_contacts_mobile_failing(app, clock):
    with app.app_context():
        contact = make_contact(now=clock.now())
        [sms] = queue(now=clock.now(), key="sms:2", channels=["sms"], contact=contact)
        _as_sent(sms.id, "SM2", clock)

        record_delivery_status(
            db_session=db.session, gateway_id="SM2", status="undelivered", error_code="30005", now=clock.now()
        )
        db.session.commit()

        assert reload(sms.id).status == "undelivered"
        stored = db.session.get(ContactPerson, contact.id)
        assert stored.mobile_failing_since == clock.now()
        assert "30005" in stored.mobile_failure_reason
        assert "+46" not in stored.mobile_failure_reason


def test_an_sms_undelivered_for_another_reason_leaves_the_contact_alone(app, clock):
    with app.app_context():
        contact = make_contact(now=clock.now())
        [sms] = queue(now=clock.now(), key="sms:3", channels=["sms"], contact=contact)
        _as_sent(sms.id, "SM3", clock)

        record_delivery_status(
            db_session=db.session, gateway_id="SM3", status="undelivered", error_code="30003", now=clock.now()
        )
        db.session.commit()

        assert reload(sms.id).status == "undelivered"
        assert db.session.get(ContactPerson, contact.id).mobile_failing_since is None


def test_a_callback_that_overtakes_the_dispatchers_commit_is_kept(app, clock):
    with app.app_context():
        [sms] = queue(now=clock.now(), key="sms:4", channels=["sms"])
        db.session.execute(sa.update(Message).where(Message.id == sms.id).values(status="sending", leased_by="d1"))
        db.session.commit()

        record_delivery_status(
            db_session=db.session, gateway_id="SM4", status="delivered", now=clock.now(), message_id=sms.id
        )
        db.session.commit()

        message = reload(sms.id)
        assert (message.status, message.gateway_id) == ("delivered", "SM4")


def test_status_summary_counts_messages_and_flags_a_stale_queue(app, clock):
    with app.app_context():
        queue(now=clock.now(), key="old", channels=["email", "sms"], priority=Priority.BULK)
        clock.advance(minutes=11)

        summary = status_summary(db_session=db.session, now=clock.now())

        assert summary["messages"]["email"]["queued"] == summary["messages"]["sms"]["queued"] == 1
        assert summary["oldest_due_age_seconds"] == {"email": 660.0, "sms": 660.0}
        assert set(stale_channels(db_session=db.session, now=clock.now())) == {"email", "sms"}


@pytest.mark.parametrize("channels", [[], ["fax"]])
def test_send_refuses_unknown_channels(app, clock, channels):
    with app.app_context(), pytest.raises(ValueError):
        send(
            db_session=db.session,
            kind="generic",
            context={"subject": "x", "body": "y"},
            channels=channels,
            priority=Priority.NORMAL,
            idempotency_key="k",
            now=clock.now(),
            to_email="a@example.se",
        )


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgresql_the_claim_index_holds_open_messages_only_and_the_claims_use_it(app, clock):
    """The claim index leaves out sent (and every other closed) message, so that the `sent` update
    adds no entry to it and it does not grow with the years' messages; the claim, the lease
    recovery and the open-messages view still find their rows through it."""
    from notifications.outbox import _PG_CLAIM

    with app.app_context():
        queue(now=clock.now(), key="indexed")
        connection = db.session.connection()
        definition = connection.execute(
            sa.text(
                "SELECT indexdef FROM pg_indexes"
                " WHERE indexname = 'ix_messages_claim' AND schemaname = current_schema()"
            )
        ).scalar_one()
        assert "WHERE" in definition and "'queued'" in definition and "'sending'" in definition

        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned
        now = clock.now()
        claim = {"channel": "sms", "now": now, "lease_until": now, "name": "plan", "limit": 10}
        plans = {
            "claim": connection.exec_driver_sql("EXPLAIN " + _PG_CLAIM, claim).scalars().all(),
            "lease recovery": connection.execute(
                sa.text("EXPLAIN SELECT id FROM messages WHERE status = 'sending' AND lease_until < :now"), {"now": now}
            )
            .scalars()
            .all(),
            "open messages": connection.execute(
                sa.text("EXPLAIN SELECT count(*) FROM messages WHERE status IN ('queued', 'sending')")
            )
            .scalars()
            .all(),
        }
        db.session.rollback()
    for what, plan in plans.items():
        assert any("ix_messages_claim" in line for line in plan), f"{what}: {plan}"
