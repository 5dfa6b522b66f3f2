"""The dispatcher (``flask --app app dispatcher run``): sends what the outbox holds, urgent first.

Why nothing is lost
    A message exists only as a row in ``messages``, written in the same transaction as the
    business change that caused it (:func:`notifications.service.send`). It leaves the states
    ``queued``/``sending`` only by a committed write made *after* the gateway answered: ``sent``
    with the gateway's id, ``queued`` again with a later ``next_attempt_at`` (a transient error),
    or ``failed``. A dispatcher that crashes, is killed or loses its database connection at any
    point leaves its messages ``queued`` or ``sending``. A ``sending`` row carries a lease
    (``lease_until``, ``leased_by``); once the lease has expired any dispatcher puts the row back
    to ``queued`` and sends it. So after a restart every message not confirmed sent is sent.

Why nothing is sent twice (and the in-flight window)
    A worker claims a batch of up to ``DISPATCH_BATCH_SIZE`` messages with a single statement,
    ``UPDATE messages SET status='sending', lease_until=now+lease, leased_by=me,
    attempts=attempts+1 WHERE id IN (SELECT id ... WHERE status='queued' AND channel=? AND
    next_attempt_at <= now ORDER BY priority, next_attempt_at, id LIMIT n FOR UPDATE SKIP LOCKED)
    AND status='queued'`` (on PostgreSQL written ``id = ANY(ARRAY(...))`` so that the subquery
    runs once), and commits before it talks to the gateway. On PostgreSQL ``SKIP LOCKED`` makes
    concurrent dispatchers take different rows without waiting; on SQLite the statement holds
    the database's write lock. A row is therefore handed to one worker only, and the result is
    written back only by the holder of that claim (``WHERE id=? AND leased_by=? AND
    attempts=?``).

    The worker then sends the batch one message at a time and records the acceptances of the
    whole batch in one transaction at its end (a failure is recorded at once). Claims it will not
    send (it is stopping, its lane paused after repeated failures, its drain deadline passed, or
    half the lease has gone by) are given back: ``queued`` again with the attempt not counted, so
    :meth:`Dispatcher.stop` leaves no claim held that was not sent.

    What cannot be made exactly-once is the step between the gateway's acceptance and our commit
    of ``sent``: SMTP and Twilio's API take part in no transaction of ours. A dispatcher killed
    in that moment leaves messages that the gateway has but our database shows as ``sending``;
    when their lease expires they are sent again. That is the in-flight window: after a crash, at
    most the messages that were ``sending`` at the moment of the crash may arrive twice, and of
    those only the ones already handed to a gateway. That is at most one batch per worker
    thread, ``DISPATCH_BATCH_SIZE × (EMAIL_CONCURRENCY + SMS_CONCURRENCY)`` per dispatcher
    (50 with the defaults; with ``DISPATCH_BATCH_SIZE=1``, one per worker as before), because
    each worker holds one batch of claims at a time and commits its ``sent`` records when the
    batch is done. The same holds for a send slower than the lease (``DISPATCH_LEASE_SECONDS``,
    120 s by default; the adapters time out long before that, and a worker does not start a send
    once half the lease has passed). E-mails keep their Message-ID when sent again, so mail
    clients that de-duplicate show one; an SMS sent again arrives twice.

Urgent first, and fast
    Claims go by ``(priority, next_attempt_at, id)`` and a batch is sent in that order, so an
    urgent message queued behind 10,000 bulk ones is in the next batch each lane claims: it
    waits at most for the batches the lane's workers already hold (``DISPATCH_BATCH_SIZE``
    messages each). An urgent message's ``sent`` is committed right after its acceptance (with
    those of its batch sent before it), not at the end of its batch. On a rate-limited lane a
    worker claims no more than it may send in about a second (``*_RATE_PER_SECOND /
    *_CONCURRENCY``), so that held claims do not hold up urgent ones there either. Each channel
    is a lane of its own (``*_CONCURRENCY`` worker threads, a token bucket for
    ``*_RATE_PER_SECOND``); a failing or slow e-mail gateway never holds up SMS.
    :func:`~notifications.service.send` wakes the dispatchers at commit: ``pg_notify`` on
    PostgreSQL (this process LISTENs on a dedicated connection) and an in-process hook; polling
    every ``DISPATCH_POLL_SECONDS`` is the safety net (and the only way on SQLite across
    processes).

Durability of the bookkeeping (PostgreSQL)
    The business transaction that writes a message (:func:`~notifications.service.send`) is an
    ordinary, synchronous commit: once the caller's commit returns, the message is on disk and
    will be sent. The dispatcher's own transactions -- claims, ``sent`` records, retries, given-back
    claims -- run on connections with ``synchronous_commit = off`` (``DISPATCH_SYNCHRONOUS_COMMIT``,
    default ``off``): their commits are visible to every other session at once and are flushed by
    the WAL writer within about three ``wal_writer_delay`` (600 ms by default) instead of each
    waiting for its own disk flush. With two cores the flush waits were a quarter of a lane's
    time (bench/fanout.py). What this risks is bounded and only on a crash of the PostgreSQL
    server itself (a killed dispatcher changes nothing: its commits are already in the server):
    the bookkeeping of the last ~600 ms may be lost, so messages sent in that time are ``queued``
    or ``sending`` again after the server's recovery and are sent again -- the in-flight window
    above, widened by what the lanes send in 600 ms. No message is ever lost by it, because
    writing a message never runs with ``synchronous_commit = off``. Set
    ``DISPATCH_SYNCHRONOUS_COMMIT=on`` to keep the narrower window at the cost of throughput.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.errors import describe_error, error_location
from core.extensions import db
from core.metrics import REGISTRY
from notifications.channels.base import OutgoingEmail, OutgoingSms, PermanentFailure, TransientFailure
from notifications.models import Channel, Message, MessageStatus, Priority
from notifications.outbox import (
    ClaimedMessage,
    SentRecord,
    claim_batch,
    ensure_channel_states,
    reclaim_expired,
    record_channel_failure,
    record_channel_success,
    record_failure,
    record_sent_batch,
    release,
    retry_delay,
)
from notifications.ratelimit import TokenBucket
from notifications.service import (
    NOTIFY_CHANNEL,
    STATUS_CALLBACK_PATH,
    add_wake_listener,
    mark_address_failing,
    remove_wake_listener,
)

log = logging.getLogger(__name__)

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
DUE = Gauge(
    "krisrutin_outbox_due_messages",
    "Queued messages whose time has come, by channel",
    ["channel"],
    registry=REGISTRY,
    multiprocess_mode="max",
)

LANE_PAUSE_AFTER = 5  # consecutive transient failures in this process before a lane pauses
LANE_PAUSE_CAP = 60.0  # seconds
ERROR_PAUSE = 1.0  # seconds to wait after a database error before trying again
SUCCESS_STATE_EVERY = 5.0  # seconds: how often a healthy lane refreshes last_success_at
_EMAIL = Channel.EMAIL.value


def default_dispatcher_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


@dataclass
class DispatchReport:
    """What :meth:`Dispatcher.run_until_idle` did."""

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


# --- the process ------------------------------------------------------------------------------


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


class Dispatcher:
    """Sends queued messages: per channel a lane of worker threads (see the module docstring).

    ``channels`` is a :class:`notifications.channels.ChannelSetup` (or anything with
    ``email_factory``, ``sms_factory``, ``email_gateway``, ``sms_gateway``); by default it is
    the one create_app built from the settings. Time is the application's clock.
    """

    def __init__(
        self,
        app,
        *,
        name: str | None = None,
        channels=None,
        poll_seconds: float | None = None,
        lease_seconds: float | None = None,
        listen: bool = True,
        jitter: Callable[[], float] = random.random,
        batch_size: int | None = None,
    ):
        settings = app.extensions["krisrutin.settings"]
        if channels is None:
            channels = app.extensions["krisrutin.channels"]
        self.app = app
        self.name = (name or default_dispatcher_name())[:100]
        self.channels = channels
        self.settings = settings
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.dispatch_poll_seconds
        self.lease_seconds = lease_seconds if lease_seconds is not None else settings.dispatch_lease_seconds
        self.max_attempts = settings.message_max_attempts
        self.batch_size = batch_size if batch_size is not None else settings.dispatch_batch_size
        if not 1 <= self.batch_size <= 100:
            raise ValueError(f"batch_size: expected 1 to 100, got {self.batch_size}")
        self.listen = listen
        self.jitter = jitter
        self.lanes = {
            Channel.EMAIL: Lane(
                Channel.EMAIL,
                channels.email_factory,
                channels.email_gateway,
                settings.email_concurrency,
                settings.email_rate_per_second,
                self.batch_size,
            ),
            Channel.SMS: Lane(
                Channel.SMS,
                channels.sms_factory,
                channels.sms_gateway,
                settings.sms_concurrency,
                settings.sms_rate_per_second,
                self.batch_size,
            ),
        }
        self._mail_domain = settings.mail_from.rpartition("@")[2].strip(">").strip() or "krisrutin"
        self._status_callback = f"{settings.public_base_url}{STATUS_CALLBACK_PATH}?message="
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._report = DispatchReport()
        self._engine = None  # the workers' own pool (see _worker_engine)
        self.listening = threading.Event()  # set while the LISTEN connection is up (tests wait for it)

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads and the housekeeper (reclaims leases, LISTENs); returns at once."""
        if self._threads:
            raise RuntimeError("the dispatcher is already running")
        self._stop.clear()
        self._prepare()
        self._engine = self._worker_engine()
        add_wake_listener(self.wake)
        for lane in self.lanes.values():
            for number in range(lane.concurrency):
                self._spawn(f"{lane.channel.value}-{number + 1}", self._work, lane, False, None, self._report)
        self._spawn("housekeeper", self._housekeep)
        log.info(
            "dispatcher started",
            extra={
                "dispatcher": self.name,
                "channels": _describe(self.channels),
                "email_workers": self.lanes[Channel.EMAIL].concurrency,
                "sms_workers": self.lanes[Channel.SMS].concurrency,
            },
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Let every worker finish the message it is sending, then stop; the claims of its batch
        that it has not sent are given back to the queue (see the module docstring)."""
        self._stop.set()
        remove_wake_listener(self.wake)
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in self._threads if thread.is_alive()]
        self._threads = []
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if stuck:
            log.error(
                "dispatcher threads still sending at shutdown; their leases will expire", extra={"threads": stuck}
            )
        log.info("dispatcher stopped", extra={"dispatcher": self.name, **self._report.as_dict()})

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Run until ``stop`` is set or an exception (a signal's) interrupts the wait; then stop."""
        self.start()
        try:
            (stop or threading.Event()).wait()
        finally:
            self.stop()

    def run_until_idle(self, timeout: float = 60.0) -> DispatchReport:
        """Send everything due now, in this call (for ``flask dispatcher drain`` and tests): each
        lane's workers run until nothing is due, or until ``timeout`` seconds have passed."""
        if self._threads:
            raise RuntimeError("run_until_idle cannot run while the dispatcher runs")
        self._stop.clear()
        self._prepare()
        report = DispatchReport()
        deadline = time.monotonic() + timeout
        workers = [
            threading.Thread(
                target=self._work,
                args=(lane, True, deadline, report),
                name=f"dispatcher-drain-{lane.channel.value}-{number + 1}",
            )
            for lane in self.lanes.values()
            for number in range(lane.concurrency)
        ]
        self._engine = self._worker_engine()
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        finally:
            self._engine.dispose()
            self._engine = None
        return report

    def wake(self, channels: frozenset[str] | None = None) -> None:
        """Make idle workers look for due messages now (all lanes, or those of ``channels``)."""
        for lane in self.lanes.values():
            if channels is None or lane.channel.value in channels:
                lane.wake()

    # -- internals ---------------------------------------------------------------------------------

    def _spawn(self, label: str, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=f"dispatcher-{label}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _prepare(self) -> None:
        with self.app.app_context():
            try:
                gateways = {lane.channel.value: lane.gateway for lane in self.lanes.values()}
                ensure_channel_states(db.session, gateways)
                reclaim_expired(db.session, now=current_clock().now(), max_attempts=self.max_attempts)
            except BaseException:
                db.session.rollback()
                raise

    def _worker_engine(self):
        """An engine for the workers: each keeps one connection from it between transactions, so
        that the pool's pre-ping (PostgreSQL) runs once per connection instead of once per
        transaction; a worker whose connection fails drops it and takes a fresh, pinged one. Its
        own pool, sized to the workers, so that held connections never starve the housekeeper."""
        workers = sum(lane.concurrency for lane in self.lanes.values())
        with self.app.app_context():
            url = db.engine.url
        options = dict(self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        if url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:"):
            options.update(pool_size=workers, max_overflow=workers)
        engine = create_engine(url, **options)
        if url.get_backend_name() == "postgresql" and not self.settings.dispatch_synchronous_commit:

            @event.listens_for(engine, "connect")
            def _asynchronous_bookkeeping(dbapi_connection, _record):
                # Only the dispatcher's own bookkeeping (see "Durability of the bookkeeping").
                autocommit = dbapi_connection.autocommit
                dbapi_connection.autocommit = True
                dbapi_connection.execute("SET synchronous_commit TO off")
                dbapi_connection.autocommit = autocommit

        return engine

    def _work(self, lane: Lane, drain: bool, deadline: float | None, report: DispatchReport) -> None:
        """One worker: claim the lane's most urgent due messages (up to its batch), send them one
        by one, record the outcomes; repeat. In ``drain`` mode it returns when nothing is due (or
        at ``deadline``)."""
        with self.app.app_context():
            session = None
            adapter = None
            try:
                while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                    if not drain and lane.pause_remaining() > 0:
                        self._stop.wait(min(1.0, lane.pause_remaining()))
                        continue
                    try:
                        session = session or Session(bind=self._engine.connect())
                        adapter = adapter or lane.factory()
                        generation = lane.generation
                        if not lane.limiter.acquire(self._stop):
                            break
                        batch = self._claim(session, lane)
                        if not batch:
                            if drain:
                                break
                            lane.wait(generation, self.poll_seconds)
                            continue
                        adapter = self._send_batch(session, lane, adapter, batch, drain, deadline, report)
                    except Exception as error:
                        # The database is unreachable, or a bug: logged, and tried again shortly
                        # on a fresh connection. Claims not given back stay under their lease and
                        # are sent when it expires.
                        _discard(session)
                        session = None
                        report.count("errors")
                        log.error(
                            "dispatcher worker error",
                            extra={
                                "channel": lane.channel.value,
                                "error": _safe(error),
                                "where": error_location(error),
                            },
                        )
                        if drain:
                            break
                        self._stop.wait(ERROR_PAUSE)
                        continue
            finally:
                if adapter is not None:
                    _close(adapter, lane)
                _discard(session)

    def _claim(self, session, lane: Lane) -> list[ClaimedMessage]:
        """Claim the lane's most urgent due messages, up to its batch. The caller holds a rate
        limiter token for the first; it is given back when none is due, or when the claim fails."""
        try:
            claimed = claim_batch(
                session,
                channel=lane.channel.value,
                now=current_clock().now(),
                lease_seconds=self.lease_seconds,
                name=self.name,
                limit=lane.batch,
            )
        except BaseException:
            lane.limiter.refund()
            raise
        if not claimed:
            lane.limiter.refund()
        return claimed

    def _send_batch(
        self,
        session,
        lane: Lane,
        adapter,
        batch: list[ClaimedMessage],
        drain: bool,
        deadline: float | None,
        report: DispatchReport,
    ):
        """Send a claimed batch in its order; record the acceptances together at the end (one
        transaction; an urgent message's at once, with those before it), failures at once. Claims
        not sent (stopping, the lane paused, the deadline, half the lease used up) are given
        back. Returns the adapter to use next (None: a new one)."""
        claimed_at = time.monotonic()
        accepted: list[SentRecord] = []
        write_state = False
        done = 0
        try:
            for claimed in batch:
                if done and not self._may_go_on(lane, drain, deadline, claimed_at):
                    break
                adapter = adapter or lane.factory()
                gateway_id = self._deliver(session, lane, adapter, claimed, report)
                done += 1
                if gateway_id is None:  # failed: a fresh connection for the next message
                    _close(adapter, lane)
                    adapter = None
                    continue
                accepted.append(SentRecord(claimed, getattr(adapter, "gateway", lane.gateway), gateway_id))
                write_state = lane.succeeded() or write_state
                if claimed.priority <= Priority.URGENT:
                    # Urgent messages are recorded at once: they leave the in-flight window now.
                    self._record_sent(session, lane, accepted, write_state, report)
                    accepted, write_state = [], False
        finally:
            self._record_sent(session, lane, accepted, write_state, report)
            if done < len(batch):
                self._release(session, lane, batch[done:])
        return adapter

    def _may_go_on(self, lane: Lane, drain: bool, deadline: float | None, claimed_at: float) -> bool:
        """Whether to send the next message of a batch (waiting for the rate limiter's token)."""
        if self._stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            return False
        if not drain and lane.pause_remaining() > 0:
            return False
        if time.monotonic() - claimed_at > self.lease_seconds / 2:
            return False  # the rest goes back to the queue rather than risk a lease running out
        return lane.limiter.acquire(self._stop)

    def _deliver(self, session, lane: Lane, adapter, claimed: ClaimedMessage, report: DispatchReport) -> str | None:
        """Hand one claimed message to the gateway; returns its id, or None after recording a
        failure (and counting it in ``report``)."""
        try:
            if claimed.channel == _EMAIL:
                return adapter.send_email(
                    OutgoingEmail(
                        to=claimed.to_address,
                        subject=claimed.subject or "",
                        text=claimed.body_text,
                        html=claimed.body_html,
                        message_id=f"<krisrutin-{claimed.id}@{self._mail_domain}>",
                    )
                )
            return adapter.send_sms(
                OutgoingSms(
                    to=claimed.to_address,
                    body=claimed.body_text,
                    status_callback=f"{self._status_callback}{claimed.id}",
                )
            )
        except TransientFailure as failure:
            outcome = self._failed(
                session, lane, claimed, describe_error(failure), transient=True, retry_after=failure.retry_after
            )
        except PermanentFailure as failure:
            outcome = self._failed(
                session,
                lane,
                claimed,
                describe_error(failure),
                transient=False,
                address_rejected=failure.address_rejected,
            )
        except Exception as error:
            # An adapter bug or an unmapped library error: retried like a transient failure. Only
            # the class and place are kept: the message of a foreign exception may hold an address.
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
            outcome = self._failed(
                session, lane, claimed, f"unexpected {type(error).__name__} in the adapter", transient=True
            )
        report.count(outcome)
        return None

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
                extra={"channel": lane.channel.value, "message_ids": [c.id for c in claims], "error": _safe(error)},
            )
            return
        if len(released) < len(claims):
            lost = sorted({c.id for c in claims} - set(released))
            log.warning("unsent claims were lost before being given back", extra={"message_ids": lost})

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
    ) -> str:
        details = {"message_id": claimed.id, "kind": claimed.kind, "channel": claimed.channel, "error": error}
        give_up = not transient or claimed.attempts >= self.max_attempts
        counts_against_channel = not address_rejected  # a bad address says nothing about the gateway
        if counts_against_channel:
            lane.failed(transient=transient)

        def store(now: datetime) -> bool:
            retry_at = None
            if not give_up:
                retry_at = now + retry_delay(claimed.attempts, retry_after=retry_after, jitter=self.jitter)
            kept = record_failure(session, claimed, name=self.name, error=error, now=now, retry_at=retry_at)
            if kept and address_rejected:
                mark_address_failing(
                    db_session=session,
                    contact_id=claimed.contact_id,
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
                    extra={**details, "attempt": attempt, "error": _safe(error)},
                )
                wait = min(5.0, 0.2 * 2 ** (attempt - 1))
                if time.monotonic() + wait >= give_up_at:
                    return current_clock().now(), None
                time.sleep(wait)

    def _housekeep(self) -> None:
        """Reclaim expired leases, refresh the gauges, and wake the lanes on NOTIFY."""
        interval = max(0.5, min(5.0, self.lease_seconds / 4))
        next_pass = 0.0
        listener = None
        next_connect = 0.0
        with self.app.app_context():
            postgres = db.engine.dialect.name == "postgresql" and self.listen
            try:
                while not self._stop.is_set():
                    if time.monotonic() >= next_pass:
                        self._housekeeping_pass()
                        next_pass = time.monotonic() + interval
                    if not postgres:
                        self._stop.wait(max(0.0, next_pass - time.monotonic()))
                        continue
                    if listener is None and time.monotonic() >= next_connect:
                        listener = self._connect_listener()
                        next_connect = time.monotonic() + 5.0
                        if listener is not None:
                            self.wake()  # anything committed while we were not listening
                    if listener is None:
                        self._stop.wait(min(0.25, max(0.0, next_pass - time.monotonic())))
                        continue
                    try:
                        for notification in listener.notifies(
                            timeout=min(0.25, max(0.01, next_pass - time.monotonic()))
                        ):
                            self.wake(frozenset([notification.payload]) if notification.payload else None)
                    except Exception as error:
                        log.warning(
                            "LISTEN connection lost; polling until it is back", extra={"error": describe_error(error)}
                        )
                        self.listening.clear()
                        _close_quietly(listener)
                        listener = None
            finally:
                self.listening.clear()
                if listener is not None:
                    _close_quietly(listener)

    def _housekeeping_pass(self) -> None:
        try:
            now = current_clock().now()
            if reclaim_expired(db.session, now=now, max_attempts=self.max_attempts):
                self.wake()
            due = dict(
                db.session.execute(
                    select(Message.channel, func.count())
                    .where(Message.status == MessageStatus.QUEUED.value, Message.next_attempt_at <= now)
                    .group_by(Message.channel)
                ).all()
            )
            db.session.rollback()
            for channel in Channel:
                DUE.labels(channel.value).set(due.get(channel.value, 0))
        except Exception as error:
            db.session.rollback()
            log.error("dispatcher housekeeping failed", extra={"error": _safe(error)})

    def _connect_listener(self):
        import psycopg

        url = db.engine.url.set(drivername="postgresql")
        try:
            connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5)
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception as error:
            log.warning("could not LISTEN for new messages; polling", extra={"error": describe_error(error)})
            return None
        self.listening.set()
        return connection


def _describe(channels) -> object:
    describe = getattr(channels, "describe", None)
    return describe() if callable(describe) else {"email": channels.email_gateway, "sms": channels.sms_gateway}


def _safe(error: BaseException) -> str:
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


def _close(adapter, lane: Lane) -> None:
    try:
        adapter.close()
    except Exception as error:
        log.warning("closing a channel adapter failed", extra={"channel": lane.channel.value, "error": _safe(error)})


def _discard(session: Session | None) -> None:
    """Close a worker's session and give its connection back (discarded by the pool if broken)."""
    if session is None:
        return
    connection = session.get_bind()
    with contextlib.suppress(Exception):  # the connection may be gone
        session.close()
    with contextlib.suppress(Exception):
        connection.close()


def _close_quietly(connection) -> None:
    with contextlib.suppress(Exception):  # the connection is gone either way
        connection.close()
