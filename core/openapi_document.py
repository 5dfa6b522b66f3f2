"""The OpenAPI 3.1 description of everything under ``/api/v1``, built from the code's own constants.

Built in Python rather than kept as YAML so that the enums (services, kinds, roles, change
sources) are the ones the code uses. tests/test_openapi.py checks it against the OpenAPI 3.1
meta-schema, against the Flask URL map (every route and method, no more, no less), and checks
real answers against its response schemas.
"""

from __future__ import annotations

from contacts.api_input import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from contacts.models import SERVICES
from contacts.register import KINDS, SOURCES

API_VERSION = "1.0.0"

DESCRIPTION = """\
The crisis routine service of the welfare technology team: the register of responsible care
providers and their contact persons, and the routine's calendar.

**Authentication.** Send an API token as `Authorization: Bearer krt_...` (an administrator
creates one with `flask --app app tokens create --user NAME`). A logged-in staff session also works; a
write with the session then needs the `X-CSRFToken` header, like a form. The calendar endpoints
and this description are public.

**Who may.** Team and admin read and write the register; the on-call officer reads it; a
provider contact's account reads its own provider and that provider's contacts only (others
answer 404); the alarm operator is refused (403).

**Errors** are JSON: `{"error": "...", "fields": {"name": "..."}}`, `fields` when particular
fields or query parameters are to blame. 400: the request does not match this description
(content type, malformed JSON, a body that is not an object, unknown or read-only fields, wrong
types, values outside an enum, bad query parameters). 422: it does, but the register's rules
refuse the values (an invalid mobile number, a duplicate provider name, a contact with neither
mobile nor e-mail); these messages are Swedish, for the person who typed the value. A refused
request changes nothing.

**Values.** Services and kinds are English keys. Mobile numbers are E.164 (`+46701234567`;
input may be written as in Sweden, `070-123 45 67`). Instants are ISO 8601 in UTC with the
offset (`2026-11-23T09:00:00+00:00`). There is no DELETE: deactivate with
`PATCH {"is_active": false}`; records and their history are kept.

**Lists** are ordered by id and paged with `limit` and `offset`; `total` counts every match.
"""


def _ref(name: str, kind: str = "schemas") -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


NULLABLE_INSTANT = {"type": ["string", "null"], "format": "date-time"}
INSTANT = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
# YYYY-MM of the years the calendar answers for, 1900-2200.
MONTH_PATTERN = r"^(19\d\d|2[01]\d\d|2200)-(0[1-9]|1[0-2])$"


def _page_of(item: str) -> dict:
    return {
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "total": {"type": "integer", "minimum": 0, "description": "Every match, not only this page."},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }


