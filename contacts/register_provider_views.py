"""The register's provider pages: one provider with its contacts, create, edit, deactivate and
reactivate (the routes are on :data:`contacts.register_views.bp`)."""

from __future__ import annotations

import logging

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from accounts.access import roles_required
from contacts import register
from contacts.models import Provider
from contacts.register import RegisterError
from contacts.register_listing import swedish_key
from contacts.register_views import (
    EDITORS,
    KIND_NAMES,
    READERS,
    SERVICE_NAMES,
    bp,
    provider_or_404,
    team_actor,
)
from core import audit
from core.clock import current_clock
from core.extensions import db

log = logging.getLogger(__name__)


def _provider_form_values() -> dict:
    return {key: request.form.get(key, "").strip() for key in ("name", "organisation_number", "kind")}


@bp.get("/providers/<provider_id>")
@roles_required(*READERS)
@audit.audited_view("provider", id_arg="provider_id")
def provider(provider_id: str):
    """One provider with all its contacts, active and not."""
    record = provider_or_404(provider_id)
    contacts = sorted(record.contacts, key=lambda c: (not c.is_active, swedish_key(c.name), c.id))
    return render_template(
        "contacts/register/provider.html",
        provider=record,
        contacts=contacts,
        without_active_contact=record.is_active and not any(c.is_active for c in contacts),
        service_names=SERVICE_NAMES,
        kind_names=KIND_NAMES,
        contact_problems=register.contact_problems,
    )


@bp.route("/providers/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new_provider():
    values = {"name": "", "organisation_number": "", "kind": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _provider_form_values()
        try:
            outcome = register.create_provider(db.session, values, actor=team_actor(), now=current_clock().now())
        except RegisterError as error:
            db.session.rollback()
            errors = error.errors
        else:
            db.session.commit()
            log.info("provider created", extra={"provider_id": outcome.record.id, "user_id": g.user.id})
            flash(_("Utföraren är skapad."), "success")
            return redirect(url_for("register.provider", provider_id=outcome.record.id))
    return _provider_form(values, errors, provider=None)


@bp.route("/providers/<provider_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
@audit.audited_view("provider", id_arg="provider_id")
def edit_provider(provider_id: str):
    record = provider_or_404(provider_id)
    values = {"name": record.name, "organisation_number": record.organisation_number or "", "kind": record.kind}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _provider_form_values()
        try:
            outcome = register.update_provider(
                db.session, record, values, actor=team_actor(), now=current_clock().now()
            )
        except RegisterError as error:
            db.session.rollback()
            errors = error.errors
        else:
            db.session.commit()
            log.info("provider updated", extra={"provider_id": record.id, "user_id": g.user.id})
            flash(_("Ändringarna är sparade.") if outcome.changes else _("Inget ändrades."), "success")
            return redirect(url_for("register.provider", provider_id=record.id))
    return _provider_form(values, errors, provider=record)


def _provider_form(values: dict, errors: dict, *, provider: Provider | None):
    return (
        render_template(
            "contacts/register/provider_form.html",
            values=values,
            errors=errors,
            provider=provider,
            kind_names=KIND_NAMES,
        ),
        400 if errors else 200,
    )


@bp.post("/providers/<provider_id>/deactivate")
@roles_required(*EDITORS)
def deactivate_provider(provider_id: str):
    return _set_provider_active(provider_id, False)


@bp.post("/providers/<provider_id>/reactivate")
@roles_required(*EDITORS)
def reactivate_provider(provider_id: str):
    return _set_provider_active(provider_id, True)


def _set_provider_active(provider_id: str, active: bool):
    record = provider_or_404(provider_id)
    register.update_provider(db.session, record, {"is_active": active}, actor=team_actor(), now=current_clock().now())
    db.session.commit()
    log.info("provider %s", "reactivated" if active else "deactivated", extra={"provider_id": record.id})
    flash(_("Utföraren är aktiv igen.") if active else _("Utföraren är inaktiverad."), "success")
    return redirect(url_for("register.provider", provider_id=record.id))
