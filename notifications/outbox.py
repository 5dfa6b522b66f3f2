"""The outbox's database steps, shared by every dispatcher: claim, record, reclaim, channel state.

Each step is one short transaction, or part of the caller's. Why this makes sending exactly-once
up to the in-flight window is explained in :mod:`notifications.dispatcher`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Integer, bindparam, case, func, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from core.database import dialect_insert
from core.types import UTCDateTime
from notifications.models import ChannelState, Message, MessageEvent, MessageStatus
from notifications.service import add_event

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=10)  # the wait after the first failed attempt; doubles each time
RETRY_CAP = timedelta(hours=1)
DEGRADED_AFTER = 5  # consecutive failures of a channel (all dispatchers) before it is shown as degraded
_MESSAGES = Message.__table__
_STATES = ChannelState.__table__
_EVENTS = MessageEvent.__table__


def retry_delay(attempts: int, *, retry_after: float | None = None, jitter: Callable[[], float] = random.random):
    """The wait after the ``attempts``-th failed attempt: 10 s doubling up to 1 h, each with
    "equal jitter" (between half and all of it) so that messages failed together spread out;
    never shorter than the gateway's ``retry_after``."""
    base = min(RETRY_CAP, RETRY_BASE * 2 ** max(0, attempts - 1))
    delay = base * (0.5 + 0.5 * jitter())
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


@dataclass(frozen=True)
class ClaimedMessage:
    """What a worker needs to send one claimed message (read in the claiming statement)."""

    id: int
    kind: str
    channel: str
    priority: int
    contact_id: int | None
    to_address: str
    subject: str | None
    body_text: str
    body_html: str | None
    attempts: int
    created_at: datetime
    next_attempt_at: datetime


@dataclass(frozen=True)
class SentRecord:
    """A gateway's acceptance of one claimed message, to be recorded by :func:`record_sent_batch`."""

    claimed: ClaimedMessage
    gateway: str
    gateway_id: str


# --- the database steps ------------------------------------------------------------------------


def _build_sqlite_claim():
    """SQLite's claiming statement, built once (parameters: channel, now, lease_until, name,
    limit): the ``limit`` most urgent due messages of a channel in one statement (SQLite runs the
    uncorrelated ``IN`` subquery once and the UPDATE holds the write lock). RETURNING gives the
    rows in no particular order: :func:`claim_batch` sorts them. PostgreSQL: ``_PG_CLAIM``."""
    now = bindparam("p_now", type_=UTCDateTime())
    candidates = (
        select(_MESSAGES.c.id)
        .where(
            _MESSAGES.c.status == MessageStatus.QUEUED.value,
            _MESSAGES.c.channel == bindparam("p_channel"),
            _MESSAGES.c.next_attempt_at <= now,
        )
        .order_by(_MESSAGES.c.priority, _MESSAGES.c.next_attempt_at, _MESSAGES.c.id)
        .limit(bindparam("p_limit", type_=Integer()))
    )
    return (
        update(_MESSAGES)
        .where(_MESSAGES.c.id.in_(candidates), _MESSAGES.c.status == MessageStatus.QUEUED.value)
        .values(
            status=MessageStatus.SENDING.value,
            attempts=_MESSAGES.c.attempts + 1,
            lease_until=bindparam("p_lease_until", type_=UTCDateTime()),
            leased_by=bindparam("p_name"),
            updated_at=now,
        )
        .returning(*(_MESSAGES.c[f] for f in ClaimedMessage.__dataclass_fields__))
    )


def _guarded(statement):
    """``statement`` limited to the row of one claim: this message, this dispatcher, this attempt."""
    return statement.where(
        _MESSAGES.c.id == bindparam("p_id"),
        _MESSAGES.c.leased_by == bindparam("p_name"),
        _MESSAGES.c.attempts == bindparam("p_attempts"),
    )


