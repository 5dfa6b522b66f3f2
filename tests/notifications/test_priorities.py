"""Urgent messages overtake bulk ones; each channel keeps to its rate."""

from __future__ import annotations

import time

import pytest

from notifications.dispatcher import Dispatcher
from notifications.models import Priority
from notifications.ratelimit import TokenBucket
from tests.notifications.dispatcher_app import Recorder, queue, queue_many

BULK = 2000


@pytest.mark.parametrize("batch_size", [1, 10])
def test_an_urgent_letter_queued_behind_2000_bulk_messages_goes_out_first(make_app, clock, batch_size):
    """The urgent letter is first in the first batch claimed. The other worker may already hold
    (and send) its own batch of bulk messages: at most one batch per other worker goes ahead,
    which with one message per claim is the original "first or second"."""
    concurrency = 2
    app = make_app(EMAIL_CONCURRENCY=concurrency)
    recorder = Recorder()
    with app.app_context():
        queue_many(now=clock.now(), prefix="check", count=BULK, channel="email", priority=Priority.BULK)
        clock.advance(seconds=1)  # queued later than all of them
        [urgent] = queue(now=clock.now(), key="outage-letter", priority=Priority.URGENT)
    dispatcher = Dispatcher(app, name="prio", channels=recorder.setup(), poll_seconds=0.05, batch_size=batch_size)

    dispatcher.start()
    try:
        recorder.wait_for(lambda r: urgent.id in r.sent_ids(), timeout=20, what="the urgent letter")
    finally:
        dispatcher.stop()

    position = recorder.sent_ids().index(urgent.id) + 1
    assert position <= (concurrency - 1) * batch_size + 1, f"the urgent letter was send number {position}"


@pytest.mark.parametrize("batch_size", [1, 10])
def test_an_urgent_letter_queued_while_bulk_is_going_out_overtakes_the_rest(make_app, clock, batch_size):
    concurrency = 3
    app = make_app(SMS_CONCURRENCY=concurrency)
    recorder = Recorder()
    recorder.delay["sms"] = 0.002  # a gateway round trip
    with app.app_context():
        queue_many(now=clock.now(), prefix="check", count=BULK, channel="sms", priority=Priority.BULK)
    dispatcher = Dispatcher(app, name="prio", channels=recorder.setup(), poll_seconds=0.05, batch_size=batch_size)

    dispatcher.start()
    try:
        recorder.wait_for(lambda r: len(r.sent) >= 100, timeout=20, what="the bulk to be going out")
        with app.app_context():
            [urgent] = queue(now=clock.now(), key="outage-sms", channels=["sms"], priority=Priority.URGENT)
            sent_before = len(recorder.sent_ids())
        recorder.wait_for(lambda r: urgent.id in r.sent_ids(), timeout=20, what="the urgent SMS")
    finally:
        dispatcher.stop()

    position = recorder.sent_ids().index(urgent.id) + 1
    assert len(recorder.sent_ids()) < BULK, "the bulk was still going out"
    # Each worker may finish the bulk batch it already holds: at most a batch per worker is ahead.
    assert position <= sent_before + concurrency * batch_size + 1, f"sent {position - sent_before} after it was queued"


def test_normal_priority_goes_before_bulk_and_after_urgent(make_app, clock):
    app = make_app(EMAIL_CONCURRENCY=1)
    recorder = Recorder()
    with app.app_context():
        ids = {}
        for name, priority in (("bulk", Priority.BULK), ("normal", Priority.NORMAL), ("urgent", Priority.URGENT)):
            [message] = queue(now=clock.now(), key=name, priority=priority)
            ids[message.id] = name

    Dispatcher(app, name="prio", channels=recorder.setup()).run_until_idle()

    assert [ids[message_id] for message_id in recorder.sent_ids()] == ["urgent", "normal", "bulk"]


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("rate", "burst", "count"), [(10.0, 1.0, 50), (2.0, 1.0, 9), (5.0, 5.0, 30), (0.5, 1.0, 3)])
def test_the_token_bucket_lets_through_at_most_rate_per_second_after_the_burst(rate, burst, count):
    clock = FakeMonotonic()
    bucket = TokenBucket(rate, burst=burst, monotonic=clock)
    start = clock.now

    for _ in range(count):
        while (wait := bucket.try_acquire()) > 0:
            clock.now += wait

    elapsed = clock.now - start
    assert elapsed == pytest.approx((count - burst) / rate)


def test_the_token_bucket_refills_while_idle_but_not_beyond_its_burst():
    clock = FakeMonotonic()
    bucket = TokenBucket(4.0, burst=2.0, monotonic=clock)
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(0.25)

    clock.now += 60  # a long pause fills the bucket only up to its burst
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.25)]

    bucket.refund()  # a token taken for a claim that found nothing
    assert bucket.try_acquire() == 0.0


def test_a_rate_of_zero_is_unlimited():
    bucket = TokenBucket(0.0, monotonic=FakeMonotonic())
    assert all(bucket.try_acquire() == 0.0 for _ in range(10_000))


def test_a_lanes_rate_limit_spaces_its_sends(make_app, clock):
    rate, count = 40.0, 11
    app = make_app(SMS_RATE_PER_SECOND=rate, SMS_CONCURRENCY=4)
    recorder = Recorder()
    with app.app_context():
        queue_many(now=clock.now(), prefix="rated", count=count, channel="sms", priority=Priority.NORMAL)

    started = time.monotonic()
    report = Dispatcher(app, name="rated", channels=recorder.setup()).run_until_idle()
    elapsed = time.monotonic() - started

    assert report.sent == count
    assert elapsed >= (count - 1) / rate * 0.95, "four workers share one bucket"
