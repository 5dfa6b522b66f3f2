"""The register's contact-person pages: add to a provider, edit, deactivate and reactivate (the
routes are on :data:`contacts.register_views.bp`)."""

from __future__ import annotations

import logging

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from accounts.access import roles_required
from contacts import register
from contacts.models import SERVICES, ContactPerson, Provider
from contacts.register import RegisterError
from contacts.register_views import EDITORS, SERVICE_NAMES, bp, contact_or_404, provider_or_404, team_actor
from core import audit
from core.clock import current_clock
from core.extensions import db

log = logging.getLogger(__name__)


def _contact_form_values() -> dict:
    values = {key: request.form.get(key, "").strip() for key in ("name", "role_title", "mobile", "email")}
    values["services"] = [service for service in request.form.getlist("services") if service]
    return values


@bp.route("/providers/<provider_id>/contacts/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new_contact(provider_id: str):
    owner = provider_or_404(provider_id)
    values = {"name": "", "role_title": "", "mobile": "", "email": "", "services": []}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _contact_form_values()
        try:
            outcome = register.create_contact(db.session, owner, values, actor=team_actor(), now=current_clock().now())
        except RegisterError as error:
            db.session.rollback()
            errors = error.errors
        else:
            db.session.commit()
            log.info("contact created", extra={"contact_id": outcome.record.id, "user_id": g.user.id})
            flash(_("Kontaktpersonen är tillagd."), "success")
            return redirect(url_for("register.provider", provider_id=owner.id))
    return _contact_form(values, errors, provider=owner, contact=None)


@bp.route("/contacts/<contact_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
@audit.audited_view("contact", id_arg="contact_id")
def edit_contact(contact_id: str):
    record = contact_or_404(contact_id)
    values = {
        "name": record.name,
        "role_title": record.role_title or "",
        "mobile": record.mobile or "",
        "email": record.email or "",
        "services": list(record.services or []),
    }
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _contact_form_values()
        try:
            outcome = register.update_contact(db.session, record, values, actor=team_actor(), now=current_clock().now())
        except RegisterError as error:
            db.session.rollback()
            errors = error.errors
        else:
            db.session.commit()
            log.info("contact updated", extra={"contact_id": record.id, "user_id": g.user.id})
            flash(_("Ändringarna är sparade.") if outcome.changes else _("Inget ändrades."), "success")
            return redirect(url_for("register.provider", provider_id=record.provider_id))
    return _contact_form(values, errors, provider=record.provider, contact=record)


def _contact_form(values: dict, errors: dict, *, provider: Provider, contact: ContactPerson | None):
    return (
        render_template(
            "contacts/register/contact_form.html",
            values=values,
            errors=errors,
            provider=provider,
            contact=contact,
            services=SERVICES,
            service_names=SERVICE_NAMES,
        ),
        400 if errors else 200,
    )


@bp.post("/contacts/<contact_id>/deactivate")
@roles_required(*EDITORS)
def deactivate_contact(contact_id: str):
    return _set_contact_active(contact_id, False)


@bp.post("/contacts/<contact_id>/reactivate")
@roles_required(*EDITORS)
def reactivate_contact(contact_id: str):
    return _set_contact_active(contact_id, True)


def _set_contact_active(contact_id: str, active: bool):
    record = contact_or_404(contact_id)
    register.update_contact(db.session, record, {"is_active": active}, actor=team_actor(), now=current_clock().now())
    db.session.commit()
    log.info("contact %s", "reactivated" if active else "deactivated", extra={"contact_id": record.id})
    flash(_("Kontaktpersonen är aktiv igen.") if active else _("Kontaktpersonen är inaktiverad."), "success")
    return redirect(url_for("register.provider", provider_id=record.provider_id))
