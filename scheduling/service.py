"""Durable due work: schedule it, and at every tick run what is due, exactly once.

What is due lives in the ``scheduled_tasks`` table (``due_at``, ``status``, ``attempts``), not in
a scheduler's memory. APScheduler (``flask scheduler run``) is only a clock that calls
:func:`tick` every ``SCHEDULER_INTERVAL_SECONDS``; ``flask tick`` does the same once, by hand.

Why no task runs twice
    A worker takes one due row at a time and finishes it in a single database transaction:

    1. It selects the oldest pending row with ``due_at <= now``. On PostgreSQL the select is
       ``FOR UPDATE SKIP LOCKED``: the row stays locked until the transaction ends, and a second
       worker skips it and takes the next row instead of waiting.
    2. It marks the row done with a compare-and-set,
       ``UPDATE scheduled_tasks SET status='done', attempts=attempts+1 WHERE id=:id AND
       status='pending'``, and goes on only if exactly one row changed. On SQLite, which has one
       writer at a time, this UPDATE takes the database's write lock and is the claim itself: a
       second worker waits for the lock and then finds the row no longer pending.
    3. It runs the task's handler, whose writes go into a savepoint of that same transaction, and
       commits. The handler's effect and ``status='done'`` become visible together or not at all.

    A crash, a lost connection or a failed commit therefore leaves the row pending and without
    effect, and a later tick runs it again. A handler that raises is rolled back to the
    savepoint and, still in the same transaction (the row never unlocked), the row goes back to
    pending with a later ``due_at`` (backoff), or to failed after too many attempts. Handlers
    must not commit themselves (that is refused). So any number of ticks at once are harmless: a
    second scheduler process, ``flask tick`` by hand while the scheduler runs, or a restart in
    the middle of a tick.

Why downtime is caught up
    A tick runs every pending task with ``due_at <= now``, however long ago that was, oldest
    first. Nothing depends on the clock firing at the right moment (APScheduler's missed-job
    rules never apply: its only job is the tick, which runs at once when the scheduler starts).
    Planners run at every tick and create their tasks idempotently (``INSERT ... ON CONFLICT DO
    NOTHING`` on ``(kind, key)``), so a task whose moment passed while the service was down is
    created and run at the first tick afterwards.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session

from core.database import dialect_insert
from core.errors import describe_error, error_location
from core.metrics import REGISTRY
from scheduling.models import ScheduledTask, SchedulerHeartbeat, TaskStatus
from scheduling.registry import Registry, default_registry

log = logging.getLogger(__name__)

TASKS = Counter(
    "krisrutin_scheduled_tasks_total",
    "Attempts at scheduled tasks, by kind and outcome (done, retry, failed)",
    ["kind", "outcome"],
    registry=REGISTRY,
)
PLANNER_FAILURES = Counter(
    "krisrutin_scheduler_planner_failures_total", "Planners that raised during a tick", ["planner"], registry=REGISTRY
)
LAST_TICK = Gauge(
    "krisrutin_scheduler_last_tick_timestamp_seconds",
    "The instant (Unix time) of the last completed tick in this process",
    registry=REGISTRY,
    multiprocess_mode="max",
)

# Waits before the 2nd, 3rd, ... attempt; the last one repeats. Eight attempts span about 22 hours.
BACKOFF = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720))
TASKS_PER_ROUND = 100
MAX_ROUNDS = 50  # at most 5,000 tasks per tick; the rest waits for the next tick
_TABLE = ScheduledTask.__table__
_CREATED = "scheduling.created"  # session.info: tasks inserted by schedule()
_HANDLER_SAVEPOINT = "scheduling.handler_savepoint"  # session.info: set while a handler runs


class HandlerMisuse(RuntimeError):
    """A task handler tried to commit the transaction that also marks its task done."""


@dataclass
class TickReport:
    """What one tick (or one :func:`run_due`) did; printed by ``flask tick`` as one JSON line."""

    at: datetime
    planned: int = 0  # tasks created by planners
    planner_errors: list[str] = field(default_factory=list)  # names of planners that raised
    ran: int = 0  # tasks done
    retried: int = 0  # attempts that failed and were rescheduled
    failed: int = 0  # tasks given up: too many attempts, or no handler for the kind
    more_due: bool = False  # stopped at the limit with due tasks left

    def add(self, other: TickReport) -> None:
        self.planned += other.planned
        self.planner_errors += other.planner_errors
        self.ran += other.ran
        self.retried += other.retried
        self.failed += other.failed
        self.more_due = other.more_due

    def as_dict(self) -> dict:
        return {**asdict(self), "at": self.at.isoformat()}


def schedule(
    *, db_session: Session, kind: str, key: str, due_at: datetime, payload: dict | None = None, now: datetime
) -> ScheduledTask:
    """Create the task ``(kind, key)`` due at ``due_at``, unless it exists: then return the
    existing row unchanged (whatever its due_at, payload or status). Does not commit."""
    if not kind or len(kind) > 100:
        raise ValueError("kind must be 1 to 100 characters")
    if not key or len(key) > 200:
        raise ValueError("key must be 1 to 200 characters")
    statement = (
        dialect_insert(db_session, _TABLE)
        .values(
            kind=kind,
            key=key,
            payload=payload or {},
            due_at=due_at,
            status=TaskStatus.PENDING.value,
            attempts=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["kind", "key"])
        .returning(_TABLE.c.id)  # a row only when inserted (rowcount is -1 on psycopg here)
    )
    if db_session.execute(statement).scalar() is not None:
        db_session.info[_CREATED] = db_session.info.get(_CREATED, 0) + 1
    query = select(ScheduledTask).where(ScheduledTask.kind == kind, ScheduledTask.key == key)
    return db_session.scalars(query.execution_options(populate_existing=True)).one()


def cancel(*, db_session: Session, kind: str, key: str, now: datetime) -> bool:
    """Cancel the pending task ``(kind, key)``; False if there is none (done, failed, running
    elsewhere right now, or never scheduled). Does not commit."""
    return _end_pending(db_session, kind, key, now, TaskStatus.CANCELLED)


def finish(*, db_session: Session, kind: str, key: str, now: datetime) -> bool:
    """Mark the pending task ``(kind, key)`` done: its work has been done another way (a request
    that did it after its answer, :mod:`core.after_response`). False if it is not pending (done,
    failed, cancelled, running elsewhere right now, or never scheduled). Does not commit."""
    return _end_pending(db_session, kind, key, now, TaskStatus.DONE)


def _end_pending(db_session: Session, kind: str, key: str, now: datetime, status: TaskStatus) -> bool:
    result = db_session.execute(
        update(_TABLE)
        .where(_TABLE.c.kind == kind, _TABLE.c.key == key, _TABLE.c.status == TaskStatus.PENDING.value)
        .values(status=status.value, finished_at=now)
    )
    return result.rowcount == 1


def get_task(*, db_session: Session, kind: str, key: str) -> ScheduledTask | None:
    return db_session.scalars(select(ScheduledTask).where(ScheduledTask.kind == kind, ScheduledTask.key == key)).first()


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1]


def run_due(
    *, db_session: Session, now: datetime, registry: Registry | None = None, limit: int = TASKS_PER_ROUND
) -> TickReport:
    """Run up to ``limit`` due tasks, oldest first, each in its own transaction (see the module
    docstring). Commits. Database errors outside handlers (e.g. a lost connection) propagate."""
    registry = registry or default_registry
    report = TickReport(at=now)
    for _ in range(limit):
        try:
            task_id = _claim_next(db_session, now)
            if task_id is None:
                db_session.rollback()  # ends the read; nothing is due
                return report
            if task_id is _LOST:
                db_session.rollback()  # another worker took it: go on with the next
                continue
            outcome = _run_claimed(db_session, task_id, now, registry)
        except BaseException:
            db_session.rollback()
            raise
        if outcome == "done":
            report.ran += 1
        elif outcome == "retry":
            report.retried += 1
        else:
            report.failed += 1
    report.more_due = True
    return report


def tick(
    *,
    db_session: Session,
    now: datetime,
    registry: Registry | None = None,
    scheduler_name: str | None = None,
    max_rounds: int = MAX_ROUNDS,
) -> TickReport:
    """Run every planner (each in its own transaction), then every due task, then record the
    heartbeat of ``scheduler_name``. Running it twice at the same ``now`` does the work once."""
    registry = registry or default_registry
    report = TickReport(at=now)
    _run_planners(db_session, now, registry, report)
    for _ in range(max_rounds):
        done = run_due(db_session=db_session, now=now, registry=registry)
        report.add(done)
        if not done.more_due:
            break
    if report.more_due:
        log.warning("tick stopped with due tasks left; the next tick goes on", extra={"ran": report.ran})
    if scheduler_name is not None:
        _record_heartbeat(db_session, scheduler_name, now)
    LAST_TICK.set(now.timestamp())
    if report.planned or report.ran or report.retried or report.failed or report.planner_errors:
        log.info("tick", extra=report.as_dict())
    return report


def status_summary(*, db_session: Session, now: datetime) -> dict:
    """Counts by status, what is due and how late, and every scheduler's last tick (operators)."""
    counts = {status.value: 0 for status in TaskStatus}
    counts.update(db_session.execute(select(_TABLE.c.status, func.count()).group_by(_TABLE.c.status)).all())
    overdue = (_TABLE.c.status == TaskStatus.PENDING.value, _TABLE.c.due_at <= now)
    due = db_session.execute(select(func.count()).where(*overdue)).scalar_one()
    oldest = db_session.scalars(select(ScheduledTask.due_at).where(*overdue).order_by(ScheduledTask.due_at)).first()
    failed_kinds = db_session.execute(
        select(_TABLE.c.kind, func.count()).where(_TABLE.c.status == TaskStatus.FAILED.value).group_by(_TABLE.c.kind)
    ).all()
    beats = db_session.scalars(select(SchedulerHeartbeat).order_by(SchedulerHeartbeat.last_tick_at.desc())).all()
    db_session.rollback()
    return {
        "at": now.isoformat(),
        "tasks": counts,
        "due": due,
        "oldest_due_at": oldest.isoformat() if oldest else None,
        "failed_by_kind": dict(failed_kinds),
        "schedulers": [
            {"name": beat.name, "last_tick_at": beat.last_tick_at.isoformat(), "ticks": beat.ticks} for beat in beats
        ],
    }


