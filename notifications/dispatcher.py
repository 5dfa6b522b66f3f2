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

    How the lanes send: e-mail and SMS are asynchronous lanes (:mod:`notifications.pump`): one
    event loop per lane keeps up to ``EMAIL_CONCURRENCY``/``SMS_CONCURRENCY`` requests in flight
    (100 each by default: enough to hide a Twilio that takes 200 ms per request and a relay that
    takes 100 ms per message, measured with bench.service_fanout; an SMTP transaction is four
    round trips, which on a busy machine take longer than the relay's own wait: 32 and 64
    connections left the e-mail lane 1.25-1.46x slower than against a relay answering at once,
    100 about 1.15x), fewer while the gateway answers "too many" (:mod:`notifications.window`):
    a relay that allows fewer connections answers 421 and the window settles below its limit.
    Calls keep ``CALL_CONCURRENCY`` worker threads that claim one call at a time. A pump's send
    task (or a call worker) records each acceptance after the gateway's answer; the pump groups
    those of many sends in one transaction, a failure is recorded at once. Claims not sent (the
    dispatcher is stopping, the lane paused after repeated failures, the drain deadline passed,
    or half the lease has gone by) are given back: ``queued`` again with the attempt not counted,
    so :meth:`Dispatcher.stop` leaves no claim held that was not sent.

    What cannot be made exactly-once is the step between the gateway's acceptance and our commit
    of ``sent``: SMTP and Twilio's API take part in no transaction of ours. A dispatcher killed
    in that moment leaves messages that the gateway has but our database shows as ``sending``;
    when their lease expires they are sent again. That is the in-flight window: after a crash, at
    most the messages that were ``sending`` at the moment of the crash may arrive twice, and of
    those only the ones already handed to a gateway. A pump holds at most its window's maximum
    (``EMAIL_CONCURRENCY``, ``SMS_CONCURRENCY``) and a quarter more, the claims ahead of the
    window that wait for a place in it (:func:`notifications.window.most_claims`), and never has
    more than the window at the gateway: at most 125 + 125 + ``CALL_CONCURRENCY`` claims per
    dispatcher (252 with the defaults). Of those, what can arrive twice is what was at a gateway
    (at most the windows: 202) and the acceptances a pump has not yet committed (those of the one
    transaction under way and of what arrived meanwhile: a few milliseconds' worth); a claim
    still waiting for a place was never sent. The same holds for a send slower than the
    lease (``DISPATCH_LEASE_SECONDS``, 120 s by default; the adapters time out long before that,
    and no send starts once half the lease has passed). E-mails keep their Message-ID when sent
    again, so mail clients that de-duplicate show one; an SMS sent again arrives twice, and a
    call is made twice.

Urgent first, and fast
    Claims go by ``(priority, next_attempt_at, id)``, so an urgent message queued behind 10,000
    bulk ones is in the next claim its lane makes: a pump claims up to ``DISPATCH_BATCH_SIZE``
    messages whenever that many of its claims' places are free, so the urgent one waits for at
    most the sends already in flight to free them, and then for a place in the window before
    any bulk claim waiting for one (the claims ahead of the window). Its acceptance is committed by the pump's
    next write. On a rate-limited lane a pump holds no more claims than it may send in about a
    second (``*_RATE_PER_SECOND``), and hands out the limiter's tokens in claim order, so that
    held claims do not hold up urgent ones there either. Each channel is a lane of its own (a
    token bucket for ``*_RATE_PER_SECOND``, a window, a circuit breaker); a failing or slow
    e-mail gateway never holds up SMS.
    :func:`~notifications.service.send` wakes the dispatchers at commit: ``pg_notify`` on
    PostgreSQL (this process LISTENs on a dedicated connection) and an in-process hook; polling
    every ``DISPATCH_POLL_SECONDS`` is the safety net (and the only way on SQLite across
    processes).

Durability of the bookkeeping (PostgreSQL, SQLite)
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

    On SQLite (WAL mode) the same setting makes the dispatcher's connections commit with
    ``PRAGMA synchronous = NORMAL``: a commit is written to the WAL file but not flushed to disk
    by itself. A killed dispatcher (or web process) loses nothing by it, since the operating
    system has the write; only a crash of the machine itself (power, kernel) may lose the last
    bookkeeping, whose messages are then sent again -- never lost, because the web process and
    the scheduler, which write the messages, keep SQLite's default (``FULL``).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.errors import error_location
from core.extensions import db
from notifications import voice
from notifications.bookkeeping import Bookkeeping, discard_session, safe_error, unexpected_adapter_error
from notifications.channels.base import OutgoingCall, OutgoingEmail, OutgoingSms, PermanentFailure, TransientFailure
from notifications.housekeeping import Housekeeper
from notifications.lanes import DispatchReport, Lane
from notifications.models import Channel, Priority
from notifications.outbox import ClaimedMessage, SentRecord, claim_batch, ensure_channel_states, reclaim_expired
from notifications.pump import Pump
from notifications.service import STATUS_CALLBACK_PATH
from notifications.wakeup import add_wake_listener, remove_wake_listener

__all__ = ["DispatchReport", "Dispatcher", "Lane", "default_dispatcher_name"]

log = logging.getLogger(__name__)

ERROR_PAUSE = 1.0  # seconds to wait after a database error before trying again
_EMAIL = Channel.EMAIL.value
_CALL = Channel.CALL.value
# Lanes run by a Pump (notifications.pump): one event loop each, many requests in flight. Calls
# keep their worker threads: few at a time, each a slow conversation with Twilio.
ASYNCHRONOUS = frozenset({Channel.EMAIL, Channel.SMS})


def default_dispatcher_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


class Dispatcher(Bookkeeping):
    """Sends queued messages: per channel a lane of worker threads (see the module docstring).

    ``channels`` is a :class:`notifications.channels.ChannelSetup` (or anything with
    ``email_factory``, ``sms_factory``, ``email_gateway``, ``sms_gateway``); by default it is
    the one create_app built from the settings. Time is the application's clock. The workers are
    here; the records of their outcomes are :class:`~notifications.bookkeeping.Bookkeeping`'s,
    the lanes they share :mod:`notifications.lanes`', and the housekeeper thread
    :mod:`notifications.housekeeping`'s.
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
        super().__init__(
            name=(name or default_dispatcher_name())[:100],
            lease_seconds=lease_seconds if lease_seconds is not None else settings.dispatch_lease_seconds,
            max_attempts=settings.message_max_attempts,
            jitter=jitter,
        )
        self.app = app
        self.channels = channels
        self.settings = settings
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.dispatch_poll_seconds
        self.batch_size = batch_size if batch_size is not None else settings.dispatch_batch_size
        if not 1 <= self.batch_size <= 100:
            raise ValueError(f"batch_size: expected 1 to 100, got {self.batch_size}")
        self.listen = listen
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
            # Calls: few at a time, and never batched (a call is urgent; Twilio's default is one
            # new call per second per account).
            Channel.CALL: Lane(
                Channel.CALL,
                channels.call_factory,
                channels.call_gateway,
                settings.call_concurrency,
                settings.call_rate_per_second,
                1,
            ),
        }
        self._mail_domain = settings.mail_from.rpartition("@")[2].strip(">").strip() or "krisrutin"
        self._status_callback = f"{settings.public_base_url}{STATUS_CALLBACK_PATH}?message="
        self._public_base_url = settings.public_base_url
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
            if lane.channel in ASYNCHRONOUS:
                self._spawn(lane.channel.value, Pump(self, lane, drain=False, deadline=None, report=self._report).run)
                continue
            for number in range(lane.concurrency):
                self._spawn(f"{lane.channel.value}-{number + 1}", self._work, lane, False, None, self._report)
        housekeeper = Housekeeper(
            app=self.app,
            lease_seconds=self.lease_seconds,
            max_attempts=self.max_attempts,
            listen=self.listen,
            wake=self.wake,
            stop=self._stop,
            listening=self.listening,
        )
        self._spawn("housekeeper", housekeeper.run)
        log.info(
            "dispatcher started",
            extra={
                "dispatcher": self.name,
                "channels": _describe(self.channels),
                "email_workers": self.lanes[Channel.EMAIL].concurrency,
                "sms_workers": self.lanes[Channel.SMS].concurrency,
                "call_workers": self.lanes[Channel.CALL].concurrency,
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
        """Run until ``stop`` is set or an exception (a signal's) interrupts the wait; then stop.
        ``start`` is inside the ``try``: a SIGTERM that arrives while the workers are being started
        (they may already be sending) still stops them cleanly."""
        try:
            self.start()
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
                target=Pump(self, lane, drain=True, deadline=deadline, report=report).run,
                name=f"dispatcher-drain-{lane.channel.value}",
            )
            for lane in self.lanes.values()
            if lane.channel in ASYNCHRONOUS
        ] + [
            threading.Thread(
                target=self._work,
                args=(lane, True, deadline, report),
                name=f"dispatcher-drain-{lane.channel.value}-{number + 1}",
            )
            for lane in self.lanes.values()
            if lane.channel not in ASYNCHRONOUS
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
        workers = sum(1 if lane.channel in ASYNCHRONOUS else lane.concurrency for lane in self.lanes.values())
        with self.app.app_context():
            url = db.engine.url
        options = dict(self.app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        if url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:"):
            options.update(pool_size=workers, max_overflow=workers)
        engine = create_engine(url, **options)
        if url.get_backend_name() == "sqlite" and not self.settings.dispatch_synchronous_commit:

            @event.listens_for(engine, "connect")
            def _unflushed_bookkeeping(dbapi_connection, _record):
                # SQLite in WAL mode: the workers' commits are not flushed to disk one by one
                # (see "Durability of the bookkeeping"); a killed process loses none of them.
                dbapi_connection.execute("PRAGMA synchronous = NORMAL")

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
                        discard_session(session)
                        session = None
                        report.count("errors")
                        log.error(
                            "dispatcher worker error",
                            extra={
                                "channel": lane.channel.value,
                                "error": safe_error(error),
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
                discard_session(session)

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

    def outgoing(self, claimed: ClaimedMessage) -> OutgoingEmail | OutgoingSms | OutgoingCall:
        """What the gateway is handed for a claimed message (the worker threads' and the pumps')."""
        if claimed.channel == _EMAIL:
            return OutgoingEmail(
                to=claimed.to_address,
                subject=claimed.subject or "",
                text=claimed.body_text,
                html=claimed.body_html,
                message_id=f"<krisrutin-{claimed.id}@{self._mail_domain}>",
            )
        if claimed.channel == _CALL:
            return OutgoingCall(
                to=claimed.to_address,
                text=claimed.body_text,
                gather_url=voice.gather_url(self._public_base_url, claimed.id),
                status_callback=voice.status_callback_url(self._public_base_url, claimed.id),
            )
        return OutgoingSms(
            to=claimed.to_address, body=claimed.body_text, status_callback=f"{self._status_callback}{claimed.id}"
        )

    def _deliver(self, session, lane: Lane, adapter, claimed: ClaimedMessage, report: DispatchReport) -> str | None:
        """Hand one claimed message to the gateway; returns its id, or None after recording a
        failure (and counting it in ``report``)."""
        outgoing = self.outgoing(claimed)
        try:
            if claimed.channel == _EMAIL:
                return adapter.send_email(outgoing)
            if claimed.channel == _CALL:
                return adapter.place_call(outgoing)
            return adapter.send_sms(outgoing)
        except (TransientFailure, PermanentFailure) as failure:
            outcome = self._failed_send(session, lane, claimed, failure)
        except Exception as error:
            outcome = self._failed(session, lane, claimed, unexpected_adapter_error(claimed, error), transient=True)
        report.count(outcome)
        return None


def _describe(channels) -> object:
    describe = getattr(channels, "describe", None)
    if callable(describe):
        return describe()
    return {"email": channels.email_gateway, "sms": channels.sms_gateway, "call": channels.call_gateway}


def _close(adapter, lane: Lane) -> None:
    try:
        adapter.close()
    except Exception as error:
        log.warning(
            "closing a channel adapter failed", extra={"channel": lane.channel.value, "error": safe_error(error)}
        )
