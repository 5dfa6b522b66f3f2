"""Append-only audit log: who viewed or changed personal data, when, from where.

Rows never hold personal values — only field *names*, counts and ids. Three ways in:

* changes to the personal-data models (each domain names its own with :func:`track`) are
  recorded automatically by a session ``after_flush`` hook (create/update/delete with the names
  of the changed fields), in the same transaction as the change, so no change escapes and nothing
  is recorded for a change that is rolled back;
* :func:`viewed` — one line in a view that shows personal data; written and committed after the
  response is built (``after_request``), so a view never fails because of the audit;
* :func:`record` / :func:`changed` — an explicit entry (export, login, ...) added to the caller's
  session; the caller commits.

Who and from where come from the request: ``g.user`` (session), the API token's id (token), a
signed link (the page passes ``actor_kind="link"`` and the link's id) or ``system`` outside a
request. The database refuses UPDATE and DELETE of ``audit_log`` (triggers in the migration).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import g, has_request_context, request
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


def _who(actor_kind: str | None = None, actor_id=None) -> dict:
    """Actor and origin of the current request (or ``system`` outside one)."""
    if not has_request_context():
        return {
            "actor_kind": actor_kind or "system",
            "actor_id": None if actor_id is None else str(actor_id),
            "ip": None,
            "path": None,
        }
    where = {"ip": (request.remote_addr or "")[:64] or None, "path": request.path[:300]}
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
