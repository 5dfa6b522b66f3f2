"""The register's JSON API: providers and contact persons under ``/api/v1``.

Described in :mod:`contacts.openapi`, this API's part of the OpenAPI document that
:mod:`core.openapi` serves at ``/api/v1/openapi.json``; keep the two in step (tests/test_openapi.py
fails when a route or method is missing from the document).

Every change goes through :mod:`contacts.register` as ``Actor("api", user_id)`` and is committed
once; a refused request changes nothing.

Decisions:
- Authentication: ``Authorization: Bearer krt_...`` (an API token), or a staff session, for which
  the CSRF token is required on writes like on any form. Anonymous requests get 401.
- Who may: team and admin read and write; the on-call officer reads; a provider contact's account
  reads its own provider and that provider's contacts only (anything else is 404, as if it did
  not exist); the alarm operator is refused (403).
- Errors are ``{"error": "...", "fields": {field: message}}`` (``fields`` when fields are to
  blame). 400: the request does not match the documented schema (content type, malformed JSON,
  not an object, unknown or read-only fields, wrong JSON types, values outside an enum, bad query
  parameters). 422: it does, but the register refuses the values (an invalid mobile number, a
  duplicate provider name, a contact with neither mobile nor e-mail). 404: no such record. 409:
  a concurrent change won (nothing saved; try again). Messages about the request are English,
  for the integrator; the register's own messages are Swedish, for the person who typed the value.
- There is no DELETE (405): deactivate with ``PATCH {"is_active": false}``; the record and its
  history stay. A contact cannot move to another provider (``provider_id`` is read-only after
  creation): create it at the new provider and deactivate the old one, so each history is whole.
- Lists are ordered by id and paged with ``limit`` (1-500, default 50) and ``offset``; the answer
  carries ``total``. ``q`` searches case-insensitively (å, ä and ö too) in names, organisation
  numbers, roles, e-mail addresses and mobile numbers (also written as 070-...). Unknown query
  parameters are refused, so that a misspelt filter does not silently return everything.
- Services and kinds are the English keys (``camera_supervision``, ``municipal``); mobile numbers
  E.164; instants ISO 8601 in UTC with the offset (``2026-11-23T09:00:00+00:00``).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, g, jsonify, request, url_for
from sqlalchemy import Text, cast, func, select
from sqlalchemy.exc import IntegrityError

from accounts.access import roles_required
from accounts.roles import Role
from contacts import register
from contacts.api_input import (
    CONTACT_CHECKS,
    MAX_ID,
    PROVIDER_CHECKS,
    ApiError,
    bool_arg,
    checked,
    id_arg,
    json_object,
    matches,
    paging,
    refuse_unknown_parameters,
)
from contacts.models import SERVICES, ContactPerson, Provider, RegisterChange
from contacts.register import Actor, RegisterError
from core import audit
from core.clock import current_clock
from core.extensions import db

bp = Blueprint("contacts_api", __name__, url_prefix="/api/v1")

READERS = (Role.TEAM, Role.ADMIN, Role.ON_CALL, Role.PROVIDER)
WRITERS = (Role.TEAM, Role.ADMIN)

PROVIDER_READ_ONLY = ("id", "has_active_contact", "created_at", "updated_at")
CONTACT_READ_ONLY = ("id", "created_at", "updated_at", "email_failing_since", "mobile_failing_since")


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    db.session.rollback()
    body = {"error": error.message}
    if error.fields:
        body["fields"] = error.fields
    response = jsonify(body)
    response.status_code = error.status
    return response


# --- who sees what ------------------------------------------------------------------------------


def _provider_scope() -> int | None:
    """The one provider a provider contact's account may read; None for staff (everything)."""
    if g.user.role_enum is Role.PROVIDER:
        if g.user.provider_id is None:  # create_user prevents it; refuse rather than show everything
            raise ApiError(403, "your account is not linked to a provider")
        return g.user.provider_id
    return None


def _get_provider(provider_id: int) -> Provider:
    scope = _provider_scope()
    provider = db.session.get(Provider, provider_id) if provider_id <= MAX_ID else None
    if provider is None or (scope is not None and provider.id != scope):
        raise ApiError(404, f"no provider with id {provider_id}")
    return provider


def _get_contact(contact_id: int) -> ContactPerson:
    scope = _provider_scope()
    contact = db.session.get(ContactPerson, contact_id) if contact_id <= MAX_ID else None
    if contact is None or (scope is not None and contact.provider_id != scope):
        raise ApiError(404, f"no contact with id {contact_id}")
    return contact


def _actor() -> Actor:
    return Actor("api", g.user.id)


# --- writing ------------------------------------------------------------------------------------