# Built once: each worker runs these for every message, and building a statement costs more
# than running it.
_SQLITE_CLAIM = _build_sqlite_claim()
_RECORD_SENT = _guarded(update(_MESSAGES)).values(
    # A delivery callback may have overtaken us (it then set a later status): keep that status.
    status=case(
        (_MESSAGES.c.status == MessageStatus.SENDING.value, MessageStatus.SENT.value),
        else_=_MESSAGES.c.status,
    ),
    gateway=bindparam("p_gateway"),
    gateway_id=bindparam("p_gateway_id"),
    sent_at=bindparam("p_now", type_=UTCDateTime()),
    lease_until=None,
    leased_by=None,
    last_error=None,
    updated_at=bindparam("p_now", type_=UTCDateTime()),
)

_RELEASE = (
    _guarded(update(_MESSAGES))
    .where(_MESSAGES.c.status == MessageStatus.SENDING.value)
    .values(
        status=MessageStatus.QUEUED.value,
        attempts=_MESSAGES.c.attempts - 1,
        lease_until=None,
        leased_by=None,
        updated_at=bindparam("p_now", type_=UTCDateTime()),
    )
)
_EVENTS_INSERT = insert(_EVENTS)


# --- PostgreSQL: the two steps of every message as one statement each ---------------------------
#
# On PostgreSQL the claim and the record of a batch's acceptances are one statement each: the
# update and its events in data-modifying CTEs. A dispatcher worker owns its connection
# (``Session(bind=connection)``); between its transactions that connection is idle, and the
# statement then runs in autocommit -- one round trip instead of BEGIN, two statements and COMMIT.
# Any other session (an engine-bound one, or one already in a transaction) runs the same statement
# in its transaction. A statement is atomic on its own, so what is claimed or recorded, and the
# guard on the claim's holder, are the same either way, and the same as SQLite's statements below.
#
# The candidates are read by ``id = ANY(ARRAY(subquery))``, which runs the subquery once (an
# InitPlan). With ``id IN (subquery)`` the planner may choose a nested loop that runs the subquery
# again for each row; ``SKIP LOCKED`` then skips the rows this very statement has just updated,
# and one claim takes far more than ``limit`` rows.

_FIELDS = ", ".join(ClaimedMessage.__dataclass_fields__)
_PG_CLAIM = f"""
WITH chosen AS (
    UPDATE messages
    SET status = '{MessageStatus.SENDING.value}', attempts = attempts + 1, lease_until = %(lease_until)s,
        leased_by = %(name)s, updated_at = %(now)s
    WHERE id = ANY(ARRAY(
        SELECT id FROM messages
        WHERE status = '{MessageStatus.QUEUED.value}' AND channel = %(channel)s AND next_attempt_at <= %(now)s
        ORDER BY priority, next_attempt_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )) AND status = '{MessageStatus.QUEUED.value}'
    RETURNING {_FIELDS}
), events AS (
    INSERT INTO message_events (message_id, at, status, detail)
    SELECT id, %(now)s, '{MessageStatus.SENDING.value}', 'attempt ' || attempts || ' by ' || %(name)s FROM chosen
)
SELECT {_FIELDS} FROM chosen
"""  # noqa: S608 (only constants are formatted in; values are bound)
_PG_RECORD_SENT = f"""
WITH accepted AS (
    SELECT * FROM unnest(%(ids)s::integer[], %(attempts)s::integer[], %(gateways)s::text[], %(gateway_ids)s::text[])
        AS a(id, attempts, gateway, gateway_id)
), recorded AS (
    UPDATE messages AS m
    SET status = CASE WHEN m.status = '{MessageStatus.SENDING.value}' THEN '{MessageStatus.SENT.value}'
                      ELSE m.status END,
        gateway = a.gateway, gateway_id = a.gateway_id, sent_at = %(now)s, lease_until = NULL,
        leased_by = NULL, last_error = NULL, updated_at = %(now)s
    FROM accepted AS a
    WHERE m.id = a.id AND m.leased_by = %(name)s AND m.attempts = a.attempts
    RETURNING m.id, a.gateway
), events AS (
    INSERT INTO message_events (message_id, at, status, detail)
    SELECT id, %(now)s, '{MessageStatus.SENT.value}', 'accepted by ' || gateway FROM recorded
)
SELECT id FROM recorded
"""  # noqa: S608 (only constants are formatted in; values are bound)


