"""The working-time calendar: working days (vardagar), office hours (kontorstid) and who is responsible.

Pure functions of an instant or a date and a :class:`~config.routine.RoutinePolicy`; nothing here
reads the clock. Decisions are made in the policy's local time zone; instants go in and out
timezone-aware.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Literal

import holidays

from config.routine import Hours, Interval, RoutinePolicy

# Far enough to cross Easter, Christmas and any plausible run of local closing days.
SEARCH_DAYS = 60

_CATEGORIES = {
    "public": holidays.PUBLIC,
    "de_facto": holidays.DE_FACTO,
    "bank": holidays.BANK,
    "optional": holidays.OPTIONAL,
}
_WEEKEND_NAMES = {5: "lördag", 6: "söndag"}
LOCAL_CLOSING_DAY = "lokal stängningsdag"

Responsible = Literal["team", "on_call"]


class _HolidayCalendar:
    """One country's holidays (helgdagar) in the given categories, filled one year at a time.

    A ``holidays`` object expands lazily and marks a year as present *before* filling it, so two
    threads could see a half-filled year. Each year is therefore built once under a lock into an
    immutable mapping; reads of finished years need no lock.
    """

    def __init__(self, country: str, categories: tuple[str, ...]):
        self.country = country
        self.categories = tuple(_CATEGORIES[c] for c in categories)
        self._years: dict[int, Mapping[date, str]] = {}
        self._lock = threading.Lock()

    def year(self, year: int) -> Mapping[date, str]:
        names = self._years.get(year)
        if names is None:
            with self._lock:
                names = self._years.get(year)
                if names is None:
                    # language="sv": otherwise the names follow the process's LANG.
                    source = holidays.country_holidays(
                        self.country, years=year, expand=False, categories=self.categories, language="sv"
                    )
                    names = MappingProxyType(dict(source))
                    self._years[year] = names
        return names

    def name(self, day: date) -> str | None:
        return self.year(day.year).get(day)


@lru_cache(maxsize=32)
def _holiday_calendar(country: str, categories: tuple[str, ...]) -> _HolidayCalendar:
    return _HolidayCalendar(country, categories)


def holiday_name(day: date, policy: RoutinePolicy) -> str | None:
    """The Swedish name of the holiday (helgdag) on ``day`` in the policy's categories, else None."""
    working_days = policy.working_days
    return _holiday_calendar(working_days.holiday_country, tuple(working_days.holiday_categories)).name(day)


def non_working_reason(day: date, policy: RoutinePolicy) -> str | None:
    """Why ``day`` is not a working day, in Swedish ("lördag", "Juldagen", ...); None on a working day."""
    # A holiday's name says more than its weekday ("Juldagen", not "lördag").
    name = holiday_name(day, policy)
    if name is not None:
        return name
    if day.weekday() in _WEEKEND_NAMES:
        return _WEEKEND_NAMES[day.weekday()]
    if day in policy.working_days.extra_non_working_days:
        return LOCAL_CLOSING_DAY
    return None


def is_working_day(day: date, policy: RoutinePolicy) -> bool:
    """A vardag: Monday to Friday, not a holiday, not a local closing day."""
    return non_working_reason(day, policy) is None


def next_working_day(day: date, policy: RoutinePolicy) -> date:
    """The first working day on or after ``day``."""
    candidate = day
    for _ in range(SEARCH_DAYS):
        if is_working_day(candidate, policy):
            return candidate
        candidate += timedelta(days=1)
    raise ValueError(f"no working day within {SEARCH_DAYS} days from {day.isoformat()}: check extra_non_working_days")


def _is_holiday_eve(day: date, policy: RoutinePolicy) -> bool:
    # Only a real holiday or closing day shortens the day before it, not an ordinary weekend.
    following = day + timedelta(days=1)
    return holiday_name(following, policy) is not None or following in policy.working_days.extra_non_working_days


def office_hours_on(day: date, policy: RoutinePolicy) -> Hours:
    """The office hours (kontorstid) on ``day`` as local intervals; () on a non-working day."""
    if not is_working_day(day, policy):
        return ()
    office_hours = policy.office_hours
    if office_hours.day_before_holiday is not None and _is_holiday_eve(day, policy):
        return office_hours.day_before_holiday
    for season in office_hours.seasons:
        if day.month in season.months:
            return season.hours.on(day.weekday())
    return office_hours.regular.on(day.weekday())


