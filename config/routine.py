"""The crisis routine's settings (office hours, working days, the monthly check), from TOML.

The file is validated completely when the application starts: a missing, unknown or malformed
key stops start-up with a :class:`RoutineConfigError` that names the key and the expected form.
The result is an immutable :class:`RoutinePolicy` that the calendar functions take as input.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from datetime import date, time
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY_CATEGORIES = ("public", "de_facto", "bank", "optional")
_WEEKDAYS = {name: index for index, name in enumerate(WEEKDAYS)}
_INTERVAL = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_TIME = re.compile(r"^(\d{2}):(\d{2})$")


class RoutineConfigError(Exception):
    """The routine file is missing a key or has a malformed value."""


@dataclass(frozen=True)
class Interval:
    """Half-open local time interval [start, end) within one day."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        return self.start <= moment < self.end


Hours = tuple[Interval, ...]


@dataclass(frozen=True)
class WeeklyHours:
    """Office hours per weekday, index 0 = Monday; an empty tuple means closed."""

    days: tuple[Hours, ...]

    def on(self, weekday: int) -> Hours:
        return self.days[weekday]


@dataclass(frozen=True)
class Season:
    name: str
    months: frozenset[int]
    hours: WeeklyHours


@dataclass(frozen=True)
class OfficeHoursPolicy:
    regular: WeeklyHours
    seasons: tuple[Season, ...] = ()
    day_before_holiday: Hours | None = None


@dataclass(frozen=True)
class WorkingDaysPolicy:
    holiday_country: str = "SE"
    holiday_categories: tuple[str, ...] = ("public", "de_facto")
    extra_non_working_days: frozenset[date] = field(default_factory=frozenset)


@dataclass(frozen=True)
class CheckPolicy:
    send_day: int = 1
    send_time: time = time(8, 0)
    reminder_days: tuple[int, ...] = (3, 4)
    call_day: int = 5


@dataclass(frozen=True)
class CrisisPolicy:
    """Disruption handling: on-call rotation, reaction times, planned-work rules."""

    # The on-call week starts on this weekday at this local time (a wall-clock time, so shifts
    # keep their local start across daylight-saving changes); week 0 starts on rotation_anchor.
    rotation_weekday: int = 0  # monday
    rotation_time: time = time(7, 45)
    rotation_anchor: date = date(2026, 1, 5)
    # Minutes the alerted officer has to acknowledge before the next step is alerted (backup on
    # the roster, then the manager).
    acknowledge_minutes: int = 15
    # The manager alerted last (a username); empty: nobody after the backup.
    manager_username: str = ""
    # Remind the handling party when no update has gone out for this long (unplanned / planned).
    update_interval_minutes: int = 120
    planned_update_interval_minutes: int = 1440
    # Once the handling party has acknowledged the incident, update-due reminders go by e-mail
    # (and show on the start page); by SMS as well only when this is true. Before the
    # acknowledgement they go by SMS and e-mail, as every alert of the escalation.
    update_due_sms_after_acknowledge: bool = False
    # Unacknowledged urgent letters: re-sent after this many minutes, then put on the handling
    # party's call list after this many minutes (both counted from the letter).
    letter_resend_minutes: int = 30
    letter_call_minutes: int = 60
    # An unacknowledged handover is alerted again after this many minutes.
    handover_realert_minutes: int = 15
    # Physical visits: a provider that has not acknowledged its visit list after this
    # many minutes is alerted again and put on the responsible party's call list; a visit not
    # marked this many minutes after it was due is reported to the responsible party.
    visit_acknowledge_minutes: int = 15
    visit_overdue_minutes: int = 60
    # Overdue visits of a provider already on the call list are folded: at most one message per
    # provider per this many minutes, listing every visit overdue since the last one.
    visit_overdue_fold_minutes: int = 60
    # Planned work should be announced at least this many days ahead, within these weekdays and
    # local hours; otherwise the notice is accepted and flagged to the team.
    planned_min_days_ahead: int = 7
    planned_weekdays: tuple[int, ...] = (1, 2, 3)  # tuesday..thursday
    planned_hours: Interval = Interval(time(10, 0), time(13, 0))


