"""Camera-supervised clients and their schedules: the validation shared by the API
(:mod:`crisis.visits.api`) and the CSV import (:mod:`crisis.visits.clients_csv`), and the
all-or-nothing saving of a batch.

A client is ``reference`` (pseudonymous, 1-64 characters ``[A-Za-z0-9_-]``), its provider (an
active provider of the contacts register, by id, name or organisation number), ``area`` (free
text, at most 100 characters, compared ignoring case and spacing), ``active``, weekly
``schedules`` (weekdays ``mon``..``sun``, Swedish names or 0-6, ranges like ``mån-fre``; times
``HH:MM`` in Stockholm wall-clock time; optional ``valid_from``/``valid_until`` local dates, both
inclusive) and ``exceptions`` on local dates (``skip`` a time or, without a time, the whole day;
``add`` a time). Every problem of every item is reported (index or line, field, problem, in
Swedish) and nothing is saved from a batch with any problem. Saving replaces a client's
schedules and exceptions with the ones given. How the schedules become instants (and the nights
the clocks change) is :func:`crisis.visits.supervision.supervisions_between`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from contacts.models import Provider
from core.numbers import MAX_ID, record_id, whole_number
from core.text import refusal
from crisis.visits.models import ScheduleException, SupervisedClient, SupervisionSchedule

REFERENCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
TIME_RE = re.compile(r"([01]?\d|2[0-3])[:.]([0-5]\d)", re.ASCII)
AREA_MAX = 100
MAX_BATCH = 20_000

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
    """One problem of one item of a batch: its index (0-based; the CSV import turns it into the
    file's line number), the field and what is wrong (Swedish)."""

    index: int
    field: str
    message: str


class BatchRejected(Exception):
    """Nothing was saved: ``problems`` lists every problem of every item."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problems")


def parse_time(value) -> time:
    """A "HH:MM" (or "H.MM") wall-clock time; ValueError (Swedish) else."""
    match = TIME_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError("Ange tiden som TT:MM, t.ex. 23:00")
    return time(int(match.group(1)), int(match.group(2)))


def format_time(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


# --- validation ---------------------------------------------------------------------------------


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
        number = whole_number(text, low=0, high=6) if len(text) == 1 else None
        if number is not None:
            days.add(number)
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
        if isinstance(provider_id, str):
            provider_id = record_id(provider_id)
        if isinstance(provider_id, bool) or not isinstance(provider_id, int) or not 1 <= provider_id <= MAX_ID:
            raise ValueError("Ange utförarens id som ett heltal")
        provider = db_session.get(Provider, provider_id)
    elif isinstance(name, str) and name.strip():
        wanted = " ".join(name.split()).casefold()
        digits = re.sub(r"[\s-]", "", wanted)
        for candidate in db_session.scalars(select(Provider).order_by(Provider.id)):
            number = (candidate.organisation_number or "").replace("-", "")
            if " ".join(candidate.name.split()).casefold() == wanted or (
                re.fullmatch(r"[0-9]{10}", digits) and number == digits
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
    elif refusal(area):
        errors["area"] = refusal(area)
    elif len(normalise_area(area)) > AREA_MAX:
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
