"""The lanes' in-flight window and the asynchronous lanes (notifications.pump) when things go
wrong: a busy gateway halves the window and acceptances raise it again; the delay rule, against
simulated gateways (one with latency, one with jitter, one that queues, one that becomes slower
for good) and in a real lane (a gateway that queues holds about sixteen, one with latency fills
the window); after a "too many" the window climbs back to what the gateway took and stays
there, and claims made before it shrank wait for a place in it; a lane against a gateway that
refuses above its limit delivers every message once without using up attempts, settling at the
gateway's limit instead of hammering it; one that refuses everything shows as failing;
acceptances wait for a database connection instead of being lost; a lane whose adapter cannot be
built starts again."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import heapq
import random
import threading
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from core.extensions import db
from notifications.channels.base import TransientFailure
from notifications.channels.threaded import ThreadedSender
from notifications.dispatcher import Dispatcher
from notifications.models import Message, MessageEvent, Priority
from notifications.outbox import ClaimedMessage
from notifications.pump import Pump
from notifications.window import BASE_PERIOD, CEILING_HOLD, DELAY_FLOOR, PROBE_IN_FLIGHT, Window, most_claims
from tests.notifications.dispatcher_app import Recorder, message_statuses, queue_many

ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def at_the_maximum(maximum: int) -> Window:
    """A window that has found a gateway answering in 100 ms whatever is sent: at its maximum."""
    window = Window(maximum)
    now = 0.0
    while window.limit < maximum:
        now += 0.1
        for _ in range(window.limit):
            window.accepted(0.1, now, in_flight=window.limit)
    return window


def test_a_too_many_halves_the_window_once_per_round():
    window = at_the_maximum(100)
    started = window.round
    assert window.slow_down(started) is True
    assert window.limit == 50
    # Every request in flight when it was halved answers "too many" too: the same signal.
    assert [window.slow_down(started) for _ in range(30)] == [False] * 30
    assert window.limit == 50

    assert window.slow_down(window.round) is True
    assert window.limit == 25


def test_acceptances_raise_the_window_by_one_per_window_and_never_past_the_maximum():
    window = at_the_maximum(40)
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


def test_after_a_too_many_the_window_climbs_back_to_what_the_gateway_took_and_stays_there():
    """A gateway that takes ten at once: a refusal that comes back while ten others are still in
    flight sets the ceiling at ten; the window climbs back from its halving to ten and stays there
    for CEILING_HOLD, and then probes above it again."""
    window = at_the_maximum(40)
    now = 100.0
    # A burst of sixteen meets the gateway's ten: the six refusals come back while 15, 14, ...,
    # 10 others are still in flight; the first halves the window, the smallest count is the ceiling.
    for others in range(15, 9, -1):
        window.slow_down(0, in_flight=others, now=now)
    assert window.limit == 20 and window.ceiling == 20, "never below the halved window"

    window = at_the_maximum(40)
    window.slow_down(window.round)
    window.slow_down(window.round)
    assert window.limit == 10
    for others in (16, 12, 7):
        window.slow_down(window.round - 1, in_flight=others, now=now)
    assert window.ceiling == 10, "the halved window (10), though one refusal saw seven others"
    window.slow_down(window.round, in_flight=8, now=now)
    assert window.limit == 5 and window.ceiling == 8

    limits = []
    while now < 100.0 + CEILING_HOLD - 0.5:
        now += 0.05
        window.accepted(0.05, now, in_flight=window.limit)
        limits.append(window.limit)
    assert limits[-1] == 8 and max(limits) == 8, "back at the ceiling, and not past it"
    for _ in range(400):
        now += 0.05
        window.accepted(0.05, now, in_flight=window.limit)
    assert window.ceiling is None and window.limit > 8, "after the hold it probes above again"


def test_the_window_never_goes_below_one():
    window = Window(3)
    for _ in range(10):
        window.slow_down(window.round)
    assert window.limit == 1
    with pytest.raises(ValueError, match="maximum"):
        Window(0)


# -- the delay rule (a gateway that queues what it is given) ----------------------------------------


class LatencyGateway:
    """Answers each request ``latency(now)`` seconds after it is sent, however many are in flight
    (Twilio, a relay with room to spare)."""

    def __init__(self, latency):
        self.latency = latency

    def answer(self, sent_at: float) -> float:
        return sent_at + self.latency(sent_at)


class QueueingGateway:
    """Works on one request at a time, ``seconds`` each, in the order they came: what is sent
    beyond that waits in its queue (a relay's single process; the benches' local peers)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.busy_until = 0.0

    def answer(self, sent_at: float) -> float:
        self.busy_until = max(self.busy_until, sent_at) + self.seconds
        return self.busy_until


