"""Camera-supervised clients and failed supervisions over the JSON API, described in
:mod:`crisis.visits.openapi`.

- ``GET /api/v1/supervised-clients``: the clients with their schedules and exceptions, filtered
  by ``provider_id``, ``area`` (ignoring case) and ``active``, paged.
- ``PUT /api/v1/supervised-clients``: ``{"clients": [...], "complete": false}`` creates or
  updates the clients by reference (their schedules and exceptions replaced by the ones sent).
  With ``"complete": true`` the body is the whole set: active clients not in it are deactivated.
- ``DELETE /api/v1/supervised-clients/<reference>``: deactivates the client (its failures and
  visits stay; a later PUT with ``"active": true`` brings it back).
- ``POST /api/v1/supervision-failures``: one failure (``{"reference", "scheduled_at",
  "reason"}``) or ``{"failures": [...]}``. 201 with the visits (new and existing, each with
  ``created``) when at least one is new; 200 when all existed already.

Decisions: the alarm operator, the team and admins may use these (token or staff session, as in
contacts/api.py). Errors are ``{"error": ..., "fields": {...}}``; 400 when the body does not
have the documented shape, 422 when values are refused, with every problem: field names are
``clients[3].schedules[0].times`` or ``failures[2].scheduled_at`` (``reference`` etc. for a
single failure). Nothing is saved from a refused request.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from accounts.access import roles_required
from accounts.roles import Role
from contacts.api_input import ApiError, bool_arg, id_arg, json_object, paging, refuse_unknown_parameters
from core import audit
from core.clock import current_clock
from core.extensions import db
from crisis.visits import clients as supervision_clients
from crisis.visits import supervision
from crisis.visits.models import SupervisedClient

bp = Blueprint("supervision_api", __name__, url_prefix="/api/v1")

USERS = (Role.ALARM_OPERATOR, Role.TEAM, Role.ADMIN)


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    db.session.rollback()
    body = {"error": error.message}
    if error.fields:
        body["fields"] = error.fields
    response = jsonify(body)
    response.status_code = error.status
    return response


def _day(value):
    return value.isoformat() if value is not None else None


def client_json(client: SupervisedClient) -> dict:
    return {
        "reference": client.reference,
        "provider_id": client.provider_id,
        "area": client.area,
        "active": client.is_active,
        "schedules": [
            {
                "weekdays": [supervision_clients.WEEKDAY_KEYS[day] for day in group["weekdays"]],
                "times": group["times"],
                "valid_from": _day(group["valid_from"]),
                "valid_until": _day(group["valid_until"]),
            }
            for group in supervision_clients.schedule_groups(client)
        ],
        "exceptions": [
            {"date": exception.on_date.isoformat(), "action": exception.action, "time": exception.local_time}
            for exception in sorted(client.exceptions, key=lambda e: (e.on_date, e.local_time or "", e.action))
        ],
        "created_at": client.created_at.isoformat(),
        "updated_at": _day(client.updated_at),
    }


def _fields(problems: list[supervision_clients.Problem], prefix: str | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    for problem in problems:
        name = problem.field
        if prefix is not None:
            name = f"{prefix}[{problem.index}]" + (f".{name}" if name else "")
        fields.setdefault(name or "body", problem.message)
    return fields


def _commit() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(
            409, "a change made at the same time conflicted with this one; nothing was saved, try again"
        ) from None


@bp.get("/supervised-clients")
@roles_required(*USERS)
@audit.audited_view("client", api=True)
def list_clients():
    """The clients, filtered by ``provider_id``, ``area`` and ``active``, ordered by reference."""
    refuse_unknown_parameters(("provider_id", "area", "active", "limit", "offset"))
    limit, offset = paging()
    provider_id = id_arg("provider_id")
    active = bool_arg("active")
    area = request.args.get("area")
    query = select(SupervisedClient).options(
        selectinload(SupervisedClient.schedules), selectinload(SupervisedClient.exceptions)
    )
    if provider_id is not None:
        query = query.where(SupervisedClient.provider_id == provider_id)
    if active is not None:
        query = query.where(SupervisedClient.is_active.is_(active))
    clients = list(db.session.scalars(query.order_by(SupervisedClient.reference, SupervisedClient.id)))
    if area is not None and area.strip():
        wanted = supervision_clients.area_key(area)  # casefold in Python: SQLite's lower() is ASCII only
        clients = [client for client in clients if supervision_clients.area_key(client.area) == wanted]
    page = clients[offset : offset + limit]
    return jsonify(items=[client_json(c) for c in page], total=len(clients), limit=limit, offset=offset)


@bp.put("/supervised-clients")
@roles_required(*USERS)
def put_clients():
    """Create or update a batch of clients (or the whole set, ``complete``): all or nothing."""
    data = json_object()
    known = ("clients", "complete")
    problems = {name: "unknown field (fields: clients, complete)" for name in data if name not in known}
    if not isinstance(data.get("clients"), list):
        problems["clients"] = "expected a list of clients"
    if "complete" in data and not isinstance(data["complete"], bool):
        problems["complete"] = "expected true or false"
    if problems:
        raise ApiError(400, "the body does not match the documented schema", problems)
    try:
        summary = supervision_clients.save_clients(
            db.session, data["clients"], now=current_clock().now(), complete=data.get("complete", False)
        )
    except supervision_clients.BatchRejected as error:
        raise ApiError(422, "nothing was saved: see fields", _fields(error.problems, "clients")) from None
    _commit()
    return jsonify(
        created=summary.created,
        updated=summary.updated,
        unchanged=summary.unchanged,
        deactivated=summary.deactivated,
    )


@bp.delete("/supervised-clients/<reference>")
@roles_required(*USERS)
def delete_client(reference: str):
    """Deactivate a client: no more supervisions derived for it; its history stays."""
    client = supervision_clients.find_client(db.session, reference)
    if client is None:
        raise ApiError(404, "no supervised client with this reference")
    supervision_clients.deactivate_client(db.session, client, now=current_clock().now())
    _commit()
    return jsonify(client_json(client))


@bp.post("/supervision-failures")
@roles_required(*USERS)
def post_failures():
    """Failed supervisions: each becomes one visit for the client's provider (idempotent)."""
    data = json_object()
    batch = "failures" in data
    if batch:
        extra = {name: "unknown field (fields: failures)" for name in data if name != "failures"}
        if not isinstance(data["failures"], list) or not data["failures"]:
            extra["failures"] = "expected a non-empty list of failures"
        if extra:
            raise ApiError(400, "the body does not match the documented schema", extra)
        items = data["failures"]
    else:
        items = [data]
    now = current_clock().now()
    try:
        reported = supervision.report_failures(db.session, items, source="operator", now=now, reported_by_id=g.user.id)
    except supervision_clients.BatchRejected as error:
        raise ApiError(
            422, "nothing was saved: see fields", _fields(error.problems, "failures" if batch else None)
        ) from None
    _commit()
    body = {
        "visits": [
            {
                "id": item.visit.id,
                "reference": item.reference,
                "provider_id": item.visit.provider_id,
                "due_at": item.visit.due_at.isoformat(),
                "incident_id": item.visit.incident_id,
                "status": item.visit.status,
                "created": item.created,
                "scheduled": item.scheduled,
            }
            for item in reported
        ]
    }
    response = jsonify(body)
    response.status_code = 201 if any(item.created for item in reported) else 200
    return response