def _idle_postgres_connection(db_session: Session) -> Connection | None:
    """The connection of a session bound to its own, idle PostgreSQL connection, or None."""
    bind = db_session.get_bind()
    if not isinstance(bind, Connection) or bind.dialect.name != "postgresql":
        return None
    if db_session.in_transaction() or bind.in_transaction():
        return None
    return bind


def _autocommit(bind: Connection, sql: str, params: dict) -> list[tuple]:
    """Run one statement in autocommit on ``bind``'s psycopg connection. A connection that broke
    (the server restarted) is invalidated, so that the caller's next try gets a fresh one."""
    raw = bind.connection.driver_connection
    try:
        raw.autocommit = True
        try:
            return raw.execute(sql, params).fetchall()
        finally:
            if not raw.broken and not raw.closed:
                raw.autocommit = False
    except Exception:
        if raw.broken or raw.closed:
            bind.invalidate()
        raise


def _on_postgres(db_session: Session, sql: str, params: dict) -> list[tuple] | None:
    """Run one of the statements above on PostgreSQL (see there); None on another database."""
    bind = _idle_postgres_connection(db_session)
    if bind is not None:
        return _autocommit(bind, sql, params)
    if db_session.get_bind().dialect.name != "postgresql":
        return None
    return db_session.connection().exec_driver_sql(sql, params).all()


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def claim_batch(
    db_session: Session, *, channel: str, now: datetime, lease_seconds: float, name: str, limit: int
) -> list[ClaimedMessage]:
    """Claim the ``limit`` most urgent due messages of ``channel`` and commit: one statement,
    one insert of their ``sending`` events, one commit. Returns them in claim order (most
    urgent first); empty when none is due."""
    lease_until = now + timedelta(seconds=lease_seconds)
    params = {"channel": channel, "now": now, "lease_until": lease_until, "name": name, "limit": limit}
    rows = _on_postgres(db_session, _PG_CLAIM, params)
    if rows is not None:
        db_session.commit()  # the session's transaction, if the statement ran in one
        claimed = [ClaimedMessage(*row[:10], _utc(row[10]), _utc(row[11])) for row in rows]
        return sorted(claimed, key=_claim_order)
    rows = db_session.execute(
        _SQLITE_CLAIM,
        {"p_channel": channel, "p_now": now, "p_lease_until": lease_until, "p_name": name, "p_limit": limit},
    ).all()
    if not rows:
        db_session.rollback()
        return []
    claimed = sorted((ClaimedMessage(*row) for row in rows), key=_claim_order)
    db_session.execute(
        _EVENTS_INSERT,
        [
            {
                "message_id": message.id,
                "at": now,
                "status": MessageStatus.SENDING.value,
                "detail": f"attempt {message.attempts} by {name}",
            }
            for message in claimed
        ],
    )
    db_session.commit()
    return claimed


def claim_next(
    db_session: Session, *, channel: str, now: datetime, lease_seconds: float, name: str
) -> ClaimedMessage | None:
    """Claim the most urgent due message of ``channel`` and commit; None when none is due."""
    claimed = claim_batch(db_session, channel=channel, now=now, lease_seconds=lease_seconds, name=name, limit=1)
    return claimed[0] if claimed else None


def _claim_order(message: ClaimedMessage) -> tuple:
    return (message.priority, message.next_attempt_at, message.id)


def _claim_guard(claimed: ClaimedMessage, name: str):
    return (_MESSAGES.c.id == claimed.id, _MESSAGES.c.leased_by == name, _MESSAGES.c.attempts == claimed.attempts)


def record_sent(
    db_session: Session, claimed: ClaimedMessage, *, name: str, gateway: str, gateway_id: str, now: datetime
) -> bool:
    """The gateway accepted the message: ``sent`` with its id. False if the claim was lost (the
    lease expired and another dispatcher took it). Does not commit."""
    result = db_session.execute(
        _RECORD_SENT,
        {
            "p_id": claimed.id,
            "p_name": name,
            "p_attempts": claimed.attempts,
            "p_gateway": gateway,
            "p_gateway_id": gateway_id[:200],
            "p_now": now,
        },
    )
    if result.rowcount != 1:
        return False
    add_event(db_session, claimed.id, MessageStatus.SENT.value, now, detail=f"accepted by {gateway}")
    return True