def drive(window: Window, gateway, *, until: float, now: float = 0.0) -> list[tuple[float, int]]:
    """A lane with always more to send: keeps ``window.limit`` requests in flight against
    ``gateway`` until ``until`` (simulated seconds); returns (time, limit) after each answer."""
    in_flight: list[tuple[float, float, int]] = []
    trace = []
    while now < until:
        while len(in_flight) < window.limit:
            heapq.heappush(in_flight, (gateway.answer(now), now, len(in_flight) + 1))
        answered_at, sent_at, sent_with = heapq.heappop(in_flight)
        now = answered_at
        window.accepted(now - sent_at, now, in_flight=sent_with)
        trace.append((now, window.limit))
    return trace


def test_against_a_gateway_with_latency_the_window_reaches_its_maximum_in_a_few_answers_and_stays():
    window = Window(100)
    assert window.limit == 16, "slow start: sixteen first"
    trace = drive(window, LatencyGateway(lambda now: 0.2), until=120)
    reached = next(at for at, limit in trace if limit == 100)
    # Answers that do not grow with the requests in flight: 16, then 64, then 100.
    assert reached <= 0.45, f"at 100 after {reached:.2f} s (two answer times of 200 ms)"
    later = [limit for at, limit in trace if at > 1]
    assert min(later) >= 4 and window.probes >= 2, "a probe every base period while busy"
    share = sum(limit == 100 for limit in later) / len(later)
    assert share >= 0.97, f"at the maximum {share:.1%} of the answers after the first second"


class ContendedGateway:
    """Works on every request at once, but each takes ``per_request`` longer for every request
    it holds (a host whose work is shared): answers grow with what is in flight."""

    def __init__(self, base: float, per_request: float):
        self.base, self.per_request = base, per_request
        self.pending: list[float] = []

    def answer(self, sent_at: float) -> float:
        self.pending = [at for at in self.pending if at > sent_at]
        at = sent_at + self.base + self.per_request * (len(self.pending) + 1)
        self.pending.append(at)
        return at


def test_the_slow_start_quadruples_only_while_the_answers_do_not_grow_with_the_requests_in_flight():
    flat = Window(100)
    drive(flat, LatencyGateway(lambda now: 0.2), until=0.25)
    # Answers 200-360 ms with 1 to 16 in flight: within 1.25 times the base at more than four in
    # flight (the slow start goes on), but growing with what is in flight: it only doubles.
    contended = Window(100)
    drive(contended, ContendedGateway(0.2, 0.01), until=0.365)  # the first sixteen's answers

    assert flat.limit == 64 and flat.slow_start
    assert contended.limit == 32 and contended.slow_start


def test_a_gateways_jitter_is_not_taken_for_a_queue():
    """Twilio answers in 150-400 ms whatever is in flight: the shortest answer of each round is
    near the base, and the window stays at its maximum."""
    rng = random.Random(18)
    window = Window(100)
    trace = drive(window, LatencyGateway(lambda now: rng.uniform(0.15, 0.4)), until=60)
    later = [limit for at, limit in trace if at > 2]
    assert sum(limit == 100 for limit in later) / len(later) >= 0.95


