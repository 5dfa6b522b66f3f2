"""The follow-up figures of disruptions (uppföljning med leverantören): per incident, and per
supplier and month.

Per incident (:func:`incident_figures`):

- *notice → first letter*: from the first notice received to the first letter sent (none while
  no letter has gone out, e.g. an incident assessed "not relevant");
- *start → resolution*: from the disruption's start (``starts_at``, else the first notice) to its
  resolution (none while it is open or when it was closed as not relevant).

An incident belongs to the month (in the routine's local time, Europe/Stockholm) of its first
notice — an incident without notices to the month it was created — so an outage that starts on
31 January and ends on 1 February counts once, in January.

The report page ``/incidents/report?month=YYYY-MM`` shows, per supplier: incidents, planned and
unplanned, median and max of both durations, and incidents still open; ``&format=csv`` downloads
the same table (:mod:`core.csv_export`: UTF-8 with a BOM, ``;``, formula cells guarded; Swedish
column names, durations in whole minutes), then an empty line and ``label;value`` rows (month,
time zone, when the report was made), like the monthly check's report.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.roles import STAFF
from core import csv_export
from core.clock import current_clock
from core.extensions import db
from core.numbers import month_start
from crisis.incidents.models import Incident, Letter, Notice

bp = Blueprint("incident_report", __name__)


REPORT_COLUMNS = (
    "Leverantör",
    "Störningar",
    "Planerade",
    "Oplanerade",
    "Avisering till första brev, median (min)",
    "Avisering till första brev, max (min)",
    "Start till löst, median (min)",
    "Start till löst, max (min)",
    "Pågående",
)


# --- figures of one incident ------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFigures:
    incident_id: int
    first_notice_at: datetime | None
    first_letter_at: datetime | None
    start_at: datetime  # starts_at, else the first notice, else created_at
    resolved_at: datetime | None

    @property
    def notice_to_first_letter(self) -> timedelta | None:
        if self.first_notice_at is None or self.first_letter_at is None:
            return None
        return self.first_letter_at - self.first_notice_at

    @property
    def start_to_resolution(self) -> timedelta | None:
        if self.resolved_at is None:
            return None
        return self.resolved_at - self.start_at


def figures_for(db_session: Session, incidents: list[Incident]) -> dict[int, IncidentFigures]:
    """:class:`IncidentFigures` of each incident, by id (two queries whatever the number)."""
    ids = [incident.id for incident in incidents]
    if not ids:
        return {}
    first_notice = dict(
        db_session.execute(
            select(Notice.incident_id, func.min(Notice.received_at))
            .where(Notice.incident_id.in_(ids))
            .group_by(Notice.incident_id)
        )
        .tuples()
        .all()
    )
    first_letter = dict(
        db_session.execute(
            select(Letter.incident_id, func.min(Letter.sent_at))
            .where(Letter.incident_id.in_(ids))
            .group_by(Letter.incident_id)
        )
        .tuples()
        .all()
    )
    figures = {}
    for incident in incidents:
        noticed = as_utc(first_notice.get(incident.id))
        figures[incident.id] = IncidentFigures(
            incident_id=incident.id,
            first_notice_at=noticed,
            first_letter_at=as_utc(first_letter.get(incident.id)),
            start_at=incident.starts_at or noticed or incident.created_at,
            resolved_at=incident.resolved_at if incident.status == "resolved" else None,
        )
    return figures


def incident_figures(db_session: Session, incident: Incident) -> IncidentFigures:
    return figures_for(db_session, [incident])[incident.id]


def as_utc(value: datetime | None) -> datetime | None:
    """An aggregate's instant as aware UTC (``min()`` keeps the column type, but SQLite may not)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


# --- months -----------------------------------------------------------------------------------


