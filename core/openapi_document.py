"""The OpenAPI 3.1 description of everything under ``/api/v1``: the parts every API area shares, and their assembly.

Each API area describes its own paths, schemas, parameters and tags beside its code
(``contacts/openapi.py``, ``worktime/openapi.py``, ``crisis/incidents/openapi.py``,
``crisis/visits/openapi.py``) as an :class:`ApiArea`, and registers it with
:func:`core.openapi.register_api_area` from its package's ``init_app``. This module holds what
they share: the document's info, servers and security scheme, the error schema and error
responses, the small builders of operations, and :func:`build_document`, which puts the areas
together. Built in Python rather than kept as YAML so that the enums (services, kinds, roles,
change sources) are the ones the code uses. tests/test_openapi.py checks the served document
against the OpenAPI 3.1 meta-schema, against the Flask URL map (every route and method, no more,
no less), and checks real answers against its response schemas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.numbers import MAX_ID
from core.text import TEXT_PATTERN

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


@dataclass(frozen=True, kw_only=True)
class ApiArea:
    """One API area's part of the description.

    ``order`` places the area in the document: areas are listed by it, so the tags (the sections
    a reader such as Swagger UI shows) and the paths come in the same order whichever package's
    ``init_app`` runs first. A name (path, schema, parameter, tag) belongs to one area only;
    an area may refer to another's components by ``$ref``.
    """

    name: str
    order: int
    tags: tuple[dict, ...] = ()
    paths: Mapping[str, dict] = field(default_factory=dict)
    schemas: Mapping[str, dict] = field(default_factory=dict)
    parameters: Mapping[str, dict] = field(default_factory=dict)


def ref(name: str, kind: str = "schemas") -> dict:
    """A ``$ref`` to a component of the document (a schema unless ``kind`` says otherwise)."""
    return {"$ref": f"#/components/{kind}/{name}"}


def json_response(schema: dict, description: str) -> dict:
    """A response with a JSON body of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Text the service accepts (core.text), refused with 400 naming the field otherwise.
TEXT = {"type": "string", "pattern": TEXT_PATTERN}
NULLABLE_TEXT = {"type": ["string", "null"], "pattern": TEXT_PATTERN}
NULLABLE_INSTANT = {"type": ["string", "null"], "format": "date-time"}
INSTANT = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def page_of(item: str) -> dict:
    """The schema of a page of a list of the ``item`` schema (``limit``/``offset`` paging)."""
    return {
        "type": "object",
        "required": ["items", "total", "limit", "offset"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "array", "items": ref(item)},
            "total": {"type": "integer", "minimum": 0, "description": "Every match, not only this page."},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    }


ERROR_SCHEMA = {
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
}

_ERROR_RESPONSES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "422": "Unprocessable",
}


def _responses() -> dict:
    error = ref("Error")
    return {
        "BadRequest": json_response(error, "The request does not match this description; nothing was changed."),
        "Unauthorized": {
            **json_response(error, "No valid API token or session."),
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="krisrutin"'}},
        },
        "Forbidden": json_response(error, "Your role may not use this endpoint."),
        "NotFound": json_response(error, "No such record (or none you may see)."),
        "Unprocessable": json_response(error, "The register's rules refuse the values (Swedish messages per field)."),
        "Conflict": json_response(error, "A change made at the same time conflicted; nothing was saved; try again."),
    }


def error_responses(*codes: str) -> dict:
    """The shared error responses of these status codes ("400", "401", "403", "404", "409", "422")."""
    return {code: ref(_ERROR_RESPONSES[code], "responses") for code in codes}


def read_operation(
    summary: str, schema: str, description: str, *, tags: list[str], parameters: list, errors=("400", "401", "403")
) -> dict:
    """A GET answering 200 with the ``schema`` component."""
    return {
        "summary": summary,
        "tags": tags,
        "parameters": parameters,
        "responses": {"200": json_response(ref(schema), description), **error_responses(*errors)},
    }


def write_operation(
    summary: str, body: str, schema: str, status: str, *, tags: list[str], parameters=(), errors=()
) -> dict:
    """A write with a JSON body of the ``body`` component, answering ``status`` ("201": created, with
    its Location) with the ``schema`` component."""
    success = json_response(ref(schema), "Created." if status == "201" else "The record as it is now.")
    if status == "201":
        success["headers"] = {"Location": {"schema": {"type": "string"}, "description": "The new record's URL."}}
    return {
        "summary": summary,
        "tags": tags,
        "parameters": list(parameters),
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref(body)}}},
        "responses": {status: success, **error_responses("400", "401", "403", *errors, "409", "422")},
    }


def build_document(areas: Iterable[ApiArea]) -> dict:
    """The OpenAPI 3.1 description of ``areas``, as a JSON-ready dict.

    Raises ValueError when two areas describe the same path, schema, parameter or tag.
    """
    areas = sorted(areas, key=lambda area: area.order)
    common = ApiArea(name="core.openapi_document", order=0, schemas={"Error": ERROR_SCHEMA})
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
        "tags": list(_merged(areas, "tag", lambda area: {tag["name"]: tag for tag in area.tags}).values()),
        "paths": _merged(areas, "path", lambda area: area.paths),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "krt_...",
                    "description": "An API token of a user; the user's role decides what it may do.",
                }
            },
            "schemas": _merged([common, *areas], "schema", lambda area: area.schemas),
            "parameters": _merged(areas, "parameter", lambda area: area.parameters),
            "responses": _responses(),
        },
    }


def _merged(areas: list[ApiArea], what: str, part) -> dict:
    merged: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for area in areas:
        for name, value in part(area).items():
            if name in merged:
                raise ValueError(f"OpenAPI {what} {name!r} is described by both {owner[name]} and {area.name}")
            merged[name], owner[name] = value, area.name
    return merged