def test_against_a_gateway_that_queues_the_window_settles_at_the_floor_and_the_queue_stays_short():
    """A gateway that answers 200 a second, one at a time: 100 in flight would wait half a second
    each (and an urgent message behind them as long); the window keeps 16."""
    gateway = QueueingGateway(0.005)
    window = Window(100)
    trace = drive(window, gateway, until=100)
    later = [limit for at, limit in trace if at > 1]
    assert max(later) <= DELAY_FLOOR + 5, f"as many as {max(later)} in flight at a gateway that queues"
    assert sum(limit >= DELAY_FLOOR for limit in later) / len(later) >= 0.97, "no lower than the floor, but probes"
    # Answers every 5 ms: the gateway is never idle, so the small window costs no speed.
    assert len(trace) >= 0.97 * 100 / 0.005


def test_a_cold_first_answer_is_not_taken_for_the_gateways_base():
    """The lane's first answer is slow for reasons of its own (new connections, new threads): a
    gateway that works on one request at a time, 10 ms each, starts on the first after 127 ms.
    The answers then grow with the requests in flight, as a queue's do, though they look near
    that base: the window measures the base again (a probe) instead of keeping 30-40 waiting."""
    gateway = QueueingGateway(0.01)
    gateway.busy_until = 0.127
    window = Window(100)
    trace = drive(window, gateway, until=5)
    assert window.probes == 1 and window.base < 0.05, "the base measured again, once"
    assert max(limit for at, limit in trace) <= 2 * DELAY_FLOOR
    later = [limit for at, limit in trace if at > 2]
    assert max(later) <= DELAY_FLOOR + 4, f"as many as {max(later)} in flight at a gateway that queues"


def test_answers_that_do_not_grow_with_the_requests_in_flight_cost_no_probe():
    """Twilio's jitter (150-400 ms whatever is in flight) while the slow start fills the window:
    no queue's signature, no probe before the first base period ends."""
    for seed in range(5):
        rng = random.Random(seed)
        window = Window(100)
        trace = drive(window, LatencyGateway(lambda now, rng=rng: rng.uniform(0.15, 0.4)), until=BASE_PERIOD - 1)
        assert window.probes == 0, seed
        assert trace[-1][1] == 100


class SaturatingGateway:
    """Answers in ``latency`` while it holds up to ``knee`` requests and ``per_request`` slower
    for each one above (the benches' SMTP peer, whose one event loop falls behind above about
    sixty sessions)."""

    def __init__(self, latency: float, knee: int, per_request: float):
        self.latency, self.knee, self.per_request = latency, knee, per_request
        self.outstanding: list[float] = []

    def answer(self, sent_at: float) -> float:
        self.outstanding = [at for at in self.outstanding if at > sent_at]
        held = len(self.outstanding) + 1
        answered_at = sent_at + self.latency + self.per_request * max(0, held - self.knee)
        self.outstanding.append(answered_at)
        return answered_at


@pytest.mark.parametrize(("knee", "per_request"), [(40, 0.002), (50, 0.003), (60, 0.004), (70, 0.005)])
def test_answers_that_slow_down_only_above_a_knee_do_not_contradict_the_base(knee, per_request):
    """Fitted over a window of near 100, such answers extrapolate to a gateway that would answer
    one request at once; but their base (100 ms) is right, and a probe would cost the lane two
    answer times at four in flight. The cold-start rule looks only at windows up to twice the
    floor, where a lane starts."""
    window = Window(100)
    drive(window, SaturatingGateway(0.1, knee, per_request), until=BASE_PERIOD - 1)
    assert window.probes == 0
    assert window.base == pytest.approx(0.1)


def test_the_window_follows_a_gateway_that_became_slower_for_good():
    """The answers go from 100 ms to 300 ms: at first that looks like a queue and the window
    shrinks, but within two base periods the base is the new answer time and the window is back
    at its maximum."""
    window = Window(100)
    trace = drive(window, LatencyGateway(lambda now: 0.1 if now < 10 else 0.3), until=10)
    assert trace[-1][1] == 100
    trace = drive(window, LatencyGateway(lambda now: 0.3), until=120, now=trace[-1][0])
    shrunk = min(limit for at, limit in trace if at < 15)
    assert shrunk < 50, "answers three times slower look like a queue at first"
    back = [limit for at, limit in trace if at > 10 + 2 * BASE_PERIOD + 5]
    assert sum(limit == 100 for limit in back) / len(back) >= 0.95


