"""The team's register pages (kontaktregistret): list and search, create, edit, deactivate,
history, and the CSV import and export (also ``flask register import FILE``).

The team and administrators may change the register; the on-call officer may read it (and
export it). Every change goes through :mod:`contacts.register`, so the pages, the API and the
import follow the same rules and all write history.

Search is done in Python over the register's rows rather than in SQL: SQLite's ``lower()``
leaves å, ä and ö alone, and a municipality's register (hundreds of providers, thousands of
contacts) is read in milliseconds. The list pages by provider, each with the contacts that
match; providers sort in Swedish order (å, ä, ö after z).
"""

from __future__ import annotations

import logging
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import Role
from contacts import register, register_csv
from contacts.models import SERVICES, ContactPerson, Provider, RegisterChange
from contacts.register import Actor, RegisterError
from core import audit
from core.clock import current_clock
from core.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("register", __name__, url_prefix="/register")

READERS = (Role.TEAM, Role.ADMIN, Role.ON_CALL)
EDITORS = (Role.TEAM, Role.ADMIN)
PAGE_SIZE = 25
HISTORY_PAGE_SIZE = 100
STATUSES = ("active", "inactive", "all")

SERVICE_NAMES = {
    "camera_supervision": _l("Kameratillsyn"),
    "alarms": _l("Trygghetslarm"),
    "keyless_locks": _l("Nyckelfria lås"),
    "time_registration": _l("Tidsregistrering"),
}
KIND_NAMES = {"municipal": _l("Kommunal"), "private": _l("Privat")}
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
ACTION_NAMES = {
    "created": _l("Skapad"),
    "updated": _l("Ändrad"),
    "deactivated": _l("Inaktiverad"),
    "reactivated": _l("Aktiverad igen"),
}
SOURCE_NAMES = {
    "team": _l("Registersidan"),
    "api": _l("API"),
    "import": _l("CSV-import"),
    "check": _l("Månadstest"),
    "review": _l("Granskad rättelse"),
    "call": _l("Telefonsamtal"),
    "demo": _l("Demodata"),
}

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


def _actor() -> Actor:
    return Actor("team", user_id=g.user.id)


@bp.app_context_processor
def register_helpers():
    return {
        "register_can_edit": can_edit,
        "register_problem_text": lambda text: PROBLEM_TEXTS.get(text, text),
        "register_mobile": register_csv.format_mobile,
    }


# --- the list -----------------------------------------------------------------------------------


def swedish_key(text: str) -> str:
    """Sort key in Swedish alphabetical order (å, ä, ö after z), ignoring case."""
    return " ".join(text.split()).casefold().translate({ord("å"): "{", ord("ä"): "|", ord("ö"): "}"})


@dataclass
class ProviderEntry:
    provider: Provider
    contacts: list[ContactPerson]
    without_active_contact: bool
    contact_count: int


@dataclass
class Listing:
    entries: list[ProviderEntry]
    total: int  # providers matching
    page: int
    pages: int
    flagged_providers: int  # active providers without an active contact (whole register)
    contacts_with_problems: int  # active contacts with problems (whole register)


