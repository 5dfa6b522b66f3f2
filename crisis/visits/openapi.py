"""The camera-supervision API's part of the OpenAPI description: supervised clients and failed supervisions.

Registered from :mod:`crisis.visits`' ``init_app`` with :func:`core.openapi.register_api_area`;
the routes are :mod:`crisis.visits.api`. Its lists page and filter with the register's
``Limit``, ``Offset`` and ``Active`` parameters (:mod:`contacts.openapi`), as the API pages with
:mod:`contacts.api_input`.
"""

from __future__ import annotations

from core.openapi_document import (
    ID,
    INSTANT,
    NULLABLE_INSTANT,
    TEXT,
    ApiArea,
    error_responses,
    json_response,
    page_of,
    read_operation,
    ref,
    write_operation,
)

SUPERVISION_DESCRIPTION = """\
Camera-supervised clients are known by a pseudonymous reference shared by the alarm operator and
the provider, their provider, an area and weekly schedules of Stockholm wall-clock times with
exceptions. The alarm operator, the team and admins may use these endpoints. A refused batch
saves nothing and lists every problem (422, Swedish messages, fields like
clients[3].schedules[0].times)."""

_DATE = {"type": "string", "format": "date"}
_NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
_HHMM = {"type": "string", "pattern": "^([01]?[0-9]|2[0-3])[:.][0-5][0-9]$", "description": "HH:MM, local time."}
_WEEKDAY = {
    "oneOf": [
        {**TEXT, "description": "mon..sun (mån..sön and ranges like mån-fre are accepted)"},
        {"type": "integer", "minimum": 0, "maximum": 6, "description": "0 = Monday"},
    ]
}


TAG = {"name": "supervision", "description": "Camera-supervised clients and failed supervisions."}


def api_area() -> ApiArea:
    """The supervision API's paths, schemas and tag; last in the description."""
    return ApiArea(name=__name__, order=50, tags=(TAG,), paths=_paths(), schemas=_schemas())


