"""Handover at the edges of office hours: when the party responsible changes, and who takes over.

The calendar's boundaries (07:45 on a working day, 17:00 — 16:00 in June to August — ...) are
where the team and the on-call officer change places. :func:`last_boundary` finds the latest one
at or before an instant; the receiving side acknowledges a :class:`~crisis.oncall.models.Handover`
(:func:`acknowledge_handover`), which also acknowledges the alerts that told it. What is handed
over (an incident and its history) is the incidents' part (:mod:`crisis.incidents.handover`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from accounts.models import User
from accounts.roles import Role
from crisis.oncall.alerts import HANDOVER_REASON_PREFIX, acknowledge_alerts
from crisis.oncall.models import Handover, Party
from worktime import calendar

LOOK_BACK_DAYS = 21  # longer than any run of closed days (Christmas, Easter)


def last_boundary(now: datetime, policy) -> datetime | None:
    """The last edge of office hours at or before ``now`` after which the party responsible now
    took over (UTC); None if there is none in the last three weeks."""
    office = calendar.is_office_hours(now, policy)
    now_utc = now.astimezone(UTC)
    first_day = now.astimezone(policy.timezone).date() - timedelta(days=LOOK_BACK_DAYS)
    found = None
    for boundary, team_after in calendar._boundaries(first_day, policy):
        if boundary > now_utc:
            break
        if team_after == office:
            found = boundary
    return found


def alert_reason(handover_id: int) -> str:
    """The reason of the alerts that tell the receiving side about a handover."""
    return f"{HANDOVER_REASON_PREFIX}{handover_id}"


def may_acknowledge(handover: Handover, user: User) -> bool:
    """Only the receiving side (or an admin) acknowledges a handover."""
    if user.role_enum is Role.ADMIN:
        return True
    if handover.to_party == Party.TEAM.value:
        return user.role_enum is Role.TEAM
    return user.role_enum is Role.ON_CALL


def acknowledge_handover(db_session: Session, handover: Handover, user: User | None, now: datetime) -> bool:
    """The receiving side has the handover (``user`` None: the team's duty phone answered): it and
    its alerts are acknowledged. False when it was acknowledged already. Does not commit."""
    user_id = user.id if user is not None else None
    result = db_session.execute(
        update(Handover)
        .where(Handover.id == handover.id, Handover.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=user_id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    acknowledge_alerts(db_session, reason=alert_reason(handover.id), user_id=user_id, now=now)
    return True