def test_a_too_many_ends_the_slow_start_and_the_delay_rule_never_lifts_the_window_past_it():
    window = Window(100)
    drive(window, LatencyGateway(lambda now: 0.2), until=0.25)
    assert window.limit == 64 and window.slow_start  # sixteen answers at the base, none later than another
    window.slow_down(window.round)
    assert window.limit == 32 and not window.slow_start
    # Answers at the base from now on: only the additive increase, one a round, raises it.
    drive(window, LatencyGateway(lambda now: 0.2), until=2.5, now=0.3)
    assert 34 <= window.limit <= 46, window.limit


def test_a_lane_busy_all_period_long_probes_its_base_with_four_in_flight():
    window = Window(100)
    # The first period had its first requests sent with few in flight; the second had none.
    trace = drive(window, LatencyGateway(lambda now: 0.2), until=2 * BASE_PERIOD + 5)
    probing = [at for at, limit in trace if at > 1 and limit == PROBE_IN_FLIGHT]
    assert probing, "the window held at four"
    assert probing[-1] - probing[0] < 1.0, "for about two answer times, then back"
    assert trace[-1][1] == 100
    assert window.base == pytest.approx(0.2)


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

    report = send_all(app, clock, recorder, messages, jitter=lambda: 1.0)  # each message exactly once

    assert report.retried == 0 and report.failed == 0
    assert gateway.most == 10
    # The slow start's first sixteen meet a gateway that takes ten: six are refused, and then the
    # lane keeps at the gateway's limit (the window's ceiling) without being refused again.
    assert 0 < gateway.refused <= DELAY_FLOOR - 10, f"{gateway.refused} refusals for {messages} messages"
    with app.app_context():
        attempts = set(db.session.scalars(sa.select(Message.attempts)))
        retries = db.session.scalar(
            sa.select(sa.func.count()).select_from(MessageEvent).where(MessageEvent.status == "retry")
        )
    assert attempts == {1}, "a refusal as too many is never counted as an attempt"
    assert retries == 0, "the refused message was sent again under its claim, not queued again"


class CountingGateway:
    """A recording channel that counts the requests it holds when each comes in (``held``);
    ``one_at_a_time``: it works on one request at a time, ``seconds`` each, in the order they
    came, the others waiting in its queue (a relay's single process); otherwise each takes
    ``seconds`` whatever else is in flight. ``gate``: requests wait until it is set (10 s at
    most) before their ``seconds``, so that a test decides when the first ones start, however
    slowly a busy machine brings the others."""

    def __init__(self, recorder: Recorder, *, seconds: float, one_at_a_time: bool, gate: threading.Event | None = None):
        self.seconds, self.one_at_a_time, self.gate = seconds, one_at_a_time, gate
        self.turns = threading.Condition()
        self.tickets = 0
        self.serving = 0
        self.held: list[int] = []  # how many it held, this one included, as each request came in
        original = recorder._send
        recorder._send = lambda channel, message_id, outgoing: self.send(original, channel, message_id, outgoing)

    def send(self, original, channel, message_id, outgoing):
        with self.turns:
            ticket = self.tickets
            self.tickets += 1
            self.held.append(self.tickets - self.serving)
            if self.one_at_a_time:
                self.turns.wait_for(lambda: self.serving == ticket)
        try:
            if self.gate is not None:
                self.gate.wait(10)
            time.sleep(self.seconds)
            return original(channel, message_id, outgoing)
        finally:
            with self.turns:
                self.serving += 1
                self.turns.notify_all()


