"""The supplier-notice API's part of the OpenAPI description: ``/api/v1/notices``.

Registered from :mod:`crisis.incidents`' ``init_app`` with :func:`core.openapi.register_api_area`;
the routes are :mod:`crisis.incidents.api`.
"""

from __future__ import annotations

from contacts.models import SERVICES
from core.openapi_document import (
    ID,
    INSTANT,
    NULLABLE_INSTANT,
    NULLABLE_TEXT,
    TEXT,
    ApiArea,
    error_responses,
    json_response,
    read_operation,
    ref,
    write_operation,
)

NOTICE_DESCRIPTION = """\
A supplier notice opens an incident, handled by the team in office hours and by the on-call
officer (TIB) outside them. Suppliers' API users, the alarm centre, the team, the on-call officer
and admins may post; a supplier's user reads only its own supplier's notices (others answer 404)
and may not name another supplier (403). Times need a UTC offset; a naive time is refused (422).
Field errors (422) are in Swedish, for the person who typed the value."""


AREA = {
    **NULLABLE_TEXT,
    "maxLength": 100,
    "description": "The affected area of camera-supervised clients; null or empty: every area.",
}


TAG = {"name": "notices", "description": "Supplier notices (driftmeddelanden) of disruptions."}


def api_area() -> ApiArea:
    """The notice API's paths, schemas and tag; after the calendar and the description's own path."""
    return ApiArea(name=__name__, order=40, tags=(TAG,), paths=_paths(), schemas=_schemas())


def _schemas() -> dict:
    providers = {
        "oneOf": [
            {"type": "string", "const": "all", "description": "Every provider using the service."},
            {"type": "array", "items": ID, "minItems": 1, "description": "The chosen active providers' ids."},
        ]
    }
    return {
        "Notice": {
            "type": "object",
            "description": "A notice as received and where its incident stands.",
            "required": [
                "id",
                "incident_id",
                "source",
                "title",
                "body",
                "supplier_id",
                "supplier",
                "service",
                "planned",
                "starts_at",
                "expected_end",
                "providers",
                "area",
                "received_at",
                "status",
                "party",
                "flag_reason",
                "estimate_requested",
            ],
            "additionalProperties": False,
            "properties": {
                "id": ID,
                "incident_id": ID,
                "source": {"type": "string", "enum": ["form", "api", "email"]},
                "title": {"type": "string"},
                "body": {"type": "string"},
                "supplier_id": {**ID, "type": ["integer", "null"]},
                "supplier": {"type": ["string", "null"], "description": "The supplier's name."},
                "service": {"type": "string", "enum": list(SERVICES)},
                "planned": {"type": "boolean"},
                "starts_at": NULLABLE_INSTANT,
                "expected_end": NULLABLE_INSTANT,
                "providers": providers,
                "area": AREA,
                "received_at": INSTANT,
                "status": {"type": "string", "enum": ["new", "open", "not_relevant", "resolved"]},
                "party": {
                    "type": "string",
                    "enum": ["team", "on_call"],
                    "description": "Who handles the incident now: the team or the on-call officer.",
                },
                "flag_reason": {
                    "type": ["string", "null"],
                    "description": "Planned work announced late or outside Tuesday-Thursday 10-13: why it was flagged.",
                },
                "estimate_requested": {
                    "type": "boolean",
                    "description": "The expected end has passed and a new estimate is asked for (PATCH expected_end).",
                },
            },
        },
        "NoticeCreate": {
            "type": "object",
            "required": ["title", "service"],
            "additionalProperties": False,
            "properties": {
                "title": {**TEXT, "maxLength": 200},
                "body": TEXT,
                "service": {
                    **TEXT,
                    "description": "One of " + ", ".join(SERVICES) + " (the Swedish names are accepted too).",
                },
                "supplier": {**NULLABLE_TEXT, "description": "A known supplier's name (ignoring case)."},
                "supplier_id": {**ID, "type": ["integer", "null"]},
                "planned": {"type": "boolean", "default": False},
                "starts_at": {**NULLABLE_INSTANT, "description": "Default: now. Required for planned work."},
                "expected_end": {**NULLABLE_INSTANT, "description": "After starts_at."},
                "providers": {**providers, "default": "all"},
                "letter": {
                    "type": "object",
                    "description": (
                        "Staff only (team, on-call officer, admin): send the first information letter at once, "
                        "in the same transaction; the caller takes (acknowledges) the incident. Suppliers and "
                        "the alarm centre get 403."
                    ),
                    "required": ["subject", "body"],
                    "additionalProperties": False,
                    "properties": {
                        "subject": {**TEXT, "minLength": 1, "maxLength": 200},
                        "body": {**TEXT, "minLength": 1, "maxLength": 20_000},
                        "apply_local_routines": {"type": "boolean", "default": True},
                    },
                },
                "area": AREA,
            },
        },
        "NoticeUpdate": {
            "type": "object",
            "description": "At least one field.",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "expected_end": {**INSTANT, "description": "A new estimate of when the disruption ends."},
                "resolved_by_supplier": {
                    "type": "boolean",
                    "description": "true: the supplier says it is fixed; the handling party closes the incident.",
                },
                "comment": {**TEXT, "maxLength": 2000, "description": "A short note on the timeline."},
                "area": AREA,
            },
        },
    }


def _paths() -> dict:
    notice_id = {"name": "notice_id", "in": "path", "required": True, "schema": ID, "description": "The notice's id."}
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": "The same key again (from the same user) answers 200 with the notice already made.",
    }
    again = json_response(ref("Notice"), "Already received (the same Idempotency-Key or Message-ID): that notice.")
    created = write_operation(
        "Send a supplier notice", "NoticeCreate", "Notice", "201", tags=["notices"], parameters=[key]
    )
    created["description"] = NOTICE_DESCRIPTION
    created["responses"]["200"] = again
    update = write_operation(
        "Give a new expected end, or say it is fixed",
        "NoticeUpdate",
        "Notice",
        "200",
        tags=["notices"],
        parameters=[notice_id],
        errors=("404",),
    )
    update["description"] = "A closed incident answers 409. The supplier's users and staff may."
    email = {
        "summary": "Send a forwarded e-mail as a notice",
        "description": "The raw message (RFC 822). Title from the subject, supplier from the sender's domain, "
        "service guessed from its words; de-duplicated by Message-ID. The original is kept as received.",
        "tags": ["notices"],
        "requestBody": {"required": True, "content": {"message/rfc822": {"schema": {"type": "string"}}}},
        "responses": {
            "201": {
                **json_response(ref("Notice"), "Created."),
                "headers": {"Location": {"schema": {"type": "string"}, "description": "The new notice's URL."}},
            },
            "200": again,
            **error_responses("400", "401", "403", "409", "422"),
        },
    }
    return {
        "/api/v1/notices": {"post": created},
        "/api/v1/notices/email": {"post": email},
        "/api/v1/notices/{notice_id}": {
            "get": read_operation(
                "One notice",
                "Notice",
                "The notice.",
                tags=["notices"],
                parameters=[notice_id],
                errors=("400", "401", "403", "404"),
            ),
            "patch": update,
        },
    }
