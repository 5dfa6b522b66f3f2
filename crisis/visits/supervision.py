"""Camera supervision: the schedules in, and failed supervisions out as visits.

Used by the API (:mod:`crisis.visits.api`), the visits part and the scheduler:

- :func:`supervisions_between`: a client's weekly schedules and exceptions as UTC instants
  (the clients and schedules themselves are validated and saved by
  :mod:`crisis.visits.clients`, shared by the API and the CSV import);
- :func:`report_failures` (the alarm operator's reports) and the planner
  ``crisis.visits.supervision`` (failures derived from an incident's window), both making one
  :class:`~crisis.visits.models.SupervisionFailure` and one :class:`~crisis.visits.models.Visit`
  per failed supervision and handing the new visits to :func:`crisis.visits.service.visits_created`.

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
  ``[starts_at, end)``: ``end`` is when the incident was closed, else the expected end (at most
  :data:`HORIZON`, 12 hours, ahead of now), so that each provider gets its night's visits in one
  alert and can plan its staff; without an expected end, :data:`LOOKAHEAD` (60 minutes) ahead
  of now, the window growing with every tick, as it does when the expected end is moved.
  Supervisions more than :data:`CATCH_UP` (24 hours) ago are not derived: a visit that late
  replaces nothing (the alarm operator may still report one). After the incident closes, nothing
  new is created for times after its end; the supervisions after the end go back to the alarm
  operator, recorded once on the timeline (``supervision_returned``, with how many fell in the
  remaining lookahead). Visits already created stay until the provider closes them.
- Reasons and references are not logged; a reference is pseudonymous, but logs need none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from core.local_time import clock_change, exists
from core.text import refusal
from crisis.incidents import timeline
from crisis.incidents.intake import parse_instant
from crisis.incidents.models import OPEN_STATUSES, Incident, IncidentEvent, IncidentProvider, IncidentStatus
from crisis.visits.clients import (
    ADD,
    MAX_BATCH,
    SKIP,
    BatchRejected,
    Problem,
    SupervisionError,
    area_key,
    find_client,
    parse_time,
)
from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitEvent, VisitStatus
from scheduling.registry import planner

log = logging.getLogger(__name__)

SERVICE = "camera_supervision"
LOOKAHEAD = timedelta(minutes=60)  # without an expected end, visits are derived this far ahead of now
HORIZON = timedelta(hours=12)  # never further ahead than this
CATCH_UP = timedelta(hours=24)  # supervisions further back are not derived
REPORT_WINDOW = timedelta(hours=24)  # a reported failure's time must lie within this of now
SNAP = timedelta(minutes=5)  # a reported time this close to a scheduled supervision is that one
REASON_MAX = 300
SOURCES = ("operator", "incident")


def _policy():
    return current_app.extensions["krisrutin.routine"]


# --- schedules as instants ---------------------------------------------------------------------


def local_instant(day: date, moment: time, tz) -> datetime:
    """The UTC instant of the wall-clock time ``moment`` on ``day`` in ``tz`` (see the module
    docstring: a time in the spring gap moves to the end of the gap; an ambiguous time is the
    first of its two instants)."""
    wall = datetime.combine(day, moment)
    if exists(wall, tz):
        return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)  # the first instant when it happens twice
    change, _before, _after = clock_change(wall, tz)
    return change


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
    from crisis.visits import service as visits_module  # the visits part owns the alerting

    visits_module.visits_created(db_session, visits, now)


def clean_failure(db_session: Session, item, *, now: datetime) -> dict:
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
    if not isinstance(reason, str):
        errors["reason"] = "Skriv orsaken som vanlig text"
    elif refusal(reason):
        errors["reason"] = refusal(reason)
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
    every problem before anything is written. Calls :func:`crisis.visits.service.visits_created` once
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
        # The whole window as it is known (a provider plans its night at once), at most HORIZON
        # ahead; without an expected end, LOOKAHEAD ahead of now, growing with every tick.
        end = min(incident.expected_end_at or now + LOOKAHEAD, now + HORIZON)
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
    handed to :func:`crisis.visits.service.visits_created`). Safe to run any number of times."""
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
