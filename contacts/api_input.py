"""Reading the API's requests: the JSON body checked against the documented schema, query
parameters, and the register search; every problem is an :class:`ApiError` saying what is wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping

from flask import request

from contacts.models import SERVICES
from contacts.register import KINDS
from core.numbers import MAX_ID, record_id, whole_number
from core.text import DuplicateKey, TextRefused, load_json

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_OFFSET = 1_000_000_000


class ApiError(Exception):
    """A refused request: its status, a sentence saying what is wrong, and the fields to blame."""

    def __init__(self, status: int, message: str, fields: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields or {})


# --- reading the request ------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _number(text: str) -> int | float:
    """A JSON number with a fraction or exponent: an int when its value is whole. JSON has one
    number type and JSON Schema counts 44600.0 as an integer, as the description's ids and
    counts are; the checks below then treat it like 44600."""
    value = float(text)
    return int(value) if value.is_integer() else value


def json_object() -> dict:
    """The request body: a JSON object with every string cleaned (:func:`core.text.load_json`,
    the one reader of JSON bodies), or :class:`ApiError` 400 saying what is wrong with it: not
    JSON, a key given twice in one object, or a text holding a character the service refuses
    (``fields`` names it by its path, e.g. ``letter.body``)."""
    if not request.is_json:
        raise ApiError(400, "send the body as JSON with the header Content-Type: application/json")
    try:
        text = request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not valid UTF-8") from None
    try:
        data = load_json(text, parse_constant=_reject_constant, parse_float=_number)
    except json.JSONDecodeError as error:
        raise ApiError(
            400, f"the body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    except DuplicateKey as error:
        raise ApiError(400, f"the body is not valid: {error}", {error.key: "given more than once"}) from None
    except TextRefused as error:
        raise ApiError(
            400, "the body holds text the service does not accept: see fields", {error.field: error.message}
        ) from None
    except ValueError as error:  # NaN, Infinity
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, "the body is not valid JSON: nested too deep") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


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


def checked(data: dict, checks: Mapping[str, Check], *, read_only: Iterable[str], required: Iterable[str]) -> dict:
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


def refuse_unknown_parameters(allowed: tuple[str, ...]) -> None:
    """Refuse query parameters the endpoint does not know, so that a misspelt filter is not ignored."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        known = f"known parameters: {', '.join(allowed)}" if allowed else "this endpoint takes none"
        raise ApiError(
            400,
            "unknown query parameter: " + ", ".join(unknown),
            {name: f"unknown query parameter ({known})" for name in unknown},
        )


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    number = whole_number(raw, low=low, high=high)
    if number is None:
        raise ApiError(400, f"{name}: expected an integer from {low} to {high}", {name: f"expected {low}-{high}"})
    return number


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw in ("true", "false"):
        return raw == "true"
    raise ApiError(400, f"{name}: expected true or false", {name: "expected true or false"})


def paging() -> tuple[int, int]:
    return int_arg("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), int_arg("offset", 0, 0, MAX_OFFSET)


def id_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    number = record_id(raw)
    if number is None:
        raise ApiError(400, f"{name}: expected a positive integer id", {name: "expected a positive integer id"})
    return number


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


def matches(q: str, values: Iterable[str | None]) -> bool:
    needle = _fold(q)
    digits = _digits(q) if re.fullmatch(r"[\d\s()+-]+", q.strip()) else ""
    for value in values:
        for form in _search_forms(value):
            if needle in form or (digits and digits in form):
                return True
    return False