def _schemas() -> dict:
    schedule = {
        "type": "object",
        "required": ["weekdays", "times"],
        "additionalProperties": False,
        "properties": {
            "weekdays": {"type": "array", "items": _WEEKDAY, "minItems": 1},
            "times": {"type": "array", "items": _HHMM, "minItems": 1},
            "valid_from": {**_NULLABLE_DATE, "description": "First local date (inclusive)."},
            "valid_until": {**_NULLABLE_DATE, "description": "Last local date (inclusive)."},
        },
    }
    exception = {
        "type": "object",
        "required": ["date", "action"],
        "additionalProperties": False,
        "properties": {
            "date": _DATE,
            "action": {"type": "string", "enum": ["skip", "add"]},
            "time": {**_HHMM, "type": ["string", "null"], "description": "skip without a time: the whole day."},
        },
    }
    visit = {
        "type": "object",
        "required": ["id", "reference", "provider_id", "due_at", "incident_id", "status", "created", "scheduled"],
        "additionalProperties": False,
        "properties": {
            "id": ID,
            "reference": {"type": "string"},
            "provider_id": ID,
            "due_at": INSTANT,
            "incident_id": {**ID, "type": ["integer", "null"]},
            "status": {"type": "string", "enum": ["open", "done", "not_done"]},
            "created": {"type": "boolean", "description": "false: the failure was already known."},
            "scheduled": {"type": "boolean", "description": "false: not one of the client's scheduled times."},
        },
    }
    return {
        "SupervisedClient": {
            "type": "object",
            "required": [
                "reference",
                "provider_id",
                "area",
                "active",
                "schedules",
                "exceptions",
                "created_at",
                "updated_at",
            ],
            "additionalProperties": False,
            "properties": {
                "reference": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                "provider_id": ID,
                "area": {**TEXT, "maxLength": 100},
                "active": {"type": "boolean"},
                "schedules": {"type": "array", "items": schedule},
                "exceptions": {"type": "array", "items": exception},
                "created_at": INSTANT,
                "updated_at": NULLABLE_INSTANT,
            },
        },
        "SupervisedClientInput": {
            "type": "object",
            "required": ["reference", "area"],
            "additionalProperties": False,
            "properties": {
                "reference": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                "provider_id": {**ID, "description": "The provider (or name it by provider)."},
                "provider": {**TEXT, "description": "The provider's name or organisation number."},
                "area": {**TEXT, "maxLength": 100},
                "active": {"type": "boolean", "default": True},
                "schedules": {"type": "array", "items": schedule},
                "exceptions": {"type": "array", "items": exception},
            },
        },
        "SupervisedClientBatch": {
            "type": "object",
            "required": ["clients"],
            "additionalProperties": False,
            "properties": {
                "clients": {"type": "array", "items": {"$ref": "#/components/schemas/SupervisedClientInput"}},
                "complete": {
                    "type": "boolean",
                    "default": False,
                    "description": "true: the whole set; active clients not in it are deactivated.",
                },
            },
        },
        "SupervisedClientSaved": {
            "type": "object",
            "required": ["created", "updated", "unchanged", "deactivated"],
            "additionalProperties": False,
            "properties": {
                name: {"type": "integer", "minimum": 0} for name in ("created", "updated", "unchanged", "deactivated")
            },
        },
        "SupervisedClientPage": page_of("SupervisedClient"),
        "SupervisionFailure": {
            "type": "object",
            "required": ["reference", "scheduled_at"],
            "additionalProperties": False,
            "properties": {
                "reference": TEXT,
                "scheduled_at": {**INSTANT, "description": "With an offset; within a day of now."},
                "reason": {**TEXT, "maxLength": 300},
            },
        },
        "SupervisionFailureInput": {
            "oneOf": [
                {"$ref": "#/components/schemas/SupervisionFailure"},
                {
                    "type": "object",
                    "required": ["failures"],
                    "additionalProperties": False,
                    "properties": {
                        "failures": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"$ref": "#/components/schemas/SupervisionFailure"},
                        }
                    },
                },
            ]
        },
        "SupervisionVisits": {
            "type": "object",
            "required": ["visits"],
            "additionalProperties": False,
            "properties": {"visits": {"type": "array", "items": visit}},
        },
    }


def _paths() -> dict:
    tags = ["supervision"]
    query = [
        {"name": "provider_id", "in": "query", "required": False, "schema": ID, "description": "One provider's."},
        {"name": "area", "in": "query", "required": False, "schema": TEXT, "description": "Any case."},
        ref("Active", "parameters"),
        ref("Limit", "parameters"),
        ref("Offset", "parameters"),
    ]
    reference = {
        "name": "reference",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The client's reference.",
    }
    put = write_operation(
        "Create or update clients (all or nothing)", "SupervisedClientBatch", "SupervisedClientSaved", "200", tags=tags
    )
    put["description"] = SUPERVISION_DESCRIPTION
    post = write_operation(
        "Report failed supervisions", "SupervisionFailureInput", "SupervisionVisits", "201", tags=tags
    )
    post["responses"]["201"].pop("headers", None)
    post["responses"]["201"]["description"] = "At least one new failure: the visits (new and existing)."
    post["responses"]["200"] = json_response(ref("SupervisionVisits"), "Every failure was already known: its visit.")
    post["description"] = (
        "One failure or {failures: [...]}. Each becomes one visit for the client's provider, due at "
        "the scheduled time; the same client and time again is the same failure and visit."
    )
    return {
        "/api/v1/supervised-clients": {
            "get": read_operation(
                "Supervised clients", "SupervisedClientPage", "A page of clients.", tags=tags, parameters=query
            ),
            "put": put,
        },
        "/api/v1/supervised-clients/{reference}": {
            "delete": {
                "summary": "Deactivate a client",
                "tags": tags,
                "parameters": [reference],
                "responses": {
                    "200": json_response(ref("SupervisedClient"), "The client, now inactive."),
                    **error_responses("401", "403", "404", "409"),
                },
            }
        },
        "/api/v1/supervision-failures": {"post": post},
    }
