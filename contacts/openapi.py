"""The register API's part of the OpenAPI description: providers, contact persons and their changes.

Registered from :func:`contacts.init_app` with :func:`core.openapi.register_api_area`; the routes
are in :mod:`contacts.api`. The paging and filter parameters (``Limit``, ``Offset``, ``Active``)
are those of :mod:`contacts.api_input`, which the other JSON APIs page with too, so their
descriptions refer to these components.
"""

from __future__ import annotations

from contacts.api_input import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from contacts.models import SERVICES
from contacts.register import KINDS, SOURCES
from core.openapi_document import (
    ID,
    INSTANT,
    NULLABLE_INSTANT,
    NULLABLE_TEXT,
    TEXT,
    ApiArea,
    page_of,
    read_operation,
    ref,
    write_operation,
)

TAGS = (
    {"name": "providers", "description": "Responsible care providers (ytterst ansvariga utförare)."},
    {"name": "contacts", "description": "Their contact persons (kontaktpersoner)."},
)


def api_area() -> ApiArea:
    """The register API's paths, schemas, parameters and tags; first in the description."""
    return ApiArea(name=__name__, order=10, tags=TAGS, paths=_paths(), schemas=_schemas(), parameters=_parameters())


def _schemas() -> dict:
    provider_fields = {
        "name": {**TEXT, "description": "Unique, ignoring case; at most 200 characters."},
        "organisation_number": {
            **NULLABLE_TEXT,
            "description": "A Swedish organisation number (10 digits with a valid check digit); "
            "stored and answered as NNNNNN-NNNN.",
        },
        "kind": {"type": "string", "enum": list(KINDS)},
        "is_active": {"type": "boolean"},
    }
    contact_fields = {
        "name": {**TEXT, "description": "At most 200 characters."},
        "role_title": {**TEXT, "description": "The person's role at the provider, e.g. Enhetschef."},
        "mobile": {**NULLABLE_TEXT, "description": "A mobile number; answered in E.164."},
        "email": NULLABLE_TEXT,
        "services": {
            "type": "array",
            "items": {"type": "string", "enum": list(SERVICES)},
            "description": "The services the contact receives operational information for.",
        },
        "is_active": {"type": "boolean", "description": "false deactivates: no more messages, record kept."},
    }
    return {
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
        "ProviderPage": page_of("Provider"),
        "ContactPage": page_of("Contact"),
        "ChangePage": page_of("Change"),
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
            TEXT,
            "Search, ignoring case (å, ä, ö too); a number also matches mobile numbers written 070-...",
        ),
        "ProviderId": path("provider_id", "provider"),
        "ContactId": path("contact_id", "contact"),
    }


def _paths() -> dict:
    p = [ref(name, "parameters") for name in ("Limit", "Offset")]
    provider_id, contact_id = ref("ProviderId", "parameters"), ref("ContactId", "parameters")
    return {
        "/api/v1/providers": {
            "get": read_operation(
                "List providers",
                "ProviderPage",
                "A page of providers.",
                tags=["providers"],
                parameters=[
                    ref("Q", "parameters"),
                    ref("Active", "parameters"),
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
            "post": write_operation("Create a provider", "ProviderCreate", "Provider", "201", tags=["providers"]),
        },
        "/api/v1/providers/{provider_id}": {
            "get": read_operation(
                "One provider",
                "Provider",
                "The provider.",
                tags=["providers"],
                parameters=[provider_id],
                errors=("400", "401", "403", "404"),
            ),
            "patch": write_operation(
                "Change a provider",
                "ProviderUpdate",
                "Provider",
                "200",
                tags=["providers"],
                parameters=[provider_id],
                errors=("404",),
            ),
        },
        "/api/v1/providers/{provider_id}/history": {
            "get": read_operation(
                "A provider's changes",
                "ChangePage",
                "The provider's own changes, newest first; its contacts' changes are in their histories.",
                tags=["providers"],
                parameters=[provider_id, *p],
                errors=("400", "401", "403", "404"),
            ),
        },
        "/api/v1/contacts": {
            "get": read_operation(
                "List contact persons",
                "ContactPage",
                "A page of contact persons.",
                tags=["contacts"],
                parameters=[
                    {
                        "name": "provider_id",
                        "in": "query",
                        "required": False,
                        "schema": ID,
                        "description": "Only this provider's contacts.",
                    },
                    ref("Q", "parameters"),
                    ref("Active", "parameters"),
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
            "post": write_operation("Create a contact person", "ContactCreate", "Contact", "201", tags=["contacts"]),
        },
        "/api/v1/contacts/{contact_id}": {
            "get": read_operation(
                "One contact person",
                "Contact",
                "The contact.",
                tags=["contacts"],
                parameters=[contact_id],
                errors=("400", "401", "403", "404"),
            ),
            "patch": write_operation(
                "Change or deactivate a contact person",
                "ContactUpdate",
                "Contact",
                "200",
                tags=["contacts"],
                parameters=[contact_id],
                errors=("404",),
            ),
        },
        "/api/v1/contacts/{contact_id}/history": {
            "get": read_operation(
                "A contact person's changes",
                "ChangePage",
                "The contact's changes, newest first.",
                tags=["contacts"],
                parameters=[contact_id, *p],
                errors=("400", "401", "403", "404"),
            ),
        },
    }
