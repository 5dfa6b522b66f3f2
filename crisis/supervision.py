"""Camera supervision: the schedules in, and failed supervisions out as visits (issue 6).

Three things live here, used by the API (:mod:`crisis.supervision_api`), the CSV import
(:mod:`crisis.supervision_csv`) and the scheduler:

- :func:`supervisions_between`: a client's weekly schedules and exceptions as UTC instants;
- :func:`clean_client` / :func:`save_clients`: the schedules' validation, shared by the API and
  the CSV import, and their all-or-nothing saving;
- :func:`report_failures` (the alarm operator's reports) and the planner
  ``crisis.supervision`` (failures derived from an incident's window), both making one
  :class:`~crisis.visit_models.SupervisionFailure` and one :class:`~crisis.visit_models.Visit`
  per failed supervision and handing the new visits to :func:`crisis.visits.visits_created`.

Decisions (the issue left them open):

- **Local wall clock.** Schedule times are Europe/Stockholm wall-clock times on local dates: a
  night round at 23:00, 01:30 and 04:00 is three times, each on its own local date (23:00 on
  Monday, 01:30 and 04:00 on Tuesday). A time that does not exist (02:30 on the night the clocks
  go forward) is moved to the first instant after the gap (03:00 summer time); a time that
  happens twice (02:30 on the night the clocks go back) happens once, the first time (fold=0,
  still summer time). Two schedule times that land on the same instant are one supervision.
- **Exceptions** apply to one local date: ``skip`` without a time cancels the whole day, ``skip``
  with a time cancels that time, ``add`` adds a time (an added time wins over a skip of the same
  day: it was written for that day on purpose).
- **Reported failures** are accepted for any time within :data:`REPORT_WINDOW` (a day) of now,
  whether or not it is one of the client's scheduled supervisions: refusing a real failure
  because the schedule on file is out of date would leave a client without a visit. A time
  that is not on the schedule is accepted and marked (``scheduled: false`` in the answer,
  ``unscheduled`` on the visit's ``created`` event) so that the team can correct the schedule.
  A reported time within :data:`SNAP` (5 minutes) of a scheduled supervision is that
  supervision (the operator's clock and ours may differ); seconds are ignored. A failure is one
  per (client, scheduled time): reported twice, or reported and also derived from an incident,
  it is one failure and one visit.
- **Derived failures.** For every incident of the service ``camera_supervision`` with a start,
  the affected clients (the incident's area, or every area; the chosen providers' clients when
  the incident is for some providers only) get a failure for every supervision in the window
  ``[starts_at, end)``: ``end`` is when the incident was closed, else the expected end, but at
  most :data:`LOOKAHEAD` (60 minutes) ahead of now, so that a provider can plan the next hour's
  visits and the window grows with every tick. Supervisions more than :data:`CATCH_UP`
  (24 hours) ago are not derived: a visit that late replaces nothing (the alarm operator may
  still report one). After the incident closes, nothing new is created for times after its end;
  the supervisions after the end go back to the alarm operator, recorded once on the timeline
  (``supervision_returned``, with how many fell in the remaining lookahead). Visits already
  created stay until the provider closes them.
- Reasons and references are not logged; a reference is pseudonymous, but logs need none.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from contacts.models import Provider
from crisis import timeline
from crisis.intake import parse_instant
from crisis.models import OPEN_STATUSES, Incident, IncidentEvent, IncidentProvider, IncidentStatus
from crisis.visit_models import (
    ScheduleException,
    SupervisedClient,
    SupervisionFailure,
    SupervisionSchedule,
    Visit,
    VisitEvent,
    VisitStatus,
)
from scheduling.registry import planner

log = logging.getLogger(__name__)

SERVICE = "camera_supervision"
LOOKAHEAD = timedelta(minutes=60)  # derived visits are created this far ahead of now
CATCH_UP = timedelta(hours=24)  # supervisions further back are not derived
REPORT_WINDOW = timedelta(hours=24)  # a reported failure's time must lie within this of now
SNAP = timedelta(minutes=5)  # a reported time this close to a scheduled supervision is that one
REFERENCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
TIME_RE = re.compile(r"([01]?\d|2[0-3])[:.]([0-5]\d)")
AREA_MAX = 100
REASON_MAX = 300
MAX_BATCH = 20_000
SOURCES = ("operator", "incident")

# Weekday names, 0 = Monday: English keys (the API's output), Swedish and short forms accepted.
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_SV = ("mån", "tis", "ons", "tor", "fre", "lör", "sön")
_WEEKDAY_ALIASES = {
    **{key: index for index, key in enumerate(WEEKDAY_KEYS)},
    **{key: index for index, key in enumerate(WEEKDAY_SV)},
    **{
        name: index
        for index, names in enumerate(
            (
                ("monday", "måndag", "man"),
                ("tuesday", "tisdag"),
                ("wednesday", "onsdag"),
                ("thursday", "torsdag", "tors"),
                ("friday", "fredag"),
                ("saturday", "lördag", "lor"),
                ("sunday", "söndag", "son"),
            )
        )
        for name in names
    },
}
SKIP, ADD = "skip", "add"


class SupervisionError(ValueError):
    """Values refused; ``errors`` maps each field (``schedules[0].times``) to a Swedish message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in self.errors.items()))


