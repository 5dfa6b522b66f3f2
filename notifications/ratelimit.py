"""A token bucket: at most ``rate`` sends per second per channel, shared by a lane's threads.

Gateways limit us (Twilio queues or refuses beyond its per-number rate; mail relays throttle or
greylist bursts), so each channel has ``EMAIL_RATE_PER_SECOND`` / ``SMS_RATE_PER_SECOND``. A
rate of 0 means unlimited. The clock is injectable (a monotonic function) so that the limiter is
tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_EPSILON = 1e-9


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate`` per second; one token per send."""

    def __init__(self, rate: float, *, burst: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        if rate < 0:
            raise ValueError("rate must be 0 (unlimited) or more")
        self.rate = rate
        self.burst = max(1.0, burst)
        self._monotonic = monotonic
        self._tokens = self.burst
        self._updated = monotonic()
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rate == 0

    def try_acquire(self) -> float:
        """Take a token and return 0.0, or take nothing and return the seconds until one is due."""
        if self.unlimited:
            return 0.0
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1.0 - _EPSILON:  # a refill computed in floating point may fall just short
                self._tokens = max(0.0, self._tokens - 1.0)
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a token; False if ``stop`` was set first (the token is then not taken)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            wait = self.try_acquire()
            if wait == 0.0:
                return True
            stop.wait(wait)
        return False

    def refund(self) -> None:
        """Give back a token that was not used (nothing was due when it was taken)."""
        if self.unlimited:
            return
        with self._lock:
            self._tokens = min(self.burst, self._tokens + 1.0)
