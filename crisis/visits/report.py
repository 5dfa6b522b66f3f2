"""The visits' report: per provider, for one incident or one month — the basis for following up
and for compensating the providers' extra work.

Per provider: supervisions failed (:class:`~crisis.visits.models.SupervisionFailure` rows), visits,
done and their delay against the scheduled time (``done_at - due_at``; median and max; negative
when a visit was made before it was due), not done with the count per reason, still open.

- ``?incident=<id>``: the failures and visits of that incident;
- ``?month=YYYY-MM`` (default: this month): failures scheduled and visits due in that local month
  (Europe/Stockholm), whatever their incident (also those the alarm operator reported alone).

``&format=csv`` downloads the same table (:mod:`core.csv_export`; Swedish column names, whole
minutes, like :mod:`crisis.incidents.report`), then an empty line and every visit (provider, client
reference, scheduled, status, done, delay, reason), then ``label;value`` rows. Staff only.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.roles import STAFF
from contacts.models import Provider
from core import audit, csv_export
from core.clock import current_clock
from core.extensions import db
from core.numbers import id_field, month_start
from crisis.incidents.models import Incident
from crisis.incidents.report import duration_text, minutes, month_bounds
from crisis.visits.models import NOT_DONE_REASONS, SupervisionFailure, Visit, VisitStatus
from crisis.visits.service import REASON_LABELS

bp = Blueprint("visit_report", __name__)


@dataclass
class ProviderRow:
    provider: str | None  # None: the total
    failures: int = 0
    visits: int = 0
    done: int = 0
    not_done: int = 0
    still_open: int = 0
    delays: list[timedelta] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)

    @property
    def delay_median(self) -> timedelta | None:
        if not self.delays:
            return None
        return timedelta(seconds=statistics.median(d.total_seconds() for d in self.delays))

    @property
    def delay_max(self) -> timedelta | None:
        return max(self.delays) if self.delays else None

    def add(self, visit: Visit) -> None:
        self.visits += 1
        if visit.status == VisitStatus.DONE.value:
            self.done += 1
            if visit.done_at is not None:
                self.delays.append(visit.done_at - visit.due_at)
        elif visit.status == VisitStatus.NOT_DONE.value:
            self.not_done += 1
            self.reasons[visit.not_done_reason or "other"] += 1
        else:
            self.still_open += 1


@dataclass
class VisitReport:
    title: str
    rows: list[ProviderRow]
    total: ProviderRow
    visits: list[tuple[Visit, str]]  # (visit, provider name), by due time


def build_report(
    db_session: Session, *, incident: Incident | None = None, month: date | None = None, tz=None
) -> VisitReport:
    failures_query = select(SupervisionFailure)
    visits_query = select(Visit)
    if incident is not None:
        failures_query = failures_query.where(SupervisionFailure.incident_id == incident.id)
        visits_query = visits_query.where(Visit.incident_id == incident.id)
        title = incident.title
    else:
        start, end = month_bounds(month, tz)
        failures_query = failures_query.where(
            SupervisionFailure.scheduled_at >= start, SupervisionFailure.scheduled_at < end
        )
        visits_query = visits_query.where(Visit.due_at >= start, Visit.due_at < end)
        title = month.strftime("%Y-%m")
    failures = list(db_session.scalars(failures_query))
    visits = list(db_session.scalars(visits_query.order_by(Visit.due_at, Visit.id)))
    provider_ids = {f.provider_id for f in failures} | {v.provider_id for v in visits}
    names = (
        {p.id: p.name for p in db_session.scalars(select(Provider).where(Provider.id.in_(provider_ids)))}
        if provider_ids
        else {}
    )
    by_provider = {pid: ProviderRow(names[pid]) for pid in provider_ids}
    total = ProviderRow(None)
    for failure in failures:
        by_provider[failure.provider_id].failures += 1
        total.failures += 1
    for visit in visits:
        by_provider[visit.provider_id].add(visit)
        total.add(visit)
    rows = sorted(by_provider.values(), key=lambda row: row.provider.casefold())
    return VisitReport(title=title, rows=rows, total=total, visits=[(v, names[v.provider_id]) for v in visits])


REPORT_COLUMNS = (
    "Utförare",
    "Missade tillsyner",
    "Besök",
    "Gjorda",
    "Fördröjning median (min)",
    "Fördröjning max (min)",
    "Inte gjorda",
    *(f"Inte gjort: {REASON_LABELS[reason]}" for reason in NOT_DONE_REASONS),
    "Öppna",
)
VISIT_COLUMNS = ("Utförare", "Brukare", "Planerat", "Status", "Gjort", "Fördröjning (min)", "Orsak")
STATUS_LABELS = {"open": "Öppet", "done": "Gjort", "not_done": "Inte gjort"}


def _local(value: datetime | None, tz) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def report_rows(report: VisitReport, *, tz, now: datetime, selection: tuple[str, str]) -> list:
    """The CSV's rows: the table per provider, an empty line, every visit, then ``label;value`` rows."""
    rows: list = [REPORT_COLUMNS]
    for row in [*report.rows, report.total]:
        rows.append(
            [
                row.provider if row is not report.total else "Alla utförare",
                row.failures,
                row.visits,
                row.done,
                minutes(row.delay_median),
                minutes(row.delay_max),
                row.not_done,
                *(row.reasons.get(reason, 0) for reason in NOT_DONE_REASONS),
                row.still_open,
            ]
        )
    rows.append([])
    rows.append(VISIT_COLUMNS)
    for visit, provider in report.visits:
        delay = visit.done_at - visit.due_at if visit.done_at is not None else None
        rows.append(
            [
                provider,
                visit.client.reference,
                _local(visit.due_at, tz),
                STATUS_LABELS.get(visit.status, visit.status),
                _local(visit.done_at, tz),
                minutes(delay),
                REASON_LABELS.get(visit.not_done_reason, "") if visit.not_done_reason else "",
            ]
        )
    rows.append([])
    rows.append(selection)
    rows.append(("Tidszon", str(tz)))
    rows.append(("Rapporten skapad", now.astimezone(tz).strftime("%Y-%m-%d %H:%M")))
    return rows


