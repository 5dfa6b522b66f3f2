"""Handover: when office hours begin or end, open incidents pass between the team and the on-call officer.

At every scheduler tick the planner ``crisis.incidents.handover`` finds the last boundary of office hours
at or before now (07:45 Monday, 17:00 — 16:00 in June to August — ...) and, for every open
incident (``new``/``open``) whose party is not the one responsible now, schedules the task
``crisis.incidents.handover`` keyed ``<incident>:<boundary>``. The task does the work once: a
:class:`~crisis.incidents.models.Handover` (unique per incident and boundary, so ticks every minute or two
schedulers at once hand an incident over once) holding the history handed over (the timeline
and the letters so far), the incident's new party, a ``handover`` step on the timeline and an
alert to the receiving side (``crisis.incidents.handover`` with a link to ``/handovers/<id>``).

The handing-over side gets one note per boundary (task ``crisis.handover_summary``): at the start
of office hours the officer going off hears that the team has taken over (and which incidents); at
the end the team's mailbox and duty phone hear which open incidents the officer on call now has.
So each side hears once: one alert to the side that receives, one note to the side that hands over.

The receiving side acknowledges with ``POST /handovers/<id>/acknowledge``, or by replying "1" to the
alert's SMS (:func:`take_handover` either way: ``handover_acknowledged`` on the timeline, with
``via`` "sms" or "call" when not the page); if nobody has after ``handover_realert_minutes``, task
``crisis.handover_realert`` alerts once more.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import STAFF
from contacts.register import SERVICE_LABELS
from core.clock import current_clock
from core.extensions import db
from crisis.incidents import routing, timeline
from crisis.incidents.models import OPEN_STATUSES, Incident, IncidentEvent, Letter
from crisis.oncall.alerts import HANDOVER_REASON_PREFIX
from crisis.oncall.handovers import acknowledge_handover, alert_reason, last_boundary, may_acknowledge
from crisis.oncall.models import Alert, Handover, Party
from crisis.oncall.paging import PageText
from crisis.oncall.responsible import handler_user, team_addresses
from notifications.models import Channel, Priority
from notifications.service import send
from scheduling.registry import planner, task_handler
from scheduling.service import cancel, schedule
from worktime import calendar

log = logging.getLogger(__name__)
bp = Blueprint("handovers", __name__)

HANDOVER_TASK = "crisis.handover"
SUMMARY_TASK = "crisis.handover_summary"
REALERT_TASK = "crisis.handover_realert"
HANDOVER_KIND = "crisis.handover"
SUMMARY_KIND = "crisis.handover_given"


def _policy():
    return current_app.extensions["krisrutin.routine"]


def handover_link(handover_id: int) -> str:
    base = current_app.extensions["krisrutin.settings"].public_base_url.rstrip("/")
    return f"{base}/handovers/{handover_id}"


def _key(incident_id: int, boundary: datetime) -> str:
    return f"{incident_id}:{boundary.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@planner("crisis.handover")
def plan_handovers(db_session: Session, now: datetime) -> None:
    """Schedule the handover of every open incident held by the party not responsible now."""
    policy = _policy()
    responsible = calendar.responsible_at(now, policy).responsible
    boundary = last_boundary(now, policy)
    if boundary is None:
        return
    ids = list(
        db_session.scalars(
            select(Incident.id)
            .where(Incident.status.in_(OPEN_STATUSES), Incident.party != responsible)
            .order_by(Incident.id)
        )
    )
    if not ids:
        return
    for incident_id in ids:
        schedule(
            db_session=db_session,
            kind=HANDOVER_TASK,
            key=_key(incident_id, boundary),
            due_at=boundary,
            payload={"incident_id": incident_id, "boundary": boundary.isoformat(), "to_party": responsible},
            now=now,
        )
    # After the handovers (same due time, later id): tell the side that hands over.
    schedule(
        db_session=db_session,
        kind=SUMMARY_TASK,
        key=f"{boundary.astimezone(UTC):%Y%m%dT%H%M%SZ}",
        due_at=boundary,
        payload={"boundary": boundary.isoformat(), "to_party": responsible},
        now=now,
    )


def history(db_session: Session, incident: Incident) -> dict:
    """What is handed over: the timeline and the letters so far (JSON-ready)."""
    events = db_session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id)
        .order_by(IncidentEvent.at, IncidentEvent.id)
    )
    letters = db_session.scalars(select(Letter).where(Letter.incident_id == incident.id).order_by(Letter.number))
    return {
        "title": incident.title,
        "status": incident.status,
        "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
        "events": [
            {"at": e.at.isoformat(), "kind": e.kind, "party": e.party, "detail": e.detail or {}} for e in events
        ],
        "letters": [
            {"number": x.number, "kind": x.kind, "subject": x.subject, "sent_at": x.sent_at.isoformat()}
            for x in letters
        ],
    }


@task_handler(HANDOVER_TASK)
def hand_over(db_session: Session, task, now: datetime) -> None:
    incident = db_session.get(Incident, task.payload["incident_id"])
    to_party = task.payload["to_party"]
    boundary = datetime.fromisoformat(task.payload["boundary"])
    if incident is None or not incident.is_open or incident.party == to_party:
        return
    to_user = handler_user(db_session, to_party, now)
    row = Handover(
        incident_id=incident.id,
        boundary_at=boundary,
        from_party=incident.party,
        to_party=to_party,
        from_user_id=incident.handler_user_id,
        to_user_id=to_user.id if to_user else None,
        summary=history(db_session, incident),
        created_at=now,
    )
    try:
        with db_session.begin_nested():
            db_session.add(row)
            db_session.flush()
    except IntegrityError:  # handed over already at this boundary
        return
    incident.party = to_party
    incident.party_since = boundary
    incident.handler_user_id = row.to_user_id
    incident.updated_at = now
    timeline.record(
        db_session,
        incident.id,
        "handover",
        now,
        party=to_party,
        handover_id=row.id,
        from_party=row.from_party,
        to_party=to_party,
        user_id=row.to_user_id,
    )
    _alert(db_session, incident, row, step=0, now=now)
    schedule(
        db_session=db_session,
        kind=REALERT_TASK,
        key=str(row.id),
        due_at=now + timedelta(minutes=_policy().crisis.handover_realert_minutes),
        payload={"handover_id": row.id},
        now=now,
    )


def _alert(db_session: Session, incident: Incident, handover: Handover, *, step: int, now: datetime) -> None:
    user = db_session.get(User, handover.to_user_id) if handover.to_user_id else None
    routing.alert(
        db_session,
        incident,
        reason=alert_reason(handover.id),
        step=step,
        party=handover.to_party,
        user=user,
        kind=HANDOVER_KIND,
        context={"link": handover_link(handover.id), "to_party": handover.to_party, "realert": step > 0},
        now=now,
        page=True,
    )


def page_text(db_session: Session, alert: Alert) -> PageText | None:
    """What the paging steps of a handover's alert say; None once the handover is acknowledged
    or its incident closed."""
    handover_id = alert.reason.removeprefix(HANDOVER_REASON_PREFIX)
    handover = db_session.get(Handover, int(handover_id)) if handover_id.isdigit() else None
    if handover is None or handover.acknowledged_at is not None:
        return None
    incident = db_session.get(Incident, handover.incident_id)
    if incident is None or not incident.is_open:
        return None
    link = handover_link(handover.id)
    context = {
        "incident": incident,
        "service": SERVICE_LABELS.get(incident.service, incident.service),
        "link": link,
        "step": alert.step,
        "to_party": handover.to_party,
        "realert": alert.step > 0,
    }
    return PageText(HANDOVER_KIND, context, f"överlämning av {routing.incident_words(incident)}", link)


@task_handler(REALERT_TASK)
def realert(db_session: Session, task, now: datetime) -> None:
    handover = db_session.get(Handover, task.payload["handover_id"])
    if handover is None or handover.acknowledged_at is not None or handover.realerted_at is not None:
        return
    incident = db_session.get(Incident, handover.incident_id)
    if incident is None or not incident.is_open:
        return
    handover.realerted_at = now
    _alert(db_session, incident, handover, step=1, now=now)


@task_handler(SUMMARY_TASK)
def tell_handing_over_side(db_session: Session, task, now: datetime) -> None:
    """Once per boundary, one note to the side that hands over (the receiving side has its alert):
    at the start of office hours the officer going off hears that the team has it; at the end the
    team (its mailbox and duty phone) hears which incidents the officer on call has taken over."""
    boundary = datetime.fromisoformat(task.payload["boundary"])
    to_party = task.payload["to_party"]
    handovers = list(
        db_session.scalars(
            select(Handover)
            .where(Handover.boundary_at == boundary, Handover.to_party == to_party)
            .order_by(Handover.id)
        )
    )
    if not handovers:
        return
    items = []
    for h in handovers:
        incident = db_session.get(Incident, h.incident_id)
        items.append({"title": incident.title, "link": routing.incident_link(incident.id)})
    context = {"to_party": to_party, "incidents": items, "count": len(items)}
    for key, to_email, to_mobile in _handing_over_addresses(db_session, handovers, to_party):
        send(
            db_session=db_session,
            kind=SUMMARY_KIND,
            context=context,
            channels=(Channel.SMS, Channel.EMAIL),
            priority=Priority.URGENT,
            idempotency_key=f"crisis-handover-summary:{task.key}:{key}",
            now=now,
            to_email=to_email,
            to_mobile=to_mobile,
            ref=("handover", handovers[0].id),
        )


def _handing_over_addresses(db_session: Session, handovers: list[Handover], to_party: str):
    """(key, e-mail, mobile) of the side handing over: the officers who held the incidents when the
    team takes over (none when the team's addresses stood in for an empty roster: the team is the
    receiver), the team's mailbox and duty phone when the officer takes over."""
    if to_party == Party.ON_CALL.value:
        to_email, to_mobile = team_addresses()
        if to_email or to_mobile:
            yield "team", to_email, to_mobile
        return
    for user_id in sorted({h.from_user_id for h in handovers if h.from_user_id}):
        user = db_session.get(User, user_id)
        if user is not None:
            yield str(user_id), user.email, user.mobile