def _schemas() -> dict:
    provider_fields = {
        "name": {"type": "string", "description": "Unique, ignoring case; at most 200 characters."},
        "organisation_number": {
            "type": ["string", "null"],
            "description": "A Swedish organisation number (10 digits with a valid check digit); "
            "stored and answered as NNNNNN-NNNN.",
        },
        "kind": {"type": "string", "enum": list(KINDS)},
        "is_active": {"type": "boolean"},
    }
    contact_fields = {
        "name": {"type": "string", "description": "At most 200 characters."},
        "role_title": {"type": "string", "description": "The person's role at the provider, e.g. Enhetschef."},
        "mobile": {"type": ["string", "null"], "description": "A mobile number; answered in E.164."},
        "email": {"type": ["string", "null"]},
        "services": {
            "type": "array",
            "items": {"type": "string", "enum": list(SERVICES)},
            "description": "The services the contact receives operational information for.",
        },
        "is_active": {"type": "boolean", "description": "false deactivates: no more messages, record kept."},
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {"type": "string", "description": "What is wrong, in one sentence."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Per field or query parameter: what is wrong with it.",
                },
            },
        },
        "Provider": {
            "type": "object",
            "description": "A responsible care provider (ytterst ansvarig utförare).",
            "required": [
                "id",
                "name",
                "organisation_number",
                "kind",
                "is_active",
                "has_active_contact",
                "created_at",
                "updated_at",
            ],
            "additionalProperties": False,
            "properties": {
                "id": ID,
                **provider_fields,
                "organisation_number": {"type": ["string", "null"], "pattern": r"^\d{6}-\d{4}$"},
                "has_active_contact": {
                    "type": "boolean",
                    "description": "Whether an active contact person represents it; an active provider "
                    "without one is flagged on the register.",
                },
                "created_at": INSTANT,
                "updated_at": NULLABLE_INSTANT,
            },
        },
        "ProviderCreate": {
            "type": "object",
            "required": ["name", "kind"],
            "additionalProperties": False,
            "properties": provider_fields,
        },
        "ProviderUpdate": {
            "type": "object",
            "description": "Only the fields sent change.",
            "additionalProperties": False,
            "properties": provider_fields,
        },
        "Contact": {
            "type": "object",
            "description": "A contact person of a provider (kontaktperson).",
            "required": [
                "id",
                "provider_id",
                "name",
                "role_title",
                "mobile",
                "email",
                "services",
                "is_active",
                "created_at",
                "updated_at",
                "mobile_failing_since",
                "email_failing_since",
            ],
            "additionalProperties": False,
            "properties": {
                "id": ID,
                "provider_id": ID,
                **contact_fields,
                "mobile": {"type": ["string", "null"], "pattern": r"^\+[1-9]\d{6,14}$"},
                "email": {"type": ["string", "null"], "format": "email"},
                "created_at": INSTANT,
                "updated_at": NULLABLE_INSTANT,
                "mobile_failing_since": {
                    **NULLABLE_INSTANT,
                    "description": "Set when the SMS gateway said the number cannot be reached; "
                    "cleared when the number changes.",
                },
                "email_failing_since": {
                    **NULLABLE_INSTANT,
                    "description": "Set when the mail server said the address cannot be reached; "
                    "cleared when the address changes.",
                },
            },
        },
        "ContactCreate": {
            "type": "object",
            "description": "Needs a mobile number or an e-mail address (preferably both).",
            "required": ["provider_id", "name"],
            "additionalProperties": False,
            "properties": {"provider_id": ID, **contact_fields},
        },
        "ContactUpdate": {
            "type": "object",
            "description": "Only the fields sent change. provider_id cannot change: create the contact at "
            "the other provider and deactivate this one.",
            "additionalProperties": False,
            "properties": contact_fields,
        },
        "Change": {
            "type": "object",
            "description": "One changed field of a provider or contact: who, when, the old and the new value. "
            "Values are text as the register keeps them: services comma-separated, booleans ja/nej.",
            "required": [
                "id",
                "entity",
                "entity_id",
                "provider_id",
                "action",
                "field",
                "old_value",
                "new_value",
                "source",
                "changed_by_id",
                "changed_at",
            ],
            "additionalProperties": False,
            "properties": {
                "id": ID,
                "entity": {"type": "string", "enum": ["provider", "contact"]},
                "entity_id": ID,
                "provider_id": ID,
                "action": {"type": "string", "enum": ["created", "updated", "deactivated", "reactivated"]},
                "field": {"type": "string"},
                "old_value": {"type": ["string", "null"]},
                "new_value": {"type": ["string", "null"]},
                "source": {"type": "string", "enum": list(SOURCES)},
                "changed_by_id": {**ID, "type": ["integer", "null"], "description": "The user; null for the system."},
                "changed_at": INSTANT,
            },
        },
        "ProviderPage": _page_of("Provider"),
        "ContactPage": _page_of("Contact"),
        "ChangePage": _page_of("Change"),
        "Responsibility": {
            "type": "object",
            "required": ["at", "responsible", "office_hours", "next_change"],
            "additionalProperties": False,
            "properties": {
                "at": {**INSTANT, "description": "The instant asked about, in Stockholm local time."},
                "responsible": {
                    "type": "string",
                    "enum": ["team", "on_call"],
                    "description": "The welfare technology team in office hours, else the on-call officer (TIB).",
                },
                "office_hours": {"type": "boolean"},
                "next_change": {**NULLABLE_INSTANT, "description": "When responsibility next passes over."},
                "officer": {
                    "type": ["object", "null"],
                    "description": "Only for an authenticated caller: the on-call officer (TIB) on the roster "
                    "at `at` (also in office hours), null when the roster names nobody.",
                    "required": ["name", "mobile", "email"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "mobile": {"type": ["string", "null"], "description": "E.164."},
                        "email": {"type": ["string", "null"]},
                    },
                },
                "team": {
                    "type": "object",
                    "description": "Only for an authenticated caller: the team's mailbox and duty phone.",
                    "required": ["email", "mobile"],
                    "additionalProperties": False,
                    "properties": {
                        "email": {"type": ["string", "null"]},
                        "mobile": {"type": ["string", "null"], "description": "E.164."},
                    },
                },
            },
        },
        "CheckPlan": {
            "type": "object",
            "required": ["month", "send_on", "reminders", "call_on"],
            "additionalProperties": False,
            "properties": {
                "month": {"type": "string", "pattern": MONTH_PATTERN},
                "send_on": {"type": "string", "format": "date", "description": "The 1st or the next working day."},
                "reminders": {"type": "array", "items": {"type": "string", "format": "date"}},
                "call_on": {"type": "string", "format": "date", "description": "When the team phones the silent."},
            },
        },
    }