def _save(change: Callable[[], register.Outcome]) -> register.Outcome:
    """Run one register change and commit it, or refuse it with nothing stored."""
    try:
        outcome = change()
        db.session.commit()
    except RegisterError as error:
        db.session.rollback()
        raise ApiError(422, "the register refused the values: see fields", error.errors) from None
    except IntegrityError:
        db.session.rollback()
        raise ApiError(
            409, "a change made at the same time conflicted with this one; nothing was saved, try again"
        ) from None
    return outcome


# --- answers ------------------------------------------------------------------------------------


def _instant(value):
    return value.isoformat() if value is not None else None


def _provider_json(provider: Provider, has_active_contact: bool) -> dict:
    return {
        "id": provider.id,
        "name": provider.name,
        "organisation_number": provider.organisation_number,
        "kind": provider.kind,
        "is_active": provider.is_active,
        "has_active_contact": has_active_contact,
        "created_at": _instant(provider.created_at),
        "updated_at": _instant(provider.updated_at),
    }


def _contact_json(contact: ContactPerson) -> dict:
    return {
        "id": contact.id,
        "provider_id": contact.provider_id,
        "name": contact.name,
        "role_title": contact.role_title,
        "mobile": contact.mobile,
        "email": contact.email,
        "services": [service for service in SERVICES if service in (contact.services or [])],
        "is_active": contact.is_active,
        "created_at": _instant(contact.created_at),
        "updated_at": _instant(contact.updated_at),
        "mobile_failing_since": _instant(contact.mobile_failing_since),
        "email_failing_since": _instant(contact.email_failing_since),
    }


def _change_json(change: RegisterChange) -> dict:
    return {
        "id": change.id,
        "entity": change.entity,
        "entity_id": change.entity_id,
        "provider_id": change.provider_id,
        "action": change.action,
        "field": change.field,
        "old_value": change.old_value,
        "new_value": change.new_value,
        "source": change.source,
        "changed_by_id": change.changed_by_id,
        "changed_at": _instant(change.changed_at),
    }


def _with_active_contact(providers: list[Provider]) -> list[dict]:
    ids = [provider.id for provider in providers]
    with_contact = (
        set(
            db.session.scalars(
                select(ContactPerson.provider_id)
                .where(ContactPerson.provider_id.in_(ids), ContactPerson.is_active.is_(True))
                .distinct()
            )
        )
        if ids
        else set()
    )
    return [_provider_json(provider, provider.id in with_contact) for provider in providers]


def _page(items: list, total: int, limit: int, offset: int):
    return jsonify(items=items, total=total, limit=limit, offset=offset)


def _created(body: dict, location: str):
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def _search_and_page(model, conditions: list, search_columns: list, q: str | None, limit: int, offset: int):
    """One page of ``model`` records meeting ``conditions`` (and matching ``q``), and the total.

    The search runs in Python over the few searched columns: SQLite's lower() folds ASCII only,
    and the register has thousands of rows, not millions.
    """
    if q is not None and q.strip():
        rows = db.session.execute(select(model.id, *search_columns).where(*conditions).order_by(model.id))
        ids = [row[0] for row in rows if matches(q, row[1:])]
        page_ids = ids[offset : offset + limit]
        records = (
            list(db.session.scalars(select(model).where(model.id.in_(page_ids)).order_by(model.id))) if page_ids else []
        )
        return records, len(ids)
    total = db.session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    records = list(db.session.scalars(select(model).where(*conditions).order_by(model.id).limit(limit).offset(offset)))
    return records, total


# --- providers ----------------------------------------------------------------------------------


@bp.get("/providers")
@roles_required(*READERS)
@audit.audited_view("provider", api=True)
def list_providers():
    """Providers, filtered by ``q``, ``active`` and ``has_active_contact``, paged."""
    refuse_unknown_parameters(("q", "active", "has_active_contact", "limit", "offset"))
    limit, offset = paging()
    active = bool_arg("active")
    has_contact = bool_arg("has_active_contact")
    conditions = []
    scope = _provider_scope()
    if scope is not None:
        conditions.append(Provider.id == scope)
    if active is not None:
        conditions.append(Provider.is_active.is_(active))
    if has_contact is not None:
        exists = (
            select(ContactPerson.id)
            .where(ContactPerson.provider_id == Provider.id, ContactPerson.is_active.is_(True))
            .exists()
        )
        conditions.append(exists if has_contact else ~exists)
    providers, total = _search_and_page(
        Provider, conditions, [Provider.name, Provider.organisation_number], request.args.get("q"), limit, offset
    )
    return _page(_with_active_contact(providers), total, limit, offset)


@bp.post("/providers")
@roles_required(*WRITERS)
def create_provider():
    data = checked(json_object(), PROVIDER_CHECKS, read_only=PROVIDER_READ_ONLY, required=("name", "kind"))
    outcome = _save(lambda: register.create_provider(db.session, data, actor=_actor(), now=current_clock().now()))
    provider = outcome.record
    return _created(_with_active_contact([provider])[0], url_for("contacts_api.get_provider", provider_id=provider.id))