def take_handover(
    db_session: Session, handover: Handover, user: User | None, now: datetime, *, via: str = "web"
) -> bool:
    """The receiving side has the handover: acknowledged, no more reminder, and on the timeline
    (``handover_acknowledged``, with ``via`` unless it was the page). False when it was
    acknowledged already. Does not commit."""
    if not acknowledge_handover(db_session, handover, user, now):
        return False
    cancel(db_session=db_session, kind=REALERT_TASK, key=str(handover.id), now=now)
    timeline.record(
        db_session,
        handover.incident_id,
        "handover_acknowledged",
        now,
        actor_id=user.id if user is not None else None,
        party=handover.to_party,
        handover_id=handover.id,
        **({"via": via} if via != "web" else {}),
    )
    return True


def _acknowledge_by_reply(db_session: Session, alert: Alert, user: User | None, via: str, now: datetime) -> str | None:
    """A handover's alert answered by SMS or a call: the handover is taken as with the page's
    button. The words name the incident handed over (Swedish, as every staff SMS)."""
    handover = db_session.get(Handover, int(alert.reason.removeprefix(HANDOVER_REASON_PREFIX)))
    if handover is None:
        return None
    if not take_handover(db_session, handover, user, now, via=via):
        return None
    incident = db_session.get(Incident, handover.incident_id)
    return f"överlämning av {routing.incident_words(incident)}"