def _parameters() -> dict:
    def query(name: str, schema: dict, description: str) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    def path(name: str, what: str) -> dict:
        return {"name": name, "in": "path", "required": True, "schema": ID, "description": f"The {what}'s id."}

    return {
        "Limit": query(
            "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "Page size."
        ),
        "Offset": query(
            "offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}, "Matches to skip."
        ),
        "Active": query(
            "active", {"type": "string", "enum": ["true", "false"]}, "Only active, or only inactive, records."
        ),
        "Q": query(
            "q",
            {"type": "string"},
            "Search, ignoring case (å, ä, ö too); a number also matches mobile numbers written 070-...",
        ),
        "ProviderId": path("provider_id", "provider"),
        "ContactId": path("contact_id", "contact"),
    }


def _responses() -> dict:
    error = _ref("Error")
    return {
        "BadRequest": _json(error, "The request does not match this description; nothing was changed."),
        "Unauthorized": {
            **_json(error, "No valid API token or session."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="krisrutin"'}},
        },
        "Forbidden": _json(error, "Your role may not use this endpoint."),
        "NotFound": _json(error, "No such record (or none you may see)."),
        "Unprocessable": _json(error, "The register's rules refuse the values (Swedish messages per field)."),
        "Conflict": _json(error, "A change made at the same time conflicted; nothing was saved; try again."),
    }


def _errors(*codes: str) -> dict:
    names = {
        "400": "BadRequest",
        "401": "Unauthorized",
        "403": "Forbidden",
        "404": "NotFound",
        "409": "Conflict",
        "422": "Unprocessable",
    }
    return {code: _ref(names[code], "responses") for code in codes}


def _read(summary: str, schema: str, description: str, *, parameters: list, errors=("400", "401", "403")) -> dict:
    return {
        "summary": summary,
        "tags": [_tag(schema)],
        "parameters": parameters,
        "responses": {"200": _json(_ref(schema), description), **_errors(*errors)},
    }


def _write(summary: str, body: str, schema: str, status: str, *, parameters=(), errors=()) -> dict:
    success = _json(_ref(schema), "Created." if status == "201" else "The record as it is now.")
    if status == "201":
        success["headers"] = {"Location": {"schema": {"type": "string"}, "description": "The new record's URL."}}
    return {
        "summary": summary,
        "tags": [_tag(schema)],
        "parameters": list(parameters),
        "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(body)}}},
        "responses": {status: success, **_errors("400", "401", "403", *errors, "409", "422")},
    }


def _tag(schema: str) -> str:
    return "providers" if schema.startswith("Provider") else "contacts" if schema.startswith("Contact") else "register"


def _paths() -> dict:
    p = [_ref(name, "parameters") for name in ("Limit", "Offset")]
    provider_id, contact_id = _ref("ProviderId", "parameters"), _ref("ContactId", "parameters")
    public = {"security": []}
    return {
        "/api/v1/providers": {
            "get": _read(
                "List providers",
                "ProviderPage",
                "A page of providers.",
                parameters=[
                    _ref("Q", "parameters"),
                    _ref("Active", "parameters"),
                    {
                        "name": "has_active_contact",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["true", "false"]},
                        "description": "false: the flagged ones, that no active contact represents.",
                    },
                    *p,
                ],
            ),
            "post": _write("Create a provider", "ProviderCreate", "Provider", "201"),
        },
        "/api/v1/providers/{provider_id}": {
            "get": _read(
                "One provider",
                "Provider",
                "The provider.",
                parameters=[provider_id],
                errors=("400", "401", "403", "404"),
            ),
            "patch": _write(
                "Change a provider", "ProviderUpdate", "Provider", "200", parameters=[provider_id], errors=("404",)
            ),
        },
        "/api/v1/providers/{provider_id}/history": {
            "get": {
                **_read(
                    "A provider's changes",
                    "ChangePage",
                    "The provider's own changes, newest first; its contacts' changes are in their histories.",
                    parameters=[provider_id, *p],
                    errors=("400", "401", "403", "404"),
                ),
                "tags": ["providers"],
            },
        },
        "/api/v1/contacts": {
            "get": _read(
                "List contact persons",
                "ContactPage",
                "A page of contact persons.",
                parameters=[
                    {
                        "name": "provider_id",
                        "in": "query",
                        "required": False,
                        "schema": ID,
                        "description": "Only this provider's contacts.",
                    },
                    _ref("Q", "parameters"),
                    _ref("Active", "parameters"),
                    {
                        "name": "service",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(SERVICES)},
                        "description": "Only contacts receiving information for this service.",
                    },
                    *p,
                ],
            ),
            "post": _write("Create a contact person", "ContactCreate", "Contact", "201"),
        },
        "/api/v1/contacts/{contact_id}": {
            "get": _read(
                "One contact person",
                "Contact",
                "The contact.",
                parameters=[contact_id],
                errors=("400", "401", "403", "404"),
            ),
            "patch": _write(
                "Change or deactivate a contact person",
                "ContactUpdate",
                "Contact",
                "200",
                parameters=[contact_id],
                errors=("404",),
            ),
        },
        "/api/v1/contacts/{contact_id}/history": {
            "get": {
                **_read(
                    "A contact person's changes",
                    "ChangePage",
                    "The contact's changes, newest first.",
                    parameters=[contact_id, *p],
                    errors=("400", "401", "403", "404"),
                ),
                "tags": ["contacts"],
            },
        },
        "/api/v1/calendar/responsible": {
            "get": {
                **public,
                "summary": "Who is responsible at an instant",
                "description": "The team in office hours, else the on-call officer (TIB). Encode the + of an "
                "offset as %2B; an unencoded one arrives as a space and is read as +. Public; a caller with an "
                "API token or a staff session also gets `officer` (name, mobile, e-mail of the officer on call "
                "at `at`) and `team` (mailbox and duty phone); anonymous callers get neither.",
                "tags": ["calendar"],
                "parameters": [
                    {
                        "name": "at",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date-time"},
                        "description": "An ISO 8601 instant with a UTC offset or Z, years 1900-2200; default: now.",
                        "example": "2026-11-23T10:00:00+01:00",
                    }
                ],
                "responses": {
                    "200": {
                        **_json(_ref("Responsibility"), "Who is responsible, and until when."),
                        "headers": {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}},
                    },
                    "400": _ref("BadRequest", "responses"),
                },
            }
        },
        "/api/v1/calendar/check-plan": {
            "get": {
                **public,
                "summary": "The monthly contact check's dates",
                "tags": ["calendar"],
                "parameters": [
                    {
                        "name": "month",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": MONTH_PATTERN},
                        "description": "YYYY-MM, years 1900-2200; default: this month in Stockholm.",
                        "example": "2027-01",
                    }
                ],
                "responses": {
                    "200": _json(_ref("CheckPlan"), "When the check is sent, reminded and called."),
                    "400": _ref("BadRequest", "responses"),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                **public,
                "summary": "This description",
                "tags": ["meta"],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 description.")},
            }
        },
    }


