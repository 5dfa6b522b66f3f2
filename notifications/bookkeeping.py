"""A dispatcher's bookkeeping: the outcome of each send written back to its message.

:class:`Bookkeeping` is the part of :class:`~notifications.dispatcher.Dispatcher` that records
what the workers did: a batch's acceptances in one transaction; a failure, retried later or
failed (an address the gateway refused for good is marked failing through the recipients' hook,
:mod:`notifications.recipients`); claims given back unsent. Every write is guarded by the claim
(this dispatcher, this attempt: :mod:`notifications.outbox`) and is tried again while the
database is away, for up to half the lease. Why that keeps every message and sends it once up
to the in-flight window is in :mod:`notifications.dispatcher`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime

from prometheus_client import Counter, Histogram
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.errors import describe_error, error_location
from core.metrics import REGISTRY
from notifications import recipients
from notifications.channels.base import ChannelFailure, TransientFailure
from notifications.lanes import DispatchReport, Lane
from notifications.models import Priority
from notifications.outbox import (
    ClaimedMessage,
    SentRecord,
    record_channel_failure,
    record_channel_success,
    record_failure,
    record_sent_batch,
    release,
    retry_delay,
)

# The dispatcher's logger: its records keep the name operators filter on, whichever module of
# the dispatcher writes them.
log = logging.getLogger("notifications.dispatcher")

MESSAGES = Counter(
    "krisrutin_outbox_messages_total",
    "Send attempts by channel, kind and outcome (sent, retried, failed)",
    ["channel", "kind", "outcome"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "krisrutin_outbox_queue_to_gateway_seconds",
    "Time from queueing a message to the gateway's acceptance",
    ["priority"],
    registry=REGISTRY,
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)


class Bookkeeping:
    """Records the outcomes of one dispatcher's sends (the base of its :class:`Dispatcher`).

    ``name`` is the dispatcher's, written into every claim it holds; ``lease_seconds`` bounds how
    long a write is tried again; ``max_attempts`` and ``jitter`` decide the retries.
    """

    def __init__(
        self, *, name: str, lease_seconds: float, max_attempts: int, jitter: Callable[[], float] = random.random
    ):
        self.name = name
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.jitter = jitter

    def _record_sent(
        self, session, lane: Lane, accepted: list[SentRecord], write_state: bool, report: DispatchReport
    ) -> None:
        """Record a batch's acceptances in one transaction (and the channel's success, now and then)."""
        if not accepted:
            return
        channel = lane.channel.value

        details = {"channel": channel, "messages": len(accepted)}
        now, lost = self._write(
            session, lambda now: record_sent_batch(session, accepted, name=self.name, now=now), details
        )
        if write_state:  # a step of its own: the sends above are recorded whatever happens to it
            gateway = accepted[-1].gateway
            self._write(
                session, lambda now: record_channel_success(session, channel=channel, gateway=gateway, now=now), details
            )
        if lost:
            log.warning(
                "messages sent after their claim was lost (lease expired): they may be sent twice",
                extra={"channel": channel, "message_ids": lost},
            )
        report.count("sent", len(accepted))
        kinds: dict[str, int] = {}
        for record in accepted:
            claimed = record.claimed
            kinds[claimed.kind] = kinds.get(claimed.kind, 0) + 1
            _latency(claimed.priority).observe(max(0.0, (now - claimed.created_at).total_seconds()))
        for kind, count in kinds.items():
            MESSAGES.labels(channel, kind, "sent").inc(count)
        if log.isEnabledFor(logging.INFO):
            for record in accepted:
                claimed = record.claimed
                log.info(
                    "message sent",
                    extra={
                        "message_id": claimed.id,
                        "kind": claimed.kind,
                        "channel": channel,
                        "attempt": claimed.attempts,
                        "gateway": record.gateway,
                    },
                )

    def _release(self, session, lane: Lane, claims: list[ClaimedMessage]) -> None:
        """Give back claims that were not sent; if that fails their leases bring them back."""
        try:
            released = release(session, claims, name=self.name, now=current_clock().now())
        except Exception as error:
            session.rollback()
            log.error(
                "giving back unsent claims failed; their leases will expire",
                extra={
                    "channel": lane.channel.value,
                    "message_ids": [c.id for c in claims],
                    "error": safe_error(error),
                },
            )
            return
        if len(released) < len(claims):
            lost = sorted({c.id for c in claims} - set(released))
            log.warning("unsent claims were lost before being given back", extra={"message_ids": lost})

    def _failed_send(self, session, lane: Lane, claimed: ClaimedMessage, failure: ChannelFailure) -> str:
        """Record a send the adapter reported as failed: a transient failure is retried (a
        gateway's rate limit without using up an attempt), a permanent one fails the message
        (and marks the address when the gateway refused it)."""
        if isinstance(failure, TransientFailure):
            return self._failed(
                session,
                lane,
                claimed,
                describe_error(failure),
                transient=True,
                retry_after=failure.retry_after,
                counted=not failure.rate_limited,
            )
        return self._failed(
            session,
            lane,
            claimed,
            describe_error(failure),
            transient=False,
            address_rejected=getattr(failure, "address_rejected", False),
        )

    def _failed(
        self,
        session,
        lane: Lane,
        claimed: ClaimedMessage,
        error: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        address_rejected: bool = False,
        counted: bool = True,
    ) -> str:
        """Record a failed attempt; ``counted=False`` (a gateway's rate limit) gives the attempt
        back, so that a busy gateway never fails a message."""
        details = {"message_id": claimed.id, "kind": claimed.kind, "channel": claimed.channel, "error": error}
        give_up = not transient or (counted and claimed.attempts >= self.max_attempts)
        counts_against_channel = not address_rejected  # a bad address says nothing about the gateway
        if counts_against_channel:
            lane.failed(transient=transient)

        def store(now: datetime) -> bool:
            retry_at = None
            if not give_up:
                retry_at = now + retry_delay(claimed.attempts, retry_after=retry_after, jitter=self.jitter)
            kept = record_failure(
                session, claimed, name=self.name, error=error, now=now, retry_at=retry_at, counted=counted
            )
            if kept and address_rejected:
                recipients.mark_failing(
                    db_session=session,
                    key=claimed.contact_id,
                    channel=claimed.channel,
                    address=claimed.to_address,
                    reason=f"{lane.gateway} rejected the address: {error}",
                    now=now,
                )
            if counts_against_channel:
                record_channel_failure(session, channel=claimed.channel, gateway=lane.gateway, error=error, now=now)
            return kept

        self._write(session, store, details)
        if give_up:
            MESSAGES.labels(claimed.channel, claimed.kind, "failed").inc()
            log.error("message failed", extra={**details, "attempts": claimed.attempts, "permanent": not transient})
            return "failed"
        MESSAGES.labels(claimed.channel, claimed.kind, "retried").inc()
        log.warning("message attempt failed; will retry", extra={**details, "attempt": claimed.attempts})
        return "retried"

    def _write(self, session, step: Callable[[datetime], object], details: dict) -> tuple[datetime, object]:
        """Run a database step and commit, trying again while the database is away, for up to
        half the lease (with waits growing from 0.2 s to 5 s): a lost ``sent`` record means the
        message is sent again once its lease runs out, so a database restart of a few seconds
        must not lose it (bench.drills' pg_restart: three tries in 0.6 s lost 40 of 2,000 to a
        5-second outage). Returns the time used and the step's result (None if every try
        failed)."""
        give_up_at = time.monotonic() + self.lease_seconds / 2
        attempt = 0
        while True:
            attempt += 1
            now = current_clock().now()
            try:
                result = step(now)
                session.commit()
                return now, result
            except Exception as error:
                session.rollback()
                log.error(
                    "recording a send's outcome failed",
                    extra={**details, "attempt": attempt, "error": safe_error(error)},
                )
                wait = min(5.0, 0.2 * 2 ** (attempt - 1))
                if time.monotonic() + wait >= give_up_at:
                    return current_clock().now(), None
                time.sleep(wait)


def unexpected_adapter_error(claimed: ClaimedMessage, error: BaseException) -> str:
    """Log an adapter bug or an unmapped library error (retried like a transient failure) and
    return the failure to record. Only the class and place are kept: the message of a foreign
    exception may hold an address."""
    log.error(
        "unexpected error from a channel adapter",
        extra={
            "message_id": claimed.id,
            "kind": claimed.kind,
            "channel": claimed.channel,
            "error": type(error).__name__,
            "where": error_location(error),
        },
    )
    return f"unexpected {type(error).__name__} in the adapter"


def safe_error(error: BaseException) -> str:
    """Database errors described (their class and SQLSTATE); anything else by class only, since
    its message may carry an address."""
    return describe_error(error) if isinstance(error, SQLAlchemyError) else type(error).__name__


def _priority_label(priority: int) -> str:
    try:
        return Priority(priority).name.lower()
    except ValueError:
        return str(priority)


_LATENCY_BY_PRIORITY: dict[int, object] = {}


def _latency(priority: int):
    """The latency histogram's child for ``priority`` (looked up once per priority)."""
    child = _LATENCY_BY_PRIORITY.get(priority)
    if child is None:
        child = _LATENCY_BY_PRIORITY[priority] = LATENCY.labels(_priority_label(priority))
    return child


def discard_session(session: Session | None) -> None:
    """Close a worker's session and give its connection back (discarded by the pool if broken)."""
    if session is None:
        return
    connection = session.get_bind()
    with contextlib.suppress(Exception):  # the connection may be gone
        session.close()
    with contextlib.suppress(Exception):
        connection.close()