@dataclass(frozen=True)
class Problem:
    """One problem of one item of a batch: its index (0-based; a CSV file's line number), the
    field and what is wrong (Swedish)."""

    index: int
    field: str
    message: str


class BatchRejected(Exception):
    """Nothing was saved: ``problems`` lists every problem of every item."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problems")


def _policy():
    return current_app.extensions["krisrutin.routine"]


# --- schedules as instants ---------------------------------------------------------------------


def parse_time(value) -> time:
    """A "HH:MM" (or "H.MM") wall-clock time; ValueError (Swedish) else."""
    match = TIME_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError("Ange tiden som TT:MM, t.ex. 23:00")
    return time(int(match.group(1)), int(match.group(2)))


def format_time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def local_instant(day: date, moment: time, tz) -> datetime:
    """The UTC instant of the wall-clock time ``moment`` on ``day`` in ``tz`` (see the module
    docstring: a time in the spring gap moves to the end of the gap; an ambiguous time is the
    first of its two instants)."""
    wall = datetime.combine(day, moment)
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant  # exists (the first instant when it happens twice)
    # In a gap: fold=0 reads it with the offset before the change, fold=1 with the one after;
    # the change itself lies between the two readings. Find it to the second.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = instant
    if low > high:
        low, high = high, low
    after = high.astimezone(tz).utcoffset()
    before = low.astimezone(tz).utcoffset()
    if before == after:  # cannot happen with real zones; be safe
        return instant
    while (high - low) > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def _local_times(client: SupervisedClient, day: date) -> set[time]:
    times: set[time] = set()
    weekday = day.weekday()
    for schedule in client.schedules:
        if schedule.valid_from is not None and day < schedule.valid_from:
            continue
        if schedule.valid_until is not None and day > schedule.valid_until:
            continue
        if weekday in (schedule.weekdays or []):
            times.add(parse_time(schedule.local_time))
    added: set[time] = set()
    for exception in client.exceptions:
        if exception.on_date != day:
            continue
        if exception.action == ADD and exception.local_time:
            added.add(parse_time(exception.local_time))
        elif exception.action == SKIP:
            if exception.local_time:
                times.discard(parse_time(exception.local_time))
            else:
                times.clear()
    return times | added


def supervisions_between(client: SupervisedClient, start_utc: datetime, end_utc: datetime, policy) -> list[datetime]:
    """The UTC instants of the client's scheduled supervisions in ``[start_utc, end_utc)``,
    sorted, each once. ``policy`` has the routine's ``timezone`` (a RoutinePolicy), or is a tzinfo."""
    if end_utc <= start_utc:
        return []
    tz = getattr(policy, "timezone", policy)
    # One day either side: a local date's times may lie on the UTC date before or after.
    day = start_utc.astimezone(tz).date() - timedelta(days=1)
    last = end_utc.astimezone(tz).date() + timedelta(days=1)
    found: set[datetime] = set()
    while day <= last:
        for moment in _local_times(client, day):
            instant = local_instant(day, moment, tz)
            if start_utc <= instant < end_utc:
                found.add(instant)
        day += timedelta(days=1)
    return sorted(found)


# --- validation ---------------------------------------------------------------------------------


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalise_area(text: str) -> str:
    return " ".join(text.split())


def area_key(text: str | None) -> str:
    return normalise_area(text or "").casefold()