def build_document() -> dict:
    """The OpenAPI 3.1 description, as a JSON-ready dict."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Krisrutin API",
            "version": API_VERSION,
            "summary": "The contacts register and the routine's calendar.",
            "description": DESCRIPTION,
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "providers", "description": "Responsible care providers (ytterst ansvariga utförare)."},
            {"name": "contacts", "description": "Their contact persons (kontaktpersoner)."},
            {"name": "calendar", "description": "Office hours and the monthly check's dates; public."},
            {"name": "meta", "description": "This description; public."},
            {"name": "notices", "description": "Supplier notices (driftmeddelanden) of disruptions."},
            {"name": "supervision", "description": "Camera-supervised clients and failed supervisions."},
        ],
        "paths": {**_paths(), **_notice_paths(), **_supervision_paths()},
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "krt_...",
                    "description": "An API token of a user; the user's role decides what it may do.",
                }
            },
            "schemas": {**_schemas(), **_notice_schemas(), **_supervision_schemas()},
            "parameters": _parameters(),
            "responses": _responses(),
        },
    }


# --- supplier notices (crisis.notice_api) -------------------------------------------------------

NOTICE_DESCRIPTION = """\
A supplier notice opens an incident, handled by the team in office hours and by the on-call
officer (TIB) outside them. Suppliers' API users, the alarm centre, the team, the on-call officer
and admins may post; a supplier's user reads only its own supplier's notices (others answer 404)
and may not name another supplier (403). Times need a UTC offset; a naive time is refused (422).
Field errors (422) are in Swedish, for the person who typed the value."""


AREA = {
    "type": ["string", "null"],
    "maxLength": 100,
    "description": "The affected area of camera-supervised clients; null or empty: every area.",
}


def _notice_schemas() -> dict:
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
                "title": {"type": "string", "maxLength": 200},
                "body": {"type": "string"},
                "service": {
                    "type": "string",
                    "description": "One of " + ", ".join(SERVICES) + " (the Swedish names are accepted too).",
                },
                "supplier": {"type": ["string", "null"], "description": "A known supplier's name (ignoring case)."},
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
                        "subject": {"type": "string", "minLength": 1, "maxLength": 200},
                        "body": {"type": "string", "minLength": 1},
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
                "comment": {"type": "string", "maxLength": 2000, "description": "A short note on the timeline."},
                "area": AREA,
            },
        },
    }


def _notice_paths() -> dict:
    notice_id = {"name": "notice_id", "in": "path", "required": True, "schema": ID, "description": "The notice's id."}
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": "The same key again (from the same user) answers 200 with the notice already made.",
    }
    again = _json(_ref("Notice"), "Already received (the same Idempotency-Key or Message-ID): that notice.")
    created = _write("Send a supplier notice", "NoticeCreate", "Notice", "201", parameters=[key])
    created["description"] = NOTICE_DESCRIPTION
    created["tags"] = ["notices"]
    created["responses"]["200"] = again
    update = _write(
        "Give a new expected end, or say it is fixed",
        "NoticeUpdate",
        "Notice",
        "200",
        parameters=[notice_id],
        errors=("404",),
    )
    update["tags"] = ["notices"]
    update["description"] = "A closed incident answers 409. The supplier's users and staff may."
    email = {
        "summary": "Send a forwarded e-mail as a notice",
        "description": "The raw message (RFC 822). Title from the subject, supplier from the sender's domain, "
        "service guessed from its words; de-duplicated by Message-ID. The original is kept as received.",
        "tags": ["notices"],
        "requestBody": {"required": True, "content": {"message/rfc822": {"schema": {"type": "string"}}}},
        "responses": {
            "201": {
                **_json(_ref("Notice"), "Created."),
                "headers": {"Location": {"schema": {"type": "string"}, "description": "The new notice's URL."}},
            },
            "200": again,
            **_errors("400", "401", "403", "409", "422"),
        },
    }
    return {
        "/api/v1/notices": {"post": created},
        "/api/v1/notices/email": {"post": email},
        "/api/v1/notices/{notice_id}": {
            "get": {
                **_read(
                    "One notice", "Notice", "The notice.", parameters=[notice_id], errors=("400", "401", "403", "404")
                ),
                "tags": ["notices"],
            },
            "patch": update,
        },
    }


# --- camera supervision (crisis.supervision_api) ------------------------------------------------

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
        {"type": "string", "description": "mon..sun (mån..sön and ranges like mån-fre are accepted)"},
        {"type": "integer", "minimum": 0, "maximum": 6, "description": "0 = Monday"},
    ]
}


def _supervision_schemas() -> dict:
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
                "area": {"type": "string", "maxLength": 100},
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
                "provider": {"type": "string", "description": "The provider's name or organisation number."},
                "area": {"type": "string", "maxLength": 100},
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
        "SupervisedClientPage": _page_of("SupervisedClient"),
        "SupervisionFailure": {
            "type": "object",
            "required": ["reference", "scheduled_at"],
            "additionalProperties": False,
            "properties": {
                "reference": {"type": "string"},
                "scheduled_at": {**INSTANT, "description": "With an offset; within a day of now."},
                "reason": {"type": "string", "maxLength": 300},
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


def _supervision_paths() -> dict:
    tags = ["supervision"]
    query = [
        {"name": "provider_id", "in": "query", "required": False, "schema": ID, "description": "One provider's."},
        {"name": "area", "in": "query", "required": False, "schema": {"type": "string"}, "description": "Any case."},
        _ref("Active", "parameters"),
        _ref("Limit", "parameters"),
        _ref("Offset", "parameters"),
    ]
    reference = {
        "name": "reference",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "The client's reference.",
    }
    put = _write("Create or update clients (all or nothing)", "SupervisedClientBatch", "SupervisedClientSaved", "200")
    put.update(tags=tags, description=SUPERVISION_DESCRIPTION)
    post = _write("Report failed supervisions", "SupervisionFailureInput", "SupervisionVisits", "201")
    post["responses"]["201"].pop("headers", None)
    post["responses"]["201"]["description"] = "At least one new failure: the visits (new and existing)."
    post["responses"]["200"] = _json(_ref("SupervisionVisits"), "Every failure was already known: its visit.")
    post.update(
        tags=tags,
        description="One failure or {failures: [...]}. Each becomes one visit for the client's provider, due at "
        "the scheduled time; the same client and time again is the same failure and visit.",
    )
    return {
        "/api/v1/supervised-clients": {
            "get": {
                **_read("Supervised clients", "SupervisedClientPage", "A page of clients.", parameters=query),
                "tags": tags,
            },
            "put": put,
        },
        "/api/v1/supervised-clients/{reference}": {
            "delete": {
                "summary": "Deactivate a client",
                "tags": tags,
                "parameters": [reference],
                "responses": {
                    "200": _json(_ref("SupervisedClient"), "The client, now inactive."),
                    **_errors("401", "403", "404", "409"),
                },
            }
        },
        "/api/v1/supervision-failures": {"post": post},
    }
