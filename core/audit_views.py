"""The managers' view of the audit log: ``/audit`` (filtered, paged) and ``/audit.csv``."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import func, select

from accounts.access import roles_required
from accounts.roles import Role
from core import audit, csv_export
from core.audit import AuditEntry
from core.clock import current_clock
from core.extensions import db
from core.labels import VOCABULARIES, label
from core.numbers import MAX_YEAR, MIN_YEAR, page_number

bp = Blueprint("audit", __name__)

PER_PAGE = 50
FILTERS = ("from", "to", "actor", "action", "entity", "entity_id")


def _zone():
    return current_app.extensions["krisrutin.routine"].timezone


def _filters() -> tuple[dict, dict, list]:
    """(values, errors, SQL conditions) from the query string."""
    values = {name: request.args.get(name, "").strip()[:100] for name in FILTERS}
    errors: dict[str, str] = {}
    conditions = []
    zone = _zone()
    for name, shift in (("from", 0), ("to", 1)):
        if not values[name]:
            continue
        try:
            day = date.fromisoformat(values[name])
        except ValueError:
            day = None
        if day is None or not MIN_YEAR <= day.year <= MAX_YEAR:
            errors[name] = _("Ange datumet som ÅÅÅÅ-MM-DD.")
            continue
        instant = datetime.combine(day + timedelta(days=shift), time(0), tzinfo=zone)
        conditions.append(AuditEntry.at >= instant if shift == 0 else AuditEntry.at < instant)
    if values["actor"]:
        kind, _sep, actor_id = values["actor"].partition(":")
        if kind in audit.ACTOR_KINDS:
            conditions.append(AuditEntry.actor_kind == kind)
            if actor_id:
                conditions.append(AuditEntry.actor_id == actor_id)
        else:
            conditions.append(AuditEntry.actor_id == values["actor"])
    for name, column in (
        ("action", AuditEntry.action),
        ("entity", AuditEntry.entity),
        ("entity_id", AuditEntry.entity_id),
    ):
        if values[name]:
            conditions.append(column == values[name])
    return values, errors, conditions


def _entities(chosen: str) -> list[str]:
    """The records the log may name, as the filter's choices (sorted by their labels)."""
    names = set(VOCABULARIES["record"]) | ({chosen} if chosen else set())
    return sorted(names, key=lambda name: label(name, "record"))


def _page() -> int:
    return page_number(request.args.get("page"), last=100_000)


@bp.get("/audit")
@roles_required(Role.ADMIN)
@audit.audited_view("audit_log")
def index():
    """Newest first, 50 a page, times in Swedish time."""
    values, errors, conditions = _filters()
    if errors:
        conditions, total, rows, page = [], 0, [], 1
    else:
        total = db.session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions)) or 0
        page = _page()
        statement = select(AuditEntry).where(*conditions).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        rows = db.session.scalars(statement.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    pages = max(1, -(-total // PER_PAGE))
    args = {name: value for name, value in values.items() if value}
    return render_template(
        "audit/index.html",
        rows=rows,
        values=values,
        errors=errors,
        total=total,
        page=page,
        pages=pages,
        args=args,
        actions=audit.ACTIONS,
        entities=_entities(values["entity"]),
        zone=_zone(),
    ), (400 if errors else 200)


@bp.get("/audit.csv")
@roles_required(Role.ADMIN)
@audit.audited_export("audit_log")
def export():
    """The filtered log as CSV for Excel (UTF-8 with BOM, ``;``), itself audited as an export."""
    values, errors, conditions = _filters()
    if errors:
        return Response("; ".join(errors.values()), status=400, mimetype="text/plain")
    zone = _zone()
    statement = select(AuditEntry).where(*conditions).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    rows = [["id", "tid", "aktor", "aktor_id", "handling", "objekt", "objekt_id", "detaljer", "ip", "sokvag"]]
    for row in db.session.scalars(statement):
        rows.append(
            [
                row.id,
                row.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                row.actor_kind,
                row.actor_id or "",
                row.action,
                row.entity,
                row.entity_id or "",
                json.dumps(row.detail or {}, ensure_ascii=False, sort_keys=True),
                row.ip or "",
                row.path or "",
            ]
        )
    audit.exported("audit_log", rows=len(rows) - 1, filters=sorted(name for name, value in values.items() if value))
    day = current_clock().now().astimezone(zone).date().isoformat()
    return csv_export.response(rows, filename=f"granskningslogg-{day}.csv")


def init_app(app) -> None:
    app.register_blueprint(bp)
