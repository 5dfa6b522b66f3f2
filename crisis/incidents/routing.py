"""An incident's way to the people: routing it, alerting, escalating, acknowledging.

Who is responsible and how an alert reaches a person are :mod:`crisis.oncall`'s rules; this module
applies them to an incident and writes each step on its timeline.

Routing
    A new incident goes to the party the calendar names at its arrival (:func:`worktime.calendar.responsible_at`):
    the team in office hours, the on-call officer (TIB) outside them — the officer being whoever
    the roster (:mod:`crisis.oncall.roster`) has on call then. The party is alerted at once by SMS and
    e-mail with a link to the incident (``crisis.alert``, urgent): the team on its mailbox and duty
    phone (``TEAM_EMAIL``/``TEAM_MOBILE``), the officer on the e-mail and mobile of their account.
    The alert and the escalation's alerts page their person by their rules until acknowledged
    (reminders, phone calls: :mod:`crisis.oncall.paging`; :func:`page_text` says what they say).

Escalation (on-call only)
    The alert is :class:`~crisis.oncall.models.Alert` step 0 (reason ``routed``). If the incident is not
    acknowledged within ``acknowledge_minutes``, the scheduled task ``crisis.escalate`` alerts
    step 1, the backup (the next member on the roster), and ``acknowledge_minutes`` later step 2,
    the manager (``manager_username``). A step whose person does not exist (nobody else on the
    roster, no manager configured) or was alerted already is skipped. Each step is on the
    timeline (``escalated``). The chain stops when the incident is acknowledged, closed, or
    handed over to the team at the start of office hours (the handover alerts the team). With an
    empty roster the on-call alert goes to the team's mailbox and phone instead.

Acknowledging
    ``POST /incidents/<id>/acknowledge`` (team, on-call officer, admin): the incident is taken
    (status ``open``), its open alerts are acknowledged and the pending escalation stops. The same
    happens when the person alerted replies "1" to the alert's SMS (or presses 1 on the paging's
    call): :func:`crisis.oncall.acknowledge.acknowledge_alert` hands the alert to the acknowledger
    registered here for ``routed``, and the timeline's ``acknowledged`` step says ``via`` "sms" (or
    "call"). How a reply is matched to a staff member and an alert is :mod:`crisis.oncall.sms_replies`.

Every alert is at most once per (incident, reason, step): the unique constraint on ``alerts`` and
the message idempotency key ``crisis-alert:<incident>:<reason>:<step>`` keep a retried task or
two concurrent requests from alerting twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Blueprint, current_app, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import Role
from contacts.register import SERVICE_LABELS
from core.clock import current_clock
from core.extensions import db
from crisis.incidents import timeline
from crisis.incidents.letter_texts import plain_title
from crisis.incidents.models import Incident, IncidentStatus
from crisis.oncall import alerts
from crisis.oncall.alerts import LAST_STEP, acknowledge_alerts, alerted_users, escalation_person, incident_alerts
from crisis.oncall.models import Alert, Handover, Party
from crisis.oncall.paging import PageText
from crisis.oncall.responsible import handler_user
from notifications.models import Channel
from scheduling.registry import task_handler
from scheduling.service import cancel, schedule
from worktime.calendar import responsible_at

log = logging.getLogger(__name__)
bp = Blueprint("routing", __name__)

ALERT_KIND = "crisis.alert"
ESCALATE_TASK = "crisis.escalate"
ROUTED = "routed"


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _settings():
    return current_app.extensions["krisrutin.settings"]


def incident_words(incident: Incident) -> str:
    """The incident in an SMS reply, a reminder or a spoken answer (Swedish, as every staff SMS):
    'driftstörning "GSM-nätet nere"', the title without a label it starts with ("Driftstörning:")."""
    return f'driftstörning "{plain_title(incident.title)}"'


def incident_link(incident_id: int) -> str:
    return f"{_settings().public_base_url.rstrip('/')}/incidents/{incident_id}"


def alert(db_session: Session, incident: Incident, *, step: int, context: dict, event: str = "alerted", **rest):
    """Alert one person (``user``) or the team's mailbox and phone (``user`` None) about
    ``incident`` with :func:`crisis.oncall.alerts.alert` (``reason``, ``party``, ``user``, ``kind``
    and ``now`` as there; the incident, its service and link added to the message's context), and
    put the step on the timeline as ``event`` (``alerted``, or ``escalated``). None when this
    (incident, reason, step) was alerted already. Does not commit."""
    row = alerts.alert(
        db_session,
        incident_id=incident.id,
        step=step,
        context={
            "incident": incident,
            "service": SERVICE_LABELS.get(incident.service, incident.service),
            "link": incident_link(incident.id),
            "step": step,
            **context,
        },
        **rest,
    )
    if row is not None:
        reason = {"reason": row.reason} if event == "alerted" else {}
        detail = {"alert_id": row.id, **reason, "step": step, "user_id": row.user_id}
        timeline.record(db_session, incident.id, event, rest["now"], party=row.party, **detail)
    return row


def route_incident(db_session: Session, incident: Incident, now: datetime) -> None:
    """Give a new incident (already flushed, so it has an id) to the party the calendar names at
    ``now`` and alert it; on call, schedule the escalation. Does not commit."""
    policy = _policy()
    party = responsible_at(now, policy).responsible
    officer = handler_user(db_session, party, now)
    incident.party = party
    incident.party_since = now
    incident.handler_user_id = officer.id if officer else None
    timeline.record(db_session, incident.id, "routed", now, party=party, user_id=incident.handler_user_id)
    alert(
        db_session,
        incident,
        reason=ROUTED,
        step=0,
        party=party,
        user=officer,
        kind=ALERT_KIND,
        context={"escalation": False},
        now=now,
        page=True,
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
        person = escalation_person(db_session, step, now)
        if person is not None and person.id not in alerted_users(db_session, incident.id, ROUTED):
            alert(
                db_session,
                incident,
                reason=ROUTED,
                step=step,
                party=incident.party,
                user=person,
                kind=ALERT_KIND,
                context={"escalation": True},
                event="escalated",
                now=now,
                page=True,
            )
            if step < LAST_STEP:
                _schedule_step(db_session, incident.id, step + 1, now)
            return
        step += 1  # nobody for this step: go on with the next at once


def acknowledge_incident(
    db_session: Session, incident: Incident, user: User | None, now: datetime, *, via: str = "web"
) -> bool:
    """The handling party takes the incident (``user`` None: from the team's duty phone); False if
    it was acknowledged already. ``via``: "web", "sms" or "call", on the timeline. Does not commit."""
    user_id = user.id if user is not None else None
    result = db_session.execute(
        update(Incident)
        .where(Incident.id == incident.id, Incident.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=user_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db_session.refresh(incident)
    if incident.status == IncidentStatus.NEW.value:
        incident.status = IncidentStatus.OPEN.value
    acknowledge_alerts(db_session, incident_id=incident.id, user_id=user_id, now=now)
    for step in range(1, LAST_STEP + 1):
        cancel(db_session=db_session, kind=ESCALATE_TASK, key=f"{incident.id}:{ROUTED}:{step}", now=now)
    via_detail = {"via": via} if via != "web" else {}
    timeline.record(db_session, incident.id, "acknowledged", now, actor_id=user_id, party=incident.party, **via_detail)
    return True


def _acknowledge_routed(db_session: Session, alert: Alert, user: User | None, via: str, now: datetime) -> str | None:
    """An incident's alert (routed, or an escalation step) answered by SMS or a call: the incident
    is taken as with the page's button. The words name the incident for the reply."""
    incident = db_session.get(Incident, alert.incident_id)
    if incident is None:
        return None
    if not acknowledge_incident(db_session, incident, user, now, via=via):
        acknowledge_alerts(db_session, incident_id=incident.id, user_id=user.id if user else None, now=now)
    return incident_words(incident)


def page_text(db_session: Session, alert: Alert) -> PageText | None:
    """What the paging steps of an incident's alert say (a call naming the incident, a reminder
    with its link); None once the incident needs no more paging: acknowledged, closed, or handed
    over to the other party (who has their own alert)."""
    incident = db_session.get(Incident, alert.incident_id)
    if incident is None or not incident.is_open or incident.acknowledged_at is not None:
        return None
    if incident.party != alert.party:
        return None
    context = {
        "incident": incident,
        "service": SERVICE_LABELS.get(incident.service, incident.service),
        "link": incident_link(incident.id),
        "step": alert.step,
        "escalation": alert.step > 0,
    }
    return PageText(ALERT_KIND, context, incident_words(incident), incident_link(incident.id))


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
    if request.args.get("next") == "start":  # the button on the start page's task list
        return redirect(url_for("accounts.index"))
    return redirect(url_for("incidents.detail", incident_id=incident_id))


def notify_handler(
    db_session: Session,
    incident: Incident,
    *,
    reason: str,
    kind: str,
    context: dict,
    now: datetime,
    channels: tuple[Channel, ...] | None = None,
) -> list[Alert]:
    """Tell the party handling ``incident`` something (an update is due, a letter is on the call
    list, ...): message ``kind`` rendered with ``context`` (plus ``incident`` and ``link``) by
    e-mail and SMS to the on-call officer on duty, or to the team's mailbox and duty phone; an
    :class:`~crisis.incidents.models.Alert` with ``reason`` and an ``alerted`` step on the timeline. The
    same ``reason`` twice for one incident alerts once. ``channels``: fewer than SMS and e-mail
    (see :func:`crisis.oncall.alerts.alert`). Returns the alerts created. Does not commit."""
    party = incident.party
    user = handler_user(db_session, party, now)
    more = {"channels": channels} if channels else {}
    row = alert(
        db_session,
        incident,
        reason=reason,
        step=0,
        party=party,
        user=user,
        kind=kind,
        context=context,
        now=now,
        **more,
    )
    if row is None:
        return []
    return [row]


# --- for the incident page -----------------------------------------------------------------------


def panel(db_session: Session, incident: Incident) -> dict:
    """What the routing panel shows: the officer, the alerts with their people, the handovers."""
    alerts = incident_alerts(db_session, incident.id)
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
    from crisis.incidents import handover
    from crisis.oncall.acknowledge import register_acknowledger
    from crisis.oncall.alerts import HANDOVER_REASON_PREFIX
    from crisis.oncall.paging import register_page_text

    register_acknowledger(app, ROUTED, _acknowledge_routed)
    register_page_text(app, ROUTED, page_text)  # an unacknowledged incident's calls and reminders
    register_page_text(app, HANDOVER_REASON_PREFIX, handover.page_text)  # an unacknowledged handover's

    @app.context_processor
    def _routing_panel():
        return {"routing_panel": lambda incident: panel(db.session, incident)}