def parse_weekdays(value) -> list[int]:
    """Weekdays as a list (0-6, "mon".."sun", Swedish names) or text ("mån-fre, sön"); ValueError."""
    if isinstance(value, str):
        items: list = [part for part in re.split(r"[,\s]+", value.strip()) if part]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise ValueError('Ange veckodagarna som en lista, t.ex. ["mon", "tue"] eller [0, 1]')
    if not items:
        raise ValueError("Ange minst en veckodag")
    days: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item <= 6:
                raise ValueError("En veckodag som tal är 0 (måndag) till 6 (söndag)")
            days.add(item)
            continue
        if not isinstance(item, str):
            raise ValueError("Ange veckodagarna som mon..sun, mån..sön eller 0-6")
        text = item.strip().casefold()
        if text in ("alla", "dagligen", "all", "daily"):
            days.update(range(7))
            continue
        if text.isdigit() and len(text) == 1 and 0 <= int(text) <= 6:
            days.add(int(text))
            continue
        if "-" in text:
            first, _, second = text.partition("-")
            start, end = _WEEKDAY_ALIASES.get(first.strip()), _WEEKDAY_ALIASES.get(second.strip())
            if start is None or end is None:
                raise ValueError(f"Okänd veckodag: {item}")
            day = start
            days.add(day)
            while day != end:  # a range may wrap around the week: fre-mån
                day = (day + 1) % 7
                days.add(day)
            continue
        day = _WEEKDAY_ALIASES.get(text)
        if day is None:
            raise ValueError(f"Okänd veckodag: {item} (mon..sun, mån..sön eller 0-6)")
        days.add(day)
    return sorted(days)


def parse_date(value) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("Ange datumet som ÅÅÅÅ-MM-DD")


def find_provider(db_session: Session, *, provider_id=None, name=None) -> Provider:
    """The active provider by id, or by name (ignoring case) or organisation number; ValueError."""
    provider = None
    if provider_id not in (None, ""):
        if isinstance(provider_id, str) and provider_id.strip().isdigit():
            provider_id = int(provider_id)
        if isinstance(provider_id, bool) or not isinstance(provider_id, int) or not 1 <= provider_id <= 2**31 - 1:
            raise ValueError("Ange utförarens id som ett heltal")
        provider = db_session.get(Provider, provider_id)
    elif isinstance(name, str) and name.strip():
        wanted = " ".join(name.split()).casefold()
        digits = re.sub(r"[\s-]", "", wanted)
        for candidate in db_session.scalars(select(Provider).order_by(Provider.id)):
            number = (candidate.organisation_number or "").replace("-", "")
            if " ".join(candidate.name.split()).casefold() == wanted or (
                digits.isdigit() and len(digits) == 10 and number == digits
            ):
                provider = candidate
                break
    else:
        raise ValueError("Ange utföraren")
    if provider is None:
        raise ValueError("Det finns ingen sådan utförare i kontaktregistret")
    if not provider.is_active:
        raise ValueError("Utföraren är inaktiv i kontaktregistret")
    return provider


