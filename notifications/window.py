"""How many requests a lane may have in flight: additive increase, multiplicative decrease.

A gateway says when we go too fast: Twilio answers HTTP 429 (error 20429) above about 100
concurrent requests per account, an SMTP relay answers 421 when it has too many connections.
Those answers are never processed and safe to retry, so they are not failures of a message; they
tell the lane to hold fewer requests in flight. :class:`Window` does what TCP does with its
congestion window:

- it starts at the configured maximum (``SMS_CONCURRENCY``/``EMAIL_CONCURRENCY``): a gateway
  that allows it is used at full speed from the first message;
- every acceptance raises it by ``1 / limit`` (one request more per window's worth of
  acceptances), never above the maximum;
- a "slow down" halves it (never below 1), once per round: the answers to requests that were
  already in flight when it was halved are the same signal and do not halve it again.

So against a gateway that allows N at once, the lane's limit saws between about N/2 and N and
the gateway refuses a request only when the limit climbs past N again: it settles at the
gateway's limit instead of hammering it. The window is used from one event loop (the lane's) and
needs no lock.
"""

from __future__ import annotations


class Window:
    """The in-flight limit of one lane (see the module docstring)."""

    def __init__(self, maximum: int):
        if maximum < 1:
            raise ValueError(f"maximum: expected 1 or more, got {maximum}")
        self.maximum = maximum
        self._limit = float(maximum)
        self.round = 0  # increases at every decrease; a request remembers the round it started in
        self.decreases = 0

    @property
    def limit(self) -> int:
        """Requests that may be in flight now (1 to ``maximum``)."""
        return max(1, int(self._limit))

    def accepted(self) -> None:
        """The gateway accepted a request: one more per window's worth of acceptances."""
        if self._limit < self.maximum:
            self._limit = min(float(self.maximum), self._limit + 1.0 / self._limit)

    def slow_down(self, started_in_round: int) -> bool:
        """The gateway refused a request that started in ``started_in_round`` as too many (429,
        421): halve the limit, unless it was already halved since that request started. True
        when the limit went down."""
        if started_in_round != self.round:
            return False
        self._limit = max(1.0, self._limit / 2.0)
        self.round += 1
        self.decreases += 1
        return True