def record_sent_batch(db_session: Session, sends: list[SentRecord], *, name: str, now: datetime) -> list[int]:
    """Several acceptances at once (a worker's batch): one guarded update per message, run as one
    executemany, and one insert of their ``sent`` events (PostgreSQL: one statement). Returns the
    ids whose claim was lost (the lease expired and another dispatcher took the message): nothing
    is written for those. Does not commit, except that on a dispatcher worker's idle PostgreSQL
    connection the one statement commits by itself."""
    if not sends:
        return []
    params = {
        "ids": [send.claimed.id for send in sends],
        "attempts": [send.claimed.attempts for send in sends],
        "gateways": [send.gateway for send in sends],
        "gateway_ids": [send.gateway_id[:200] for send in sends],
        "name": name,
        "now": now,
    }
    rows = _on_postgres(db_session, _PG_RECORD_SENT, params)
    if rows is not None:
        return sorted({send.claimed.id for send in sends} - {row[0] for row in rows})
    result = db_session.execute(
        _RECORD_SENT,
        [
            {
                "p_id": send.claimed.id,
                "p_name": name,
                "p_attempts": send.claimed.attempts,
                "p_gateway": send.gateway,
                "p_gateway_id": send.gateway_id[:200],
                "p_now": now,
            }
            for send in sends
        ],
    )
    lost: list[int] = []
    if result.rowcount != len(sends):
        # Which were not ours: a row we updated now carries the gateway id we wrote.
        ours = {send.claimed.id: send.gateway_id[:200] for send in sends}
        stored = db_session.execute(
            select(_MESSAGES.c.id, _MESSAGES.c.gateway_id).where(_MESSAGES.c.id.in_(list(ours)))
        ).all()
        written = {row.id for row in stored if row.gateway_id == ours[row.id]}
        lost = sorted(set(ours) - written)
    kept = [send for send in sends if send.claimed.id not in lost] if lost else sends
    if kept:
        db_session.execute(
            _EVENTS_INSERT,
            [
                {
                    "message_id": send.claimed.id,
                    "at": now,
                    "status": MessageStatus.SENT.value,
                    "detail": f"accepted by {send.gateway}",
                }
                for send in kept
            ],
        )
    return lost


def release(db_session: Session, claims: list[ClaimedMessage], *, name: str, now: datetime) -> list[int]:
    """Give back claims that were not sent (the dispatcher is stopping, or its lane paused):
    ``queued`` again, due as before, with the attempt not counted. Each is guarded like every
    write of a claim (a claim lost meanwhile is left alone); commits. Returns the ids given back."""
    released = []
    for claim in claims:  # a rare path: one statement each, so that each outcome is known
        result = db_session.execute(
            _RELEASE, {"p_id": claim.id, "p_name": name, "p_attempts": claim.attempts, "p_now": now}
        )
        if result.rowcount == 1:
            released.append(claim.id)
    if released:
        db_session.execute(
            _EVENTS_INSERT,
            [
                {
                    "message_id": message_id,
                    "at": now,
                    "status": MessageStatus.QUEUED.value,
                    "detail": f"claim released unsent by {name}",
                }
                for message_id in released
            ],
        )
    db_session.commit()
    return released


def record_failure(
    db_session: Session,
    claimed: ClaimedMessage,
    *,
    name: str,
    error: str,
    now: datetime,
    retry_at: datetime | None,
    counted: bool = True,
) -> bool:
    """A failed attempt: back to ``queued`` until ``retry_at``, or ``failed`` when ``retry_at``
    is None. ``counted=False`` (a rate limit) takes the attempt back. False if the claim was
    lost. Does not commit."""
    if retry_at is not None:
        values = {"status": MessageStatus.QUEUED.value, "next_attempt_at": retry_at}
        event, detail = "retry", f"attempt {claimed.attempts} failed: {error}"
        if not counted:
            values["attempts"] = claimed.attempts - 1
            detail = f"attempt {claimed.attempts} not counted: {error}"
    else:
        values = {"status": MessageStatus.FAILED.value, "failed_at": now}
        event, detail = MessageStatus.FAILED.value, f"attempt {claimed.attempts} failed: {error}"
    result = db_session.execute(
        update(_MESSAGES)
        .where(*_claim_guard(claimed, name))
        .values(lease_until=None, leased_by=None, last_error=error[:500], updated_at=now, **values)
    )
    if result.rowcount != 1:
        return False
    add_event(db_session, claimed.id, event, now, detail=detail[:500])
    return True


