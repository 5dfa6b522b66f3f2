"""The register's JSON API: providers and contact persons under ``/api/v1``.

Described, with every other ``/api/v1`` endpoint, by the OpenAPI document that
:mod:`core.openapi` serves at ``/api/v1/openapi.json``; keep the two in step (tests/test_openapi.py
fails when a route or method is missing from the document).

Every change goes through :mod:`contacts.register` as ``Actor("api", user_id)`` and is committed
once; a refused request changes nothing.

Decisions (the issue left them open):
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

import json
import re
from collections.abc import Callable, Iterable, Mapping

from flask import Blueprint, abort, g, jsonify, request, session, url_for
from sqlalchemy import Text, cast, func, select
from sqlalchemy.exc import IntegrityError

from accounts.access import SAFE_METHODS, roles_required
from accounts.roles import Role
from contacts import register
from contacts.models import SERVICES, ContactPerson, Provider, RegisterChange
from contacts.register import KINDS, Actor, RegisterError
from core.clock import current_clock
from core.extensions import db

bp = Blueprint("contacts_api", __name__, url_prefix="/api/v1")

READERS = (Role.TEAM, Role.ADMIN, Role.ON_CALL, Role.PROVIDER)
WRITERS = (Role.TEAM, Role.ADMIN)

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_OFFSET = 1_000_000_000
MAX_ID = 2**31 - 1  # the integer columns' range; a larger id cannot exist (and PostgreSQL would refuse it)

PROVIDER_WRITABLE = ("name", "organisation_number", "kind", "is_active")
CONTACT_WRITABLE = ("name", "role_title", "mobile", "email", "services", "is_active")
PROVIDER_READ_ONLY = ("id", "has_active_contact", "created_at", "updated_at")
CONTACT_READ_ONLY = ("id", "created_at", "updated_at", "email_failing_since", "mobile_failing_since")


class ApiError(Exception):
    """A refused request: its status, a sentence saying what is wrong, and the fields to blame."""

    def __init__(self, status: int, message: str, fields: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    db.session.rollback()
    body = {"error": error.message}
    if error.fields:
        body["fields"] = error.fields
    response = jsonify(body)
    response.status_code = error.status
    return response


@bp.url_value_preprocessor
def _anonymous_writes_are_unauthorised(endpoint, values):
    """Answer an anonymous write with 401, like an anonymous read.

    The access hook checks CSRF before it looks for a user, so a request with neither a token nor
    a session would otherwise get the CSRF 400, which tells an API client nothing useful. URL value
    preprocessors run before ``before_request`` hooks.
    """
    if request.method in SAFE_METHODS or "Authorization" in request.headers or session.get("uid") is not None:
        return
    response = jsonify(error="authentication required: log in or send an API token")
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="krisrutin"'
    abort(response)


# --- reading the request ------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_object() -> dict:
    """The request body: a JSON object, or :class:`ApiError` 400 saying what is wrong with it."""
    if not request.is_json:
        raise ApiError(400, "send the body as JSON with the header Content-Type: application/json")
    try:
        text = request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not valid UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise ApiError(
            400, f"the body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except ValueError as error:  # NaN, Infinity
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, "the body is not valid JSON: nested too deep") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def _storable(text: str) -> bool:
    """Whether a string can be stored: no NUL character, no lone surrogate (\\ud800 in JSON)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# A field's check: None when the value has the documented type, else what was expected.
Check = Callable[[object], str | None]


def _string(*, nullable: bool = False) -> Check:
    def check(value):
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            return "expected a string or null" if nullable else "expected a string"
        if not _storable(value):
            return "contains a character that cannot be stored (NUL or an unpaired surrogate)"
        return None

    return check


def _boolean(value):
    return None if isinstance(value, bool) else "expected true or false"


def _one_of(choices: Iterable[str]) -> Check:
    choices = tuple(choices)

    def check(value):
        return None if isinstance(value, str) and value in choices else "expected one of: " + ", ".join(choices)

    return check


def _services(value):
    if not isinstance(value, list) or not all(isinstance(item, str) and item in SERVICES for item in value):
        return "expected a list of: " + ", ".join(SERVICES)
    return None


def _identifier(value):
    return None if _is_int(value) and 1 <= value <= MAX_ID else "expected a positive integer id"


PROVIDER_CHECKS: dict[str, Check] = {
    "name": _string(),
    "organisation_number": _string(nullable=True),
    "kind": _one_of(KINDS),
    "is_active": _boolean,
}
CONTACT_CHECKS: dict[str, Check] = {
    "provider_id": _identifier,
    "name": _string(),
    "role_title": _string(),
    "mobile": _string(nullable=True),
    "email": _string(nullable=True),
    "services": _services,
    "is_active": _boolean,
}


def _checked(data: dict, checks: Mapping[str, Check], *, read_only: Iterable[str], required: Iterable[str]) -> dict:
    """``data`` when every field is known, writable and of its documented type; else ApiError 400."""
    problems: dict[str, str] = {}
    read_only = set(read_only)
    for name, value in data.items():
        if name in read_only:
            problems[name] = "read-only: cannot be set"
        elif name not in checks:
            problems[name] = "unknown field (fields: " + ", ".join(checks) + ")"
        else:
            problem = checks[name](value)
            if problem:
                problems[name] = problem
    for name in required:
        if name not in data:
            problems[name] = "required"
    if problems:
        raise ApiError(400, "the body does not match the documented schema", problems)
    return data