def send_all(
    app, clock, recorder: Recorder, count: int, *, priority=Priority.NORMAL, timeout: float = 60, jitter=random.random
):
    """Queue ``count`` SMS, run a dispatcher (with ``jitter``, as Dispatcher takes it) until
    nothing is due, and check that the gateway accepted each exactly once; returns the
    dispatcher's report."""
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="lane", count=count, channel="sms", priority=priority)
    report = Dispatcher(app, name="lane", channels=recorder.setup(), jitter=jitter).run_until_idle(timeout=timeout)
    assert report.sent == count and sorted(recorder.sent_ids("sms")) == ids, "every message accepted exactly once"
    return report


def run_lane(make_app, clock, *, window: int, messages: int, seconds: float, one_at_a_time: bool) -> CountingGateway:
    """A lane of ``window`` sends ``messages`` SMS to a :class:`CountingGateway`, each exactly once."""
    app = make_app(SMS_CONCURRENCY=window)
    recorder = Recorder()
    gateway = CountingGateway(recorder, seconds=seconds, one_at_a_time=one_at_a_time)
    send_all(app, clock, recorder, messages)
    return gateway


@ON_SQLITE  # the window does not depend on the database; the lane writes the same on both
def test_claims_made_before_the_window_shrank_wait_for_a_place_in_it(make_app, clock):
    """The slow start's first sixteen go out together, each taking 100 ms; the sixteenth is
    refused as too many and may be sent again at once (Retry-After 0). The window is halved to
    eight: the refused request, and the claims made before, wait until fewer than eight are in
    flight, instead of going to a gateway that holds fifteen."""
    app = make_app(SMS_CONCURRENCY=40)
    recorder = Recorder()
    # The fifteen wait for the sixteenth (whose threads a busy machine may start after the
    # first's 100 ms): it is refused with all fifteen at the gateway.
    sixteenth_came = threading.Event()
    gateway = CountingGateway(recorder, seconds=0.1, one_at_a_time=False, gate=sixteenth_came)
    counting = recorder._send
    refused = []

    def refuse_the_sixteenth(channel, message_id, outgoing):
        if not refused and len(gateway.held) == 15:
            refused.append(max(gateway.held))
            sixteenth_came.set()
            raise TransientFailure("Twilio rate limit (HTTP 429, Twilio error 20429)", retry_after=0, rate_limited=True)
        return counting(channel, message_id, outgoing)

    recorder._send = refuse_the_sixteenth
    send_all(app, clock, recorder, 60)

    assert refused == [15], "fifteen at the gateway when the window was halved"
    # The window is eight then, and grows by about one per eight acceptances: the next ten arrive
    # with at most ten at the gateway (the first fifteen's answers have raised it to about ten).
    after = gateway.held[15:25]
    assert max(after) <= 10, f"{after}: requests at the gateway as each came, after the window was halved to eight"


def test_an_urgent_message_waiting_for_a_place_in_the_window_goes_before_the_bulk_ones():
    """Requests wait for a place when the window is full (claims made before it shrank, refused
    ones to be sent again): they get places in the order they came, but an urgent one first. The
    pump's own waiting code, in an event loop, with the window full and places freed one by one."""

    def claimed(message_id: int, priority: Priority) -> ClaimedMessage:
        at = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
        return ClaimedMessage(message_id, "generic", "sms", priority, None, "+4670123456", None, "Hej", None, 1, at, at)

    async def scenario() -> list[int]:
        pump = Pump.__new__(Pump)  # only the window, the count in flight and the waiting list
        pump.window = at_the_maximum(16)
        pump.in_flight = 16
        pump.recording_failures = 0
        pump._loop = asyncio.get_running_loop()
        pump._window_waiters = collections.deque()
        pump._may_send = lambda claimed_at: True
        admitted: list[int] = []

        async def wait_for_place(message: ClaimedMessage) -> None:
            assert await pump._place_in_window(message, 0.0)
            pump.in_flight += 1
            admitted.append(message.id)

        tasks = []
        for message in (claimed(1, Priority.NORMAL), claimed(2, Priority.NORMAL), claimed(3, Priority.URGENT)):
            tasks.append(asyncio.create_task(wait_for_place(message)))
            await asyncio.sleep(0)
        assert admitted == [], "no place while sixteen are in flight"
        for _ in tasks:
            pump.in_flight -= 1  # an answer came
            pump._admit_waiting()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        return admitted

    assert asyncio.run(scenario()) == [3, 1, 2]


