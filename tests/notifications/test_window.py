"""The lanes' in-flight window and the asynchronous lanes (notifications.pump) when things go
wrong: a busy gateway halves the window and acceptances raise it again; a lane against a gateway
that refuses above its limit delivers every message once without using up attempts, settling at
the gateway's limit instead of hammering it; one that refuses everything shows as failing;
acceptances wait for a database connection instead of being lost; a lane whose adapter cannot be
built starts again."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import sqlalchemy as sa

from core.extensions import db
from notifications.channels.base import TransientFailure
from notifications.channels.threaded import ThreadedSender
from notifications.dispatcher import Dispatcher
from notifications.models import Message, MessageEvent, Priority
from notifications.window import Window
from tests.notifications.dispatcher_app import Recorder, queue_many


def test_the_window_starts_at_the_maximum_and_halves_once_per_round():
    window = Window(100)
    assert window.limit == 100, "a gateway that allows it is used at full speed at once"

    started = window.round
    assert window.slow_down(started) is True
    assert window.limit == 50
    # Every request in flight when it was halved answers "too many" too: the same signal.
    assert [window.slow_down(started) for _ in range(30)] == [False] * 30
    assert window.limit == 50

    assert window.slow_down(window.round) is True
    assert window.limit == 25


def test_acceptances_raise_the_window_by_one_per_window_and_never_past_the_maximum():
    window = Window(40)
    window.slow_down(window.round)
    assert window.limit == 20
    for _ in range(19):
        window.accepted()
    assert window.limit == 20
    for _ in range(2):
        window.accepted()
    assert window.limit == 21, "about twenty acceptances at a limit of twenty: one more"
    for _ in range(10_000):
        window.accepted()
    assert window.limit == 40


def test_the_window_never_goes_below_one():
    window = Window(3)
    for _ in range(10):
        window.slow_down(window.round)
    assert window.limit == 1
    with pytest.raises(ValueError, match="maximum"):
        Window(0)


class BusyGateway:
    """A recording channel that, like Twilio above its concurrency limit, refuses requests above
    ``cap`` at once with a rate limit (error 20429), and takes ``seconds`` per request."""

    def __init__(self, recorder: Recorder, *, cap: int, seconds: float):
        self.recorder, self.cap, self.seconds = recorder, cap, seconds
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.refused = 0

    def send(self, original, channel, message_id, outgoing):
        with self.lock:
            if self.in_flight >= self.cap:
                self.refused += 1
                raise TransientFailure("Twilio rate limit (HTTP 429, Twilio error 20429)", rate_limited=True)
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(self.seconds)
            return original(channel, message_id, outgoing)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_a_lane_against_a_gateway_capped_below_its_window_sends_each_message_once(make_app, clock):
    messages = 400
    app = make_app(SMS_CONCURRENCY=40)
    recorder = Recorder()
    gateway = BusyGateway(recorder, cap=10, seconds=0.02)
    original = recorder._send
    recorder._send = lambda channel, message_id, outgoing: gateway.send(original, channel, message_id, outgoing)
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="busy", count=messages, channel="sms", priority=Priority.NORMAL)

    report = Dispatcher(app, name="busy", channels=recorder.setup(), jitter=lambda: 1.0).run_until_idle(timeout=60)

    assert report.sent == messages and report.retried == 0 and report.failed == 0
    assert sorted(recorder.sent_ids("sms")) == ids, "every message accepted exactly once"
    assert gateway.most == 10
    # Forty at once meet a gateway that takes ten: the first round is refused in bulk, and then
    # the lane keeps near the limit, asking for more only now and then (additive increase).
    assert 0 < gateway.refused < messages // 4, f"{gateway.refused} refusals for {messages} messages"
    with app.app_context():
        attempts = set(db.session.scalars(sa.select(Message.attempts)))
        retries = db.session.scalar(
            sa.select(sa.func.count()).select_from(MessageEvent).where(MessageEvent.status == "retry")
        )
    assert attempts == {1}, "a refusal as too many is never counted as an attempt"
    assert retries == 0, "the refused message was sent again under its claim, not queued again"


def test_a_gateway_that_refuses_everything_as_too_many_shows_as_failing_without_using_attempts(make_app, clock):
    from notifications.models import ChannelState
    from notifications.pump import TOO_MANY_IN_A_ROW

    app = make_app(SMS_CONCURRENCY=8)
    recorder = Recorder()
    recorder.always["sms"] = TransientFailure(
        "Twilio rate limit (HTTP 429, Twilio error 20429)", retry_after=0.01, rate_limited=True
    )
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="throttled", count=6, channel="sms", priority=Priority.NORMAL)

    report = Dispatcher(app, name="throttled", channels=recorder.setup(), jitter=lambda: 1.0).run_until_idle(timeout=20)

    assert (report.sent, report.failed, report.retried) == (0, 0, 6), "each back in the queue, none failed"
    assert len(recorder.attempts) == 6 * TOO_MANY_IN_A_ROW, "each sent again under its claim before that"
    with app.app_context():
        stored = db.session.scalars(sa.select(Message).where(Message.id.in_(ids))).all()
        assert {(m.status, m.attempts) for m in stored} == {("queued", 0)}, "no attempt used up"
        state = db.session.get(ChannelState, "sms")
        assert state.consecutive_failures == 6 and state.degraded_since is not None, "the team is warned"
        assert "rate limit" in state.last_error


def test_acceptances_wait_for_a_database_connection_instead_of_being_lost(make_app, clock, monkeypatch):
    """The database restarts while a lane sends: the first writes of its acceptances cannot even
    get a connection. They are written when it is back, so that no message is left 'sending' to
    be sent again when its lease runs out."""
    from sqlalchemy.exc import OperationalError

    from notifications.bookkeeping import Bookkeeping
    from notifications.pump import Pump

    app = make_app(SMS_CONCURRENCY=4)
    recorder = Recorder()
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="restart", count=20, channel="sms", priority=Priority.NORMAL)
    refused = []
    original = Pump._in_session

    def in_session(self, step, args, kwargs):
        if getattr(step, "__func__", None) is Bookkeeping._record_sent and len(refused) < 2:
            refused.append(step)
            raise OperationalError("connect", {}, Exception("connection refused"))
        return original(self, step, args, kwargs)

    monkeypatch.setattr(Pump, "_in_session", in_session)

    report = Dispatcher(app, name="restart", channels=recorder.setup(), jitter=lambda: 1.0).run_until_idle(timeout=30)

    assert len(refused) == 2
    assert report.sent == 20 and sorted(recorder.sent_ids()) == ids
    with app.app_context():
        assert set(db.session.scalars(sa.select(Message.status))) == {"sent"}


def test_a_lane_whose_adapter_cannot_be_built_starts_again_and_sends(make_app, clock):
    """The SMS gateway's adapter fails to build once (a bug, a library that could not start): the
    error is counted and logged, and the lane starts again and sends."""
    app = make_app()
    recorder = Recorder()
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="again", count=3, channel="sms", priority=Priority.NORMAL)
    builds = []

    def sms_adapter(max_in_flight):
        builds.append(max_in_flight)
        if len(builds) == 1:
            raise RuntimeError("the adapter could not start")
        return ThreadedSender(recorder.setup().sms_factory, threads=2, gateway="memory")

    channels = dataclasses.replace(recorder.setup(), sms_async_factory=sms_adapter)
    dispatcher = Dispatcher(app, name="again", channels=channels, poll_seconds=0.05)
    dispatcher.start()
    try:
        recorder.wait_for(lambda r: len(r.sent_ids("sms")) == 3, timeout=10, what="the SMS after the restart")
    finally:
        dispatcher.stop()

    assert builds == [100, 100] and sorted(recorder.sent_ids("sms")) == ids
    assert dispatcher._report.errors == 1


def record_writes(monkeypatch) -> list[int]:
    """How many acceptances each of the pumps' ``sent`` writes carried."""
    from notifications.bookkeeping import Bookkeeping
    from notifications.pump import Pump

    writes: list[int] = []
    original = Pump._in_session

    def in_session(self, step, args, kwargs):
        if getattr(step, "__func__", None) is Bookkeeping._record_sent:
            writes.append(len(args[1]))
        return original(self, step, args, kwargs)

    monkeypatch.setattr(Pump, "_in_session", in_session)
    return writes