@dataclass(frozen=True)
class RetentionPolicy:
    """Gallring: how long personal data is kept; see core/retention.py."""

    # Answered monthly-check recipients and corrections: personal fields cleared after this many months.
    check_months: int = 24
    # Closed incidents: names typed on receipts, call outcomes and notices' originals cleared.
    incident_months: int = 36
    # Visits: comments and who marked them cleared.
    visit_months: int = 24
    # Message bodies, subjects and addresses (and inbound SMS texts) cleared after this many days.
    message_days: int = 90
    # The routine-test record (monthly checks and their figures) is kept this long, then deleted.
    check_record_years: int = 10
    # Audit log entries (core/audit.py) are deleted after this many months.
    audit_months: int = 60
    # Local time of the daily run.
    run_time: time = time(3, 0)


@dataclass(frozen=True)
class PagingPolicy:
    """Paging staff about an alert that demands acknowledgement (crisis/oncall/paging.py): the
    default rules and the limits of the personal ones."""

    # The default rules: SMS + e-mail at once, a call after this many minutes, and once more after
    # twice as many ("no answer, busy or no key: called again once").
    call_after_minutes: int = 5
    # Personal rules: at most this many steps, none later than this minute (before the escalation
    # to the backup at crisis.acknowledge_minutes, so a person's own steps come first).
    max_steps: int = 6
    latest_minute: int = 14
    # Whether the team's duty phone is called too (alerts to the team in office hours); false:
    # SMS + e-mail only.
    call_team: bool = False

    def default_steps(self) -> tuple[tuple[int, tuple[str, ...]], ...]:
        """The default rules as (minute, channels) steps."""
        return (
            (0, ("sms", "email")),
            (self.call_after_minutes, ("call",)),
            (2 * self.call_after_minutes, ("call",)),
        )


@dataclass(frozen=True)
class RoutinePolicy:
    timezone: ZoneInfo
    office_hours: OfficeHoursPolicy
    working_days: WorkingDaysPolicy
    monthly_check: CheckPolicy
    crisis: CrisisPolicy = field(default_factory=CrisisPolicy)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    paging: PagingPolicy = field(default_factory=PagingPolicy)