# --- the steps of a tick ---------------------------------------------------------------------

_LOST = object()


def _claim_next(db_session: Session, now: datetime):
    """The id of the next due task, now marked done in the open transaction; None when nothing
    is due; ``_LOST`` when another worker claimed it first."""
    candidate = db_session.execute(
        select(_TABLE.c.id)
        .where(_TABLE.c.status == TaskStatus.PENDING.value, _TABLE.c.due_at <= now)
        .order_by(_TABLE.c.due_at, _TABLE.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders no FOR UPDATE
    ).scalar()
    if candidate is None:
        return None
    claimed = db_session.execute(
        update(_TABLE)
        .where(_TABLE.c.id == candidate, _TABLE.c.status == TaskStatus.PENDING.value)
        .values(status=TaskStatus.DONE.value, attempts=_TABLE.c.attempts + 1, finished_at=now)
    )
    return candidate if claimed.rowcount == 1 else _LOST


def _run_claimed(db_session: Session, task_id: int, now: datetime, registry: Registry) -> str:
    """Run the handler of a claimed task and commit; returns the outcome: done, retry or failed."""
    task = db_session.get(ScheduledTask, task_id, populate_existing=True)
    kind, attempt = task.kind, task.attempts
    handler = registry.handler_for(kind)
    if handler is None:
        error = f"no handler is registered for kind {kind!r}"
        _finish_failed_attempt(db_session, task_id, now, error, attempts=attempt, give_up=True)
        db_session.commit()
        TASKS.labels(kind, "failed").inc()
        log.error("scheduled task failed", extra={"task_id": task_id, "kind": kind, "error": error})
        return "failed"
    try:
        with db_session.begin_nested() as savepoint:
            db_session.info[_HANDLER_SAVEPOINT] = savepoint
            try:
                handler.fn(db_session, task, now)
            finally:
                db_session.info.pop(_HANDLER_SAVEPOINT, None)
    except Exception as error:  # recorded on the row, logged and counted below
        give_up = attempt >= handler.max_attempts
        description = describe_error(error)
        _finish_failed_attempt(db_session, task_id, now, description, attempts=attempt, give_up=give_up)
        db_session.commit()
        details = {
            "task_id": task_id,
            "kind": kind,
            "attempts": attempt,
            "error": description,
            "where": error_location(error),
        }
        if give_up:
            TASKS.labels(kind, "failed").inc()
            log.error("scheduled task failed after its last attempt", extra=details)
            return "failed"
        TASKS.labels(kind, "retry").inc()
        log.warning("scheduled task attempt failed; will retry", extra={**details, "retry_in": str(backoff(attempt))})
        return "retry"
    db_session.commit()
    TASKS.labels(kind, "done").inc()
    log.info("scheduled task done", extra={"task_id": task_id, "kind": kind, "attempts": attempt})
    return "done"


def _finish_failed_attempt(
    db_session: Session, task_id: int, now: datetime, error: str, *, attempts: int, give_up: bool
) -> None:
    """Undo the claim's 'done' (the attempt still counts): back to pending later, or failed."""
    if give_up:
        values = {"status": TaskStatus.FAILED.value, "finished_at": now}
    else:
        values = {"status": TaskStatus.PENDING.value, "finished_at": None, "due_at": now + backoff(attempts)}
    db_session.execute(update(_TABLE).where(_TABLE.c.id == task_id).values(last_error=error, **values))


def _run_planners(db_session: Session, now: datetime, registry: Registry, report: TickReport) -> None:
    for name, plan in registry.planners():
        db_session.info[_CREATED] = 0
        try:
            plan(db_session, now)
            db_session.commit()
        except Exception as error:  # reported, logged and counted; the other planners still run
            db_session.rollback()
            report.planner_errors.append(name)
            PLANNER_FAILURES.labels(name).inc()
            log.error(
                "planner failed",
                extra={"planner": name, "error": describe_error(error), "where": error_location(error)},
            )
        else:
            report.planned += db_session.info.get(_CREATED, 0)
        finally:
            db_session.info.pop(_CREATED, None)


def _record_heartbeat(db_session: Session, name: str, now: datetime) -> None:
    table = SchedulerHeartbeat.__table__
    statement = dialect_insert(db_session, table).values(name=name[:100], last_tick_at=now, ticks=1)
    statement = statement.on_conflict_do_update(
        index_elements=["name"], set_={"last_tick_at": statement.excluded.last_tick_at, "ticks": table.c.ticks + 1}
    )
    try:
        db_session.execute(statement)
        db_session.commit()
    except BaseException:
        db_session.rollback()
        raise


@event.listens_for(Session, "before_commit")
def _refuse_commit_inside_handler(session: Session) -> None:
    # A handler's commit would make 'done' and part of its effect permanent before it finished.
    savepoint = session.info.get(_HANDLER_SAVEPOINT)
    if savepoint is not None and session.get_nested_transaction() is savepoint:
        raise HandlerMisuse("a task handler must not commit: its task is marked done in the same transaction")
