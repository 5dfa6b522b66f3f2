"""The asynchronous lanes (e-mail and SMS): many requests in flight without a thread for each.

A gateway answers in 100-400 ms. A worker thread that sends one message at a time is idle for
all of it, so four SMS workers against a 200 ms gateway sent 20 SMS a second and a letter to
3,000 contacts took three minutes (issue 18). A :class:`Pump` runs one lane in an asyncio event
loop on a thread of its own:

- a **claimer** claims the lane's most urgent due messages whenever ``DISPATCH_BATCH_SIZE``
  (or a quarter) of the claims it may hold are free -- its window
  (:class:`~notifications.window.Window`) and a quarter more -- up to ``DISPATCH_BATCH_SIZE`` in
  one statement, and starts one send task for each;
- each **send task** waits for the lane's rate limiter (``*_RATE_PER_SECOND``), hands its message
  to the lane's asynchronous adapter (one per lane, with its own pool of connections:
  :mod:`notifications.channels.twilio_sms_async`, :mod:`notifications.channels.smtp_async`, or
  synchronous adapters on a pool of threads: :mod:`notifications.channels.threaded`) and puts the
  outcome in the **recorder**'s queue;
- the **recorder** writes what has come in -- acceptances, given-back claims -- in one
  transaction, again as soon as the previous one is done (a group commit: the faster the
  gateway, the bigger each transaction); failures are written as they come. When fewer than
  ``DISPATCH_BATCH_SIZE`` outcomes have come in, none urgent, and more claims are out, it waits
  up to ``RECORD_LINGER`` (5 ms) for more: a fast lane otherwise wrote about two acceptances per
  transaction, and on PostgreSQL the transactions cost more than the rows (bench.fanout, 10,000
  messages: 6,200 transactions before, 2,800 after; the dispatcher 760-830 messages per second
  instead of 590-865, its ratio to the raw loop 0.79-0.91 instead of 0.67-0.90).

Every database step runs on the lane's one database thread, with its own connection, in the
order they were asked for; the event loop never waits for the database except through it.

The guarantees of :mod:`notifications.dispatcher` hold as they are: a message is claimed with a
lease (``sending``, ``leased_by``, ``attempts + 1``) and the claim is committed before the
message is handed to the gateway; ``sent`` is written after the gateway accepted it, guarded by
the claim; claims not sent (the dispatcher stops, the lane pauses, the drain's deadline, half the
lease used up) are given back with the attempt not counted; urgent first, because claims go by
``(priority, next_attempt_at, id)`` and an urgent message is in the next claim, made as soon as
``DISPATCH_BATCH_SIZE`` of the lane's claims are written back, and then gets the next place in
the window before any bulk claim waiting for one. An urgent acceptance is recorded at once: the
recorder writes whatever has come in as soon as its previous write is done.

**Claims ahead of the window.** A lane holds up to a quarter more claims than its window
(:func:`~notifications.window.claims_ahead`, at least one), waiting for a place
(:meth:`Pump._place_in_window`): when an answer frees one, the next request goes to the gateway
at once, not after the recorder's write and the claimer's next claim. Without them the places
stood idle for that time: against a 200 ms Twilio the SMS lane of 100 held 82 requests in flight
on average and sent 366-375 SMS a second of the 500 its window allows, with them 398-424
(``bench.service_fanout`` at 200/100 ms, 2026-12-06, alternating with and without).

The in-flight window (what may arrive twice after a crash) is the lane's claims not yet written
back: a claim counts from the moment it is made until the message's outcome is committed (or
given back), so a lane never has more than :func:`~notifications.window.most_claims` messages
``sending`` (125 for ``*_CONCURRENCY`` = 100), and never more than ``*_CONCURRENCY`` at the
gateway. Only those handed to the gateway and not yet recorded can arrive twice. Within that
maximum the window follows the gateway: a "too many" halves it, and answers that slow down as
more are in flight (a gateway that queues what it is given) shrink it to about what the gateway
can take without a queue, no lower than 16 (the delay rule of :mod:`notifications.window`; each
acceptance reports its answer time and how many were in flight when it was sent). When the
window shrinks, the claims already made (and requests refused as too many, to be sent again)
wait for a place in it before they go to the gateway (:meth:`Pump._place_in_window`), in claim
order: requests at the gateway never exceed the window in force, not only the claims.

Too many requests. A send refused as "too many" (HTTP 429, Twilio error 20429, SMTP 421: the
adapter's ``TransientFailure`` with ``rate_limited``) halves the window and, for 20 s, holds it
at about what the gateway took (its ceiling: :mod:`notifications.window`), and the message is
sent again by the same task after the gateway's ``Retry-After`` (at most a second; 0.1-0.3 s
when none is given), while the claim is still held: no database write, no attempt used, the
message's place in the queue kept. Such refusals do not count towards the lane's pause (a
circuit breaker for a gateway that fails, not one that is busy); a task that would hold its
claim past half the lease gives it back to the queue instead, not counted. Only a message
refused ``TOO_MANY_IN_A_ROW`` times in a row goes back to the queue through the ordinary retry
(after the ``Retry-After``, or the usual backoff), still without using up an attempt, but
counted against the channel: a gateway that refuses everything as "too many" pauses the lane
and shows as degraded, like one that fails.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import Session

from core.clock import current_clock
from core.errors import error_location
from notifications.bookkeeping import discard_session, safe_error, unexpected_adapter_error
from notifications.channels.base import PermanentFailure, TransientFailure
from notifications.channels.threaded import ThreadedSender
from notifications.lanes import DispatchReport, Lane
from notifications.models import Channel, Priority
from notifications.outbox import ClaimedMessage, SentRecord, claim_batch
from notifications.window import Window, claims_ahead

log = logging.getLogger("notifications.dispatcher")

ERROR_PAUSE = 1.0  # seconds to wait after a database error before claiming again
RETRY_AFTER_CAP = 1.0  # seconds: the longest a task waits before sending a refused request again
TOO_MANY_IN_A_ROW = 5  # "too many" answers to one message before it goes back to the queue
# Seconds the recorder waits for more outcomes when fewer than a batch have come in, none urgent:
# without it a fast lane wrote about two acceptances per transaction (6,200 transactions for
# 10,000 messages on PostgreSQL, bench.fanout).
RECORD_LINGER = 0.005
_EMAIL = Channel.EMAIL.value


class Pump:
    """Runs one asynchronous lane for ``dispatcher`` (see the module docstring); :meth:`run` is a
    thread's target and returns when the dispatcher stops, or in ``drain`` mode when nothing is
    due and nothing is in flight (or at ``deadline``, a ``time.monotonic()`` value)."""

    def __init__(self, dispatcher, lane: Lane, *, drain: bool, deadline: float | None, report: DispatchReport):
        self.dispatcher = dispatcher
        self.lane = lane
        self.drain = drain
        self.deadline = deadline
        self.report = report
        self.window = Window(lane.concurrency)
        # Claims made and not yet written back (sent, failed or given back): never more than the
        # window and the claims ahead of it (capacity()), so that they bound what a crash can
        # make arrive twice.
        self.outstanding = 0
        self.in_flight = 0  # requests the gateway is working on
        self.recording_failures = 0  # failed requests being recorded: they keep their places
        self.most_in_flight = 0
        self.rate_limited = 0  # "too many" answers
        self._accepted: list[SentRecord] = []
        self._write_state = False
        self._release: list[ClaimedMessage] = []
        self._session: Session | None = None
        self._finishing = False

    # -- the thread --------------------------------------------------------------------------------

    def run(self) -> None:
        app = self.dispatcher.app
        self._db_pool = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"dispatcher-{self.lane.channel.value}-db",
            initializer=lambda: app.app_context().push(),
        )
        try:
            with app.app_context():
                while True:
                    try:
                        asyncio.run(self._main())
                        break
                    except Exception as error:
                        # A bug, or an adapter that could not be built: logged, and the lane starts
                        # again shortly (claims it held are written back or left to their leases).
                        self.report.count("errors")
                        log.error(
                            "dispatcher lane failed; starting it again",
                            extra={
                                "channel": self.lane.channel.value,
                                "error": safe_error(error),
                                "where": error_location(error),
                            },
                        )
                        if self.drain or self.dispatcher._stop.wait(ERROR_PAUSE):
                            break
                        self.outstanding = 0  # the claims of the failed run are written back or leased
                        self._finishing = False
        finally:
            self._db_pool.submit(self._close_session).result()
            self._db_pool.shutdown(wait=True)
            log.info(
                "lane stopped",
                extra={
                    "channel": self.lane.channel.value,
                    "most_in_flight": self.most_in_flight,
                    "window": self.window.limit,
                    "window_maximum": self.window.maximum,
                    "too_many_answers": self.rate_limited,
                    "window_decreases": self.window.decreases,
                    "window_base_ms": None if self.window.base is None else round(self.window.base * 1000, 1),
                    "window_probes": self.window.probes,
                },
            )

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._record_wanted = asyncio.Event()
        self._token_queue = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._window_waiters: collections.deque[asyncio.Future] = collections.deque()
        self.lane.add_waker(self._wake_threadsafe)
        self.adapter = None
        recorder = asyncio.create_task(self._recorder())
        try:
            self.adapter = self._adapter()
            await self._claim_loop()
        finally:
            self.lane.remove_waker(self._wake_threadsafe)
            self._stop_tasks()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            # The recorder is never cancelled: a write it has asked for would be dropped before it
            # ran. It is told to finish, and writes what is left.
            self._finishing = True
            self._record_wanted.set()
            await asyncio.gather(recorder, return_exceptions=True)
            if self.adapter is not None:
                try:
                    await self.adapter.aclose()
                except Exception as error:
                    log.warning(
                        "closing a channel adapter failed",
                        extra={"channel": self.lane.channel.value, "error": safe_error(error)},
                    )

    def _adapter(self):
        channels, lane = self.dispatcher.channels, self.lane
        name = "email_async_factory" if lane.channel is Channel.EMAIL else "sms_async_factory"
        factory = getattr(channels, name, None)
        if factory is not None:
            return factory(lane.concurrency)
        return ThreadedSender(
            lane.factory,
            threads=lane.concurrency,
            gateway=lane.gateway,
            app=self.dispatcher.app,
            name=lane.channel.value,
        )

    def _wake_threadsafe(self) -> None:
        """Lane.wake() from any thread: look for due messages now (and stop, if stopping)."""
        self._loop.call_soon_threadsafe(self._woken_now)

    def _woken_now(self) -> None:
        self._woken.set()
        if self.dispatcher._stop.is_set():
            self._stop_tasks()
            self._slot_freed.set()

    def _stop_tasks(self) -> None:
        """Tasks waiting for a token, a place in the window or to send again give their claims back."""
        self._stopping.set()
        self._admit_waiting(everyone=True)

    # -- claiming ----------------------------------------------------------------------------------

    def _over(self) -> bool:
        return (
            self.dispatcher._stop.is_set()
            or self._stopping.is_set()
            or (self.deadline is not None and time.monotonic() >= self.deadline)
        )

    def capacity(self) -> int:
        """Claims the lane may hold now: the window's limit and those ahead of it
        (:func:`~notifications.window.claims_ahead`); on a rate-limited lane no more than it may
        send in about a second, so that held claims do not hold up urgent ones."""
        limit = self.window.limit
        limit += claims_ahead(limit)
        if not self.lane.limiter.unlimited:
            limit = min(limit, max(1, int(self.lane.limiter.rate)))
        return limit

    async def _claim_loop(self) -> None:
        lane = self.lane
        while not self._over():
            if not self.drain and lane.pause_remaining() > 0:
                await self._sleep(min(1.0, lane.pause_remaining()))
                continue
            capacity = self.capacity()
            room = capacity - self.outstanding
            if room < min(self.dispatcher.batch_size, max(1, capacity // 4)):
                self._slot_freed.clear()
                await self._wait(self._slot_freed, 1.0)
                continue
            generation = lane.generation
            self._woken.clear()
            try:
                batch = await self._db(self._claim, min(room, self.dispatcher.batch_size))
            except Exception as error:
                self.report.count("errors")
                log.error(
                    "dispatcher worker error",
                    extra={"channel": lane.channel.value, "error": safe_error(error), "where": error_location(error)},
                )
                if self.drain:
                    return
                await self._sleep(ERROR_PAUSE)
                continue
            if not batch:
                if self.drain:
                    if self.outstanding == 0:
                        return
                    self._slot_freed.clear()
                    await self._wait(self._slot_freed, 0.5)
                    continue
                if lane.generation == generation:
                    await self._wait(self._woken, self.dispatcher.poll_seconds)
                continue
            claimed_at = time.monotonic()
            self.outstanding += len(batch)
            for claimed in batch:
                task = asyncio.create_task(self._send(claimed, claimed_at))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _claim(self, session: Session, limit: int) -> list[ClaimedMessage]:
        return claim_batch(
            session,
            channel=self.lane.channel.value,
            now=current_clock().now(),
            lease_seconds=self.dispatcher.lease_seconds,
            name=self.dispatcher.name,
            limit=limit,
        )

    # -- sending -----------------------------------------------------------------------------------

    async def _send(self, claimed: ClaimedMessage, claimed_at: float) -> None:
        """Send one claimed message (again after a "too many"); its outcome goes to the recorder.
        Every path ends in exactly one write-back (sent, failed, given back), which frees the
        message's place in the window."""
        refusals = 0
        while True:
            if not await self._may_go_on(claimed_at) or not await self._place_in_window(claimed, claimed_at):
                self._release.append(claimed)
                self._record_wanted.set()
                return
            started_in = self.window.round
            self.in_flight += 1
            sent_with = self.in_flight
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            failure: Exception | None = None
            handed_at = self._loop.time()
            try:
                gateway_id = await self._deliver(claimed)
            except Exception as error:
                failure = error
            finally:
                self.in_flight -= 1
                too_many = isinstance(failure, TransientFailure) and failure.rate_limited
                if failure is not None and not too_many:
                    # It keeps its place until the failure is recorded, which may pause the lane
                    # (its circuit breaker): no claim goes to a gateway that has just failed five
                    # times while that is being decided.
                    self.recording_failures += 1
                elif self._window_waiters:
                    # after this step, which updates the window (accepted, slow_down)
                    self._loop.call_soon(self._admit_waiting)
            if too_many:
                self.rate_limited += 1
                self.window.slow_down(started_in, self.in_flight, self._loop.time())
                refusals += 1
                if refusals >= TOO_MANY_IN_A_ROW:
                    # A gateway that refuses everything as "too many" (a relay answering 421 to
                    # every connection, an account throttled for good) is a failing gateway:
                    # queued again, still not counted, but counted against the channel.
                    # (_failed_send gives a rate-limited failure its attempt back.)
                    await self._record_failure(claimed, self.dispatcher._failed_send, failure)
                    return
                wait = failure.retry_after if failure.retry_after is not None else 0.1 + 0.2 * random.random()
                await self._sleep(min(RETRY_AFTER_CAP, wait))
                continue
            if failure is not None:
                try:
                    if isinstance(failure, TransientFailure | PermanentFailure):
                        await self._record_failure(claimed, self.dispatcher._failed_send, failure)
                    else:
                        error = unexpected_adapter_error(claimed, failure)
                        await self._record_failure(claimed, self.dispatcher._failed, error, transient=True)
                finally:
                    self.recording_failures -= 1
                    self._admit_waiting()
                return
            answered_at = self._loop.time()
            self.window.accepted(answered_at - handed_at, answered_at, sent_with)
            gateway = getattr(self.adapter, "gateway", self.lane.gateway)
            self._accepted.append(SentRecord(claimed, gateway, gateway_id))
            self._write_state = self.lane.succeeded() or self._write_state
            self._record_wanted.set()
            return

    async def _may_go_on(self, claimed_at: float) -> bool:
        """Whether to send (after waiting for the rate limiter's token). The tokens go to the tasks
        in the order they asked (an asyncio lock is first come, first served), that is in claim
        order: the most urgent first."""
        if self.lane.limiter.unlimited:
            return self._may_send(claimed_at)
        async with self._token_queue:
            while self._may_send(claimed_at):
                wait = self.lane.limiter.try_acquire()
                if wait == 0.0:
                    return True
                await self._sleep(wait)
            return False

    async def _place_in_window(self, claimed: ClaimedMessage, claimed_at: float) -> bool:
        """Wait until fewer requests are in flight than the window allows now (a failed one keeps
        its place until its failure is recorded, which may pause the lane); False when the claim
        is to be given back instead (:meth:`_may_send`). The claims ahead of the window
        (:func:`~notifications.window.claims_ahead`) wait here for a place; so do, when the window
        shrinks (a "too many", the delay rule, a probe), those already made, and requests refused
        and sent again, instead of going over it. They get places in the order they came (claim
        order), but an urgent message goes before every bulk one waiting (claimed before it, when
        the window was wider); one that waited for the rate limiter's token has used it."""
        first = True
        while self._places_taken() >= self.window.limit:
            if not self._may_send(claimed_at):
                return False
            waiter = self._loop.create_future()
            if first and claimed.priority != Priority.URGENT:
                self._window_waiters.append(waiter)
            else:  # urgent, or woken but the place was gone: at the front
                self._window_waiters.appendleft(waiter)
            first = False
            await waiter
        # Not waited: _may_go_on has just checked _may_send, with no await since.
        return first or self._may_send(claimed_at)

    def _places_taken(self) -> int:
        """Places in the window taken: requests at the gateway, and failed ones being recorded."""
        return self.in_flight + self.recording_failures

    def _admit_waiting(self, everyone: bool = False) -> None:
        """Wake as many waiting requests as the window has free places (all when stopping)."""
        free = len(self._window_waiters) if everyone else self.window.limit - self._places_taken()
        while free > 0 and self._window_waiters:
            waiter = self._window_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def _may_send(self, claimed_at: float) -> bool:
        if self._over():
            return False
        if not self.drain and self.lane.pause_remaining() > 0:
            return False
        # Half the lease used up: back to the queue rather than risk the lease running out.
        return time.monotonic() - claimed_at <= self.dispatcher.lease_seconds / 2

    async def _deliver(self, claimed: ClaimedMessage) -> str:
        outgoing = self.dispatcher.outgoing(claimed)
        if claimed.channel == _EMAIL:
            return await self.adapter.send_email(outgoing)
        return await self.adapter.send_sms(outgoing)

    async def _record_failure(self, claimed: ClaimedMessage, record, failure, **options) -> None:
        """Record a failed attempt (``record`` is Bookkeeping._failed_send or _failed); without a
        database connection the claim is left to its lease, which brings the message back (it
        was not sent)."""
        try:
            outcome = await self._db(record, self.lane, claimed, failure, **options)
        except Exception as db_error:
            self.report.count("errors")
            log.error(
                "recording a failed attempt failed; its lease brings the message back",
                extra={"channel": self.lane.channel.value, "message_id": claimed.id, "error": safe_error(db_error)},
            )
            return
        finally:
            self._written_back(1)
        self.report.count(outcome)

    # -- recording ---------------------------------------------------------------------------------

    async def _recorder(self) -> None:
        """Write what has come in, as soon as the previous write is done (see the module docstring).

        A write that could not even start (no connection to the database: the server restarts
        or is down) keeps its outcomes and is tried again every ``ERROR_PAUSE`` seconds, for up
        to half the lease since the first failure -- as :meth:`Bookkeeping._write` does for a
        write that fails midway: a lost ``sent`` record means the message is sent again once
        its lease runs out. After that they are left to their leases."""
        failing_since: float | None = None
        while True:
            await self._record_wanted.wait()
            await self._linger()
            self._record_wanted.clear()
            try:
                await self._record()
                failing_since = None
            except Exception as error:
                failing_since = failing_since or time.monotonic()
                given_up = time.monotonic() - failing_since > self.dispatcher.lease_seconds / 2
                log.error(
                    "recording outcomes failed; trying again" if not given_up else "recording outcomes failed",
                    extra={"channel": self.lane.channel.value, "error": safe_error(error)},
                )
                if given_up:
                    self._give_up_recording()
                    failing_since = None
                else:
                    await asyncio.sleep(ERROR_PAUSE)
                    self._record_wanted.set()
                    continue
            if self._finishing and not (self._accepted or self._release):
                return

    async def _linger(self) -> None:
        """Wait up to ``RECORD_LINGER`` for more outcomes while :meth:`_may_linger` (each outcome
        that comes in wakes the recorder to look again)."""
        deadline = self._loop.time() + RECORD_LINGER
        while self._may_linger():
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return
            self._record_wanted.clear()
            timer = self._loop.call_later(remaining, self._record_wanted.set)
            try:
                await self._record_wanted.wait()
            finally:
                timer.cancel()

    def _may_linger(self) -> bool:
        """Whether the recorder waits ``RECORD_LINGER`` for more outcomes before it writes: when
        fewer than ``DISPATCH_BATCH_SIZE`` have come in and more may still come (claims are out
        whose outcomes have not), none of them urgent, and the lane is not finishing."""
        waiting = len(self._accepted) + len(self._release)
        if self._finishing or waiting >= min(self.dispatcher.batch_size, self.outstanding):
            return False
        return not any(record.claimed.priority == Priority.URGENT for record in self._accepted)

    async def _record(self) -> None:
        """Write the acceptances and given-back claims that have come in; on an error, those not
        written stay for the next try."""
        accepted, self._accepted = self._accepted, []
        write_state, self._write_state = self._write_state, False
        if accepted:
            try:
                await self._db(self.dispatcher._record_sent, self.lane, accepted, write_state, self.report)
            except BaseException:
                self._accepted[:0] = accepted
                self._write_state = self._write_state or write_state
                raise
            self._written_back(len(accepted))
        released, self._release = self._release, []
        if released:
            try:
                await self._db(self.dispatcher._release, self.lane, released)
            except BaseException:
                self._release[:0] = released
                raise
            self._written_back(len(released))

    def _give_up_recording(self) -> None:
        accepted, self._accepted = self._accepted, []
        released, self._release = self._release, []
        log.error(
            "outcomes not recorded; their leases bring the messages back (those sent may be sent twice)",
            extra={
                "channel": self.lane.channel.value,
                "sent_ids": [record.claimed.id for record in accepted],
                "released_ids": [claim.id for claim in released],
            },
        )
        self._written_back(len(accepted) + len(released))

    def _written_back(self, count: int) -> None:
        """``count`` claims are written back (or, if that failed, left to their leases): their
        places in the window are free."""
        if count:
            self.outstanding -= count
            self._slot_freed.set()

    # -- the database thread and waiting -----------------------------------------------------------

    async def _db(self, step, *args, **kwargs):
        """``step(session, *args, **kwargs)`` on the lane's database thread."""
        return await self._loop.run_in_executor(self._db_pool, self._in_session, step, args, kwargs)

    def _in_session(self, step, args, kwargs):
        if self._session is None:
            self._session = Session(bind=self.dispatcher._engine.connect())
        try:
            return step(self._session, *args, **kwargs)
        except BaseException:
            self._close_session()  # a fresh connection for the next step
            raise

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            discard_session(session)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but not past stopping or the deadline."""
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        await self._wait(self._stopping, seconds)

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
