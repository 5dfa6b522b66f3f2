"""The timed work of visits: escalation when a provider does not react, and overdue visits.

- At an alert's creation + ``visit_acknowledge_minutes``, an unacknowledged alert whose visits
  are not all closed is sent to the provider again and put on the call list of the party
  responsible by the calendar at that moment (:func:`crisis.oncall.responsible.responsible_party`),
  who is told by SMS and e-mail with a link to the call list.
- At each visit's ``due_at`` + ``visit_overdue_minutes``, if it is still open, the responsible
  party gets one message listing all the provider's overdue visits not yet reported. For a
  provider already on the call list these fold: at most one message per provider per
  ``visit_overdue_fold_minutes`` (alert fatigue: the party is phoning that provider anyway).

Both messages to the party are staff alerts (:func:`crisis.oncall.alerts.alert`, no incident but a
subject: ``("visit_alert", id)`` with reason ``visit_call_list``, ``("provider", id)`` with reason
``visit_overdue:<first visit id>``), so the party acknowledges them by replying "1" like every alert
(:mod:`crisis.visits.acknowledge`); the messages keep their idempotency keys and references.

Visits of an incident get ``visits_escalated`` on its timeline. Nothing here commits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.models import User
from contacts.models import Provider
from core.local_time import local_text
from crisis.incidents import timeline
from crisis.oncall import alerts
from crisis.oncall.responsible import Responsible, responsible_party
from crisis.visits.models import Visit, VisitAlert, VisitStatus
from crisis.visits.service import (
    ACK_TASK,
    CALLS_PATH,
    CHANNELS,
    DASHBOARD_PATH,
    ESCALATION_KIND,
    OVERDUE_KIND,
    OVERDUE_TASK,
    REF_TYPE,
    alert_provider,
    event,
    open_visits,
)
from scheduling.registry import task_handler
from scheduling.service import schedule

log = logging.getLogger(__name__)

# The staff alerts of visits (crisis.oncall.alerts, acknowledged like any alert): a provider on the
# call list, about its visit alert; overdue visits, about the provider, once per first visit.
CALL_LIST_REASON = "visit_call_list"
OVERDUE_REASON_PREFIX = "visit_overdue:"
OVERDUE_SUBJECT = "provider"


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _base_url() -> str:
    return current_app.extensions["krisrutin.settings"].public_base_url.rstrip("/")


def _tell_party(
    db_session: Session,
    party: Responsible,
    *,
    kind: str,
    context: dict,
    subject: tuple[str, int],
    reason: str,
    key: str,
    ref: tuple[str, object],
    now: datetime,
) -> bool:
    """Alert the responsible party about ``subject`` (a staff :class:`~crisis.oncall.models.Alert`,
    acknowledgeable by an SMS reply like every other), keeping the message's idempotency ``key``
    and ``ref``. False when the party has no address or was alerted about this already."""
    if not (party.email or party.mobile):
        log.warning("visits: the responsible party has no address", extra={"party": party.party, "kind": kind})
        return False
    user = db_session.get(User, party.user_id) if party.user_id is not None else None
    row = alerts.alert(
        db_session,
        subject=subject,
        reason=reason,
        step=0,
        party=party.party,
        user=user,
        kind=kind,
        context={
            **context,
            "name": party.name,
            "calls_link": f"{_base_url()}{CALLS_PATH}",
            "dashboard_link": f"{_base_url()}{DASHBOARD_PATH}",
        },
        channels=CHANNELS,
        idempotency_key=key,
        ref=ref,
        now=now,
    )
    return row is not None


# --- new visits -------------------------------------------------------------------------------------


def _alert_visits(db_session: Session, alert: VisitAlert) -> list[Visit]:
    ids = list(alert.visit_ids or [])
    if not ids:
        return []
    return list(db_session.scalars(select(Visit).where(Visit.id.in_(ids)).order_by(Visit.due_at, Visit.id)))


@task_handler(ACK_TASK)
def check_acknowledged(db_session: Session, task, now: datetime) -> None:
    """Not acknowledged in time: alert the provider again and call-list it with the party
    responsible now."""
    alert = db_session.get(VisitAlert, task.payload["alert_id"])
    if alert is None or alert.acknowledged_at is not None:
        return
    visits = _alert_visits(db_session, alert)
    still_open = [visit for visit in visits if visit.status == VisitStatus.OPEN.value]
    if not still_open:
        return  # every visit marked: nothing to chase
    provider = db_session.get(Provider, alert.provider_id)
    contacts = alert_provider(db_session, alert, now, again=True)
    alert.realerted_at = now
    event(
        db_session,
        "realerted",
        now,
        provider_id=alert.provider_id,
        incident_id=alert.incident_id,
        alert_id=alert.id,
        contacts=contacts,
    )
    party = responsible_party(db_session, now)
    alert.call_listed_at = now
    event(
        db_session,
        "call_listed",
        now,
        provider_id=alert.provider_id,
        incident_id=alert.incident_id,
        alert_id=alert.id,
        party=party.party,
        user_id=party.user_id,
    )
    _tell_party(
        db_session,
        party,
        kind=ESCALATION_KIND,
        context={
            "provider": provider.name,
            "count": len(still_open),
            "first_due": local_text(still_open[0].due_at),
            "alerted": local_text(alert.created_at),
        },
        subject=(REF_TYPE, alert.id),
        reason=CALL_LIST_REASON,
        key=f"visit_alert:{alert.id}:escalation",
        ref=(REF_TYPE, alert.id),
        now=now,
    )
    _record_escalation(db_session, still_open, now, party=party.party, step="call_list", alert_id=alert.id)
    log.info("visit alert escalated", extra={"alert_id": alert.id, "party": party.party})


def _record_escalation(db_session: Session, visits: list[Visit], now: datetime, **detail) -> None:
    """A ``visits_escalated`` step on the timeline of each incident the visits belong to."""
    per_incident: dict[int, int] = defaultdict(int)
    for visit in visits:
        if visit.incident_id is not None:
            per_incident[visit.incident_id] += 1
    for incident_id in sorted(per_incident):
        timeline.record(
            db_session,
            incident_id,
            "visits_escalated",
            now,
            provider_id=visits[0].provider_id,
            visits=per_incident[incident_id],
            **detail,
        )


def on_call_list(db_session: Session, provider_id: int) -> bool:
    """Whether the provider is on the call list: an alert call-listed, not acknowledged, with
    visits still open."""
    return (
        db_session.scalar(
            select(VisitAlert.id)
            .join(Visit, Visit.alert_id == VisitAlert.id)
            .where(
                VisitAlert.provider_id == provider_id,
                VisitAlert.call_listed_at.is_not(None),
                VisitAlert.acknowledged_at.is_(None),
                Visit.status == VisitStatus.OPEN.value,
            )
            .limit(1)
        )
        is not None
    )


def _last_overdue_report(db_session: Session, provider_id: int) -> datetime | None:
    return db_session.scalar(select(func.max(Visit.overdue_alerted_at)).where(Visit.provider_id == provider_id))


@task_handler(OVERDUE_TASK)
def check_overdue(db_session: Session, task, now: datetime) -> None:
    """A visit still open ``visit_overdue_minutes`` after it was due: tell the responsible party,
    with every overdue visit of that provider not yet reported (one message per provider). A
    provider already on the call list is told at most once per ``visit_overdue_fold_minutes``:
    what falls overdue in between waits for one folded message (task keyed ``fold:<provider>:<at>``,
    payload ``provider_id``)."""
    provider_id = task.payload.get("provider_id")
    if provider_id is None:
        visit = db_session.get(Visit, task.payload["visit_id"])
        if visit is None or visit.status != VisitStatus.OPEN.value or visit.overdue_alerted_at is not None:
            return
        provider_id = visit.provider_id
    policy = _policy()
    overdue_after = timedelta(minutes=policy.crisis.visit_overdue_minutes)
    overdue = [
        item
        for item in open_visits(db_session, provider_id)
        if item.overdue_alerted_at is None and item.due_at + overdue_after <= now
    ]
    if not overdue:
        return
    if on_call_list(db_session, provider_id):
        last = _last_overdue_report(db_session, provider_id)
        fold_until = last + timedelta(minutes=policy.crisis.visit_overdue_fold_minutes) if last else None
        if fold_until is not None and now < fold_until:
            schedule(
                db_session=db_session,
                kind=OVERDUE_TASK,
                key=f"fold:{provider_id}:{fold_until.astimezone(UTC):%Y%m%dT%H%M%SZ}",
                due_at=fold_until,
                payload={"provider_id": provider_id},
                now=now,
            )
            return
    provider = db_session.get(Provider, provider_id)
    party = responsible_party(db_session, now)
    for item in overdue:
        item.overdue_alerted_at = now
        event(
            db_session,
            "overdue",
            now,
            provider_id=item.provider_id,
            incident_id=item.incident_id,
            visit_id=item.id,
            alert_id=item.alert_id,
            party=party.party,
        )
    tz = policy.timezone
    _tell_party(
        db_session,
        party,
        kind=OVERDUE_KIND,
        context={
            "provider": provider.name,
            "count": len(overdue),
            "visits": [
                {"reference": item.client.reference, "due": item.due_at.astimezone(tz).strftime("%H:%M")}
                for item in overdue
            ],
        },
        subject=(OVERDUE_SUBJECT, provider_id),
        reason=f"{OVERDUE_REASON_PREFIX}{min(item.id for item in overdue)}",
        key=f"visit_overdue:{provider_id}:{min(item.id for item in overdue)}",
        ref=("visit_overdue", provider_id),
        now=now,
    )
    _record_escalation(db_session, overdue, now, party=party.party, step="overdue")
    log.info("overdue visits reported", extra={"provider_id": provider_id, "visits": len(overdue)})