def month_bounds(month: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local month as a UTC half-open interval [start, end)."""
    following = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    start = datetime(month.year, month.month, 1, tzinfo=tz)
    end = datetime(following.year, following.month, 1, tzinfo=tz)
    return start, end


def first_notice_subquery():
    """``(incident_id, first_notice_at)`` of every incident that has notices."""
    return (
        select(Notice.incident_id.label("incident_id"), func.min(Notice.received_at).label("first_at"))
        .group_by(Notice.incident_id)
        .subquery()
    )


def incidents_in_month(db_session: Session, month: date, tz: ZoneInfo) -> list[Incident]:
    """The incidents whose first notice (else creation) falls in the local month."""
    start, end = month_bounds(month, tz)
    first = first_notice_subquery()
    with_notice = select(Incident).join(first, first.c.incident_id == Incident.id)
    with_notice = with_notice.where(first.c.first_at >= start, first.c.first_at < end)
    without_notice = select(Incident).where(
        ~select(Notice.id).where(Notice.incident_id == Incident.id).exists(),
        Incident.created_at >= start,
        Incident.created_at < end,
    )
    found = list(db_session.scalars(with_notice)) + list(db_session.scalars(without_notice))
    return sorted(found, key=lambda incident: incident.id)


# --- the month's table ------------------------------------------------------------------------


@dataclass
class SupplierRow:
    supplier: str | None  # None: no supplier named
    incidents: int = 0
    planned: int = 0
    unplanned: int = 0
    still_open: int = 0
    notice_to_letter: list[timedelta] = field(default_factory=list)
    start_to_resolution: list[timedelta] = field(default_factory=list)

    @property
    def notice_to_letter_median(self) -> timedelta | None:
        return _median(self.notice_to_letter)

    @property
    def notice_to_letter_max(self) -> timedelta | None:
        return max(self.notice_to_letter) if self.notice_to_letter else None

    @property
    def start_to_resolution_median(self) -> timedelta | None:
        return _median(self.start_to_resolution)

    @property
    def start_to_resolution_max(self) -> timedelta | None:
        return max(self.start_to_resolution) if self.start_to_resolution else None

    def add(self, incident: Incident, figures: IncidentFigures) -> None:
        self.incidents += 1
        self.planned += bool(incident.planned)
        self.unplanned += not incident.planned
        self.still_open += incident.is_open
        if figures.notice_to_first_letter is not None:
            self.notice_to_letter.append(figures.notice_to_first_letter)
        if figures.start_to_resolution is not None:
            self.start_to_resolution.append(figures.start_to_resolution)


def _median(values: list[timedelta]) -> timedelta | None:
    if not values:
        return None
    return timedelta(seconds=statistics.median(value.total_seconds() for value in values))


@dataclass
class MonthReport:
    month: date
    rows: list[SupplierRow]  # one per supplier, by name; incidents without a supplier last
    total: SupplierRow
    incidents: list[tuple[Incident, IncidentFigures]]


def month_report(db_session: Session, month: date, tz: ZoneInfo) -> MonthReport:
    incidents = incidents_in_month(db_session, month, tz)
    figures = figures_for(db_session, incidents)
    by_supplier: dict[str | None, SupplierRow] = defaultdict(lambda: SupplierRow(None))
    total = SupplierRow(None)
    for incident in incidents:
        name = incident.supplier.name if incident.supplier is not None else None
        row = by_supplier[name]
        row.supplier = name
        row.add(incident, figures[incident.id])
        total.add(incident, figures[incident.id])
    rows = sorted(by_supplier.values(), key=lambda r: (r.supplier is None, (r.supplier or "").casefold()))
    listed = sorted(
        ((incident, figures[incident.id]) for incident in incidents),
        key=lambda pair: (pair[1].first_notice_at or pair[0].created_at, pair[0].id),
    )
    return MonthReport(month=month, rows=rows, total=total, incidents=listed)


def minutes(value: timedelta | None) -> int | str:
    """Whole minutes (rounded) for the CSV; empty when there is no value."""
    return "" if value is None else round(value.total_seconds() / 60)


def duration_text(value: timedelta | None) -> str:
    """``2 h 05 min``, ``45 min``, ``3 d 4 h 10 min``; ``–`` without a value."""
    if value is None:
        return "–"
    total = round(value.total_seconds() / 60)
    sign = "−" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h {mins:02d} min"
    if hours:
        return f"{sign}{hours} h {mins:02d} min"
    return f"{sign}{mins} min"


def report_rows(report: MonthReport, *, tz: ZoneInfo, now: datetime) -> list:
    """The CSV's rows: the header, one row per supplier, the total, then ``label;value`` rows."""
    rows: list = [REPORT_COLUMNS]
    for row in [*report.rows, report.total]:
        label = row.supplier if row is not report.total else "Alla leverantörer"
        rows.append(
            [
                label if label is not None else "Ingen leverantör angiven",
                row.incidents,
                row.planned,
                row.unplanned,
                minutes(row.notice_to_letter_median),
                minutes(row.notice_to_letter_max),
                minutes(row.start_to_resolution_median),
                minutes(row.start_to_resolution_max),
                row.still_open,
            ]
        )
    rows.append([])
    rows.append(("Månad", report.month.strftime("%Y-%m")))
    rows.append(("Tidszon", str(tz)))
    rows.append(("Rapporten skapad", now.astimezone(tz).strftime("%Y-%m-%d %H:%M")))
    return rows


@bp.get("/incidents/report")
@roles_required(*STAFF)
def report():
    """Figures per supplier for one month (team, admin; the on-call officer reads)."""
    tz = current_app.extensions["krisrutin.routine"].timezone
    now = current_clock().now()
    text = request.args.get("month", "").strip()
    if text:
        month = month_start(text)
        if month is None:
            abort(400, description=_("Ange månaden som ÅÅÅÅ-MM, till exempel 2027-03."))
    else:
        local = now.astimezone(tz)
        month = date(local.year, local.month, 1)
    data = month_report(db.session, month, tz)
    if request.args.get("format") == "csv":
        return csv_export.response(
            report_rows(data, tz=tz, now=now), filename=f"storningar-{month.strftime('%Y-%m')}.csv"
        )
    previous = (month - timedelta(days=1)).replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return render_template(
        "incidents/report.html",
        report=data,
        month_text=month.strftime("%Y-%m"),
        previous=previous.strftime("%Y-%m"),
        following=following.strftime("%Y-%m"),
    )


bp.add_app_template_filter(duration_text, "duration")
