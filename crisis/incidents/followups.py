"""Keeping an incident going "continuously", through the scheduler tick.

The planner ``crisis.incidents.followups`` runs at every tick and, for every open incident, schedules
(idempotently: a task's key names what it is about, so it is created once):

- ``crisis.update_due``: no letter has gone out for ``update_interval_minutes`` (planned work:
  ``planned_update_interval_minutes``) since the last letter, or since the incident was created
  when none has (planned work: counted from its start at the earliest, so announced work is not
  "due an update" every day for the weeks before it begins): the handling party is reminded to
  send an update (``notify_handler`` with reason ``update_due:<letter number>.<intervals>``, an
  ``update_due`` step). Once per interval: after two intervals without a letter, a second
  reminder. Alert fatigue: once the incident is acknowledged the reminder goes by e-mail only
  (SMS too with ``update_due_sms_after_acknowledge``), and :func:`updates_due` gives the start
  page what is due.
- ``crisis.expected_end``: the supplier's expected end has passed without a resolution letter:
  the handling party is prompted (reason ``expected_end:<iso>``), and the supplier is asked for
  a new estimate — by e-mail (``crisis.estimate.request``) when it has an address, and through
  the API (the ``estimate_requested`` step, which the API shows) when it has an API user. Once
  per expected end value: a new estimate that passes too is asked about again.
- ``crisis.planned_reminder``: planned work whose first letter has gone out gets a reminder
  letter (``LetterKind.PLANNED_REMINDER``) at 08:00 local on the working day before the work
  starts, to the providers that got the first letter. Not when the first letter went out after
  that moment (it is fresh), nor once the work has started or the incident has closed.

Every handler checks again when it runs (the incident may have closed, a letter gone out, the
times changed since the task was planned) and does nothing when its reason has gone.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.local_time import local_text
from crisis.incidents import timeline
from crisis.incidents.letters import first_letter, letters_of, send_letter
from crisis.incidents.models import OPEN_STATUSES, Incident, LetterKind
from notifications.models import Channel, Priority
from notifications.service import send
from scheduling.registry import planner, task_handler
from scheduling.service import schedule
from worktime.calendar import SEARCH_DAYS, is_working_day

log = logging.getLogger(__name__)

PLANNER = "crisis.followups"
UPDATE_DUE_TASK = "crisis.update_due"
EXPECTED_END_TASK = "crisis.expected_end"
PLANNED_REMINDER_TASK = "crisis.planned_reminder"
ESTIMATE_KIND = "crisis.estimate.request"
PLANNED_REMINDER_TIME = time(8, 0)


def _policy():
    return current_app.extensions["krisrutin.routine"]


# --- the calendar ---------------------------------------------------------------------------------


def previous_working_day(day: date, policy) -> date:
    """The last working day before ``day``."""
    candidate = day - timedelta(days=1)
    for _ in range(SEARCH_DAYS):
        if is_working_day(candidate, policy):
            return candidate
        candidate -= timedelta(days=1)
    raise ValueError(f"no working day within {SEARCH_DAYS} days before {day.isoformat()}")


def planned_reminder_at(starts_at: datetime, policy) -> datetime:
    """08:00 local on the working day before the local day ``starts_at`` falls on (UTC)."""
    day = previous_working_day(starts_at.astimezone(policy.timezone).date(), policy)
    return datetime.combine(day, PLANNED_REMINDER_TIME, tzinfo=policy.timezone).astimezone(UTC)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="minutes")


# --- planning --------------------------------------------------------------------------------------


def update_interval(incident: Incident, policy) -> timedelta:
    crisis = policy.crisis
    minutes = crisis.planned_update_interval_minutes if incident.planned else crisis.update_interval_minutes
    return timedelta(minutes=minutes)


@planner(PLANNER)
def plan_followups(db_session: Session, now: datetime) -> None:
    """Schedule the due follow-ups of every open incident (see the module docstring)."""
    policy = _policy()
    incidents = db_session.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES)).order_by(Incident.id))
    for incident in incidents:
        letters = letters_of(db_session, incident.id)
        _plan_update_due(db_session, incident, letters, policy, now)
        _plan_expected_end(db_session, incident, now)
        _plan_planned_reminder(db_session, incident, letters, policy, now)


def update_due_since(incident: Incident) -> datetime | None:
    """Since when an update is counted: the last letter (or the incident's creation); for planned
    work not before it starts (until then the reminder letter the day before is the update)."""
    since = incident.last_letter_at or incident.created_at
    if incident.planned and incident.starts_at is not None:
        since = max(since, incident.starts_at)
    return since


def _plan_update_due(db_session: Session, incident: Incident, letters, policy, now: datetime) -> None:
    since = update_due_since(incident)
    if now < since:
        return
    interval = update_interval(incident, policy)
    intervals = int((now - since) / interval)
    if intervals < 1:
        return
    number = letters[-1].number if letters else 0
    schedule(
        db_session=db_session,
        kind=UPDATE_DUE_TASK,
        key=f"{incident.id}:{number}:{intervals}",
        due_at=since + intervals * interval,
        payload={"incident_id": incident.id, "letter_number": number, "intervals": intervals},
        now=now,
    )


def _plan_expected_end(db_session: Session, incident: Incident, now: datetime) -> None:
    if incident.expected_end_at is None or now < incident.expected_end_at:
        return
    schedule(
        db_session=db_session,
        kind=EXPECTED_END_TASK,
        key=f"{incident.id}:{_iso(incident.expected_end_at)}",
        due_at=incident.expected_end_at,
        payload={"incident_id": incident.id, "expected_end": _iso(incident.expected_end_at)},
        now=now,
    )


def _plan_planned_reminder(db_session: Session, incident: Incident, letters, policy, now: datetime) -> None:
    if not incident.planned or incident.starts_at is None or now >= incident.starts_at:
        return
    first = next((letter for letter in letters if letter.kind == LetterKind.FIRST.value), None)
    if first is None:
        return
    due = planned_reminder_at(incident.starts_at, policy)
    if first.sent_at >= due:
        return
    schedule(
        db_session=db_session,
        kind=PLANNED_REMINDER_TASK,
        key=f"{incident.id}:{_iso(incident.starts_at)}",
        due_at=due,
        payload={"incident_id": incident.id, "starts_at": _iso(incident.starts_at)},
        now=now,
    )


# --- the tasks -------------------------------------------------------------------------------------


def _open_incident(db_session: Session, incident_id: int) -> Incident | None:
    incident = db_session.get(Incident, incident_id)
    return incident if incident is not None and incident.is_open else None


@task_handler(UPDATE_DUE_TASK)
def remind_update_due(db_session: Session, task, now: datetime) -> None:
    """Remind the handling party that an update is due (unless a letter has gone out since)."""
    incident = _open_incident(db_session, task.payload["incident_id"])
    if incident is None:
        return
    letters = letters_of(db_session, incident.id)
    if (letters[-1].number if letters else 0) != task.payload["letter_number"]:
        return
    from crisis.incidents.routing import notify_handler

    n = f"{task.payload['letter_number']}.{task.payload['intervals']}"
    since = update_due_since(incident)
    timeline.record(db_session, incident.id, "update_due", now, party=incident.party, n=n, since=_iso(since))
    notify_handler(
        db_session,
        incident,
        reason=f"update_due:{n}",
        kind="crisis.followup.update_due",
        context={"since": local_text(since)},
        now=now,
        channels=update_due_channels(incident, _policy()),
    )


def update_due_channels(incident: Incident, policy) -> tuple[Channel, ...]:
    """How an update-due reminder goes (alert fatigue): by SMS and e-mail until the handling party
    has acknowledged the incident (the escalation's rule); after that by e-mail only — it is on
    the start page too (:func:`updates_due`) — unless ``update_due_sms_after_acknowledge``."""
    if incident.acknowledged_at is None or policy.crisis.update_due_sms_after_acknowledge:
        return (Channel.SMS, Channel.EMAIL)
    return (Channel.EMAIL,)


def updates_due(db_session: Session, now: datetime) -> list[dict]:
    """Open incidents an update is due for at ``now`` (for the start page's task list), most
    overdue first: ``incident``, ``since`` (the last letter, or the start) and ``due_at``."""
    policy = _policy()
    rows = []
    for incident in db_session.scalars(select(Incident).where(Incident.status.in_(OPEN_STATUSES))):
        since = update_due_since(incident)
        due_at = since + update_interval(incident, policy)
        if due_at <= now:
            rows.append({"incident": incident, "since": since, "due_at": due_at})
    return sorted(rows, key=lambda row: (row["due_at"], row["incident"].id))


@task_handler(EXPECTED_END_TASK)
def ask_for_estimate(db_session: Session, task, now: datetime) -> None:
    """The expected end passed: prompt the handling party and ask the supplier."""
    incident = _open_incident(db_session, task.payload["incident_id"])
    expected = task.payload["expected_end"]
    if incident is None or incident.expected_end_at is None or _iso(incident.expected_end_at) != expected:
        return
    supplier = incident.supplier
    asked: list[str] = []
    if supplier is not None and supplier.is_active and supplier.email:
        send(
            db_session=db_session,
            kind=ESTIMATE_KIND,
            context={
                "supplier": supplier.name,
                "title": incident.title,
                "service": _service_label(incident.service),
                "expected_end": local_text(incident.expected_end_at),
            },
            channels=[Channel.EMAIL],
            priority=Priority.NORMAL if incident.planned else Priority.URGENT,
            idempotency_key=f"estimate:{incident.id}:{expected}",
            now=now,
            to_email=supplier.email,
            ref=("incident", incident.id),
        )
        asked.append("email")
    if supplier is not None and supplier.is_active and supplier.user_id is not None:
        asked.append("api")
    timeline.record(
        db_session,
        incident.id,
        "estimate_requested",
        now,
        party=incident.party,
        expected_end=expected,
        asked=asked,
        supplier_id=supplier.id if supplier is not None else None,
    )
    from crisis.incidents.routing import notify_handler

    notify_handler(
        db_session,
        incident,
        reason=f"expected_end:{expected}",
        kind="crisis.followup.expected_end",
        context={"expected_end": local_text(incident.expected_end_at), "asked": bool(asked)},
        now=now,
    )
    log.info("estimate requested", extra={"incident_id": incident.id, "asked": asked})


def _service_label(service: str) -> str:
    from contacts.register import SERVICE_LABELS

    return SERVICE_LABELS.get(service, service or "")


@task_handler(PLANNED_REMINDER_TASK)
def send_planned_reminder(db_session: Session, task, now: datetime) -> None:
    """The working day before planned work: remind the first letter's providers."""
    incident = _open_incident(db_session, task.payload["incident_id"])
    if incident is None or incident.starts_at is None or _iso(incident.starts_at) != task.payload["starts_at"]:
        return
    if now >= incident.starts_at:
        return  # the work has started: a reminder now would only confuse
    first = first_letter(db_session, incident.id)
    if first is None:
        return
    latest = letters_of(db_session, incident.id)[-1]
    body = f"Påminnelse: arbetet startar {local_text(incident.starts_at)}.\n\n{latest.body}"
    send_letter(
        db_session,
        incident,
        kind=LetterKind.PLANNED_REMINDER,
        subject=f"Påminnelse: {first.subject}"[:200],
        body=body,
        apply_local_routines=first.apply_local_routines,
        author_id=None,
        party=incident.party,
        now=now,
        provider_ids=[receipt.provider_id for receipt in first.receipts],
    )


__all__ = ["plan_followups", "planned_reminder_at", "previous_working_day"]
