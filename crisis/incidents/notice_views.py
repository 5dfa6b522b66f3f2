"""The notice form for the team and the on-call officer, the handling party's corrections to an
incident, and the original of a notice as received.

Times on the form are Stockholm local time (``datetime-local``), read by
:func:`core.local_time.form_instant` (a time in the spring-forward gap is refused, one the clocks
pass twice asks which) before :mod:`crisis.incidents.intake` checks them. A refused form is
shown again with 400 and every problem, and nothing is saved.
"""

from __future__ import annotations

import json
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from accounts.access import roles_required
from accounts.roles import STAFF
from contacts.models import SERVICES, Provider
from contacts.register_views import SERVICE_NAMES
from core import audit
from core.clock import current_clock
from core.extensions import db
from core.local_time import LocalTimeError, form_instant
from core.numbers import record_id
from crisis.incidents import intake
from crisis.incidents.email_ingest import original_bytes
from crisis.incidents.models import Incident, Notice, NoticeSource, Supplier

bp = Blueprint("notices", __name__)

FIELD_IDS = {"supplier": "supplier_id", "providers": "providers-all"}


def _timezone():
    return current_app.extensions["krisrutin.routine"].timezone


def _local_input(value: datetime | None) -> str:
    """An instant as the form's ``datetime-local`` value, in Stockholm time."""
    return value.astimezone(_timezone()).strftime("%Y-%m-%dT%H:%M") if value else ""


def _form_data() -> tuple[dict, dict[str, str]]:
    """The form's notice data, and the problems of its local times (core.local_time's rule)."""
    form = request.form
    providers = "all"
    if form.get("providers") == "chosen":
        raws = form.getlist("provider_ids")
        ids = [record_id(raw) for raw in raws]
        # A value that is not an id goes on as it came, for intake to refuse at the field.
        providers = raws if None in ids else ids
    times, errors = {}, {}
    for name in ("starts_at", "expected_end"):
        try:
            times[name] = form_instant(form, name, _timezone())
        except LocalTimeError as error:
            times[name], errors[name] = None, error.message
    data = {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "service": form.get("service", ""),
        "supplier_id": form.get("supplier_id", ""),
        "planned": form.get("planned") == "on",
        **times,
        "providers": providers,
        "area": form.get("area", ""),
    }
    return data, errors


def _refuse_times(time_errors: dict[str, str], data: dict, now) -> None:
    """Raise :class:`~crisis.incidents.intake.NoticeError` with the times' problems and the
    other fields' (checked, nothing saved), when a time was refused."""
    if not time_errors:
        return
    errors = {}
    try:
        intake.clean_notice(db.session, data, now=now)
    except intake.NoticeError as error:
        errors = error.errors
    raise intake.NoticeError({**errors, **time_errors})


def _values_from_form() -> dict:
    form = request.form
    return {
        "title": form.get("title", ""),
        "body": form.get("body", ""),
        "service": form.get("service", ""),
        "supplier_id": form.get("supplier_id", ""),
        "planned": form.get("planned") == "on",
        "starts_at": form.get("starts_at", ""),
        "expected_end": form.get("expected_end", ""),
        "providers": form.get("providers", "all"),
        "provider_ids": {record_id(v) for v in form.getlist("provider_ids")} - {None},
        "area": form.get("area", ""),
    }


def _choices() -> dict:
    return {
        "services": SERVICES,
        "service_names": SERVICE_NAMES,
        "suppliers": db.session.scalars(
            select(Supplier).where(Supplier.is_active.is_(True)).order_by(Supplier.name)
        ).all(),
        "providers": db.session.scalars(
            select(Provider).where(Provider.is_active.is_(True)).order_by(Provider.name)
        ).all(),
        "field_ids": FIELD_IDS,
    }


def _errors(errors: dict[str, str]) -> dict[str, str]:
    # The form names the supplier by id: show its problem at that field.
    if "supplier_id" in errors:
        errors.setdefault("supplier", errors.pop("supplier_id"))
    return errors


@bp.route("/incidents/new", methods=["GET", "POST"])
@roles_required(*STAFF)
def new():
    """A notice typed in by the team or the on-call officer (from a phone call, a text, ...)."""
    if request.method == "GET":
        values = {"planned": False, "providers": "all", "provider_ids": set()}
        return render_template("incidents/notice_form.html", values=values, errors={}, **_choices())
    data, time_errors = _form_data()
    now = current_clock().now()
    try:
        _refuse_times(time_errors, data, now)
        notice, _created = intake.create_notice(
            db.session,
            data,
            source=NoticeSource.FORM,
            now=now,
            actor_id=g.user.id,
            original=json.dumps({k: v for k, v in request.form.items() if k != "csrf_token"}, ensure_ascii=False),
            original_type="application/json",
        )
    except intake.NoticeError as error:
        db.session.rollback()
        return render_template(
            "incidents/notice_form.html", values=_values_from_form(), errors=_errors(error.errors), **_choices()
        ), 400
    db.session.commit()
    return redirect(url_for("incidents.detail", incident_id=notice.incident_id))


def _incident(incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        abort(404, description=_("Händelsen finns inte."))
    return incident


@bp.route("/incidents/<int:incident_id>/edit", methods=["GET", "POST"])
@roles_required(*STAFF)
def edit(incident_id: int):
    """The handling party sets or corrects the service, supplier, planned, times and providers."""
    incident = _incident(incident_id)
    if not incident.is_open:
        abort(409, description=_("Händelsen är avslutad och kan inte ändras."))
    if request.method == "GET":
        values = {
            "service": incident.service,
            "supplier_id": str(incident.supplier_id or ""),
            "planned": incident.planned,
            "starts_at": _local_input(incident.starts_at),
            "expected_end": _local_input(incident.expected_end_at),
            "providers": "all" if incident.all_providers else "chosen",
            "provider_ids": set(intake.chosen_providers(db.session, incident)),
            "area": incident.area or "",
        }
        return render_template(
            "incidents/incident_edit.html", incident=incident, values=values, errors={}, **_choices()
        )
    data, time_errors = _form_data()
    data["expected_end"] = data["expected_end"] or ""
    try:
        _refuse_times(time_errors, {**data, "title": incident.title}, incident.created_at)
        changed = intake.update_incident(db.session, incident, data, now=current_clock().now(), actor_id=g.user.id)
    except intake.NoticeError as error:
        db.session.rollback()
        errors = _errors({k: v for k, v in error.errors.items() if k != "title"})
        return render_template(
            "incidents/incident_edit.html", incident=incident, values=_values_from_form(), errors=errors, **_choices()
        ), 400
    db.session.commit()
    flash(_("Ändringarna är sparade.") if changed else _("Inget ändrades."), "success")
    return redirect(url_for("incidents.detail", incident_id=incident.id))


@bp.get("/incidents/<int:incident_id>/notices/<int:notice_id>/original")
@roles_required(*STAFF)
@audit.audited_export("notice", id_arg="notice_id", original=True)
def original(incident_id: int, notice_id: int):
    """The notice as received: the e-mail as an .eml attachment, the API's or form's JSON."""
    notice = db.session.get(Notice, notice_id)
    if notice is None or notice.incident_id != incident_id or notice.original is None:
        abort(404, description=_("Det finns inget original för detta meddelande."))
    if (notice.original_type or "").startswith("message/rfc822"):
        body, mimetype, name = original_bytes(notice), "message/rfc822", f"driftmeddelande-{notice.id}.eml"
    else:
        body, mimetype, name = notice.original.encode("utf-8"), "application/json", f"driftmeddelande-{notice.id}.json"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
