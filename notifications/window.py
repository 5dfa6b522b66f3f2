"""How many requests a lane may have in flight: additive increase, multiplicative decrease on the
gateway's "too many", and a delay rule that keeps the gateway's queue short.

A gateway says when we go too fast: Twilio answers HTTP 429 (error 20429) above about 100
concurrent requests per account, an SMTP relay answers 421 when it has too many connections.
Those answers are never processed and safe to retry, so they are not failures of a message; they
tell the lane to hold fewer requests in flight. :class:`Window` does what TCP does with its
congestion window:

- its maximum is the configured one (``SMS_CONCURRENCY``/``EMAIL_CONCURRENCY``); it starts at
  ``DELAY_FLOOR`` (16) and doubles each round while the answers do not slow down (TCP's slow
  start, below), or quadruples when they do not grow with the requests in flight either: against
  a 200 ms gateway it is at 100 after two answer times (0.4 s), while the first letter's copies
  are still being queued;
- every acceptance raises it by ``1 / limit`` (one request more per window's worth of
  acceptances), never above the maximum;
- a "slow down" halves it (never below 1), once per round: the answers to requests that were
  already in flight when it was halved are the same signal and do not halve it again.

**The ceiling.** A "too many" also says about where the gateway's limit is: when it comes back,
the lane's other requests still in flight are about what the gateway holds (a refusal comes
back at once; those it took are still being worked on). Counted when the answer comes back,
not when the request was sent: requests sent together reach the gateway in any order, and the
one refused may have been sent with few in flight; an answer's count errs high, never low, and
the smallest count of a burst's refusals is the gateway's. For ``CEILING_HOLD`` (20 s) after a
refusal the window does not grow past the smallest such count of the period (nor is it taken
below the halved window by it), and then it probes above it again, one request more per
window's worth of acceptances, as before. Without the ceiling the window sawed between
N/2 and just above N: against a gateway that allows N at once it was refused every few hundred
answers, and a refused request, which keeps its claim (and its place in the window) while it
waits to be sent again, was itself most often the one that took the window past N once more
(the capped test of tests/notifications/test_window.py: the same message refused five times in
a row in about one run of five). So the window climbs back to the gateway's limit after a
halving and stays there: it settles at the gateway's limit instead of hammering it.

**The delay rule.** A gateway that never says "too many" but works on one request at a time (a
relay's single process, a busy host; here on two cores, the local peers of the benches) only
queues what it is given: 100 requests in flight against one that answers 170 a second wait
0.6 s each, and an urgent message behind them waits as long (``bench.fanout`` at zero latency:
urgent p99 1.5 s with 100 in flight, 0.2-0.3 s with 16-32, and more messages per second, not
fewer). So, as TCP Vegas and Netflix's concurrency-limits gradient do, the window also watches
the time from handing a request to the adapter to its answer (``rtt`` of :meth:`accepted`):

- ``base``: the shortest answer time seen in the last ``BASE_PERIOD`` to twice that (a sliding
  minimum: it follows a gateway that becomes slower for good within ``2 * BASE_PERIOD``). A
  queue makes every answer slow, so a base taken from a lane that was busy all period long
  would be the queue's, and the window would creep up by ``sqrt(limit)`` each period. So, as
  TCP BBR's "ProbeRTT": a period in which no request was sent with at most ``PROBE_IN_FLIGHT``
  (4) in flight ends in a probe, the window held at 4 until four requests sent that way have
  answered (or ``PROBE_LONGEST``, 2 s, has passed), and their answers are in the new period's
  base. Against a 200 ms gateway a probe costs about two answer times of lower speed every
  ``BASE_PERIOD`` (20 s): 2 %;
- at the end of each round of ``limit`` acceptances, the round's shortest answer time
  (the shortest, so that a gateway's jitter -- Twilio's 150-400 ms -- is not taken for a queue;
  of the requests sent with more than ``PROBE_IN_FLIGHT`` in flight, if there were any: the
  first few of a burst meet no queue even at a gateway that queues the rest)
  gives ``gradient = RTT_TOLERANCE * base / shortest``, between 0.5 and 1, and the delay limit
  becomes ``limit * gradient + sqrt(limit)``: answers up to twice the base let it grow by
  ``sqrt(limit)`` a round, slower ones shrink it (at most by half a round) until the answers
  take about twice the base. ``RTT_TOLERANCE`` (2; Netflix's Gradient2 uses 1.5) because not
  every slower answer is the gateway's queue: our own lanes share the interpreter lock and, here,
  two cores with the gateways. With a tolerance of 1 the e-mail lane's answers against the 100
  ms SMTP peer, 15-50 % slower while the SMS lane ran at full speed, held it at 16-60 in flight
  and the letter to 3,000 contacts took 30 s instead of 17 (``bench.service_fanout``);
- the delay limit never goes below ``DELAY_FLOOR`` (16, or the maximum if smaller) nor above
  the maximum: only a "too many" takes the window lower.

Until the first round whose answers are slower than ``base / SLOW_START_GRADIENT`` (1.25 times
the base), or the first "too many", the delay limit doubles each round instead (slow start): a
window that started at the maximum filled a queueing gateway with 100 requests before the first
answer could say so (the first two seconds of ``bench.fanout``'s urgent e-mails took 0.65-0.8 s).
A round whose answer times do not grow with the requests in flight (fitted as for a cold start,
below: an elasticity under ``FLAT_ELASTICITY``, 0.25, over at least ``_FIT_SAMPLES`` answers sent
with different numbers in flight) quadruples it instead: a gateway whose answers are its latency,
not a queue (eighth session). With doubling, the SMS lane of the 200/100 ms letter sent 16, 32
and 64 in its first three answer times instead of 300, some 200 SMS (0.4 s) behind, and the
e-mail lane as much; a queue's answers grow with what is in flight, so against a queue the slow
start still only doubles, and ends as soon as the answers slow down.

**A cold start.** The first answers of a lane may be slow for reasons of its own: new
connections (TCP, TLS, EHLO), new threads, an interpreter busy with something else. A base taken
from them hides a queue: against a gateway that works on one request at a time, 10 ms each,
whose first answer came after 137 ms, the answers of sixteen and then thirty-two in flight
(160-330 ms) looked near that base and the slow start doubled to 64 (the queueing-gateway test
of tests/notifications/test_window.py failed so in about half of the runs beside other tests).
A queue has a signature of its own, whatever the base: the answer time grows with the requests
in flight, in proportion (a request sent with 30 in flight waits for 30). So at the end of each
round the answer times are fitted against the requests in flight when each was sent (least
squares). When they grow so (an elasticity, ``slope * mean in flight / mean answer time``, of
``QUEUE_ELASTICITY``, 0.5, or more) and the fit's answer for one request in flight is less than
half the base (``COLD_BASE_SHARE``), the round contradicts its base: the window does not grow (a
slow start ends and its last doubling is taken back) and a probe (below) measures the base again,
at most once a ``BASE_PERIOD``. Only in windows up to twice the floor, where a lane starts: from
a window near 100 the fit says little about one request in flight (the benches' SMTP peer
answers in 100 ms up to about sixty sessions and then ever slower; extrapolated, it would answer
one at once, and the e-mail lane paid a needless probe in each 200/100 ms letter). A latency
gateway's answers do not grow with what is in flight (jitter averages out: Twilio's 150-400 ms
gives an elasticity near 0), so a lane with latency to hide keeps growing and pays no probe.

Against a gateway that answers in 200 ms whatever we send, the answer times stay near the base
and the window grows to the maximum and stays there; against the benches' zero-latency peers it
settles at the floor. The window in force is the smaller of the two limits. It is used from one
event loop (the lane's) and needs no lock.
"""

