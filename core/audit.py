"""Append-only audit log: who viewed or changed personal data, when, from where.

Rows never hold personal values — only field *names*, counts and ids — and never a working link:
a path with a secret in it (a signed link's token, a calendar feed's token) is stored with the
secret cut off after the part a view declares may be kept (:func:`secret_in_path`: ``/d/7-…``, the
link's kind and row id). Three ways in:

* changes to the personal-data models (each domain names its own with :func:`track`) are
  recorded automatically by a session ``after_flush`` hook (create/update/delete with the names
  of the changed fields), in the same transaction as the change, so no change escapes and nothing
  is recorded for a change that is rolled back;
* :func:`viewed` — one line in a view that shows personal data; written and committed after the
  response is built (``after_request``), so a view never fails because of the audit;
* :func:`record` / :func:`changed` — an explicit entry (export, login, ...) added to the caller's
  session; the caller commits.

Every endpoint that shows or exports personal data declares it with :func:`audited_view` or
:func:`audited_export` (the registry :func:`personal_data_views` reads them off the URL map; a
test compares it with a reviewed table of the endpoints that show none). The declaration is also
the guarantee: a successful GET of such an endpoint that recorded no row of its own records the
declared one.

Who and from where come from the request: ``g.user`` (session), the API token's id (token), a
signed link (the page passes ``actor_kind="link"`` and the link's id) or ``system`` outside a
request. The database refuses UPDATE and DELETE of ``audit_log`` (triggers in the migration).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.extensions import db
from core.types import UTCDateTime

logger = logging.getLogger(__name__)

ACTOR_KINDS = ("user", "token", "link", "system")
ACTIONS = ("view", "create", "update", "delete", "export", "login", "logout", "purge")
# Columns whose change is bookkeeping, not a change of the record.
_IGNORED_FIELDS = frozenset({"updated_at", "created_at"})
# What stands in the stored path for the cut-off part of a secret.
REDACTED = "…"


class AuditEntry(db.Model):
    """One audited act. Inserted only; the database refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"

    id = sa.Column(sa.Integer, primary_key=True)
    at = sa.Column(UTCDateTime, nullable=False, index=True)
    actor_kind = sa.Column(sa.String(16), nullable=False)
    actor_id = sa.Column(sa.String(64), nullable=True)
    action = sa.Column(sa.String(32), nullable=False)
    entity = sa.Column(sa.String(48), nullable=False)
    entity_id = sa.Column(sa.String(64), nullable=True)
    detail = sa.Column(sa.JSON, nullable=False, default=dict)
    ip = sa.Column(sa.String(64), nullable=True)
    path = sa.Column(sa.String(300), nullable=True)

    __table_args__ = (sa.Index("ix_audit_log_entity", "entity", "entity_id"),)


def _token_id() -> str | None:
    """The API token the request authenticated with (set by the access rules' hook)."""
    token_id = g.get("api_token_id")
    return None if token_id is None else str(token_id)


# --- secrets in paths -----------------------------------------------------------------------------


def secret_in_path(argument: str, *, keep: str | None = None):
    """Declare the URL argument ``argument`` of a view a secret (a link's token): the audit log
    stores the request's path with the argument cut to the start that matches ``keep`` (a regular
    expression, e.g. the row id of a signed link) followed by ``…``; without ``keep``, ``…`` alone."""
    pattern = re.compile(keep) if keep else None

    def decorate(view):
        view.path_secrets = {**getattr(view, "path_secrets", {}), argument: pattern}
        return view

    return decorate


def redact(value: str, keep: re.Pattern | None) -> str:
    """``value`` as the audit log may hold it: the start ``keep`` matches, then ``…``."""
    match = keep.match(value) if keep is not None else None
    return (match.group(0) if match else "") + REDACTED


def secret_path_arguments(app) -> dict[str, set[str]]:
    """The URL arguments declared secret, by endpoint."""
    return {
        endpoint: set(view.path_secrets)
        for endpoint, view in app.view_functions.items()
        if getattr(view, "path_secrets", None)
    }


def logged_path() -> str:
    """The request's path as the audit log stores it: declared secrets cut off."""
    path = request.path
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    for argument, keep in getattr(view, "path_secrets", {}).items():
        value = (request.view_args or {}).get(argument)
        if value:
            path = path.replace(str(value), redact(str(value), keep))
    return path[:300]


def _who(actor_kind: str | None = None, actor_id=None) -> dict:
    """Actor and origin of the current request (or ``system`` outside one)."""
    if not has_request_context():
        return {
            "actor_kind": actor_kind or "system",
            "actor_id": None if actor_id is None else str(actor_id),
            "ip": None,
            "path": None,
        }
    where = {"ip": (request.remote_addr or "")[:64] or None, "path": logged_path()}
    if actor_kind is None and g.get("audit_link") is not None:
        actor_kind, actor_id = "link", g.audit_link
    if actor_kind is not None:
        return {"actor_kind": actor_kind, "actor_id": None if actor_id is None else str(actor_id)[:64], **where}
    user = g.get("user")
    if user is not None and g.get("auth_method") == "token":
        return {"actor_kind": "token", "actor_id": _token_id(), **where}
    if user is not None:
        return {"actor_kind": "user", "actor_id": str(user.id), **where}
    return {"actor_kind": "system", "actor_id": None, **where}


def _row(action: str, entity: str, entity_id, detail: dict, actor_kind=None, actor_id=None) -> dict:
    return {
        "at": current_clock().now(),
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id)[:64],
        "detail": detail,
        **_who(actor_kind, actor_id),
    }


