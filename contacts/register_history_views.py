"""The register's history pages: every change to a provider and its contacts, or to one contact,
newest first, in the team's words (the routes are on :data:`contacts.register_views.bp`)."""

from __future__ import annotations

from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from accounts.access import roles_required
from accounts.models import User
from contacts.models import ContactPerson, Provider, RegisterChange
from contacts.register_views import (
    READERS,
    bp,
    contact_or_404,
    page_number,
    provider_or_404,
)
from core import audit
from core.extensions import db
from core.labels import VOCABULARIES, change_value

HISTORY_PAGE_SIZE = 100

FIELD_NAMES = {
    "name": _l("Namn"),
    "organisation_number": _l("Organisationsnummer"),
    "kind": _l("Utförartyp"),
    "is_active": _l("Aktiv"),
    "role_title": _l("Roll"),
    "mobile": _l("Mobilnummer"),
    "email": _l("E-postadress"),
    "services": _l("Tjänster"),
    "provider_id": _l("Utförare"),
}
# One name per step across pages: the register's history uses the service's vocabularies.
ACTION_NAMES = VOCABULARIES["change_action"]
SOURCE_NAMES = VOCABULARIES["change_source"]


def display_change_value(field_name: str, value: str | None) -> str:
    """A history value as the team reads it (service and kind names, ja/nej translated, phone
    numbers as people read them): :func:`core.labels.change_value`."""
    return change_value(value, field_name)


def _history_page(condition, page: int):
    total = db.session.scalar(select(func.count()).select_from(RegisterChange).where(condition)) or 0
    pages = max(1, -(-total // HISTORY_PAGE_SIZE))
    page = min(page, pages)
    rows = db.session.execute(
        select(RegisterChange, User.display_name)
        .outerjoin(User, RegisterChange.changed_by_id == User.id)
        .where(condition)
        .order_by(RegisterChange.id.desc())
        .limit(HISTORY_PAGE_SIZE)
        .offset((page - 1) * HISTORY_PAGE_SIZE)
    ).all()
    return rows, page, pages


def _render_history(*, title: str, provider: Provider, contact: ContactPerson | None, condition, names: dict):
    rows, page, pages = _history_page(condition, page_number())
    return render_template(
        "contacts/register/history.html",
        title=title,
        provider=provider,
        contact=contact,
        rows=rows,
        page=page,
        pages=pages,
        names=names,
        field_names=FIELD_NAMES,
        action_names=ACTION_NAMES,
        source_names=SOURCE_NAMES,
        display_value=display_change_value,
    )


@bp.get("/providers/<provider_id>/history")
@roles_required(*READERS)
@audit.audited_view("provider", id_arg="provider_id", history=True)
def provider_history(provider_id: str):
    """Every change to a provider and to its contacts, newest first."""
    record = provider_or_404(provider_id)
    names = {("contact", c.id): c.name for c in record.contacts}
    names[("provider", record.id)] = record.name
    return _render_history(
        title=_("Historik för %(name)s", name=record.name),
        provider=record,
        contact=None,
        condition=RegisterChange.provider_id == record.id,
        names=names,
    )


@bp.get("/contacts/<contact_id>/history")
@roles_required(*READERS)
@audit.audited_view("contact", id_arg="contact_id", history=True)
def contact_history(contact_id: str):
    record = contact_or_404(contact_id)
    return _render_history(
        title=_("Historik för %(name)s", name=record.name),
        provider=record.provider,
        contact=record,
        condition=(RegisterChange.entity == "contact") & (RegisterChange.entity_id == record.id),
        names={("contact", record.id): record.name},
    )