def init_app(app) -> None:
    from crisis.oncall.acknowledge import register_acknowledger

    register_acknowledger(app, HANDOVER_REASON_PREFIX, _acknowledge_by_reply)


# --- pages ---------------------------------------------------------------------------------------


def _handover(handover_id: int) -> Handover:
    handover = db.session.get(Handover, handover_id)
    if handover is None:
        abort(404, description=_("Överlämningen finns inte."))
    return handover


@bp.get("/handovers/<int:handover_id>")
@roles_required(*STAFF)
def page(handover_id: int):
    """The history handed over, and the acknowledge button for the receiving side."""
    handover = _handover(handover_id)
    incident = db.session.get(Incident, handover.incident_id)
    ids = {handover.from_user_id, handover.to_user_id, handover.acknowledged_by_id} - {None}
    users = {u.id: u.display_name for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return render_template(
        "incidents/handover.html",
        handover=handover,
        incident=incident,
        users=users,
        may_acknowledge=may_acknowledge(handover, g.user),
        events=[{**e, "at": datetime.fromisoformat(e["at"])} for e in handover.summary.get("events", [])],
        letters=[{**x, "sent_at": datetime.fromisoformat(x["sent_at"])} for x in handover.summary.get("letters", [])],
    )


@bp.post("/handovers/<int:handover_id>/acknowledge")
@roles_required(*STAFF)
def acknowledge(handover_id: int):
    """The receiving side has read the history and has the incident."""
    handover = _handover(handover_id)
    if not may_acknowledge(handover, g.user):
        abort(403, description=_("Bara den som tar emot överlämningen kan kvittera den."))
    if not take_handover(db.session, handover, g.user, current_clock().now()):
        db.session.rollback()
        flash(_("Överlämningen var redan kvitterad."), "info")
        if request.args.get("next") == "start":
            return redirect(url_for("accounts.index"))
        return redirect(url_for("handovers.page", handover_id=handover_id))
    db.session.commit()
    flash(_("Du har kvitterat överlämningen."), "success")
    if request.args.get("next") == "start":  # the button on the start page's task list
        return redirect(url_for("accounts.index"))
    return redirect(url_for("handovers.page", handover_id=handover_id))
