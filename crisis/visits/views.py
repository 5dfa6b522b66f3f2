"""The team's and the on-call officer's visit pages: the dashboard and the call list.

- ``/visits`` — like the start screen of a scheduling system: open visits due now (from
  ``visit_overdue_minutes`` ago to an hour ahead), overdue visits (still open
  ``visit_overdue_minutes`` after they were due), unacknowledged alerts, and per provider the
  counts (open, not acknowledged, overdue, closed in the last 24 hours). The page never reloads
  itself (WCAG 2.2.1: a reload under a reader's eyes, or a screen reader's, loses their place):
  it says when it was read ("Senast uppdaterad kl. HH:MM") and has an "Uppdatera" link (a GET).
  Its tables reflow to cards on a narrow screen (``.responsive-table`` in site.css).
- ``/visits/calls`` — one entry per provider whose alerts were not acknowledged in time
  (``call_listed_at``) and still have open visits: how many visits are open and overdue, when it
  was alerted, the last call; the provider's contacts' phone numbers and a form for the outcome of
  the call (recorded on the newest alert: ``called_at``, ``call_outcome``, a ``called`` visit
  event; "reached" acknowledges on the provider's behalf). An entry resolves when every visit of
  its alerts is marked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from accounts.access import roles_required
from accounts.roles import Role
from contacts.models import ContactPerson, Provider
from core import audit
from core.clock import current_clock
from core.extensions import db
from crisis.visits.models import Visit, VisitAlert, VisitStatus
from crisis.visits.provider_page import error_texts
from crisis.visits.service import CALL_OUTCOMES, VisitError, record_call

log = logging.getLogger(__name__)
bp = Blueprint("visit_views", __name__, template_folder="templates")

READERS = (Role.TEAM, Role.ON_CALL, Role.ADMIN)
DUE_AHEAD = timedelta(hours=1)


@dataclass
class ProviderCounts:
    provider: Provider
    open: int = 0
    unacknowledged: int = 0
    overdue: int = 0
    closed_recently: int = 0


def dashboard_data(db_session, now) -> dict:
    overdue_after = timedelta(minutes=current_app.extensions["krisrutin.routine"].crisis.visit_overdue_minutes)
    open_visits = list(
        db_session.scalars(select(Visit).where(Visit.status == VisitStatus.OPEN.value).order_by(Visit.due_at, Visit.id))
    )
    closed = list(
        db_session.scalars(
            select(Visit).where(Visit.status != VisitStatus.OPEN.value, Visit.marked_at >= now - timedelta(hours=24))
        )
    )
    provider_ids = {visit.provider_id for visit in open_visits + closed}
    alerts = list(
        db_session.scalars(
            select(VisitAlert)
            .where(VisitAlert.acknowledged_at.is_(None))
            .order_by(VisitAlert.created_at, VisitAlert.id)
        )
    )
    open_by_alert = defaultdict(int)
    for visit in open_visits:
        if visit.alert_id is not None:
            open_by_alert[visit.alert_id] += 1
    alerts = [alert for alert in alerts if open_by_alert[alert.id]]
    provider_ids |= {alert.provider_id for alert in alerts}
    providers = (
        {p.id: p for p in db_session.scalars(select(Provider).where(Provider.id.in_(provider_ids)))}
        if provider_ids
        else {}
    )
    counts = {pid: ProviderCounts(providers[pid]) for pid in provider_ids}
    overdue = [visit for visit in open_visits if visit.due_at + overdue_after <= now]
    due_now = [visit for visit in open_visits if now - overdue_after < visit.due_at <= now + DUE_AHEAD]
    for visit in open_visits:
        row = counts[visit.provider_id]
        row.open += 1
        row.unacknowledged += visit.acknowledged_at is None
        row.overdue += visit.due_at + overdue_after <= now
    for visit in closed:
        counts[visit.provider_id].closed_recently += 1
    return {
        "due_now": due_now,
        "overdue": overdue,
        "alerts": alerts,
        "open_by_alert": open_by_alert,
        "providers": providers,
        "counts": sorted(counts.values(), key=lambda row: row.provider.name.casefold()),
        "open_total": len(open_visits),
        "unacknowledged_total": sum(visit.acknowledged_at is None for visit in open_visits),
    }


@bp.get("/visits")
@roles_required(*READERS)
@audit.audited_view("visit", dashboard=True)
def dashboard():
    """Visits due now, overdue, unacknowledged, per provider, as read at ``now``."""
    now = current_clock().now()
    return render_template("visits/visit_dashboard.html", now=now, **dashboard_data(db.session, now))


# --- the call list ------------------------------------------------------------------------------------


@dataclass
class CallEntry:
    """One provider on the visits' call list, with what there is to call about now."""

    provider: Provider
    alerts: list  # its call-listed, unacknowledged alerts that still have open visits, oldest first
    contacts: list
    open: int = 0  # open visits of those alerts
    overdue: int = 0  # of them, still open ``visit_overdue_minutes`` after they were due

    @property
    def alert(self) -> VisitAlert:
        """The newest alert: the call is recorded on it ("reached" acknowledges them all)."""
        return self.alerts[-1]

    @property
    def first_alerted_at(self):
        return self.alerts[0].created_at

    @property
    def call_listed_at(self):
        return min(alert.call_listed_at for alert in self.alerts)

    @property
    def last_call(self) -> VisitAlert | None:
        called = [alert for alert in self.alerts if alert.called_at is not None]
        return max(called, key=lambda alert: alert.called_at) if called else None


