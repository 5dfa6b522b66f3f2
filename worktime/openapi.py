"""The calendar API's part of the OpenAPI description: who is responsible when, and the check's dates.

Registered from :func:`worktime.init_app` with :func:`core.openapi.register_api_area`; the routes
are in :mod:`worktime.views`. Both endpoints are public.
"""

from __future__ import annotations

from core.openapi_document import INSTANT, NULLABLE_INSTANT, ApiArea, json_response, ref

# YYYY-MM of the years the calendar answers for, 1900-2200.
MONTH_PATTERN = r"^(19\d\d|2[01]\d\d|2200)-(0[1-9]|1[0-2])$"


TAG = {"name": "calendar", "description": "Office hours and the monthly check's dates; public."}


def api_area() -> ApiArea:
    """The calendar API's paths, schemas and tag; after the register in the description."""
    return ApiArea(name=__name__, order=20, tags=(TAG,), paths=_paths(), schemas=_schemas())


def _schemas() -> dict:
    return {
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


def _paths() -> dict:
    public = {"security": []}
    return {
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
                        **json_response(ref("Responsibility"), "Who is responsible, and until when."),
                        "headers": {"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}},
                    },
                    "400": ref("BadRequest", "responses"),
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
                    "200": json_response(ref("CheckPlan"), "When the check is sent, reminded and called."),
                    "400": ref("BadRequest", "responses"),
                },
            }
        },
    }
