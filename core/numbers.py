"""Whole numbers that come from outside: ids in paths, forms and query strings, page numbers,
weeks and months. Only ASCII digits within the range of what they are compared with are read.

Python reads more than that: ``"²".isdigit()`` is True but ``int("²")`` raises, ``int("٣")`` is
3 (so does ``\\d`` in a pattern), and ``int`` takes a number of any length, which SQLite cannot
bind and PostgreSQL refuses for an INTEGER column. Every id column of the schema is an INTEGER
(32 bits on PostgreSQL), so no id above :data:`MAX_ID` can exist.

The path converter ``<int:...>`` (installed for every route by :func:`init_app`, before the
blueprints add their rules) answers 404 to anything else. Pages whose form shows field errors use
the plain functions (:func:`record_id`, :func:`whole_number`, :func:`month_start`) and say what is
wrong beside the field; :func:`id_field` answers 400 with a Swedish message naming the field,
for values a page only sends from its own links and choices.
"""

from __future__ import annotations

import re
from datetime import date

from flask import abort
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # every id column is an INTEGER: 32 bits on PostgreSQL
MIN_YEAR, MAX_YEAR = 1900, 2200  # the calendar's range (the API description's months)

_WHOLE = re.compile(r"-?[0-9]{1,18}")  # [0-9], not \d: ASCII digits only
_DIGITS = re.compile(r"[0-9]+")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_SPACES = " \t\r\n"


def whole_number(text: str | None, *, low: int, high: int) -> int | None:
    """``text`` as an int when it is ASCII digits (a leading ``-`` for a negative ``low``; spaces
    around it ignored) from ``low`` to ``high``; None for anything else."""
    if text is None:
        return None
    text = text.strip(_SPACES)
    if not _WHOLE.fullmatch(text) or (text.startswith("-") and low >= 0):
        return None
    number = int(text)
    return number if low <= number <= high else None


def record_id(text: str | None) -> int | None:
    """An id (1 to :data:`MAX_ID`, ASCII digits) from a path, form or query string; else None."""
    return whole_number(text, low=1, high=MAX_ID)


def month_start(text: str | None) -> date | None:
    """``YYYY-MM`` (ASCII digits, a year from :data:`MIN_YEAR` to :data:`MAX_YEAR`) as the
    month's first day; None for anything else."""
    match = _MONTH.fullmatch((text or "").strip(_SPACES))
    if match is None:
        return None
    year, month = int(match[1]), int(match[2])
    if not (MIN_YEAR <= year <= MAX_YEAR and 1 <= month <= 12):
        return None
    return date(year, month, 1)


def page_number(text: str | None, *, last: int) -> int:
    """A page number of a list: 1 for anything that is not a whole number from 1, ``last`` for
    one beyond ``last``."""
    digits = (text or "").strip(_SPACES).lstrip("0")
    if not _DIGITS.fullmatch(digits):
        return 1
    return last if len(digits) > len(str(last)) else min(int(digits), last)


# --- pages: 400 naming the field ------------------------------------------------------------------


def id_field(raw: str | None, *, field: str, label: str) -> int | None:
    """An id from a form or query string: None when absent or empty, else the id; anything else
    is answered 400 with a Swedish message naming the field (``label`` and ``field``)."""
    if raw is None or not raw.strip(_SPACES):
        return None
    value = record_id(raw)
    if value is None:
        expected = _("ange ett id: ett heltal från 1 till %(max)s, skrivet med siffrorna 0–9.", max=MAX_ID)
        abort(400, description=_("%(label)s (%(field)s): %(expected)s", label=label, field=field, expected=expected))
    return value


# --- paths ------------------------------------------------------------------------------------------


def _one_to(limit: int) -> str:
    """A pattern of the whole numbers 1 to ``limit`` (ASCII digits, no leading zeros).

    The router must not match a larger number at all: werkzeug answers 405, not 404, when a path
    matched the pattern of a rule for another method and only the converter refused it."""
    text = str(limit)
    options = [f"[1-9][0-9]{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    for index, digit in enumerate(text):
        lowest = 1 if index == 0 else 0
        if int(digit) > lowest:
            options.append(f"{text[:index]}[{lowest}-{int(digit) - 1}][0-9]{{{len(text) - index - 1}}}")
    return "(?:" + "|".join([*options, text]) + ")"


class IdConverter(IntegerConverter):
    """``<int:...>`` for ids: 1 to :data:`MAX_ID` in ASCII digits without leading zeros; anything
    else does not match the route (404), where werkzeug's converter takes any Unicode digit and
    any size."""

    regex = _one_to(MAX_ID)

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = None) -> None:
        super().__init__(map, fixed_digits, 1 if min is None else min, MAX_ID if max is None else max, signed=False)


def init_app(app) -> None:
    """Install :class:`IdConverter` as ``int``: call before any blueprint adds its rules."""
    if any(rule.endpoint != "static" for rule in app.url_map.iter_rules()):
        raise RuntimeError("core.numbers.init_app must run before the blueprints are registered")
    app.url_map.converters["int"] = IdConverter