from __future__ import annotations

import math
from typing import NamedTuple

DELAY_FLOOR = 16  # the lowest the delay rule takes a window (a "too many" may take it lower)
BASE_PERIOD = 20.0  # seconds: the base answer time is the shortest of the last 20 to 40 s
PROBE_IN_FLIGHT = 4  # a request sent with at most this many in flight (itself included) meets no queue
PROBE_LONGEST = 2.0  # seconds: a probe ends then even without its four answers
_GRADIENT_FLOOR = 0.5  # the delay rule at most halves the window in one round
RTT_TOLERANCE = 2.0  # answers up to twice the base are not taken for a queue
SLOW_START_GRADIENT = 0.8  # slow start doubles the window while a round's answers are this close to the base
CEILING_HOLD = 20.0  # seconds after a "too many" during which the window stays at or below what the gateway took
QUEUE_ELASTICITY = 0.5  # answer times that grow at least half in proportion to the requests in flight: a queue
FLAT_ELASTICITY = 0.25  # answer times that grow less than a quarter so: latency, no queue (slow start quadruples)
COLD_BASE_SHARE = 0.5  # a queue whose fit answers one request in less than half the base contradicts it
_FIT_SAMPLES = 8  # the fewest answers of a round that the queue's signature is looked for in


class Window:
    """The in-flight limit of one lane (see the module docstring)."""

    def __init__(self, maximum: int):
        if maximum < 1:
            raise ValueError(f"maximum: expected 1 or more, got {maximum}")
        self.maximum = maximum
        self._limit = float(maximum)
        self.round = 0  # increases at every decrease; a request remembers the round it started in
        self.decreases = 0
        self._floor = float(min(DELAY_FLOOR, maximum))
        self._delay_limit = self._floor
        self.slow_start = self._floor < maximum
        self._base_now = math.inf  # the shortest answer time in the current base period
        self._base_before = math.inf  # ... and in the period before it
        self._period_ends: float | None = None
        self._round_samples = 0
        self._round_shortest = math.inf  # of the round's answers
        self._round_shortest_busy = math.inf  # of those sent with more than PROBE_IN_FLIGHT in flight
        self._fit = [0.0] * 5  # the round's answers: count, sums of in flight, time, product, in flight squared
        self._next_cold_check = 0.0  # a base contradicted by a queue's fit is probed at most once a BASE_PERIOD
        self._uncongested = False  # a request sent with few in flight answered in this period
        self.probing = False
        self._probe_answers = 0
        self._probe_ends = 0.0
        self.probes = 0
        self.ceiling: int | None = None  # the most the gateway took, for CEILING_HOLD after a "too many"
        self._ceiling_until = 0.0

    @property
    def limit(self) -> int:
        """Requests that may be in flight now (1 to ``maximum``)."""
        limit = max(1, int(min(self._limit, self._delay_limit)))
        return min(limit, PROBE_IN_FLIGHT) if self.probing else limit

    @property
    def base(self) -> float | None:
        """The base answer time in seconds (None before the first answer)."""
        base = min(self._base_now, self._base_before)
        return None if base == math.inf else base

    def accepted(self, rtt: float | None = None, now: float | None = None, in_flight: int | None = None) -> None:
        """The gateway accepted a request: one more per window's worth of acceptances. ``rtt``:
        seconds from handing the request to the adapter to its answer, at ``now`` (a monotonic
        time in seconds), sent with ``in_flight`` requests in flight (itself included); without
        them only the additive increase applies."""
        if now is not None and not self._ceiling_held(now):
            self.ceiling = None  # expired (or none): probe above it again
        highest = float(self.maximum if self.ceiling is None else min(self.ceiling, self.maximum))
        if self._limit < highest:
            self._limit = min(highest, self._limit + 1.0 / self._limit)
        if rtt is None or now is None:
            return
        uncongested = in_flight is not None and in_flight <= PROBE_IN_FLIGHT
        self._observe_base(rtt, now, uncongested)
        if self.probing:
            self._probe_answers += uncongested
            if self._probe_answers >= PROBE_IN_FLIGHT or now >= self._probe_ends:
                self.probing = False
                self._new_round()
            return
        self._round_samples += 1
        self._round_shortest = min(self._round_shortest, rtt)
        if in_flight is not None:
            fit = self._fit
            fit[0] += 1
            fit[1] += in_flight
            fit[2] += rtt
            fit[3] += in_flight * rtt
            fit[4] += in_flight * in_flight
        if not uncongested:
            self._round_shortest_busy = min(self._round_shortest_busy, rtt)
        if self._round_samples >= self.limit:
            self._end_delay_round(now)

    def slow_down(self, started_in_round: int, in_flight: int | None = None, now: float | None = None) -> bool:
        """The gateway refused a request that started in ``started_in_round`` as too many (429,
        421): halve the limit, unless it was already halved since that request started. True
        when the limit went down. ``in_flight``: the lane's other requests in flight when the
        refusal came back, at ``now`` (monotonic seconds): about what the gateway holds, the
        window's ceiling for ``CEILING_HOLD`` (see the module docstring)."""
        halved = started_in_round == self.round
        if halved:
            self._limit = max(1.0, min(self._limit, self._delay_limit) / 2.0)
            self.slow_start = False
            self.round += 1
            self.decreases += 1
        if in_flight is not None and now is not None:
            took = max(1, in_flight)
            # An expired ceiling may still be set (no acceptance has come since): not a bound then.
            self.ceiling = max(int(self._limit), min(self.ceiling, took) if self._ceiling_held(now) else took)
            self._ceiling_until = now + CEILING_HOLD
        return halved

    def _ceiling_held(self, now: float) -> bool:
        """Whether a "too many"'s ceiling is in force at ``now``: for ``CEILING_HOLD`` after the
        last refusal."""
        return self.ceiling is not None and now < self._ceiling_until

    def _observe_base(self, rtt: float, now: float, uncongested: bool) -> None:
        if self._period_ends is None:
            self._period_ends = now + BASE_PERIOD
        elif now >= self._period_ends:
            # A new period; a gap of more than a period forgets both. A period that was busy
            # throughout ends in a probe (see the module docstring).
            if not self._uncongested:
                self._start_probe(now)
            self._base_before = self._base_now if now < self._period_ends + BASE_PERIOD else math.inf
            self._base_now = math.inf
            self._uncongested = False
            self._period_ends = now + BASE_PERIOD
        self._base_now = min(self._base_now, rtt)
        self._uncongested = self._uncongested or uncongested

    def _start_probe(self, now: float) -> None:
        """Hold the window at ``PROBE_IN_FLIGHT`` until four requests sent that way have answered
        (or ``PROBE_LONGEST`` has passed): their answers meet no queue (see the module docstring)."""
        if not self.probing and self.maximum > PROBE_IN_FLIGHT:
            self.probing, self._probe_answers, self._probe_ends = True, 0, now + PROBE_LONGEST
            self.probes += 1

    def _end_delay_round(self, now: float) -> None:
        base = self.base
        shortest = self._round_shortest_busy if self._round_shortest_busy < math.inf else self._round_shortest
        fit = self._fitted()
        alone = fit.answer_alone() if fit is not None else None
        flat = fit is not None and fit.elasticity < FLAT_ELASTICITY
        self._new_round()
        if base is None or shortest <= 0:
            return
        gradient = max(_GRADIENT_FLOOR, min(1.0, RTT_TOLERANCE * base / shortest))
        in_force = min(self._limit, self._delay_limit)
        if self.slow_start and base / shortest >= SLOW_START_GRADIENT:
            wanted = in_force * (4 if flat else 2)
        else:
            self.slow_start = False
            wanted = in_force * gradient + math.sqrt(in_force)
        cold = alone is not None and alone < COLD_BASE_SHARE * base and in_force <= 2 * self._floor
        if cold and now >= self._next_cold_check:
            # A queue that would answer one request in less than half the base: the base is not
            # the gateway's (a cold start's, see the module docstring). Measure it again, and do
            # not grow on it meanwhile (the slow start's last doubling is taken back).
            self._next_cold_check = now + BASE_PERIOD
            wanted = in_force / 2 if self.slow_start else min(wanted, in_force)
            self.slow_start = False
            self._start_probe(now)
        self._delay_limit = max(self._floor, min(float(self.maximum), wanted))

    def _fitted(self) -> _Fit | None:
        """The round's answer times fitted against the requests in flight when each was sent,
        or None when there is too little to fit."""
        count, xs, ys, xys, xxs = self._fit
        if count < _FIT_SAMPLES or ys <= 0:
            return None
        mean_x, mean_y = xs / count, ys / count
        spread = xxs / count - mean_x * mean_x
        if spread < 1.0:  # (nearly) all sent with as many in flight: nothing to fit
            return None
        return _Fit(mean_x, mean_y, (xys / count - mean_x * mean_y) / spread)

    def _new_round(self) -> None:
        self._round_samples = 0
        self._round_shortest = self._round_shortest_busy = math.inf
        self._fit = [0.0] * 5