def reclaim_expired(db_session: Session, *, now: datetime, max_attempts: int) -> int:
    """Put messages whose lease has expired (their dispatcher died or hung) back in the queue, or
    fail them after the last attempt; commits. Returns how many went back to the queue."""
    expired = (_MESSAGES.c.status == MessageStatus.SENDING.value, _MESSAGES.c.lease_until < now)
    requeued = db_session.execute(
        update(_MESSAGES)
        .where(*expired, _MESSAGES.c.attempts < max_attempts)
        .values(status=MessageStatus.QUEUED.value, lease_until=None, leased_by=None, updated_at=now)
        .returning(_MESSAGES.c.id)
    ).scalars()
    requeued = list(requeued)
    for message_id in requeued:
        add_event(db_session, message_id, MessageStatus.QUEUED.value, now, detail="lease expired: to be sent again")
    given_up = db_session.execute(
        update(_MESSAGES)
        .where(*expired, _MESSAGES.c.attempts >= max_attempts)
        .values(
            status=MessageStatus.FAILED.value,
            failed_at=now,
            lease_until=None,
            leased_by=None,
            last_error="lease expired after the last attempt",
            updated_at=now,
        )
        .returning(_MESSAGES.c.id)
    ).scalars()
    given_up = list(given_up)
    for message_id in given_up:
        add_event(
            db_session, message_id, MessageStatus.FAILED.value, now, detail="lease expired after the last attempt"
        )
    db_session.commit()
    if requeued or given_up:
        log.warning(
            "expired leases reclaimed (a dispatcher stopped while sending)",
            extra={"requeued": len(requeued), "failed": len(given_up)},
        )
    return len(requeued)


def record_channel_success(db_session: Session, *, channel: str, gateway: str, now: datetime) -> None:
    """The channel works: no consecutive failures, not degraded. Does not commit."""
    values = {"consecutive_failures": 0, "last_success_at": now, "degraded_since": None, "gateway": gateway}
    statement = dialect_insert(db_session, _STATES).values(channel=channel, **values)
    db_session.execute(statement.on_conflict_do_update(index_elements=["channel"], set_=values))


def record_channel_failure(
    db_session: Session, *, channel: str, gateway: str, error: str, now: datetime, degraded_after: int = DEGRADED_AFTER
) -> datetime | None:
    """One more consecutive failure; degraded from the ``degraded_after``-th (default
    :data:`DEGRADED_AFTER`). Returns ``degraded_since``. Does not commit."""
    failures = _STATES.c.consecutive_failures + 1
    since = literal(now, UTCDateTime())
    statement = dialect_insert(db_session, _STATES).values(
        channel=channel,
        gateway=gateway,
        consecutive_failures=1,
        last_failure_at=now,
        last_error=error[:500],
        degraded_since=now if degraded_after <= 1 else None,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["channel"],
        set_={
            "consecutive_failures": failures,
            "last_failure_at": now,
            "last_error": error[:500],
            "gateway": gateway,
            "degraded_since": case(
                (failures >= degraded_after, func.coalesce(_STATES.c.degraded_since, since)),
                else_=_STATES.c.degraded_since,
            ),
        },
    ).returning(_STATES.c.degraded_since, _STATES.c.consecutive_failures)
    row = db_session.execute(statement).one()
    if row.degraded_since is not None and row.consecutive_failures == degraded_after:
        log.warning("channel degraded: it keeps failing", extra={"channel": channel, "failures": degraded_after})
    return row.degraded_since


def ensure_channel_states(db_session: Session, gateways: dict[str, str]) -> None:
    """Create the channels' state rows if missing (the gateway name is refreshed); commits."""
    for channel, gateway in gateways.items():
        statement = dialect_insert(db_session, _STATES).values(channel=channel, gateway=gateway, consecutive_failures=0)
        db_session.execute(statement.on_conflict_do_update(index_elements=["channel"], set_={"gateway": gateway}))
    db_session.commit()