def _require_aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware instant, got the naive {instant.isoformat()}")


def _local_instant(day: date, moment: time, policy: RoutinePolicy) -> datetime:
    # A wall time in the spring gap resolves forward (02:30 -> 03:30), as zoneinfo does.
    return datetime.combine(day, moment, tzinfo=policy.timezone).astimezone(UTC)


def is_office_hours(instant: datetime, policy: RoutinePolicy) -> bool:
    """Whether ``instant`` (timezone-aware) falls in office hours in the policy's local time."""
    _require_aware(instant)
    local = instant.astimezone(policy.timezone)
    moment = local.time()
    return any(interval.contains(moment) for interval in office_hours_on(local.date(), policy))


def _merged(hours: Hours) -> list[Interval]:
    # "07:00-12:00" and "12:00-13:00" are one stretch of office hours: no handover at 12:00.
    merged: list[Interval] = []
    for interval in sorted(hours, key=lambda iv: iv.start):
        if merged and interval.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, interval.end))
        else:
            merged.append(interval)
    return merged


def _boundaries(first_day: date, policy: RoutinePolicy) -> Iterator[tuple[datetime, bool]]:
    """(UTC instant, whether the team is responsible after it) for each edge of office hours."""
    for offset in range(SEARCH_DAYS + 1):
        day = first_day + timedelta(days=offset)
        for interval in _merged(office_hours_on(day, policy)):
            yield _local_instant(day, interval.start, policy), True
            yield _local_instant(day, interval.end, policy), False


@dataclass(frozen=True)
class Responsibility:
    """Who owns the routine at ``at``: the team in office hours, else the on-call officer (TIB)."""

    at: datetime
    responsible: Responsible
    office_hours: bool
    next_change: datetime | None


def responsible_at(instant: datetime, policy: RoutinePolicy) -> Responsibility:
    """Who is responsible at ``instant`` and when that next changes (within about 60 days)."""
    office = is_office_hours(instant, policy)
    tz = policy.timezone
    local = instant.astimezone(tz)
    # Compare in UTC: aware datetimes sharing one tzinfo compare by wall time, which is wrong
    # in the repeated hour of the autumn DST change.
    now_utc = instant.astimezone(UTC)
    next_change = next(
        (
            boundary.astimezone(tz)
            for boundary, team_after in _boundaries(local.date(), policy)
            if boundary > now_utc and team_after != office
        ),
        None,
    )
    return Responsibility(
        at=local,
        responsible="team" if office else "on_call",
        office_hours=office,
        next_change=next_change,
    )


@dataclass(frozen=True)
class CheckPlan:
    """The dates of one month's contact check (test av rutin): send, reminders, phone call."""

    month: str
    send_on: date
    reminders: tuple[date, ...]
    call_on: date

    def to_json(self) -> dict:
        return {
            "month": self.month,
            "send_on": self.send_on.isoformat(),
            "reminders": [day.isoformat() for day in self.reminders],
            "call_on": self.call_on.isoformat(),
        }


def check_plan(year: int, month: int, policy: RoutinePolicy) -> CheckPlan:
    """The month's check: sent on send_day or the next working day, reminders on calendar days,
    the call on call_day or the next working day."""
    check = policy.monthly_check
    send_on = next_working_day(date(year, month, check.send_day), policy)
    # The routine sends reminders automatically, so they keep to calendar days; only people phone.
    reminders = tuple(send_on + timedelta(days=offset) for offset in check.reminder_days)
    call_on = next_working_day(send_on + timedelta(days=check.call_day), policy)
    return CheckPlan(month=f"{year:04d}-{month:02d}", send_on=send_on, reminders=reminders, call_on=call_on)


def send_at(plan: CheckPlan, policy: RoutinePolicy) -> datetime:
    """When the check goes out: send_on at send_time local, as an aware UTC instant."""
    return _local_instant(plan.send_on, policy.monthly_check.send_time, policy)


def reminder_at(plan: CheckPlan, index: int, policy: RoutinePolicy) -> datetime:
    """When reminder ``index`` (0 = the first) goes out, at send_time local, as an aware UTC instant."""
    return _local_instant(plan.reminders[index], policy.monthly_check.send_time, policy)