@bp.get("/providers/<int:provider_id>")
@roles_required(*READERS)
@audit.audited_view("provider", id_arg="provider_id", api=True)
def get_provider(provider_id: int):
    refuse_unknown_parameters(())
    return jsonify(_with_active_contact([_get_provider(provider_id)])[0])


@bp.patch("/providers/<int:provider_id>")
@roles_required(*WRITERS)
def update_provider(provider_id: int):
    provider = _get_provider(provider_id)
    data = checked(json_object(), PROVIDER_CHECKS, read_only=PROVIDER_READ_ONLY, required=())
    _save(lambda: register.update_provider(db.session, provider, data, actor=_actor(), now=current_clock().now()))
    return jsonify(_with_active_contact([provider])[0])


@bp.get("/providers/<int:provider_id>/history")
@roles_required(*READERS)
@audit.audited_view("provider", id_arg="provider_id", api=True, history=True)
def provider_history(provider_id: int):
    """The provider's own changes, newest first (its contacts' changes are in their histories)."""
    return _history("provider", _get_provider(provider_id).id)


def _history(entity: str, entity_id: int):
    refuse_unknown_parameters(("limit", "offset"))
    limit, offset = paging()
    changes = register.history(db.session, entity=entity, entity_id=entity_id)
    return _page([_change_json(change) for change in changes[offset : offset + limit]], len(changes), limit, offset)


# --- contacts -----------------------------------------------------------------------------------


@bp.get("/contacts")
@roles_required(*READERS)
@audit.audited_view("contact", api=True)
def list_contacts():
    """Contact persons, filtered by ``provider_id``, ``q``, ``active`` and ``service``, paged."""
    refuse_unknown_parameters(("provider_id", "q", "active", "service", "limit", "offset"))
    limit, offset = paging()
    provider_id = id_arg("provider_id")
    active = bool_arg("active")
    service = request.args.get("service")
    if service is not None and service not in SERVICES:
        raise ApiError(
            400,
            "service: expected one of " + ", ".join(SERVICES),
            {"service": "expected one of " + ", ".join(SERVICES)},
        )
    conditions = []
    scope = _provider_scope()
    if scope is not None:
        conditions.append(ContactPerson.provider_id == scope)
    if provider_id is not None:
        conditions.append(ContactPerson.provider_id == provider_id)
    if active is not None:
        conditions.append(ContactPerson.is_active.is_(active))
    if service is not None:
        # services is a JSON list; the JSON text holds the key in quotes on both databases.
        conditions.append(cast(ContactPerson.services, Text).contains(f'"{service}"', autoescape=True))
    contacts, total = _search_and_page(
        ContactPerson,
        conditions,
        [ContactPerson.name, ContactPerson.role_title, ContactPerson.email, ContactPerson.mobile],
        request.args.get("q"),
        limit,
        offset,
    )
    return _page([_contact_json(contact) for contact in contacts], total, limit, offset)


@bp.post("/contacts")
@roles_required(*WRITERS)
def create_contact():
    data = checked(json_object(), CONTACT_CHECKS, read_only=CONTACT_READ_ONLY, required=("provider_id", "name"))
    fields = dict(data)
    provider = db.session.get(Provider, fields.pop("provider_id"))
    if provider is None:
        raise ApiError(422, "the register refused the values: see fields", {"provider_id": "no provider with this id"})
    outcome = _save(
        lambda: register.create_contact(db.session, provider, fields, actor=_actor(), now=current_clock().now())
    )
    contact = outcome.record
    return _created(_contact_json(contact), url_for("contacts_api.get_contact", contact_id=contact.id))


@bp.get("/contacts/<int:contact_id>")
@roles_required(*READERS)
@audit.audited_view("contact", id_arg="contact_id", api=True)
def get_contact(contact_id: int):
    refuse_unknown_parameters(())
    return jsonify(_contact_json(_get_contact(contact_id)))


@bp.patch("/contacts/<int:contact_id>")
@roles_required(*WRITERS)
def update_contact(contact_id: int):
    contact = _get_contact(contact_id)
    data = json_object()
    if "provider_id" in data:
        raise ApiError(
            400,
            "a contact cannot move to another provider: create it there and deactivate this one",
            {"provider_id": "read-only after creation"},
        )
    data = checked(data, CONTACT_CHECKS, read_only=CONTACT_READ_ONLY, required=())
    _save(lambda: register.update_contact(db.session, contact, data, actor=_actor(), now=current_clock().now()))
    return jsonify(_contact_json(contact))


@bp.get("/contacts/<int:contact_id>/history")
@roles_required(*READERS)
@audit.audited_view("contact", id_arg="contact_id", api=True, history=True)
def contact_history(contact_id: int):
    """The contact's changes, newest first."""
    return _history("contact", _get_contact(contact_id).id)