def test_a_fast_lane_records_its_acceptances_in_batches_not_one_transaction_each(make_app, clock, monkeypatch):
    """The recorder waits a moment (RECORD_LINGER) for more acceptances when fewer than a batch
    have come in: a fast gateway's acceptances go to the database a batch at a time (before,
    about two per transaction: 6,200 transactions for 10,000 messages on PostgreSQL)."""
    from notifications import pump

    monkeypatch.setattr(pump, "RECORD_LINGER", 0.2)  # wide, so that a slow machine shows it too
    writes = record_writes(monkeypatch)
    app = make_app(SMS_CONCURRENCY=40, DISPATCH_BATCH_SIZE=10)
    recorder = Recorder()
    # A gateway that accepts one message every 5 ms: acceptances trickle in one by one.
    original, one_at_a_time = recorder._send, threading.Lock()

    def trickle(channel, message_id, outgoing):
        with one_at_a_time:
            time.sleep(0.005)
            return original(channel, message_id, outgoing)

    recorder._send = trickle
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="gather", count=60, channel="sms", priority=Priority.BULK)

    report = Dispatcher(app, name="gather", channels=recorder.setup()).run_until_idle(timeout=30)

    assert report.sent == 60 and sorted(recorder.sent_ids("sms")) == ids
    assert sum(writes) == 60
    assert len(writes) <= 12, f"{len(writes)} writes for 60 acceptances: {writes}"