def clean_client(db_session: Session, data, *, providers: dict | None = None) -> dict:
    """A client's values checked and converted, or :class:`SupervisionError` naming every bad
    field (Swedish). ``data``: reference, provider_id or provider (name or organisation number),
    area, active (default true), schedules (``[{"weekdays": [...], "times": ["23:00", ...],
    "valid_from": "YYYY-MM-DD", "valid_until": ...}]``) and exceptions (``[{"date": ...,
    "action": "skip"|"add", "time": "HH:MM"|null}]``). ``providers`` caches lookups."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    if not isinstance(data, Mapping):
        raise SupervisionError({"": "Ange klienten som ett objekt"})
    unknown = sorted(set(data) - {"reference", "provider_id", "provider", "area", "active", "schedules", "exceptions"})
    for name in unknown:
        errors[str(name)] = "Okänt fält"

    reference = data.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        errors["reference"] = "Ange klientens referens"
    elif not REFERENCE_RE.fullmatch(reference.strip()):
        errors["reference"] = "Referensen är 1-64 tecken: bokstäverna A-Z, siffror, - och _"
    else:
        cleaned["reference"] = reference.strip()

    by_id = data.get("provider_id") not in (None, "")
    provider_key = ("id", data.get("provider_id")) if by_id else ("name", data.get("provider"))
    cache_key = (provider_key[0], str(provider_key[1]).strip().casefold())
    try:
        if providers is not None and cache_key in providers:
            provider = providers[cache_key]
            if isinstance(provider, str):
                raise ValueError(provider)
        else:
            try:
                provider = find_provider(db_session, provider_id=data.get("provider_id"), name=data.get("provider"))
            except ValueError as error:
                if providers is not None:
                    providers[cache_key] = str(error)
                raise
            if providers is not None:
                providers[cache_key] = provider
        cleaned["provider"] = provider
    except ValueError as error:
        errors["provider_id" if provider_key[0] == "id" else "provider"] = str(error)

    area = data.get("area")
    if not isinstance(area, str) or not area.strip():
        errors["area"] = "Ange området"
    elif len(normalise_area(area)) > AREA_MAX or not _storable(area):
        errors["area"] = f"Området är högst {AREA_MAX} tecken vanlig text"
    else:
        cleaned["area"] = normalise_area(area)

    active = data.get("active", True)
    if not isinstance(active, bool):
        errors["active"] = "Ange true eller false"
    else:
        cleaned["active"] = active

    schedules = data.get("schedules", [])
    cleaned_schedules: list[tuple[tuple[int, ...], str, date | None, date | None]] = []
    if not isinstance(schedules, list):
        errors["schedules"] = "Ange schemat som en lista"
    else:
        for index, schedule in enumerate(schedules):
            where = f"schedules[{index}]"
            if not isinstance(schedule, Mapping):
                errors[where] = "Ange varje schema som ett objekt med weekdays och times"
                continue
            for name in sorted(set(schedule) - {"weekdays", "times", "valid_from", "valid_until"}):
                errors[f"{where}.{name}"] = "Okänt fält"
            try:
                weekdays = tuple(parse_weekdays(schedule.get("weekdays")))
            except ValueError as error:
                errors[f"{where}.weekdays"] = str(error)
                weekdays = None
            times_raw = schedule.get("times")
            times: list[str] = []
            if isinstance(times_raw, str):
                times_raw = [part for part in times_raw.split(",") if part.strip()]
            if not isinstance(times_raw, list) or not times_raw:
                errors[f"{where}.times"] = 'Ange minst en tid, t.ex. ["23:00", "01:30"]'
            else:
                for raw in times_raw:
                    try:
                        times.append(format_time(parse_time(raw)))
                    except ValueError as error:
                        errors[f"{where}.times"] = f"{error} (fick {str(raw)[:20]!r})"
                        break
            bounds: dict[str, date | None] = {}
            for name in ("valid_from", "valid_until"):
                value = schedule.get(name)
                if value in (None, ""):
                    bounds[name] = None
                    continue
                try:
                    bounds[name] = parse_date(value)
                except ValueError as error:
                    errors[f"{where}.{name}"] = str(error)
            if (
                bounds.get("valid_from") is not None
                and bounds.get("valid_until") is not None
                and bounds["valid_until"] < bounds["valid_from"]
            ):
                errors[f"{where}.valid_until"] = "Slutdatumet är före startdatumet"
            if weekdays is not None and times and f"{where}.valid_from" not in errors:
                for moment in sorted(set(times)):
                    cleaned_schedules.append((weekdays, moment, bounds.get("valid_from"), bounds.get("valid_until")))
    cleaned["schedules"] = cleaned_schedules

    exceptions = data.get("exceptions", [])
    cleaned_exceptions: list[tuple[date, str | None, str]] = []
    if not isinstance(exceptions, list):
        errors["exceptions"] = "Ange undantagen som en lista"
    else:
        for index, exception in enumerate(exceptions):
            where = f"exceptions[{index}]"
            if not isinstance(exception, Mapping):
                errors[where] = "Ange varje undantag som ett objekt med date, action och time"
                continue
            for name in sorted(set(exception) - {"date", "action", "time"}):
                errors[f"{where}.{name}"] = "Okänt fält"
            try:
                on_date = parse_date(exception.get("date"))
            except ValueError as error:
                errors[f"{where}.date"] = str(error)
                on_date = None
            action = exception.get("action")
            if action not in (SKIP, ADD):
                errors[f"{where}.action"] = "Ange skip (ställ in) eller add (extra tillsyn)"
            moment = None
            raw_time = exception.get("time")
            if raw_time not in (None, ""):
                try:
                    moment = format_time(parse_time(raw_time))
                except ValueError as error:
                    errors[f"{where}.time"] = str(error)
            elif action == ADD:
                errors[f"{where}.time"] = "En extra tillsyn behöver en tid"
            if on_date is not None and action in (SKIP, ADD) and f"{where}.time" not in errors:
                item = (on_date, moment, action)
                if item not in cleaned_exceptions:
                    cleaned_exceptions.append(item)
    cleaned["exceptions"] = cleaned_exceptions

    if errors:
        raise SupervisionError(errors)
    return cleaned


# --- saving -------------------------------------------------------------------------------------


@dataclass
class SaveSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    references: list[str] = field(default_factory=list)


def _state(client: SupervisedClient) -> tuple:
    schedules = sorted((tuple(s.weekdays or []), s.local_time, s.valid_from, s.valid_until) for s in client.schedules)
    exceptions = sorted(((e.on_date, e.local_time or "", e.action) for e in client.exceptions), key=lambda item: item)
    return (client.provider_id, client.area, client.is_active, schedules, exceptions)


def _cleaned_state(cleaned: dict) -> tuple:
    schedules = sorted((tuple(w), t, f, u) for w, t, f, u in cleaned["schedules"])
    exceptions = sorted((d, t or "", a) for d, t, a in cleaned["exceptions"])
    return (cleaned["provider"].id, cleaned["area"], cleaned["active"], schedules, exceptions)


def check_clients(db_session: Session, items: list) -> list[dict]:
    """Every item checked; :class:`BatchRejected` with every problem, or the cleaned items."""
    problems: list[Problem] = []
    cleaned_items: list[dict] = []
    seen: dict[str, int] = {}
    providers: dict = {}
    if len(items) > MAX_BATCH:
        raise BatchRejected([Problem(0, "", f"Högst {MAX_BATCH} klienter åt gången")])
    for index, item in enumerate(items):
        try:
            cleaned = clean_client(db_session, item, providers=providers)
        except SupervisionError as error:
            problems.extend(Problem(index, name, message) for name, message in error.errors.items())
            continue
        key = cleaned["reference"].casefold()
        if key in seen:
            problems.append(Problem(index, "reference", f"Samma referens som klient nr {seen[key] + 1}"))
            continue
        seen[key] = index
        cleaned_items.append(cleaned)
    if problems:
        raise BatchRejected(problems)
    return cleaned_items


def find_client(db_session: Session, reference: str) -> SupervisedClient | None:
    """The client with this reference (ignoring case)."""
    if not isinstance(reference, str) or not REFERENCE_RE.fullmatch(reference.strip()):
        return None
    text = reference.strip()
    client = db_session.scalar(select(SupervisedClient).where(SupervisedClient.reference == text))
    if client is None:
        client = db_session.scalar(
            select(SupervisedClient).where(func.lower(SupervisedClient.reference) == text.lower())
        )
    return client


def save_clients(db_session: Session, items: list, *, now: datetime, complete: bool = False) -> SaveSummary:
    """Create or update the clients in ``items`` (by reference, ignoring case), their schedules
    and exceptions replaced by the item's; with ``complete``, deactivate every active client not
    in ``items``. All or nothing: raises :class:`BatchRejected` before writing anything. Does not
    commit."""
    cleaned_items = check_clients(db_session, items)
    existing = {
        client.reference.casefold(): client
        for client in db_session.scalars(
            select(SupervisedClient).options(
                selectinload(SupervisedClient.schedules), selectinload(SupervisedClient.exceptions)
            )
        )
    }
    summary = SaveSummary()
    for cleaned in cleaned_items:
        client = existing.get(cleaned["reference"].casefold())
        summary.references.append(cleaned["reference"])
        if client is not None and _state(client) == _cleaned_state(cleaned):
            summary.unchanged += 1
            continue
        if client is None:
            client = SupervisedClient(reference=cleaned["reference"], created_at=now)
            db_session.add(client)
            summary.created += 1
        else:
            client.updated_at = now
            summary.updated += 1
        client.provider_id = cleaned["provider"].id
        client.area = cleaned["area"]
        client.is_active = cleaned["active"]
        client.schedules = [
            SupervisionSchedule(weekdays=list(weekdays), local_time=moment, valid_from=start, valid_until=end)
            for weekdays, moment, start, end in cleaned["schedules"]
        ]
        client.exceptions = [
            ScheduleException(on_date=on_date, local_time=moment, action=action)
            for on_date, moment, action in cleaned["exceptions"]
        ]
    if complete:
        named = {reference.casefold() for reference in summary.references}
        for key, client in existing.items():
            if key not in named and client.is_active:
                client.is_active = False
                client.updated_at = now
                summary.deactivated += 1
    db_session.flush()
    return summary


def deactivate_client(db_session: Session, client: SupervisedClient, *, now: datetime) -> bool:
    """No more supervisions derived for the client; its failures and visits stay. Does not commit."""
    if not client.is_active:
        return False
    client.is_active = False
    client.updated_at = now
    return True


def schedule_groups(client: SupervisedClient) -> list[dict]:
    """The client's schedule rows grouped back into patterns (weekdays, times, validity), in a
    stable order: what the API shows and the CSV exports."""
    groups: dict[tuple, list[str]] = {}
    for schedule in client.schedules:
        key = (tuple(schedule.weekdays or []), schedule.valid_from, schedule.valid_until)
        groups.setdefault(key, []).append(schedule.local_time)
    result = []
    for (weekdays, start, end), times in groups.items():
        # Night rounds read in their order: evening times first, then after midnight.
        ordered = sorted(set(times), key=lambda t: (t < "12:00", t))
        result.append({"weekdays": list(weekdays), "times": ordered, "valid_from": start, "valid_until": end})
    return result


# --- failures and visits ------------------------------------------------------------------------


def _existing_failures(db_session: Session, pairs: Iterable[tuple[int, datetime]]) -> dict:
    """Existing failures by (client_id, scheduled_at) for the given pairs."""
    pairs = list(pairs)
    if not pairs:
        return {}
    client_ids = sorted({client_id for client_id, _ in pairs})
    low = min(at for _, at in pairs)
    high = max(at for _, at in pairs)
    rows = db_session.scalars(
        select(SupervisionFailure).where(
            SupervisionFailure.client_id.in_(client_ids),
            SupervisionFailure.scheduled_at >= low,
            SupervisionFailure.scheduled_at <= high,
        )
    )
    return {(row.client_id, row.scheduled_at): row for row in rows}


def _create_visits(
    db_session: Session,
    wanted: list[tuple[SupervisedClient, datetime, str, dict]],
    *,
    source: str,
    now: datetime,
    incident: Incident | None,
    reported_by_id: int | None,
    actor: str,
) -> tuple[list[Visit], dict]:
    """Failures and visits for the wanted (client, instant, reason, event detail) not yet failed;
    returns the new visits and every pair's visit (new or existing)."""
    existing = _existing_failures(db_session, ((client.id, at) for client, at, _, _ in wanted))
    visits_by_failure = {}
    if existing:
        visits_by_failure = {
            visit.failure_id: visit
            for visit in db_session.scalars(
                select(Visit).where(Visit.failure_id.in_([failure.id for failure in existing.values()]))
            )
        }
    result: dict = {}
    new: list[Visit] = []
    details: list[dict] = []
    for client, at, reason, detail in wanted:
        key = (client.id, at)
        if key in existing:
            result[key] = visits_by_failure.get(existing[key].id)
            continue
        if key in result:
            continue
        failure = SupervisionFailure(
            client_id=client.id,
            provider_id=client.provider_id,
            scheduled_at=at,
            reason=(reason or "")[:REASON_MAX],
            source=source,
            incident_id=incident.id if incident is not None else None,
            reported_by_id=reported_by_id,
            created_at=now,
        )
        db_session.add(failure)
        visit = Visit(
            failure=failure,
            client_id=client.id,
            provider_id=client.provider_id,
            incident_id=failure.incident_id,
            due_at=at,
            status=VisitStatus.OPEN.value,
            created_at=now,
        )
        db_session.add(visit)
        new.append(visit)
        details.append({"source": source, **detail})
        result[key] = visit
    if new:
        db_session.flush()
        for visit, detail in zip(new, details, strict=True):
            db_session.add(
                VisitEvent(
                    at=now,
                    kind="created",
                    provider_id=visit.provider_id,
                    incident_id=visit.incident_id,
                    visit_id=visit.id,
                    actor=actor,
                    detail=detail,
                )
            )
        db_session.flush()
    return new, result


