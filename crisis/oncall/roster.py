"""The on-call (TIB) rotation: who is on call at an instant, the backup, the shifts of a period.

The rotation is weekly. Week 0 starts on ``policy.crisis.rotation_anchor`` at ``rotation_time``
local (Europe/Stockholm); week n starts n * 7 *local calendar days* later at the same wall-clock
time, so a shift starts at 07:45 local also in the week of a daylight-saving change (it is then
167 or 169 hours long, never 07:45 ± 1 h). Week n belongs to the active member at position
``n mod len(active members)`` in the order of ``RosterMember.position``.

Overrides (:class:`~crisis.incidents.models.RosterOverride`: a swap "X takes Y's week" or an exception) put
a user on call from ``starts_at`` to ``ends_at`` whoever the rotation names; where overrides
overlap, the newest (highest id) wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.models import User
from config.routine import RoutinePolicy
from core.numbers import MAX_YEAR, MIN_YEAR
from crisis.oncall.models import RosterMember, RosterOverride


@dataclass(frozen=True)
class Shift:
    """A stretch of time one user is on call: a rotation week, or a part of it an override changed."""

    starts_at: datetime  # UTC
    ends_at: datetime  # UTC
    user_id: int
    week: int  # the rotation week it falls in (counted from the anchor)
    override_id: int | None = None  # the override that put this user on call, if any

    @property
    def uid(self) -> str:
        """Stable per shift (for the iCalendar feed): week, start and who."""
        return f"week{self.week}-{self.starts_at:%Y%m%dT%H%M%SZ}-u{self.user_id}"


def _policy() -> RoutinePolicy:
    return current_app.extensions["krisrutin.routine"]


def week_start(week: int, policy: RoutinePolicy) -> datetime:
    """The UTC instant rotation week ``week`` starts: a local date plus the local rotation time."""
    crisis = policy.crisis
    day = crisis.rotation_anchor + timedelta(days=7 * week)
    return datetime.combine(day, crisis.rotation_time, tzinfo=policy.timezone).astimezone(UTC)


def calendar_weeks(policy: RoutinePolicy) -> tuple[int, int]:
    """The first and the last rotation week that lie wholly within the calendar's years."""
    anchor = policy.crisis.rotation_anchor
    first = -((anchor - date(MIN_YEAR, 1, 1)).days // 7)
    last = (date(MAX_YEAR, 12, 31) - anchor).days // 7 - 1
    return first, last


def week_of(instant: datetime, policy: RoutinePolicy) -> int:
    """The rotation week ``instant`` falls in (negative before the anchor)."""
    crisis = policy.crisis
    local_day: date = instant.astimezone(policy.timezone).date()
    week = (local_day - crisis.rotation_anchor).days // 7
    # The local date may be the rotation weekday before the rotation time: then the week before.
    if instant.astimezone(UTC) < week_start(week, policy):
        week -= 1
    elif instant.astimezone(UTC) >= week_start(week + 1, policy):
        week += 1
    return week


def members(db_session: Session, *, active_only: bool = True) -> list[RosterMember]:
    query = select(RosterMember).order_by(RosterMember.position, RosterMember.id)
    if active_only:
        query = query.where(RosterMember.is_active.is_(True))
    return list(db_session.scalars(query))


def _rotation_user(week: int, active: list[RosterMember]) -> int | None:
    if not active:
        return None
    return active[week % len(active)].user_id


def _overrides(db_session: Session, start: datetime, end: datetime) -> list[RosterOverride]:
    return list(
        db_session.scalars(
            select(RosterOverride)
            .where(RosterOverride.starts_at < end, RosterOverride.ends_at > start)
            .order_by(RosterOverride.id)
        )
    )


def _user_id_at(db_session: Session, instant: datetime, policy: RoutinePolicy) -> int | None:
    override = db_session.scalars(
        select(RosterOverride)
        .where(RosterOverride.starts_at <= instant, RosterOverride.ends_at > instant)
        .order_by(RosterOverride.id.desc())
        .limit(1)
    ).first()
    if override is not None:
        return override.user_id
    return _rotation_user(week_of(instant, policy), members(db_session))


def on_call_at(db_session: Session, instant: datetime) -> User | None:
    """The on-call officer at ``instant`` (overrides applied); None with an empty roster."""
    user_id = _user_id_at(db_session, instant, _policy())
    return db_session.get(User, user_id) if user_id is not None else None


def backup_at(db_session: Session, instant: datetime) -> User | None:
    """The backup at ``instant``: the next active member in the rotation after whoever is on call
    (after the rotation's own member of the week when the officer is not on the roster), skipping
    the officer; None when nobody else is on the roster."""
    policy = _policy()
    active = members(db_session)
    on_call = _user_id_at(db_session, instant, policy)
    if not active:
        return None
    ids = [m.user_id for m in active]
    start = ids.index(on_call) if on_call in ids else week_of(instant, policy) % len(ids)
    for offset in range(1, len(ids) + 1):
        candidate = ids[(start + offset) % len(ids)]
        if candidate != on_call:
            return db_session.get(User, candidate)
    return None


def manager(db_session: Session, policy: RoutinePolicy | None = None) -> User | None:
    """The manager alerted last in the escalation chain (``policy.crisis.manager_username``)."""
    policy = policy or _policy()
    username = policy.crisis.manager_username
    if not username:
        return None
    user = db_session.scalars(select(User).where(User.username == username)).first()
    return user if user is not None and user.is_active else None


def shifts(db_session: Session, start: datetime, end: datetime) -> list[Shift]:
    """Who is on call when between ``start`` and ``end`` (UTC-aware), overrides applied; the
    first and last shifts are whole (not cut at ``start``/``end``) unless an override cuts them.
    Adjacent pieces of one rotation week with the same user are joined."""
    policy = _policy()
    active = members(db_session)
    first, last = week_of(start, policy), week_of(end, policy)
    pieces: list[Shift] = []
    span_start, span_end = week_start(first, policy), week_start(last + 1, policy)
    overrides = _overrides(db_session, span_start, span_end)
    for week in range(first, last + 1):
        w_start, w_end = week_start(week, policy), week_start(week + 1, policy)
        # Cut the week at every override edge inside it, then decide each piece.
        edges = {w_start, w_end}
        for override in overrides:
            for edge in (override.starts_at, override.ends_at):
                if w_start < edge < w_end:
                    edges.add(edge)
        ordered = sorted(edges)
        for a, b in pairwise(ordered):
            covering = [o for o in overrides if o.starts_at <= a and o.ends_at >= b]
            if covering:
                newest = max(covering, key=lambda o: o.id)
                user_id, override_id = newest.user_id, newest.id
            else:
                user_id, override_id = _rotation_user(week, active), None
            if user_id is None:
                continue
            previous = pieces[-1] if pieces else None
            if (
                previous is not None
                and previous.week == week
                and previous.user_id == user_id
                and previous.override_id == override_id
                and previous.ends_at == a
            ):
                pieces[-1] = Shift(previous.starts_at, b, user_id, week, override_id)
            else:
                pieces.append(Shift(a, b, user_id, week, override_id))
    return [piece for piece in pieces if piece.ends_at > start and piece.starts_at < end]
