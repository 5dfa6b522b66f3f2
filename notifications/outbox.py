"""The outbox's database steps, shared by every dispatcher: claim, record, reclaim, channel state.

Each step is one short transaction, or part of the caller's. Why this makes sending exactly-once
up to the in-flight window is explained in :mod:`notifications.dispatcher`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, func, literal, select, update
from sqlalchemy.orm import Session

from core.database import dialect_insert
from core.types import UTCDateTime
from notifications.models import ChannelState, Message, MessageStatus
from notifications.service import add_event

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=10)  # the wait after the first failed attempt; doubles each time
RETRY_CAP = timedelta(hours=1)
DEGRADED_AFTER = 5  # consecutive failures of a channel (all dispatchers) before it is shown as degraded
_MESSAGES = Message.__table__
_STATES = ChannelState.__table__


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


# --- the database steps ------------------------------------------------------------------------


def _build_claim():
    """The claiming statement, built once (parameters: channel, now, lease_until, name)."""
    now = bindparam("p_now", type_=UTCDateTime())
    candidate = (
        select(_MESSAGES.c.id)
        .where(
            _MESSAGES.c.status == MessageStatus.QUEUED.value,
            _MESSAGES.c.channel == bindparam("p_channel"),
            _MESSAGES.c.next_attempt_at <= now,
        )
        .order_by(_MESSAGES.c.priority, _MESSAGES.c.next_attempt_at, _MESSAGES.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders none (the UPDATE locks)
        .scalar_subquery()
    )
    return (
        update(_MESSAGES)
        .where(_MESSAGES.c.id == candidate, _MESSAGES.c.status == MessageStatus.QUEUED.value)
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
_CLAIM = _build_claim()
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


def claim_next(
    db_session: Session, *, channel: str, now: datetime, lease_seconds: float, name: str
) -> ClaimedMessage | None:
    """Claim the most urgent due message of ``channel`` and commit; None when none is due."""
    lease_until = now + timedelta(seconds=lease_seconds)
    row = db_session.execute(
        _CLAIM, {"p_channel": channel, "p_now": now, "p_lease_until": lease_until, "p_name": name}
    ).first()
    if row is None:
        db_session.rollback()
        return None
    claimed = ClaimedMessage(**row._asdict())
    add_event(db_session, claimed.id, MessageStatus.SENDING.value, now, detail=f"attempt {claimed.attempts} by {name}")
    db_session.commit()
    return claimed


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


def record_failure(
    db_session: Session,
    claimed: ClaimedMessage,
    *,
    name: str,
    error: str,
    now: datetime,
    retry_at: datetime | None,
) -> bool:
    """A failed attempt: back to ``queued`` until ``retry_at``, or ``failed`` when ``retry_at``
    is None. False if the claim was lost. Does not commit."""
    if retry_at is not None:
        values = {"status": MessageStatus.QUEUED.value, "next_attempt_at": retry_at}
        event, detail = "retry", f"attempt {claimed.attempts} failed: {error}"
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
    db_session: Session, *, channel: str, gateway: str, error: str, now: datetime
) -> datetime | None:
    """One more consecutive failure; degraded from the :data:`DEGRADED_AFTER`-th. Returns
    ``degraded_since``. Does not commit."""
    failures = _STATES.c.consecutive_failures + 1
    since = literal(now, UTCDateTime())
    statement = dialect_insert(db_session, _STATES).values(
        channel=channel,
        gateway=gateway,
        consecutive_failures=1,
        last_failure_at=now,
        last_error=error[:500],
        degraded_since=now if DEGRADED_AFTER <= 1 else None,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["channel"],
        set_={
            "consecutive_failures": failures,
            "last_failure_at": now,
            "last_error": error[:500],
            "gateway": gateway,
            "degraded_since": case(
                (failures >= DEGRADED_AFTER, func.coalesce(_STATES.c.degraded_since, since)),
                else_=_STATES.c.degraded_since,
            ),
        },
    ).returning(_STATES.c.degraded_since, _STATES.c.consecutive_failures)
    row = db_session.execute(statement).one()
    if row.degraded_since is not None and row.consecutive_failures == DEGRADED_AFTER:
        log.warning("channel degraded: it keeps failing", extra={"channel": channel, "failures": DEGRADED_AFTER})
    return row.degraded_since


def ensure_channel_states(db_session: Session, gateways: dict[str, str]) -> None:
    """Create the channels' state rows if missing (the gateway name is refreshed); commits."""
    for channel, gateway in gateways.items():
        statement = dialect_insert(db_session, _STATES).values(channel=channel, gateway=gateway, consecutive_failures=0)
        db_session.execute(statement.on_conflict_do_update(index_elements=["channel"], set_={"gateway": gateway}))
    db_session.commit()