def record(
    action: str, entity: str, entity_id=None, *, actor_kind=None, actor_id=None, db_session=None, **detail
) -> AuditEntry:
    """Add an entry to the caller's session (same transaction as the caller's change)."""
    entry = AuditEntry(**_row(action, entity, entity_id, detail, actor_kind, actor_id))
    (db_session or db.session).add(entry)
    return entry


def changed(entity: str, entity_id=None, *, action: str = "update", **detail) -> AuditEntry:
    """An explicit change entry (for changes the automatic hook does not see)."""
    return record(action, entity, entity_id, **detail)


def viewed(entity: str, entity_id=None, *, actor_kind=None, actor_id=None, action: str = "view", **detail) -> None:
    """Note that personal data of ``entity`` was shown; written after the response is built."""
    if not has_request_context():
        return
    if actor_kind == "link":
        as_link(actor_id)
    g.setdefault("audit_pending", []).append(_row(action, entity, entity_id, detail, actor_kind, actor_id))


def exported(entity: str, entity_id=None, **detail) -> None:
    """Note an export (CSV, file) of ``entity`` data; written like :func:`viewed`."""
    viewed(entity, entity_id, action="export", **detail)


def as_link(link_id) -> None:
    """The rest of this request acts for a signed link (``kind:id``): changes are recorded so."""
    if has_request_context():
        g.audit_link = None if link_id is None else str(link_id)[:64]


# --- the endpoints that show personal data --------------------------------------------------------


@dataclass(frozen=True)
class PersonalDataView:
    """How a view that shows (``view``) or exports (``export``) personal data is recorded."""

    entity: str
    action: str = "view"
    id_arg: str | None = None
    when: Callable[[], bool] | None = None
    detail: dict = field(default_factory=dict)


def audited_view(entity: str, *, id_arg: str | None = None, action: str = "view", when=None, **detail):
    """Declare that a view shows personal data of ``entity``, and see to it that every successful
    GET of it is in the log: if the view recorded no row itself (with :func:`viewed` or
    :func:`exported` and its details), the view of ``entity`` with the id in the URL argument
    ``id_arg`` and ``detail`` is recorded. ``when`` (a function of no arguments) limits that to the
    requests that show personal data, e.g. a report's CSV format."""
    if action not in ("view", "export"):
        raise ValueError("an audited view is a view or an export")
    declaration = PersonalDataView(entity, action, id_arg, when, dict(detail))

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            before = len(g.get("audit_pending", ()))
            response = view(*args, **kwargs)
            if (
                request.method in ("GET", "HEAD")
                and len(g.get("audit_pending", ())) == before
                and (when is None or when())
            ):
                viewed(entity, kwargs.get(id_arg) if id_arg else None, action=action, **detail)
            return response

        wrapper.personal_data = declaration
        return wrapper

    return decorate


def audited_export(entity: str, **options):
    """:func:`audited_view` for a download of personal data (a CSV, JSON or e-mail file)."""
    return audited_view(entity, action="export", **options)


def personal_data_views(app) -> dict[str, PersonalDataView]:
    """Every endpoint declared to show or export personal data, with its declaration."""
    return {
        endpoint: view.personal_data
        for endpoint, view in app.view_functions.items()
        if getattr(view, "personal_data", None) is not None
    }


def _write_pending(response):
    pending = g.pop("audit_pending", None)
    if not pending or response.status_code >= 400:
        return response
    try:
        db.session.execute(sa.insert(AuditEntry.__table__), pending)
        db.session.commit()
    except Exception as exc:  # a view must not fail because of the audit
        db.session.rollback()
        logger.error("audit log write failed (%s entries): %s", len(pending), type(exc).__name__)
    return response


# --- automatic change recording -------------------------------------------------------------


# The models whose changes are recorded, by entity name; each domain names its own with track().
# Process-wide like the mapped models (the hook listens on every Session): another app naming the
# same model the same way changes nothing.
_TRACKED: dict[type, str] = {}


def track(model: type, entity: str) -> None:
    """Record every create, update and delete of ``model`` rows as ``entity`` (a domain calls
    this in its ``init_app`` for its personal-data models)."""
    known = _TRACKED.setdefault(model, entity)
    if known != entity:
        raise ValueError(f"{model.__name__} is already audited as {known!r}")


def _changed_fields(obj) -> list[str]:
    state = inspect(obj)
    names = []
    for column_attr in state.mapper.column_attrs:
        if column_attr.key in _IGNORED_FIELDS:
            continue
        if state.attrs[column_attr.key].history.has_changes():
            names.append(column_attr.key)
    return sorted(names)


def _entity_id(obj):
    key = inspect(obj).mapper.primary_key_from_instance(obj)
    return key[0] if len(key) == 1 else ",".join(str(part) for part in key)


def _after_flush(session: Session, flush_context) -> None:
    if not _TRACKED:
        return
    rows = []
    for obj in session.new:
        entity = _TRACKED.get(type(obj))
        if entity is not None:
            rows.append(_row("create", entity, _entity_id(obj), {"fields": _changed_fields(obj)}))
    for obj in session.dirty:
        entity = _TRACKED.get(type(obj))
        if entity is None or not session.is_modified(obj, include_collections=False):
            continue
        fields = _changed_fields(obj)
        if fields:
            rows.append(_row("update", entity, _entity_id(obj), {"fields": fields}))
    for obj in session.deleted:
        entity = _TRACKED.get(type(obj))
        if entity is not None:
            rows.append(_row("delete", entity, _entity_id(obj), {}))
    if rows:
        session.connection().execute(sa.insert(AuditEntry.__table__), rows)


def init_app(app) -> None:
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
    app.after_request(_write_pending)