def call_rows(db_session, now) -> list[CallEntry]:
    """One entry per provider to phone: providers with call-listed alerts not acknowledged whose
    visits are not all closed. An alert whose visits are all marked has nothing left to call about
    and drops out; a provider drops out when none is left."""
    overdue_after = timedelta(minutes=current_app.extensions["krisrutin.routine"].crisis.visit_overdue_minutes)
    alerts = list(
        db_session.scalars(
            select(VisitAlert)
            .where(VisitAlert.call_listed_at.is_not(None), VisitAlert.acknowledged_at.is_(None))
            .order_by(VisitAlert.created_at, VisitAlert.id)
        )
    )
    if not alerts:
        return []
    open_visits: dict[int, list[Visit]] = defaultdict(list)
    for visit in db_session.scalars(
        select(Visit).where(Visit.alert_id.in_([a.id for a in alerts]), Visit.status == VisitStatus.OPEN.value)
    ):
        open_visits[visit.alert_id].append(visit)
    by_provider: dict[int, list[VisitAlert]] = defaultdict(list)
    for alert in alerts:
        if open_visits[alert.id]:
            by_provider[alert.provider_id].append(alert)
    if not by_provider:
        return []
    providers = {p.id: p for p in db_session.scalars(select(Provider).where(Provider.id.in_(by_provider)))}
    contacts: dict[int, list[ContactPerson]] = defaultdict(list)
    for contact in db_session.scalars(
        select(ContactPerson)
        .where(ContactPerson.provider_id.in_(by_provider), ContactPerson.is_active.is_(True))
        .order_by(ContactPerson.name)
    ):
        contacts[contact.provider_id].append(contact)
    entries = []
    for provider_id, provider_alerts in by_provider.items():
        visits = [visit for alert in provider_alerts for visit in open_visits[alert.id]]
        entries.append(
            CallEntry(
                provider=providers[provider_id],
                alerts=provider_alerts,
                contacts=contacts[provider_id],
                open=len(visits),
                overdue=sum(visit.due_at + overdue_after <= now for visit in visits),
            )
        )
    return sorted(entries, key=lambda entry: (entry.call_listed_at, entry.provider.name.casefold()))


def _render_calls(*, errors=None, submitted=None, status=200):
    return render_template(
        "visits/visit_calls.html",
        rows=call_rows(db.session, current_clock().now()),
        errors={key: error_texts(problems) for key, problems in (errors or {}).items()},
        submitted=submitted or {},
        outcomes=CALL_OUTCOMES,
    ), status


@bp.get("/visits/calls")
@roles_required(*READERS)
@audit.audited_view("visit", calls=True)
def calls():
    """Whom to phone: providers that have not acknowledged their visits in time."""
    return _render_calls()


@bp.post("/visits/calls/<int:alert_id>")
@roles_required(*READERS)
def record_call_view(alert_id: int):
    alert = db.session.get(VisitAlert, alert_id)
    if alert is None:
        abort(404, description=_("Larmet finns inte."))
    outcome = request.form.get("outcome", "")
    note = request.form.get("note", "")
    try:
        record_call(db.session, alert, outcome=outcome, note=note, user_id=g.user.id, now=current_clock().now())
    except VisitError as error:
        db.session.rollback()
        return _render_calls(
            errors={alert.provider_id: error.errors},
            submitted={alert.provider_id: {"outcome": outcome, "note": note}},
            status=400,
        )
    db.session.commit()
    log.info("visit call recorded", extra={"alert_id": alert.id, "outcome": outcome})
    flash(_("Samtalet är registrerat."), "success")
    return redirect(url_for("visit_views.calls"), code=303)
