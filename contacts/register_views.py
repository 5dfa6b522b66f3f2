"""The team's register pages (kontaktregistret): one blueprint, ``register``, whose pages live in
several modules by what they do:

- this module: who may use the pages, the names they show, record lookups, and the list page
  (search, filters and pages: :mod:`contacts.register_listing`);
- :mod:`contacts.register_provider_views`: a provider's page, create, edit, deactivate;
- :mod:`contacts.register_contact_views`: contact persons: add, edit, deactivate;
- :mod:`contacts.register_history_views`: the change history of a provider or a contact;
- :mod:`contacts.register_csv_views`: CSV import and export, also ``flask register import FILE``.

Those modules declare their routes on :data:`bp` as they are imported; :func:`init_app` imports
each of them before it registers the blueprint. The team and administrators may change the
register; the on-call officer may read it (and export it). Every change goes through
:mod:`contacts.register`, so the pages, the API and the import follow the same rules and all
write history.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from flask_babel import lazy_gettext as _l

from accounts.access import roles_required
from accounts.roles import Role
from contacts import register
from contacts.models import ContactPerson, Provider
from contacts.register import Actor
from contacts.register_listing import listing
from core import audit, numbers
from core.extensions import db
from core.numbers import record_id

bp = Blueprint("register", __name__, url_prefix="/register")

READERS = (Role.TEAM, Role.ADMIN, Role.ON_CALL)
EDITORS = (Role.TEAM, Role.ADMIN)
STATUSES = ("active", "inactive", "all")
LAST_PAGE = 100_000

SERVICE_NAMES = {
    "camera_supervision": _l("Kameratillsyn"),
    "alarms": _l("Trygghetslarm"),
    "keyless_locks": _l("Nyckelfria lås"),
    "time_registration": _l("Tidsregistrering"),
}
KIND_NAMES = {"municipal": _l("Kommunal"), "private": _l("Privat")}
# contact_problems() answers in Swedish; these are the same texts, translatable.
PROBLEM_TEXTS = {
    "Mobilnummer saknas: får inga SMS": _l("Mobilnummer saknas: får inga SMS"),
    "E-postadress saknas: får ingen e-post": _l("E-postadress saknas: får ingen e-post"),
    "Mobilnumret går inte att nå": _l("Mobilnumret går inte att nå"),
    "E-postadressen går inte att nå": _l("E-postadressen går inte att nå"),
}


def can_edit() -> bool:
    user = g.get("user")
    return user is not None and user.role_enum in EDITORS


def team_actor() -> Actor:
    """The logged-in team member, as the register's history records a change from these pages."""
    return Actor("team", user_id=g.user.id)


@bp.app_context_processor
def register_helpers():
    return {
        "register_can_edit": can_edit,
        "register_problem_text": lambda text: PROBLEM_TEXTS.get(text, text),
    }


def _record_id(value: str) -> int:
    # Plain path segments rather than <int:...>: tests/test_access.py builds every rule's URL with
    # "x" for any argument it does not recognise as an integer converter.
    number = record_id(value)
    if number is None:
        abort(404)
    return number


def provider_or_404(provider_id: str) -> Provider:
    provider = db.session.get(Provider, _record_id(str(provider_id)))
    if provider is None:
        abort(404)
    return provider


def contact_or_404(contact_id: str) -> ContactPerson:
    contact = db.session.get(ContactPerson, _record_id(str(contact_id)))
    if contact is None:
        abort(404)
    return contact


def page_number() -> int:
    return numbers.page_number(request.args.get("page"), last=LAST_PAGE)


# --- the list -----------------------------------------------------------------------------------


@bp.get("/")
@roles_required(*READERS)
@audit.audited_view("provider")
def index():
    """The register: providers with their contacts, searchable, filtered, paged."""
    query = request.args.get("q", "").strip()[:200]
    status = request.args.get("status", "active")
    if status not in STATUSES:
        status = "active"
    problems_only = request.args.get("problems") == "1"
    result = listing(db.session, query=query, status=status, problems_only=problems_only, page=page_number())
    audit.viewed("provider", page=page_number(), searched=bool(query))
    return render_template(
        "contacts/register/list.html",
        listing=result,
        query=query,
        status=status,
        problems_only=problems_only,
        service_names=SERVICE_NAMES,
        kind_names=KIND_NAMES,
        contact_problems=register.contact_problems,
    )


def init_app(app) -> None:
    """Register the blueprint with every page module's routes, and the CLI commands."""
    from contacts import (  # noqa: F401  (importing a page module declares its routes on bp)
        register_contact_views,
        register_csv_views,
        register_history_views,
        register_provider_views,
    )

    app.register_blueprint(bp)
    app.cli.add_command(register_csv_views.register_cli)
