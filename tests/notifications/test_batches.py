"""Claims in batches: a claim takes the most urgent N in order, acceptances are recorded together
(a lost claim among them is found), unsent claims are given back, and a batch of one behaves as
the old one-at-a-time dispatcher."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.extensions import db
from notifications.channels.base import TransientFailure
from notifications.dispatcher import Dispatcher
from notifications.models import Channel, Message, Priority
from notifications.outbox import SentRecord, claim_batch, record_sent_batch, release
from tests.notifications.dispatcher_app import (
    Recorder,
    events_of,
    message_statuses,
    queue,
    queue_many,
    reload,
    wait_until,
)


def test_a_batch_claim_takes_the_most_urgent_n_in_order(app, clock):
    with app.app_context():
        start = clock.now()
        bulk = queue_many(now=start, prefix="bulk", count=600, channel="email", priority=Priority.BULK)
        clock.advance(seconds=1)
        normal = queue_many(now=clock.now(), prefix="normal", count=3, channel="email", priority=Priority.NORMAL)
        urgent = queue_many(now=clock.now(), prefix="urgent", count=2, channel="email", priority=Priority.URGENT)
        queue_many(now=clock.now(), prefix="texts", count=5, channel="sms", priority=Priority.URGENT)
        clock.advance(seconds=1)
        later = queue_many(now=clock.now() + timedelta(hours=1), prefix="later", count=2, channel="email", priority=0)

        claimed = claim_batch(db.session, channel="email", now=clock.now(), lease_seconds=60, name="batcher", limit=10)

        assert [m.id for m in claimed] == urgent + normal + bulk[:5], "urgent, normal, then the oldest bulk"
        assert {m.channel for m in claimed} == {"email"} and {m.attempts for m in claimed} == {1}
        # Exactly ``limit`` rows, however the planner runs the subquery (PostgreSQL: SKIP LOCKED
        # must not skip the rows the claim itself has just updated and take more).
        assert message_statuses() == {"sending": 10, "queued": 600 + 3 + 2 + 2 - 10 + 5}
        assert events_of(claimed[0].id) == ["queued", "sending"]
        assert all(reload(i).status == "queued" for i in later), "not due yet"

        again = claim_batch(db.session, channel="email", now=clock.now(), lease_seconds=60, name="batcher", limit=10)
        assert [m.id for m in again] == bulk[5:15]


def test_acceptances_of_a_batch_are_recorded_together_and_a_lost_claim_is_found(app, clock):
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="rec", count=4, channel="sms", priority=Priority.NORMAL)
        claimed = claim_batch(db.session, channel="sms", now=clock.now(), lease_seconds=30, name="slow", limit=4)
        # While the batch was out, the lease of one ran out and another dispatcher took it.
        db.session.execute(
            sa.update(Message).where(Message.id == ids[1]).values(leased_by="other", attempts=Message.attempts + 1)
        )
        db.session.commit()

        sends = [SentRecord(m, "memory", f"gw-{m.id}") for m in claimed]
        lost = record_sent_batch(db.session, sends, name="slow", now=clock.now())
        db.session.commit()

        assert lost == [ids[1]]
        taken = reload(ids[1])
        assert (taken.status, taken.leased_by, taken.gateway_id) == ("sending", "other", None), "not ours: untouched"
        assert events_of(ids[1]) == ["queued", "sending"]
        for message_id in (ids[0], *ids[2:]):
            stored = reload(message_id)
            assert (stored.status, stored.gateway_id, stored.sent_at) == ("sent", f"gw-{message_id}", clock.now())
            assert events_of(message_id) == ["queued", "sending", "sent"]


def test_a_batch_whose_claims_all_hold_is_recorded_in_full(app, clock):
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="ok", count=5, channel="email", priority=Priority.NORMAL)
        claimed = claim_batch(db.session, channel="email", now=clock.now(), lease_seconds=30, name="me", limit=5)
        lost = record_sent_batch(
            db.session, [SentRecord(m, "memory", f"gw-{m.id}") for m in claimed], name="me", now=clock.now()
        )
        db.session.commit()
        assert lost == []
        for message_id in ids:
            stored = reload(message_id)
            assert (stored.status, stored.gateway_id, stored.leased_by) == ("sent", f"gw-{message_id}", None)
            assert events_of(message_id) == ["queued", "sending", "sent"]


def test_released_claims_go_back_to_the_queue_with_their_attempt_not_counted(app, clock):
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="rel", count=3, channel="email", priority=Priority.NORMAL)
        claimed = claim_batch(db.session, channel="email", now=clock.now(), lease_seconds=30, name="me", limit=3)
        # One of them was lost meanwhile (reclaimed and claimed by another): not given back by us.
        db.session.execute(sa.update(Message).where(Message.id == ids[2]).values(leased_by="other"))
        db.session.commit()

        released = release(db.session, claimed, name="me", now=clock.now())

        assert released == ids[:2]
        for message_id in ids[:2]:
            stored = reload(message_id)
            assert (stored.status, stored.attempts, stored.lease_until, stored.leased_by) == ("queued", 0, None, None)
            assert events_of(message_id) == ["queued", "sending", "queued"]
        assert (reload(ids[2]).status, reload(ids[2]).leased_by) == ("sending", "other")


def test_a_stopping_dispatcher_gives_back_the_claims_it_has_not_sent(make_app, clock):
    # Two e-mails a second: the lane holds two claims, one being sent, the next waiting for its
    # token (a rate-limited lane claims no more than it may send in about a second).
    app = make_app(EMAIL_CONCURRENCY=10, EMAIL_RATE_PER_SECOND=2)
    recorder = Recorder()
    gate = threading.Event()
    stopping = threading.Event()
    original = recorder._send

    def send(channel, message_id, outgoing):  # the second send waits until stop() was called
        if len(recorder.attempts) == 1:
            gate.set()
            stopping.wait(5)
        return original(channel, message_id, outgoing)

    recorder._send = send
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="stop", count=30, channel="email", priority=Priority.NORMAL)
    dispatcher = Dispatcher(app, name="stopper", channels=recorder.setup(), poll_seconds=0.05, batch_size=10)

    dispatcher.start()
    try:
        assert gate.wait(10), "the second message is being sent"
        with app.app_context():
            wait_until(lambda: message_statuses().get("sending") == 2, what="the next claim, waiting for its token")
    finally:
        stopper = threading.Thread(target=dispatcher.stop)
        stopper.start()
        wait_until(lambda: dispatcher._stop.is_set(), what="stop to be asked")
        stopping.set()
        stopper.join(15)

    assert recorder.sent_ids() == ids[:2], "the message being sent is finished; no more are sent"
    with app.app_context():
        assert message_statuses() == {"sent": 2, "queued": 28}, "no claim is held after stop()"
        stored = reload(ids[2])
        assert (stored.attempts, stored.leased_by) == (0, None)
        assert events_of(ids[2]) == ["queued", "sending", "queued"]
        assert events_of(ids[3]) == ["queued"]


def test_a_pausing_lane_gives_back_the_rest_of_its_batch(make_app, clock):
    app = make_app(EMAIL_CONCURRENCY=1)
    recorder = Recorder()
    recorder.always["email"] = TransientFailure("connection refused")
    with app.app_context():
        queue_many(now=clock.now(), prefix="pause", count=30, channel="email", priority=Priority.NORMAL)
    dispatcher = Dispatcher(
        app, name="pauser", channels=recorder.setup(), poll_seconds=0.05, jitter=lambda: 1.0, batch_size=10
    )

    dispatcher.start()
    try:
        lane = dispatcher.lanes[Channel.EMAIL]
        wait_until(lambda: lane.pause_remaining() > 0, timeout=5, what="the lane to pause")
        with app.app_context():
            wait_until(lambda: message_statuses().get("sending", 0) == 0, timeout=5, what="the batch given back")
            counts = message_statuses()
    finally:
        dispatcher.stop()

    assert len(recorder.attempts) == 5
    assert counts == {"queued": 30}, "5 to retry later, 25 given back (5 of them from the batch)"
    with app.app_context():
        attempts = sorted(db.session.scalars(sa.select(Message.attempts)))
    assert attempts == [0] * 25 + [1] * 5


def test_a_batch_of_one_behaves_as_one_claim_at_a_time(make_app, clock, monkeypatch):
    import notifications.pump

    app = make_app(EMAIL_CONCURRENCY=2, SMS_CONCURRENCY=2, DISPATCH_BATCH_SIZE=1)
    recorder = Recorder()
    claims = []
    with app.app_context():
        ids = [m.id for n in range(6) for m in queue(now=clock.now(), key=f"one{n}", channels=["email", "sms"])]
    dispatcher = Dispatcher(app, name="single", channels=recorder.setup())
    assert dispatcher.batch_size == 1 and {lane.batch for lane in dispatcher.lanes.values()} == {1}
    original = notifications.pump.claim_batch

    def claim(session, **options):
        batch = original(session, **options)
        claims.append((options["limit"], len(batch)))
        return batch

    monkeypatch.setattr(notifications.pump, "claim_batch", claim)

    report = dispatcher.run_until_idle(timeout=30)

    assert (report.sent, report.errors) == (12, 0)
    assert sorted(recorder.sent_ids()) == sorted(ids)
    assert {limit for limit, _ in claims} == {1}, "one message per claim"
    assert sum(count for _, count in claims) == 12
    with app.app_context():
        assert all(events_of(i) == ["queued", "sending", "sent"] for i in ids)


def test_a_rate_limited_lane_claims_no_more_than_a_second_of_sends():
    from notifications.dispatcher import Lane

    def lane(rate, concurrency, batch=10):
        return Lane(Channel.SMS, lambda: None, "memory", concurrency, rate, batch).batch

    assert lane(0, 4) == 10, "unlimited"
    assert lane(100, 4) == 10
    assert lane(20, 4) == 5
    assert lane(1, 4) == 1
    assert lane(0.2, 1) == 1


def test_the_batch_size_is_checked(make_app):
    app = make_app()
    with pytest.raises(ValueError, match="batch_size"):
        Dispatcher(app, name="x", channels=Recorder().setup(), batch_size=0)


def test_a_worker_finds_the_lost_claims_of_its_batch_and_logs_only_their_ids(make_app, clock, caplog):
    app = make_app(EMAIL_CONCURRENCY=1)
    recorder = Recorder()
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="lost", count=3, channel="email", priority=Priority.NORMAL)
    taken = threading.Event()

    original = recorder._send

    def send(channel, message_id, outgoing):  # while the batch is out, another takes the last one
        if message_id == ids[-1] and not taken.is_set():
            with app.app_context():
                db.session.execute(sa.update(Message).where(Message.id == message_id).values(leased_by="thief"))
                db.session.commit()
            taken.set()
        return original(channel, message_id, outgoing)

    recorder._send = send
    dispatcher = Dispatcher(app, name="victim", channels=recorder.setup(), batch_size=10)
    with caplog.at_level(logging.WARNING, logger="notifications.dispatcher"):
        report = dispatcher.run_until_idle(timeout=20)

    assert report.sent == 3
    [warning] = [r for r in caplog.records if "claim was lost" in r.getMessage()]
    assert warning.message_ids == [ids[-1]]
    assert "example.se" not in repr(warning.__dict__)
    with app.app_context():
        assert [reload(i).status for i in ids] == ["sent", "sent", "sending"]
