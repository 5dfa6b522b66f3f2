"""Who handles an incident, alerting them, escalation, and acknowledging.

Routing
    A new incident goes to the party the calendar names at its arrival (:func:`worktime.calendar.responsible_at`):
    the team in office hours, the on-call officer (TIB) outside them — the officer being whoever
    the roster (:mod:`crisis.roster`) has on call then. The party is alerted at once by SMS and
    e-mail with a link to the incident (``crisis.alert``, urgent): the team on its mailbox and duty
    phone (``TEAM_EMAIL``/``TEAM_MOBILE``), the officer on the e-mail and mobile of their account.

Escalation (on-call only)
    The alert is :class:`~crisis.models.Alert` step 0 (reason ``routed``). If the incident is not
    acknowledged within ``acknowledge_minutes``, the scheduled task ``crisis.escalate`` alerts
    step 1, the backup (the next member on the roster), and ``acknowledge_minutes`` later step 2,
    the manager (``manager_username``). A step whose person does not exist (nobody else on the
    roster, no manager configured) or was alerted already is skipped. Each step is on the
    timeline (``escalated``). The chain stops when the incident is acknowledged, closed, or
    handed over to the team at the start of office hours (the handover alerts the team). With an
    empty roster the on-call alert goes to the team's mailbox and phone instead.

Acknowledging
    ``POST /incidents/<id>/acknowledge`` (team, on-call officer, admin): the incident is taken
    (status ``open``), its open alerts are acknowledged and the pending escalation stops. Acknowledging
    by SMS reply is not offered: inbound SMS are matched to contact persons (notifications.inbound),
    and staff are users, not contact persons.

Every alert is at most once per (incident, reason, step): the unique constraint on ``alerts`` and
the message idempotency key ``crisis-alert:<incident>:<reason>:<step>`` keep a retried task or
two concurrent requests from alerting twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Blueprint, current_app, flash, g, redirect, url_for
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import Role
from contacts.register import SERVICE_LABELS
from core.clock import current_clock
from core.extensions import db
from crisis import roster, timeline
from crisis.models import Alert, Incident, IncidentStatus, Party
from notifications.models import Channel, Priority
from notifications.service import send
from scheduling.registry import task_handler
from scheduling.service import cancel, schedule
from worktime.calendar import responsible_at

log = logging.getLogger(__name__)
bp = Blueprint("routing", __name__)

ALERT_KIND = "crisis.alert"
ESCALATE_TASK = "crisis.escalate"
ROUTED = "routed"
LAST_STEP = 2  # 0 the handling party, 1 the backup, 2 the manager


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _settings():
    return current_app.extensions["krisrutin.settings"]


def incident_link(incident_id: int) -> str:
    return f"{_settings().public_base_url.rstrip('/')}/incidents/{incident_id}"


def team_addresses() -> tuple[str | None, str | None]:
    settings = _settings()
    return settings.team_email, settings.team_mobile


def alert(
    db_session: Session,
    incident: Incident,
    *,
    reason: str,
    step: int,
    party: str,
    user: User | None,
    kind: str,
    context: dict,
    now: datetime,
) -> Alert | None:
    """Alert one person (``user``) or the team's mailbox and phone (``user`` None) about
    ``incident``: an :class:`Alert` row and its SMS and e-mail (urgent, ``ref=("alert", id)``).
    None when this (incident, reason, step) was alerted already. Does not commit."""
    existing = db_session.scalars(
        select(Alert).where(Alert.incident_id == incident.id, Alert.reason == reason, Alert.step == step)
    ).first()
    if existing is not None:
        return None
    row = Alert(
        incident_id=incident.id, reason=reason, step=step, party=party, user_id=user.id if user else None, sent_at=now
    )
    try:
        with db_session.begin_nested():
            db_session.add(row)
            db_session.flush()
    except IntegrityError:  # alerted concurrently by another transaction
        return None
    if user is not None:
        to_email, to_mobile = user.email, user.mobile
    else:
        to_email, to_mobile = team_addresses()
    send(
        db_session=db_session,
        kind=kind,
        context={
            "incident": incident,
            "service": SERVICE_LABELS.get(incident.service, incident.service),
            "link": incident_link(incident.id),
            "step": step,
            **context,
        },
        channels=(Channel.SMS, Channel.EMAIL),
        priority=Priority.URGENT,
        idempotency_key=f"crisis-alert:{incident.id}:{reason}:{step}",
        now=now,
        to_email=to_email,
        to_mobile=to_mobile,
        ref=("alert", row.id),
    )
    if not to_email and not to_mobile:
        log.warning("alert without any address", extra={"alert_id": row.id, "incident_id": incident.id})
    return row


def _handler_user(db_session: Session, party: str, now: datetime) -> User | None:
    return roster.on_call_at(db_session, now) if party == Party.ON_CALL.value else None


def route_incident(db_session: Session, incident: Incident, now: datetime) -> None:
    """Give a new incident (already flushed, so it has an id) to the party the calendar names at
    ``now`` and alert it; on call, schedule the escalation. Does not commit."""
    policy = _policy()
    party = responsible_at(now, policy).responsible
    officer = _handler_user(db_session, party, now)
    incident.party = party
    incident.party_since = now
    incident.handler_user_id = officer.id if officer else None
    timeline.record(db_session, incident.id, "routed", now, party=party, user_id=incident.handler_user_id)
    row = alert(
        db_session,
        incident,
        reason=ROUTED,
        step=0,
        party=party,
        user=officer,
        kind=ALERT_KIND,
        context={"escalation": False},
        now=now,
    )
    if row is not None:
        timeline.record(
            db_session,
            incident.id,
            "alerted",
            now,
            party=party,
            alert_id=row.id,
            reason=ROUTED,
            step=0,
            user_id=row.user_id,
        )
    if party == Party.ON_CALL.value:
        _schedule_step(db_session, incident.id, 1, now)


def _schedule_step(db_session: Session, incident_id: int, step: int, now: datetime) -> None:
    minutes = _policy().crisis.acknowledge_minutes
    schedule(
        db_session=db_session,
        kind=ESCALATE_TASK,
        key=f"{incident_id}:{ROUTED}:{step}",
        due_at=now + timedelta(minutes=minutes),
        payload={"incident_id": incident_id, "step": step},
        now=now,
    )


@task_handler(ESCALATE_TASK)
def escalate(db_session: Session, task, now: datetime) -> None:
    """Nobody acknowledged in time: alert the next step (backup, then manager)."""
    incident = db_session.get(Incident, task.payload["incident_id"])
    step = int(task.payload["step"])
    if incident is None or incident.acknowledged_at is not None or not incident.is_open:
        return
    if incident.party != Party.ON_CALL.value:
        return  # handed over to the team meanwhile: the team was alerted by the handover
    while step <= LAST_STEP:
        person = roster.backup_at(db_session, now) if step == 1 else roster.manager(db_session, _policy())
        alerted_before = set(
            db_session.scalars(select(Alert.user_id).where(Alert.incident_id == incident.id, Alert.reason == ROUTED))
        )
        if person is not None and person.id not in alerted_before:
            row = alert(
                db_session,
                incident,
                reason=ROUTED,
                step=step,
                party=incident.party,
                user=person,
                kind=ALERT_KIND,
                context={"escalation": True},
                now=now,
            )
            if row is not None:
                timeline.record(
                    db_session,
                    incident.id,
                    "escalated",
                    now,
                    party=incident.party,
                    alert_id=row.id,
                    step=step,
                    user_id=person.id,
                )
            if step < LAST_STEP:
                _schedule_step(db_session, incident.id, step + 1, now)
            return
        step += 1  # nobody for this step: go on with the next at once


def acknowledge_incident(db_session: Session, incident: Incident, user: User, now: datetime) -> bool:
    """The handling party takes the incident; False if it was acknowledged already. Does not commit."""
    result = db_session.execute(
        update(Incident)
        .where(Incident.id == incident.id, Incident.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=user.id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db_session.refresh(incident)
    if incident.status == IncidentStatus.NEW.value:
        incident.status = IncidentStatus.OPEN.value
    db_session.execute(
        update(Alert)
        .where(Alert.incident_id == incident.id, Alert.acknowledged_at.is_(None), ~Alert.reason.like("handover:%"))
        .values(acknowledged_at=now, acknowledged_by_id=user.id)
        .execution_options(synchronize_session=False)
    )
    for step in range(1, LAST_STEP + 1):
        cancel(db_session=db_session, kind=ESCALATE_TASK, key=f"{incident.id}:{ROUTED}:{step}", now=now)
    timeline.record(db_session, incident.id, "acknowledged", now, actor_id=user.id, party=incident.party)
    return True


@bp.post("/incidents/<int:incident_id>/acknowledge")
@roles_required(Role.TEAM, Role.ON_CALL, Role.ADMIN)
def acknowledge(incident_id: int):
    """Take the incident: the alerts stop."""
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        from flask import abort

        abort(404, description=_("Störningen finns inte."))
    if acknowledge_incident(db.session, incident, g.user, current_clock().now()):
        db.session.commit()
        flash(_("Du har kvitterat störningen."), "success")
    else:
        db.session.rollback()
        flash(_("Störningen var redan kvitterad."), "info")
    return redirect(url_for("incidents.detail", incident_id=incident_id))


def notify_handler(
    db_session: Session, incident: Incident, *, reason: str, kind: str, context: dict, now: datetime
) -> list[Alert]:
    """Tell the party handling ``incident`` something (an update is due, a letter is on the call
    list, ...): message ``kind`` rendered with ``context`` (plus ``incident`` and ``link``) by
    e-mail and SMS to the on-call officer on duty, or to the team's mailbox and duty phone; an
    :class:`~crisis.models.Alert` with ``reason`` and an ``alerted`` step on the timeline. The
    same ``reason`` twice for one incident alerts once. Returns the alerts created. Does not commit."""
    party = incident.party
    user = _handler_user(db_session, party, now)
    row = alert(
        db_session, incident, reason=reason, step=0, party=party, user=user, kind=kind, context=context, now=now
    )
    if row is None:
        return []
    timeline.record(
        db_session,
        incident.id,
        "alerted",
        now,
        party=party,
        alert_id=row.id,
        reason=reason,
        step=0,
        user_id=row.user_id,
    )
    return [row]


# --- for the incident page -----------------------------------------------------------------------


def panel(db_session: Session, incident: Incident) -> dict:
    """What the routing panel shows: the officer, the alerts with their people, the handovers."""
    from crisis.models import Handover

    alerts = list(db_session.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.id)))
    handovers = list(
        db_session.scalars(select(Handover).where(Handover.incident_id == incident.id).order_by(Handover.id))
    )
    user_ids = {a.user_id for a in alerts} | {a.acknowledged_by_id for a in alerts}
    user_ids |= {incident.handler_user_id, incident.acknowledged_by_id}
    user_ids |= {h.from_user_id for h in handovers} | {h.to_user_id for h in handovers}
    user_ids.discard(None)
    users = (
        {u.id: u.display_name for u in db_session.scalars(select(User).where(User.id.in_(user_ids)))}
        if user_ids
        else {}
    )
    return {"alerts": alerts, "handovers": handovers, "users": users}


def init_app(app) -> None:
    @app.context_processor
    def _routing_panel():
        return {"routing_panel": lambda incident: panel(db.session, incident)}