def test_a_lane_whose_window_is_all_back_does_not_wait_to_record(make_app, clock, monkeypatch):
    """With a window smaller than a batch, every claim's outcome in is all there is to wait for:
    the recorder writes at once instead of holding the lane for the linger."""
    from notifications import pump

    monkeypatch.setattr(pump, "RECORD_LINGER", 5.0)
    app = make_app(SMS_CONCURRENCY=2, DISPATCH_BATCH_SIZE=10)
    recorder = Recorder()
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="small", count=6, channel="sms", priority=Priority.BULK)
    started = time.monotonic()
    report = Dispatcher(app, name="small", channels=recorder.setup()).run_until_idle(timeout=30)
    assert report.sent == 6 and sorted(recorder.sent_ids("sms")) == ids
    assert time.monotonic() - started < 4, "no 5 s linger with the whole window back"


def test_an_urgent_acceptance_is_recorded_at_once_not_after_the_linger(make_app, clock, monkeypatch):
    """Bulk messages are out at a slow gateway (the recorder could wait for theirs); an urgent
    one accepted meanwhile is written at once, not after the linger."""
    from notifications import pump

    monkeypatch.setattr(pump, "RECORD_LINGER", 5.0)
    app = make_app(SMS_CONCURRENCY=10)
    recorder = Recorder()
    held, original, at_gateway = threading.Event(), recorder._send, []
    with app.app_context():
        bulk = set(queue_many(now=clock.now(), prefix="held", count=3, channel="sms", priority=Priority.BULK))

    def slow_bulk(channel, message_id, outgoing):
        if message_id in bulk:
            at_gateway.append(message_id)
            held.wait(10)
        return original(channel, message_id, outgoing)

    recorder._send = slow_bulk
    dispatcher = Dispatcher(app, name="urgent", channels=recorder.setup(), poll_seconds=0.05)
    dispatcher.start()
    try:
        recorder.wait_for(lambda _: len(at_gateway) == 3, timeout=5, what="the bulk ones at the gateway")
        with app.app_context():
            (urgent,) = queue_many(now=clock.now(), prefix="urgent", count=1, channel="sms", priority=Priority.URGENT)
        started = time.monotonic()
        status = None
        while time.monotonic() - started < 4:
            with app.app_context():
                status = db.session.get(Message, urgent).status
                db.session.remove()
            if status == "sent":
                break
            time.sleep(0.05)
        waited = time.monotonic() - started
    finally:
        held.set()
        dispatcher.stop()
    assert status == "sent" and waited < 4, "recorded well before the 5 s linger"