def _query(allowed: Iterable[str]) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(
            400,
            "unknown query parameter: " + ", ".join(unknown),
            {name: "unknown query parameter (parameters: " + ", ".join(allowed) + ")" for name in unknown},
        )


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not re.fullmatch(r"\d{1,10}", text) or not low <= int(text) <= high:
        raise ApiError(400, f"{name}: expected an integer from {low} to {high}", {name: f"expected {low}-{high}"})
    return int(text)


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw in ("true", "false"):
        return raw == "true"
    raise ApiError(400, f"{name}: expected true or false", {name: "expected true or false"})


def _paging() -> tuple[int, int]:
    return _int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), _int_arg("offset", 0, 0, MAX_OFFSET)


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


# --- search -------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _search_forms(value: str | None) -> list[str]:
    """The forms a stored value is searched in: as written, and its digits (070... for +4670...)."""
    if not value:
        return []
    forms = [_fold(value)]
    digits = _digits(value)
    if digits:
        forms.append(digits)
        if value.startswith("+46"):
            forms.append("0" + digits[2:])
    return forms


def _matches(q: str, values: Iterable[str | None]) -> bool:
    needle = _fold(q)
    digits = _digits(q) if re.fullmatch(r"[\d\s()+-]+", q.strip()) else ""
    for value in values:
        for form in _search_forms(value):
            if needle in form or (digits and digits in form):
                return True
    return False


def _search_and_page(model, conditions: list, search_columns: list, q: str | None, limit: int, offset: int):
    """One page of ``model`` records meeting ``conditions`` (and matching ``q``), and the total.

    The search runs in Python over the few searched columns: SQLite's lower() folds ASCII only,
    and the register has thousands of rows, not millions.
    """
    if q is not None and q.strip():
        rows = db.session.execute(select(model.id, *search_columns).where(*conditions).order_by(model.id))
        ids = [row[0] for row in rows if _matches(q, row[1:])]
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
def list_providers():
    """Providers, filtered by ``q``, ``active`` and ``has_active_contact``, paged."""
    _query(("q", "active", "has_active_contact", "limit", "offset"))
    limit, offset = _paging()
    active = _bool_arg("active")
    has_contact = _bool_arg("has_active_contact")
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
    data = _checked(_json_object(), PROVIDER_CHECKS, read_only=PROVIDER_READ_ONLY, required=("name", "kind"))
    outcome = _save(lambda: register.create_provider(db.session, data, actor=_actor(), now=current_clock().now()))
    provider = outcome.record
    return _created(_with_active_contact([provider])[0], url_for("contacts_api.get_provider", provider_id=provider.id))


@bp.get("/providers/<int:provider_id>")
@roles_required(*READERS)
def get_provider(provider_id: int):
    _query(())
    return jsonify(_with_active_contact([_get_provider(provider_id)])[0])


@bp.patch("/providers/<int:provider_id>")
@roles_required(*WRITERS)
def update_provider(provider_id: int):
    provider = _get_provider(provider_id)
    data = _checked(_json_object(), PROVIDER_CHECKS, read_only=PROVIDER_READ_ONLY, required=())
    _save(lambda: register.update_provider(db.session, provider, data, actor=_actor(), now=current_clock().now()))
    return jsonify(_with_active_contact([provider])[0])


@bp.get("/providers/<int:provider_id>/history")
@roles_required(*READERS)
def provider_history(provider_id: int):
    """The provider's own changes, newest first (its contacts' changes are in their histories)."""
    return _history("provider", _get_provider(provider_id).id)


def _history(entity: str, entity_id: int):
    _query(("limit", "offset"))
    limit, offset = _paging()
    changes = register.history(db.session, entity=entity, entity_id=entity_id)
    return _page([_change_json(change) for change in changes[offset : offset + limit]], len(changes), limit, offset)


# --- contacts -----------------------------------------------------------------------------------


def _id_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not re.fullmatch(r"\d{1,10}", raw.strip()) or not 1 <= int(raw) <= MAX_ID:
        raise ApiError(400, f"{name}: expected a positive integer id", {name: "expected a positive integer id"})
    return int(raw)


@bp.get("/contacts")
@roles_required(*READERS)
def list_contacts():
    """Contact persons, filtered by ``provider_id``, ``q``, ``active`` and ``service``, paged."""
    _query(("provider_id", "q", "active", "service", "limit", "offset"))
    limit, offset = _paging()
    provider_id = _id_arg("provider_id")
    active = _bool_arg("active")
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
    data = _checked(_json_object(), CONTACT_CHECKS, read_only=CONTACT_READ_ONLY, required=("provider_id", "name"))
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
def get_contact(contact_id: int):
    _query(())
    return jsonify(_contact_json(_get_contact(contact_id)))


@bp.patch("/contacts/<int:contact_id>")
@roles_required(*WRITERS)
def update_contact(contact_id: int):
    contact = _get_contact(contact_id)
    data = _json_object()
    if "provider_id" in data:
        raise ApiError(
            400,
            "a contact cannot move to another provider: create it there and deactivate this one",
            {"provider_id": "read-only after creation"},
        )
    data = _checked(data, CONTACT_CHECKS, read_only=CONTACT_READ_ONLY, required=())
    _save(lambda: register.update_contact(db.session, contact, data, actor=_actor(), now=current_clock().now()))
    return jsonify(_contact_json(contact))


@bp.get("/contacts/<int:contact_id>/history")
@roles_required(*READERS)
def contact_history(contact_id: int):
    """The contact's changes, newest first."""
    return _history("contact", _get_contact(contact_id).id)