def _is_csv() -> bool:
    """The CSV format lists every visit with its client reference; the page shows figures only."""
    return request.args.get("format") == "csv"


@bp.get("/visits/report")
@roles_required(*STAFF)
@audit.audited_export("visit", when=_is_csv, report=True)
def report():
    """Visits per provider, for one incident (``?incident=``) or one month (``?month=``)."""
    tz = current_app.extensions["krisrutin.routine"].timezone
    now = current_clock().now()
    incident = None
    month = None
    month_text = request.args.get("month", "").strip()
    incident_id = id_field(request.args.get("incident"), field="incident", label=_("Störning"))
    if incident_id is not None:
        incident = db.session.get(Incident, incident_id)
        if incident is None:
            abort(404, description=_("Störningen finns inte."))
        data = build_report(db.session, incident=incident)
        selection = ("Störning", f"{incident.id} {incident.title}")
        filename = f"besok-storning-{incident.id}.csv"
    else:
        if month_text:
            month = month_start(month_text)
            if month is None:
                abort(400, description=_("Ange månaden som ÅÅÅÅ-MM, till exempel 2027-03."))
        else:
            local = now.astimezone(tz)
            month = date(local.year, local.month, 1)
        data = build_report(db.session, month=month, tz=tz)
        selection = ("Månad", month.strftime("%Y-%m"))
        filename = f"besok-{month.strftime('%Y-%m')}.csv"
    if request.args.get("format") == "csv":
        return csv_export.response(report_rows(data, tz=tz, now=now, selection=selection), filename=filename)
    context = {}
    if month is not None:
        context = {
            "month_text": month.strftime("%Y-%m"),
            "previous": ((month - timedelta(days=1)).replace(day=1)).strftime("%Y-%m"),
            "following": ((month + timedelta(days=32)).replace(day=1)).strftime("%Y-%m"),
        }
    return render_template(
        "visits/visit_report.html",
        report=data,
        incident=incident,
        reasons=NOT_DONE_REASONS,
        duration_text=duration_text,
        **context,
    )