class _Reader:
    """Walks the parsed TOML, tracking the dotted key for error messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, expected: str, got: object = None) -> RoutineConfigError:
        got_text = "" if got is None else f", got {got!r}"
        return RoutineConfigError(f"{self.source}: {key}: expected {expected}{got_text}")

    def table(self, data: dict, key: str, allowed: set[str], required: bool = True) -> dict | None:
        name = key.rsplit(".", 1)[-1]
        value = _lookup(data, name)
        if value is None:
            if required:
                raise self.fail(key, "a table [" + key + "]")
            return None
        if not isinstance(value, dict):
            raise self.fail(key, "a table [" + key + "]", value)
        unknown = set(value) - allowed
        if unknown:
            raise self.fail(f"{key}.{sorted(unknown)[0]}", "no such key (allowed: " + ", ".join(sorted(allowed)) + ")")
        return value

    def interval(self, key: str, value: object) -> Interval:
        match = _INTERVAL.match(value) if isinstance(value, str) else None
        if not match:
            raise self.fail(key, 'an interval "HH:MM-HH:MM"', value)
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise self.fail(key, 'an interval "HH:MM-HH:MM" with valid times', value) from None
        if start >= end:
            raise self.fail(key, "an interval whose start is before its end", value)
        return Interval(start, end)

    def hours(self, key: str, value: object) -> Hours:
        if not isinstance(value, list):
            raise self.fail(key, 'a list of intervals such as ["07:45-17:00"]', value)
        intervals = tuple(
            sorted((self.interval(f"{key}[{i}]", v) for i, v in enumerate(value)), key=lambda iv: iv.start)
        )
        for before, after in pairwise(intervals):
            if after.start < before.end:
                raise self.fail(key, "intervals that do not overlap", value)
        return intervals

    def time(self, key: str, value: object) -> time:
        match = _TIME.match(value) if isinstance(value, str) else None
        if not match:
            raise self.fail(key, 'a local time "HH:MM"', value)
        try:
            return time(int(match.group(1)), int(match.group(2)))
        except ValueError:
            raise self.fail(key, 'a valid local time "HH:MM"', value) from None

    def integer(self, key: str, value: object, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"a whole number from {low} to {high}", value)
        return value

    def weekly(self, key: str, data: dict) -> WeeklyHours:
        weekdays = _lookup(data, "weekdays")
        if weekdays is None:
            weekdays = list(WEEKDAYS[:5])
        if not isinstance(weekdays, list) or any(d not in WEEKDAYS for d in weekdays):
            raise self.fail(f"{key}.weekdays", "a list of days from " + ", ".join(WEEKDAYS), weekdays)
        if "hours" not in data:
            raise self.fail(f"{key}.hours", 'a list of intervals such as ["07:45-17:00"]')
        base = self.hours(f"{key}.hours", data["hours"])
        by_weekday = data.get("by_weekday", {})
        if not isinstance(by_weekday, dict):
            raise self.fail(f"{key}.by_weekday", "a table of weekday = [intervals]", by_weekday)
        days = []
        for name in WEEKDAYS:
            if name in by_weekday:
                days.append(self.hours(f"{key}.by_weekday.{name}", by_weekday[name]))
            else:
                days.append(base if name in weekdays else ())
        unknown = set(by_weekday) - set(WEEKDAYS)
        if unknown:
            raise self.fail(f"{key}.by_weekday.{sorted(unknown)[0]}", "a weekday from " + ", ".join(WEEKDAYS))
        return WeeklyHours(tuple(days))


def _lookup(data: dict, name: str):
    return data.get(name)


def _parse_date(value: object) -> date | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_routine(data: dict, *, timezone: str = "Europe/Stockholm", source: str = "routine.toml") -> RoutinePolicy:
    """Validate parsed TOML and build the policy; raises :class:`RoutineConfigError`."""
    r = _Reader(source)
    top_unknown = set(data) - {"office_hours", "working_days", "monthly_check", "crisis", "retention", "paging"}
    if top_unknown:
        raise r.fail(
            sorted(top_unknown)[0],
            "no such section (allowed: office_hours, working_days, monthly_check, crisis, retention, paging)",
        )

    oh = r.table(data, "office_hours", {"weekdays", "hours", "by_weekday", "seasons", "day_before_holiday"})
    regular = r.weekly("office_hours", oh)
    seasons = []
    raw_seasons = oh.get("seasons", [])
    if not isinstance(raw_seasons, list):
        raise r.fail("office_hours.seasons", "a list of [[office_hours.seasons]] tables", raw_seasons)
    taken: set[int] = set()
    for i, raw in enumerate(raw_seasons):
        key = f"office_hours.seasons[{i}]"
        if not isinstance(raw, dict):
            raise r.fail(key, "a table with name, months and hours", raw)
        unknown = set(raw) - {"name", "months", "weekdays", "hours", "by_weekday"}
        if unknown:
            raise r.fail(
                f"{key}.{sorted(unknown)[0]}", "no such key (allowed: name, months, weekdays, hours, by_weekday)"
            )
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise r.fail(f"{key}.name", "a non-empty name", name)
        months = raw.get("months")
        if not isinstance(months, list) or not months:
            raise r.fail(f"{key}.months", "a non-empty list of month numbers 1-12", months)
        month_set = frozenset(r.integer(f"{key}.months", m, 1, 12) for m in months)
        if month_set & taken:
            raise r.fail(f"{key}.months", "months not already in another season", months)
        taken |= month_set
        if "weekdays" not in raw:
            raw = {**raw, "weekdays": oh.get("weekdays", list(WEEKDAYS[:5]))}
        seasons.append(Season(name.strip(), month_set, r.weekly(key, raw)))

    day_before = None
    dbh = r.table(oh, "office_hours.day_before_holiday", {"hours"}, required=False)
    if dbh is not None:
        if "hours" not in dbh:
            raise r.fail("office_hours.day_before_holiday.hours", 'a list of intervals such as ["07:00-13:00"]')
        day_before = r.hours("office_hours.day_before_holiday.hours", dbh["hours"])

    wd = r.table(data, "working_days", {"holiday_country", "holiday_categories", "extra_non_working_days"})
    country = wd.get("holiday_country")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise r.fail("working_days.holiday_country", 'an ISO 3166 country code such as "SE"', country)
    try:
        holidays.country_holidays(country)
    except NotImplementedError:
        raise r.fail(
            "working_days.holiday_country", 'a country the holidays package knows, such as "SE"', country
        ) from None
    categories = wd.get("holiday_categories")
    if not isinstance(categories, list) or not categories or any(c not in HOLIDAY_CATEGORIES for c in categories):
        raise r.fail(
            "working_days.holiday_categories", "a non-empty list from " + ", ".join(HOLIDAY_CATEGORIES), categories
        )
    extra_raw = wd.get("extra_non_working_days", [])
    if not isinstance(extra_raw, list):
        raise r.fail("working_days.extra_non_working_days", 'a list of dates "YYYY-MM-DD"', extra_raw)
    extra = set()
    for i, value in enumerate(extra_raw):
        parsed = value if isinstance(value, date) else _parse_date(value)
        if parsed is None:
            raise r.fail(f"working_days.extra_non_working_days[{i}]", 'a date "YYYY-MM-DD"', value)
        extra.add(parsed)

    mc = r.table(data, "monthly_check", {"send_day", "send_time", "reminder_days", "call_day"})
    for required in ("send_day", "send_time", "reminder_days", "call_day"):
        if required not in mc:
            raise r.fail(f"monthly_check.{required}", "a value (see config/routine.toml for the defaults)")
    send_day = r.integer("monthly_check.send_day", mc["send_day"], 1, 28)
    send_time = r.time("monthly_check.send_time", mc["send_time"])
    reminders = mc["reminder_days"]
    if not isinstance(reminders, list):
        raise r.fail("monthly_check.reminder_days", "a list of day numbers such as [3, 4]", reminders)
    reminder_days = tuple(r.integer("monthly_check.reminder_days", d, 1, 27) for d in reminders)
    if list(reminder_days) != sorted(set(reminder_days)):
        raise r.fail("monthly_check.reminder_days", "increasing day numbers without repeats", reminders)
    call_day = r.integer("monthly_check.call_day", mc["call_day"], 1, 27)
    if reminder_days and call_day <= reminder_days[-1]:
        raise r.fail("monthly_check.call_day", f"a day after the last reminder (day {reminder_days[-1]})", call_day)

    crisis = _crisis_policy(r, data)
    return RoutinePolicy(
        timezone=ZoneInfo(timezone),
        office_hours=OfficeHoursPolicy(regular, tuple(seasons), day_before),
        working_days=WorkingDaysPolicy(country, tuple(categories), frozenset(extra)),
        monthly_check=CheckPolicy(send_day, send_time, reminder_days, call_day),
        crisis=crisis,
        retention=_retention_policy(r, data),
        paging=_paging_policy(r, data, crisis),
    )


_CRISIS_MINUTES = (
    "acknowledge_minutes",
    "update_interval_minutes",
    "planned_update_interval_minutes",
    "letter_resend_minutes",
    "letter_call_minutes",
    "handover_realert_minutes",
    "visit_acknowledge_minutes",
    "visit_overdue_minutes",
    "visit_overdue_fold_minutes",
)


def _crisis_policy(r: _Reader, data: dict) -> CrisisPolicy:
    """The optional ``[crisis]`` section; each missing key keeps its default."""
    allowed = {
        "rotation_weekday",
        "rotation_time",
        "rotation_anchor",
        "manager_username",
        "planned_min_days_ahead",
        "planned_weekdays",
        "planned_hours",
        "update_due_sms_after_acknowledge",
        *_CRISIS_MINUTES,
    }
    section = r.table(data, "crisis", allowed, required=False) or {}
    default = CrisisPolicy()
    values: dict = {}
    if "rotation_weekday" in section:
        raw = section["rotation_weekday"]
        if raw not in _WEEKDAYS:
            raise r.fail("crisis.rotation_weekday", "one of mon, tue, wed, thu, fri, sat, sun", raw)
        values["rotation_weekday"] = _WEEKDAYS[raw]
    if "rotation_time" in section:
        values["rotation_time"] = r.time("crisis.rotation_time", section["rotation_time"])
    if "rotation_anchor" in section:
        anchor = _parse_date(section["rotation_anchor"])
        if anchor is None:
            raise r.fail("crisis.rotation_anchor", 'a date "YYYY-MM-DD"', section["rotation_anchor"])
        values["rotation_anchor"] = anchor
    if "manager_username" in section:
        if not isinstance(section["manager_username"], str):
            raise r.fail("crisis.manager_username", "a username (text)", section["manager_username"])
        values["manager_username"] = section["manager_username"].strip()
    for key in _CRISIS_MINUTES:
        if key in section:
            values[key] = r.integer(f"crisis.{key}", section[key], 1, 7 * 24 * 60)
    if "update_due_sms_after_acknowledge" in section:
        raw = section["update_due_sms_after_acknowledge"]
        if not isinstance(raw, bool):
            raise r.fail("crisis.update_due_sms_after_acknowledge", "true or false", raw)
        values["update_due_sms_after_acknowledge"] = raw
    if "planned_min_days_ahead" in section:
        values["planned_min_days_ahead"] = r.integer(
            "crisis.planned_min_days_ahead", section["planned_min_days_ahead"], 0, 60
        )
    if "planned_weekdays" in section:
        raw = section["planned_weekdays"]
        if not isinstance(raw, list) or not raw or any(day not in _WEEKDAYS for day in raw):
            raise r.fail("crisis.planned_weekdays", 'a list of weekdays such as ["tue", "wed", "thu"]', raw)
        values["planned_weekdays"] = tuple(sorted({_WEEKDAYS[day] for day in raw}))
    if "planned_hours" in section:
        values["planned_hours"] = r.interval("crisis.planned_hours", section["planned_hours"])
    if values.get("rotation_anchor", default.rotation_anchor).weekday() != values.get(
        "rotation_weekday", default.rotation_weekday
    ):
        raise r.fail("crisis.rotation_anchor", "a date on the rotation weekday", section.get("rotation_anchor"))
    return replace(default, **values)


_RETENTION_RANGES = {
    "check_months": (1, 600),
    "incident_months": (1, 600),
    "visit_months": (1, 600),
    "message_days": (1, 3650),
    "check_record_years": (1, 50),
    "audit_months": (1, 600),
}


def _retention_policy(r: _Reader, data: dict) -> RetentionPolicy:
    """The optional ``[retention]`` section; each missing key keeps its default."""
    section = r.table(data, "retention", {*_RETENTION_RANGES, "run_time"}, required=False) or {}
    values: dict = {}
    for key, (low, high) in _RETENTION_RANGES.items():
        if key in section:
            values[key] = r.integer(f"retention.{key}", section[key], low, high)
    if "run_time" in section:
        values["run_time"] = r.time("retention.run_time", section["run_time"])
    return replace(RetentionPolicy(), **values)


def _paging_policy(r: _Reader, data: dict, crisis: CrisisPolicy) -> PagingPolicy:
    """The optional ``[paging]`` section; each missing key keeps its default. The personal rules'
    last minute must come before the escalation to the backup, and the default rules within it."""
    section = r.table(data, "paging", {"call_after_minutes", "max_steps", "latest_minute", "call_team"}, False) or {}
    values: dict = {}
    if "call_after_minutes" in section:
        values["call_after_minutes"] = r.integer("paging.call_after_minutes", section["call_after_minutes"], 1, 60)
    if "max_steps" in section:
        values["max_steps"] = r.integer("paging.max_steps", section["max_steps"], 3, 20)
    if "latest_minute" in section:
        values["latest_minute"] = r.integer("paging.latest_minute", section["latest_minute"], 1, 7 * 24 * 60)
    if "call_team" in section:
        if not isinstance(section["call_team"], bool):
            raise r.fail("paging.call_team", "true or false", section["call_team"])
        values["call_team"] = section["call_team"]
    policy = replace(PagingPolicy(), **values)
    if policy.latest_minute >= crisis.acknowledge_minutes:
        raise r.fail(
            "paging.latest_minute",
            f"a minute before crisis.acknowledge_minutes ({crisis.acknowledge_minutes}), when the backup is alerted",
            policy.latest_minute,
        )
    if 2 * policy.call_after_minutes > policy.latest_minute:
        raise r.fail(
            "paging.call_after_minutes",
            f"at most half of paging.latest_minute ({policy.latest_minute}): the second call comes at twice it",
            policy.call_after_minutes,
        )
    return policy


def load_routine(path: Path, *, timezone: str = "Europe/Stockholm") -> RoutinePolicy:
    """Read and validate the routine file at ``path``."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise RoutineConfigError(f"{path}: file not found (set ROUTINE_FILE or restore config/routine.toml)") from None
    except tomllib.TOMLDecodeError as error:
        raise RoutineConfigError(f"{path}: not valid TOML: {error}") from None
    return parse_routine(data, timezone=timezone, source=str(path))