@ON_SQLITE
def test_a_lane_keeps_few_requests_at_a_gateway_that_queues_them(make_app, clock):
    """A gateway that works on one request at a time, 100 a second (slower than the lane can
    record, so that its queue stands): the lane's window of 100 would keep 100 waiting in its
    queue (and an urgent message behind them); it keeps about sixteen."""
    gateway = run_lane(make_app, clock, window=100, messages=300, seconds=0.01, one_at_a_time=True)
    # At most one doubling of the slow start's sixteen before the queue shows, then sixteen and
    # the few (about the square root) the delay rule lets wait at the gateway.
    assert max(gateway.held) <= 2 * DELAY_FLOOR + 1, f"{max(gateway.held)} requests at once"
    settled = max(gateway.held[100:])
    assert settled <= DELAY_FLOOR + 4, f"{settled} requests at once at a gateway that queues"


@ON_SQLITE
def test_a_lane_fills_its_window_against_a_gateway_with_latency(make_app, clock):
    """A gateway that answers in 100 ms however many are in flight: the lane's window grows from
    sixteen to its maximum (60 here) and the gateway holds that many at once."""
    gateway = run_lane(make_app, clock, window=60, messages=600, seconds=0.1, one_at_a_time=False)
    assert max(gateway.held) == 60


@ON_SQLITE
def test_while_acceptances_are_being_recorded_the_claims_ahead_go_to_the_gateway(make_app, clock, monkeypatch):
    """A lane of eight holds two claims more (a quarter of its window), waiting for a place: when
    answers free places, those go to the gateway at once, before the acceptances are written and
    the next claim is made (against a 200 ms Twilio the SMS lane's places otherwise stood idle for
    that time). Never more than eight at the gateway, never more than ten claims: with the
    database's write held up, ten messages reach the gateway and no eleventh."""
    from notifications.bookkeeping import Bookkeeping

    writing, may_write = threading.Event(), threading.Event()
    original = Pump._in_session

    def in_session(self, step, args, kwargs):
        if getattr(step, "__func__", None) is Bookkeeping._record_sent:
            writing.set()
            assert may_write.wait(10), "the test let the write through"
        return original(self, step, args, kwargs)

    monkeypatch.setattr(Pump, "_in_session", in_session)
    app = make_app(SMS_CONCURRENCY=8, DISPATCH_BATCH_SIZE=10)
    recorder = Recorder()
    gateway = CountingGateway(recorder, seconds=0.05, one_at_a_time=False)
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="ahead", count=30, channel="sms", priority=Priority.BULK)
    dispatcher = Dispatcher(app, name="ahead", channels=recorder.setup())
    dispatcher.start()
    try:
        recorder.wait_for(lambda r: len(r.sent_ids("sms")) >= most_claims(8), what="the window and the claims ahead")
        assert writing.wait(10), "the acceptances are being written"
        # No eleventh can go without a claim, and a lane that could hold more would have claimed
        # them at once (before the first answers came back), not after a write.
        assert message_statuses(app) == {"sending": 10, "queued": 20}, "eight and the two ahead claimed, no more"
        assert len(recorder.sent_ids("sms")) == most_claims(8) == 10, "eight and the two ahead sent"
        assert max(gateway.held) <= 8, "never more at the gateway than the window"
        may_write.set()
        recorder.wait_for(lambda r: len(r.sent_ids("sms")) == 30, what="the rest once written")
    finally:
        may_write.set()
        dispatcher.stop()
    assert sorted(recorder.sent_ids("sms")) == ids, "each exactly once"
    assert max(gateway.held) <= 8


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
    send_all(app, clock, recorder, 60, priority=Priority.BULK, timeout=30)

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