def _digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def listing(db_session, *, query: str = "", status: str = "active", problems_only: bool = False, page: int = 1):
    """The providers (and their contacts) matching a search, a status and the problem filter."""
    needle = " ".join(query.split()).casefold()
    digits = ""
    if re.fullmatch(r"[\d\s+()-]+", query) and len(_digits(query)) >= 4:
        # A phone number, or a part of one: compared digit by digit, 070… read as +4670….
        digits = _digits(query)
        digits = "46" + digits[1:] if digits.startswith("0") and not digits.startswith("00") else digits.lstrip("0")

    def text_match(*values) -> bool:
        return bool(needle) and any(needle in " ".join((value or "").split()).casefold() for value in values)

    providers = db_session.execute(
        select(Provider.id, Provider.name, Provider.organisation_number, Provider.is_active)
    ).all()
    contacts_by_provider = defaultdict(list)
    for row in db_session.execute(
        select(
            ContactPerson.id,
            ContactPerson.provider_id,
            ContactPerson.name,
            ContactPerson.role_title,
            ContactPerson.mobile,
            ContactPerson.email,
            ContactPerson.is_active,
            ContactPerson.mobile_failing_since,
            ContactPerson.email_failing_since,
        )
    ):
        contacts_by_provider[row.provider_id].append(row)

    chosen: list[tuple[object, list, bool, int]] = []
    flagged_total = problems_total = 0
    for provider in providers:
        everyone = contacts_by_provider.get(provider.id, [])
        flagged = provider.is_active and not any(contact.is_active for contact in everyone)
        flagged_total += flagged
        problems_total += sum(
            1 for c in everyone if provider.is_active and c.is_active and register.contact_problems(c)
        )
        if status == "active":
            if not provider.is_active:
                continue
            shown = [c for c in everyone if c.is_active]
        elif status == "inactive":
            shown = everyone if not provider.is_active else [c for c in everyone if not c.is_active]
        else:
            shown = list(everyone)
        if needle:
            provider_hit = text_match(provider.name, provider.organisation_number) or (
                digits and digits in _digits(provider.organisation_number)
            )
            if not provider_hit:
                shown = [
                    c
                    for c in shown
                    if text_match(c.name, c.email, c.role_title, c.mobile) or (digits and digits in _digits(c.mobile))
                ]
                if not shown:
                    continue
        if problems_only:
            shown = [c for c in shown if c.is_active and register.contact_problems(c)]
            if not shown and not flagged:
                continue
        if status == "inactive" and provider.is_active and not shown:
            continue
        chosen.append((provider, shown, flagged, len(everyone)))

    chosen.sort(key=lambda item: swedish_key(item[0].name))
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    window = chosen[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    provider_objects = {
        p.id: p for p in db_session.scalars(select(Provider).where(Provider.id.in_([item[0].id for item in window])))
    }
    contact_ids = [c.id for item in window for c in item[1]]
    contact_objects = {
        c.id: c for c in db_session.scalars(select(ContactPerson).where(ContactPerson.id.in_(contact_ids)))
    }
    entries = [
        ProviderEntry(
            provider_objects[provider.id],
            sorted((contact_objects[c.id] for c in shown), key=lambda c: (swedish_key(c.name), c.id)),
            flagged,
            count,
        )
        for provider, shown, flagged, count in window
    ]
    return Listing(entries, len(chosen), page, pages, flagged_total, problems_total)


def _page_number() -> int:
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1


@bp.get("/")
@roles_required(*READERS)
def index():
    """The register: providers with their contacts, searchable, filtered, paged."""
    query = request.args.get("q", "").strip()[:200]
    status = request.args.get("status", "active")
    if status not in STATUSES:
        status = "active"
    problems_only = request.args.get("problems") == "1"
    result = listing(db.session, query=query, status=status, problems_only=problems_only, page=_page_number())
    audit.viewed("provider", page=_page_number(), searched=bool(query))
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


# --- providers ----------------------------------------------------------------------------------


def _record_id(value: str) -> int:
    # Plain path segments rather than <int:...>: tests/test_access.py builds every rule's URL with
    # "x" for any argument it does not recognise as an integer converter.
    if not value.isdigit() or len(value) > 18:
        abort(404)
    return int(value)


def _provider_or_404(provider_id: str) -> Provider:
    provider = db.session.get(Provider, _record_id(str(provider_id)))
    if provider is None:
        abort(404)
    return provider


def _contact_or_404(contact_id: str) -> ContactPerson:
    contact = db.session.get(ContactPerson, _record_id(str(contact_id)))
    if contact is None:
        abort(404)
    return contact


def _provider_form_values() -> dict:
    return {key: request.form.get(key, "").strip() for key in ("name", "organisation_number", "kind")}


@bp.get("/providers/<provider_id>")
@roles_required(*READERS)
def provider(provider_id: str):
    """One provider with all its contacts, active and not."""
    record = _provider_or_404(provider_id)
    audit.viewed("provider", record.id)
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
            outcome = register.create_provider(db.session, values, actor=_actor(), now=current_clock().now())
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
def edit_provider(provider_id: str):
    record = _provider_or_404(provider_id)
    audit.viewed("provider", record.id) if request.method == "GET" else None
    values = {"name": record.name, "organisation_number": record.organisation_number or "", "kind": record.kind}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _provider_form_values()
        try:
            outcome = register.update_provider(db.session, record, values, actor=_actor(), now=current_clock().now())
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
    record = _provider_or_404(provider_id)
    register.update_provider(db.session, record, {"is_active": active}, actor=_actor(), now=current_clock().now())
    db.session.commit()
    log.info("provider %s", "reactivated" if active else "deactivated", extra={"provider_id": record.id})
    flash(_("Utföraren är aktiv igen.") if active else _("Utföraren är inaktiverad."), "success")
    return redirect(url_for("register.provider", provider_id=record.id))


# --- contacts -----------------------------------------------------------------------------------


def _contact_form_values() -> dict:
    values = {key: request.form.get(key, "").strip() for key in ("name", "role_title", "mobile", "email")}
    values["services"] = [service for service in request.form.getlist("services") if service]
    return values


@bp.route("/providers/<provider_id>/contacts/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new_contact(provider_id: str):
    owner = _provider_or_404(provider_id)
    values = {"name": "", "role_title": "", "mobile": "", "email": "", "services": []}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _contact_form_values()
        try:
            outcome = register.create_contact(db.session, owner, values, actor=_actor(), now=current_clock().now())
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
def edit_contact(contact_id: str):
    record = _contact_or_404(contact_id)
    audit.viewed("contact", record.id) if request.method == "GET" else None
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
            outcome = register.update_contact(db.session, record, values, actor=_actor(), now=current_clock().now())
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
    record = _contact_or_404(contact_id)
    register.update_contact(db.session, record, {"is_active": active}, actor=_actor(), now=current_clock().now())
    db.session.commit()
    log.info("contact %s", "reactivated" if active else "deactivated", extra={"contact_id": record.id})
    flash(_("Kontaktpersonen är aktiv igen.") if active else _("Kontaktpersonen är inaktiverad."), "success")
    return redirect(url_for("register.provider", provider_id=record.provider_id))


# --- history ------------------------------------------------------------------------------------


def display_change_value(field_name: str, value: str | None) -> str:
    """A history value as the team reads it (service and kind names, ja/nej translated)."""
    if value is None or value == "":
        return "–"
    if field_name == "services":
        return ", ".join(str(SERVICE_NAMES.get(item.strip(), item.strip())) for item in value.split(","))
    if field_name == "kind":
        return str(KIND_NAMES.get(value, value))
    if field_name == "is_active":
        return _("ja") if value == "ja" else _("nej") if value == "nej" else value
    return value


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
    rows, page, pages = _history_page(condition, _page_number())
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
def provider_history(provider_id: str):
    """Every change to a provider and to its contacts, newest first."""
    record = _provider_or_404(provider_id)
    audit.viewed("provider", record.id, history=True)
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
def contact_history(contact_id: str):
    record = _contact_or_404(contact_id)
    audit.viewed("contact", record.id, history=True)
    return _render_history(
        title=_("Historik för %(name)s", name=record.name),
        provider=record.provider,
        contact=record,
        condition=(RegisterChange.entity == "contact") & (RegisterChange.entity_id == record.id),
        names={("contact", record.id): record.name},
    )


# --- CSV ----------------------------------------------------------------------------------------


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*EDITORS)
def import_file():
    """Upload a CSV file; all or nothing, with a report of every bad row."""
    summary = rejected = None
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            rejected = register_csv.ImportRejected(_("Välj en CSV-fil att importera."))
        else:
            data = upload.stream.read(register_csv.MAX_BYTES + 1)
            try:
                summary = register_csv.import_csv(
                    db.session, data, actor=Actor("import", user_id=g.user.id), now=current_clock().now()
                )
            except register_csv.ImportRejected as error:
                db.session.rollback()
                rejected = error
            else:
                db.session.commit()
                log.info(
                    "register import",
                    extra={
                        "user_id": g.user.id,
                        "contacts_created": summary.created,
                        "contacts_updated": summary.updated,
                        "contacts_unchanged": summary.unchanged,
                    },
                )
        status = 400 if rejected is not None else 200
    return (
        render_template(
            "contacts/register/import.html",
            summary=summary,
            rejected=rejected,
            headers=register_csv.HEADERS,
            max_mb=register_csv.MAX_BYTES // (1024 * 1024),
            max_rows=register_csv.MAX_ROWS,
        ),
        status,
    )


@bp.get("/export.csv")
@roles_required(*READERS)
def export_file():
    """The whole register as CSV for Excel (UTF-8 with BOM, ``;``); re-importable unchanged."""
    audit.exported("register")
    day = current_clock().now().date().isoformat()
    return Response(
        register_csv.export_csv(db.session).encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="kontaktregister-{day}.csv"'},
    )


register_cli = AppGroup("register", help="The contacts register: CSV import and export.")


@register_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(path: Path) -> None:
    """Import a CSV file into the register (all or nothing; see contacts/register_csv.py)."""
    if path.stat().st_size > register_csv.MAX_BYTES:
        raise click.ClickException(f"the file is larger than {register_csv.MAX_BYTES // (1024 * 1024)} MB")
    try:
        summary = register_csv.import_csv(
            db.session, path.read_bytes(), actor=Actor("import"), now=current_clock().now()
        )
    except register_csv.ImportRejected as error:
        db.session.rollback()
        click.echo(error.message, err=True)
        for problem in error.problems:
            click.echo(f"  rad {problem.line}, {problem.column or 'hela raden'}: {problem.message}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(
        f"imported: {summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged; "
        f"providers: {summary.providers_created} created, {summary.providers_updated} updated"
    )


@register_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export_command(path: Path) -> None:
    """Write the register to a CSV file (UTF-8 with BOM, ';'), as the export page does."""
    path.write_bytes(register_csv.export_csv(db.session).encode("utf-8"))
    click.echo(f"exported to {path}")


def init_app(app) -> None:
    app.cli.add_command(register_cli)
