"""A dispatcher's lanes: one per channel, shared by that channel's worker threads.

A :class:`Lane` holds what the workers of one channel share: the adapter factory, the token
bucket of ``*_RATE_PER_SECOND``, the wake-ups, and a circuit breaker that pauses the lane after
repeated transient failures. :class:`DispatchReport` counts what the workers did. The workers
themselves are in :mod:`notifications.dispatcher`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from notifications.models import Channel
from notifications.ratelimit import TokenBucket

LANE_PAUSE_AFTER = 5  # consecutive transient failures in this process before a lane pauses
LANE_PAUSE_CAP = 60.0  # seconds
SUCCESS_STATE_EVERY = 5.0  # seconds: how often a healthy lane refreshes last_success_at


@dataclass
class DispatchReport:
    """What a dispatcher's workers did (:meth:`~notifications.dispatcher.Dispatcher.run_until_idle` returns it)."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: int = 0  # database or adapter set-up errors (logged)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, outcome: str, number: int = 1) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + number)

    def as_dict(self) -> dict:
        return {"sent": self.sent, "retried": self.retried, "failed": self.failed, "errors": self.errors}


class Lane:
    """One channel's workers share this: its adapter factory, rate limit, wake-ups and pause."""

    def __init__(
        self,
        channel: Channel,
        factory: Callable[[], object],
        gateway: str,
        concurrency: int,
        rate: float,
        batch_size: int = 1,
    ):
        self.channel = channel
        self.factory = factory
        self.gateway = gateway
        self.concurrency = concurrency
        self.limiter = TokenBucket(rate)
        # A worker claims at most what it may send in about a second under the lane's rate limit,
        # so that a rate-limited lane does not make urgent messages wait behind held claims.
        self.batch = batch_size if rate == 0 else max(1, min(batch_size, int(rate / concurrency)))
        self._condition = threading.Condition()
        self._generation = 0
        self._wakers: list[Callable[[], None]] = []  # the asynchronous lanes' (notifications.pump)
        self._lock = threading.Lock()
        self._failures = 0  # consecutive transient failures in this process
        self._paused_until = 0.0
        self._state_written = float("-inf")  # monotonic time of the last success written to ChannelState
        self._failed_since_written = True

    @property
    def generation(self) -> int:
        return self._generation

    def wake(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            wakers = list(self._wakers)
        for waker in wakers:
            waker()

    def add_waker(self, waker: Callable[[], None]) -> None:
        """Call ``waker`` (from the waking thread) at every :meth:`wake`."""
        with self._condition:
            self._wakers.append(waker)

    def remove_waker(self, waker: Callable[[], None]) -> None:
        with self._condition:
            if waker in self._wakers:
                self._wakers.remove(waker)

    def wait(self, generation: int, timeout: float) -> None:
        """Sleep until woken (unless woken since ``generation`` was read) or ``timeout``."""
        with self._condition:
            if self._generation == generation:
                self._condition.wait(timeout)

    def pause_remaining(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def succeeded(self) -> bool:
        """Record a success; True when ChannelState should be written (after failures, or now and then)."""
        with self._lock:
            self._failures = 0
            self._paused_until = 0.0
            due = self._failed_since_written or time.monotonic() - self._state_written >= SUCCESS_STATE_EVERY
            if due:
                self._state_written = time.monotonic()
                self._failed_since_written = False
            return due

    def failed(self, *, transient: bool) -> None:
        """Record a failure; after several transient ones in a row the lane pauses (a circuit
        breaker), so that a dead gateway does not use up the attempts of every queued message."""
        with self._lock:
            self._failed_since_written = True
            if not transient:
                return
            self._failures += 1
            if self._failures >= LANE_PAUSE_AFTER:
                pause = min(LANE_PAUSE_CAP, 2.0 ** (self._failures - LANE_PAUSE_AFTER))
                self._paused_until = time.monotonic() + pause