def _visits_created(db_session: Session, visits: list[Visit], now: datetime) -> None:
    from crisis import visits as visits_module  # the visits part owns the alerting

    visits_module.visits_created(db_session, visits, now)


def clean_failure(db_session: Session, item, *, now: datetime, clients: dict | None = None) -> dict:
    """One reported failure checked: reference, scheduled_at (ISO 8601 with an offset), reason.
    :class:`SupervisionError` with every problem."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    if not isinstance(item, Mapping):
        raise SupervisionError({"": "Ange felet som ett objekt med reference, scheduled_at och reason"})
    for name in sorted(set(item) - {"reference", "scheduled_at", "reason"}):
        errors[str(name)] = "Okänt fält"
    reference = item.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        errors["reference"] = "Ange klientens referens"
    else:
        client = find_client(db_session, reference)
        if client is None:
            errors["reference"] = "Det finns ingen klient med denna referens"
        elif not client.is_active:
            errors["reference"] = "Klienten är inte längre aktiv"
        else:
            cleaned["client"] = client
    try:
        at = parse_instant(item.get("scheduled_at"))
        at = at.astimezone(UTC).replace(second=0, microsecond=0)  # schedules are to the minute
        if abs(at - now) > REPORT_WINDOW:
            errors["scheduled_at"] = "Tiden måste ligga inom ett dygn från nu"
        else:
            cleaned["scheduled_at"] = at
    except ValueError as error:
        errors["scheduled_at"] = str(error)
    reason = item.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or not _storable(reason):
        errors["reason"] = "Skriv orsaken som vanlig text"
    elif len(reason.strip()) > REASON_MAX:
        errors["reason"] = f"Orsaken får vara högst {REASON_MAX} tecken"
    else:
        cleaned["reason"] = " ".join(reason.split())
    if errors:
        raise SupervisionError(errors)
    return cleaned


@dataclass
class ReportedVisit:
    visit: Visit
    reference: str
    created: bool
    scheduled: bool  # the time is one of the client's scheduled supervisions


def report_failures(
    db_session: Session,
    items: list,
    *,
    source: str = "operator",
    now: datetime,
    reported_by_id: int | None = None,
    incident: Incident | None = None,
) -> list[ReportedVisit]:
    """The alarm operator's failed supervisions: one failure and one visit each (an existing
    failure of the same client and time is reused). All or nothing: :class:`BatchRejected` with
    every problem before anything is written. Calls :func:`crisis.visits.visits_created` once
    with the new visits. Does not commit. Returns, per item, its visit and whether it is new."""
    if source not in SOURCES:
        raise ValueError(f"unknown failure source {source!r}")
    if len(items) > MAX_BATCH:
        raise BatchRejected([Problem(0, "", f"Högst {MAX_BATCH} åt gången")])
    problems: list[Problem] = []
    cleaned_items: list[dict] = []
    for index, item in enumerate(items):
        try:
            cleaned_items.append(clean_failure(db_session, item, now=now))
        except SupervisionError as error:
            problems.extend(Problem(index, name, message) for name, message in error.errors.items())
    if problems:
        raise BatchRejected(problems)
    policy = _policy()
    wanted = []
    scheduled_flags = []
    for cleaned in cleaned_items:
        client, at = cleaned["client"], cleaned["scheduled_at"]
        nearby = supervisions_between(client, at - SNAP, at + SNAP + timedelta(seconds=1), policy)
        scheduled = bool(nearby)
        if nearby:  # the scheduled supervision the operator meant (clocks differ by a minute)
            at = min(nearby, key=lambda instant: (abs(instant - at), instant))
        scheduled_flags.append(scheduled)
        wanted.append((client, at, cleaned["reason"], {} if scheduled else {"unscheduled": True}))
    actor = f"user:{reported_by_id}" if reported_by_id is not None else source
    new, by_pair = _create_visits(
        db_session, wanted, source=source, now=now, incident=incident, reported_by_id=reported_by_id, actor=actor
    )
    if new:
        _visits_created(db_session, new, now)
    new_ids = {id(visit) for visit in new}
    result = []
    for (client, at, _, _), scheduled in zip(wanted, scheduled_flags, strict=True):
        visit = by_pair[(client.id, at)]
        result.append(ReportedVisit(visit, client.reference, id(visit) in new_ids, scheduled))
    return result


# --- derived from incidents ---------------------------------------------------------------------


def affected_clients(db_session: Session, incident: Incident) -> list[SupervisedClient]:
    """The active clients an incident of camera supervision affects: its area's (every area when
    none is given), of its chosen providers only when it is not for all providers."""
    query = (
        select(SupervisedClient)
        .where(SupervisedClient.is_active.is_(True))
        .options(selectinload(SupervisedClient.schedules), selectinload(SupervisedClient.exceptions))
        .order_by(SupervisedClient.id)
    )
    if not incident.all_providers:
        chosen = select(IncidentProvider.provider_id).where(IncidentProvider.incident_id == incident.id)
        query = query.where(SupervisedClient.provider_id.in_(chosen))
    clients = list(db_session.scalars(query))
    if incident.area and incident.area.strip():
        wanted = area_key(incident.area)
        clients = [client for client in clients if area_key(client.area) == wanted]
    return clients


def incident_end(incident: Incident) -> datetime | None:
    """When a closed incident ended (resolved, or assessed not relevant); None while it is open."""
    if incident.status in OPEN_STATUSES:
        return None
    return incident.resolved_at or incident.assessed_at or incident.updated_at or incident.created_at


def derivation_window(incident: Incident, now: datetime) -> tuple[datetime, datetime] | None:
    """The window ``[start, end)`` of supervisions to derive now, or None (see the module doc)."""
    if incident.starts_at is None:
        return None
    end = incident_end(incident)
    if end is None:
        end = now + LOOKAHEAD
        if incident.expected_end_at is not None:
            end = min(end, incident.expected_end_at)
    start = max(incident.starts_at, now - CATCH_UP)
    if end <= start:
        return None
    return start, end


def _returned(db_session: Session, incident: Incident) -> bool:
    return (
        db_session.scalar(
            select(IncidentEvent.id)
            .where(IncidentEvent.incident_id == incident.id, IncidentEvent.kind == "supervision_returned")
            .limit(1)
        )
        is not None
    )


def derive_incident(db_session: Session, incident: Incident, now: datetime) -> list[Visit]:
    """Failures and visits for the incident's window so far; returns the new visits (already
    handed to :func:`crisis.visits.visits_created`). Safe to run any number of times."""
    policy = _policy()
    clients = affected_clients(db_session, incident)
    new: list[Visit] = []
    window = derivation_window(incident, now)
    if clients and window is not None:
        start, end = window
        wanted = [(client, at, "", {}) for client in clients for at in supervisions_between(client, start, end, policy)]
        if wanted:
            new, _ = _create_visits(
                db_session,
                wanted,
                source="incident",
                now=now,
                incident=incident,
                reported_by_id=None,
                actor=f"incident:{incident.id}",
            )
        if new:
            providers = sorted({visit.provider_id for visit in new})
            timeline.record(
                db_session,
                incident.id,
                "visits_created",
                now,
                party=incident.party,
                count=len(new),
                providers=providers,
                first_due=min(v.due_at for v in new).isoformat(),
                last_due=max(v.due_at for v in new).isoformat(),
            )
            _visits_created(db_session, new, now)
    end = incident_end(incident)
    if end is not None and clients and not _returned(db_session, incident):
        until = max(end, now) + LOOKAHEAD
        later = [(client.id, at) for client in clients for at in supervisions_between(client, end, until, policy)]
        existing = _existing_failures(db_session, later)
        count = sum(1 for pair in later if pair not in existing)
        timeline.record(
            db_session,
            incident.id,
            "supervision_returned",
            now,
            party=incident.party,
            count=count,
            ended_at=end.isoformat(),
            until=until.isoformat(),
        )
        db_session.add(
            VisitEvent(
                at=now,
                kind="supervision_returned",
                incident_id=incident.id,
                actor=f"incident:{incident.id}",
                detail={"count": count, "ended_at": end.isoformat()},
            )
        )
    return new


def incidents_to_derive(db_session: Session, now: datetime) -> list[Incident]:
    """Open camera-supervision incidents with a start, and those closed within the last day
    whose end has not yet been handed back to the alarm operator."""
    open_ones = select(Incident).where(
        Incident.service == SERVICE, Incident.starts_at.is_not(None), Incident.status.in_(OPEN_STATUSES)
    )
    returned = select(IncidentEvent.id).where(
        IncidentEvent.incident_id == Incident.id, IncidentEvent.kind == "supervision_returned"
    )
    closed = select(Incident).where(
        Incident.service == SERVICE,
        Incident.starts_at.is_not(None),
        Incident.status.in_((IncidentStatus.RESOLVED.value, IncidentStatus.NOT_RELEVANT.value)),
        ~returned.exists(),
        func.coalesce(Incident.resolved_at, Incident.assessed_at, Incident.updated_at, Incident.created_at)
        >= now - CATCH_UP,
    )
    incidents = list(db_session.scalars(open_ones.order_by(Incident.id))) + list(
        db_session.scalars(closed.order_by(Incident.id))
    )
    return incidents


@planner("crisis.supervision")
def plan_supervision_visits(db_session: Session, now: datetime) -> None:
    """At every tick: every camera-supervision incident's window so far becomes visits.

    Each incident in a savepoint: when another worker derived the same supervisions at the same
    moment (the unique (client, scheduled time) refuses the second), that incident's work here
    is undone and the others' kept; the other worker's visits stand."""
    for incident in incidents_to_derive(db_session, now):
        try:
            with db_session.begin_nested():
                derive_incident(db_session, incident, now)
        except IntegrityError:
            log.info("supervisions derived elsewhere at the same time", extra={"incident_id": incident.id})