class _Fit(NamedTuple):
    """A round's answer times (seconds) fitted by least squares against the requests in flight
    when each was sent."""

    mean_in_flight: float
    mean_answer: float
    slope: float  # seconds more per request more in flight

    @property
    def elasticity(self) -> float:
        """How much in proportion answer times grow with the requests in flight: 1 for a queue
        that holds them all, about 0 for latency."""
        return self.slope * self.mean_in_flight / self.mean_answer

    def answer_alone(self) -> float | None:
        """When the answer times grew in proportion to the requests in flight (an elasticity of
        ``QUEUE_ELASTICITY`` or more: a gateway's queue), the answer time the fit gives for one
        request in flight; else None."""
        if self.elasticity < QUEUE_ELASTICITY:
            return None
        return self.mean_answer + self.slope * (1 - self.mean_in_flight)


def claims_ahead(limit: int) -> int:
    """Claims a lane holds beyond its window of ``limit``, waiting for a place in it, so that an
    answer's freed place goes to the next request at once (:mod:`notifications.pump`): a
    quarter, at least one."""
    return max(1, limit // 4)


def most_claims(concurrency: int) -> int:
    """The most claims a lane of ``*_CONCURRENCY`` = ``concurrency`` holds at once: its window's
    maximum and the claims ahead of it. It bounds what a crash can make arrive twice."""
    return concurrency + claims_ahead(concurrency)
