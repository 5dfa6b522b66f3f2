"""The public calendar API: who is responsible now, and this month's contact check dates.

Public on purpose (see tests/test_access.py): suppliers and providers may ask who handles a
notice at a given moment without an account. An authenticated caller (staff session or API
token) of ``/responsible`` is also told how to reach the party: the on-call officer's name,
mobile and e-mail (from the roster, through the lookup :mod:`crisis.oncall` registers with
:func:`register_officer_contact`) and the team's mailbox and duty phone; anonymous callers get no
names or numbers, and then nothing here touches the database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy.orm import Session

from accounts.access import public
from config.routine import RoutinePolicy
from core.clock import current_clock
from core.numbers import MAX_YEAR, MIN_YEAR, month_start
from worktime import calendar

bp = Blueprint("worktime_api", __name__, url_prefix="/api/v1/calendar")

AT_EXPECTED = "at: expected an ISO 8601 instant with a UTC offset, e.g. 2026-11-23T10:00:00+01:00"
MONTH_EXPECTED = "month: expected YYYY-MM, e.g. 2026-12"

_INSTANT = re.compile(
    r"(?P<year>\d{4})-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
# An unencoded "+" in a query string arrives as a space: "10:00:00 01:00" means "10:00:00+01:00".
_SPACE_OFFSET = re.compile(r"(?<=\d) (?=\d{2}:\d{2}$)")
_MONTH = re.compile(r"(?P<year>\d{4})-(?P<month>\d{2})", re.ASCII)

OfficerContact = Callable[[Session, datetime], dict | None]
"""``lookup(db_session, instant)``: ``{"name", "mobile", "email"}`` of the on-call officer at
``instant``, or None when nobody is on call."""

_OFFICER_CONTACT = "krisrutin.officer_contact"


def register_officer_contact(app, lookup: OfficerContact) -> None:
    """How ``/responsible`` finds the on-call officer (without one, it answers ``"officer": null``)."""
    if _OFFICER_CONTACT in app.extensions:
        raise ValueError("the on-call officer's lookup is registered twice")
    app.extensions[_OFFICER_CONTACT] = lookup


class BadParameter(ValueError):
    """A query parameter that does not have the documented form; the message says which form."""


def _policy() -> RoutinePolicy:
    return current_app.extensions["krisrutin.routine"]


def _bad_request(error: BadParameter):
    response = jsonify(error=str(error))
    response.status_code = 400
    response.headers["Cache-Control"] = "no-store"
    return response


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with a UTC offset or ``Z``; a space before the offset counts as ``+``."""
    text = _SPACE_OFFSET.sub("+", text.strip())
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise BadParameter(AT_EXPECTED)
    if not MIN_YEAR <= int(match["year"]) <= MAX_YEAR:
        raise BadParameter(f"at: expected a year from {MIN_YEAR} to {MAX_YEAR}")
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:  # 2026-02-30, 25:00, an offset of +99:00
        raise BadParameter(AT_EXPECTED) from None


def parse_month(text: str) -> tuple[int, int]:
    """(year, month) from ``YYYY-MM`` (read by :func:`core.numbers.month_start`); the refusal says
    whether the form or the year is wrong."""
    month = month_start(text)
    if month is not None:
        return month.year, month.month
    match = _MONTH.fullmatch(text.strip())
    if match is not None and 1 <= int(match["month"]) <= 12:
        raise BadParameter(f"month: expected a year from {MIN_YEAR} to {MAX_YEAR}")
    raise BadParameter(MONTH_EXPECTED)


@bp.get("/responsible")
@public
def responsible():
    """Who owns the routine at ``at`` (default: now): the team or the on-call officer (TIB).

    ``at`` is an ISO 8601 instant with an offset (``2026-11-23T10:00:00+01:00``) or ``Z``. Encode
    the ``+`` as ``%2B``; an unencoded one arrives as a space and is read as ``+``.
    """
    policy = _policy()
    raw = request.args.get("at")
    try:
        instant = current_clock().now() if raw is None else parse_instant(raw)
    except BadParameter as error:
        return _bad_request(error)
    answer = calendar.responsible_at(instant, policy)
    body = {
        "at": answer.at.isoformat(),
        "responsible": answer.responsible,
        "office_hours": answer.office_hours,
        "next_change": answer.next_change.isoformat() if answer.next_change else None,
    }
    if g.get("user") is not None:
        body.update(_contacts(instant))
    response = jsonify(body)
    # The answer without ``at`` depends on the moment it is asked.
    response.headers["Cache-Control"] = "no-store"
    return response


def _contacts(instant: datetime) -> dict:
    """How to reach the parties at ``instant``: the on-call officer then (or null) and the team."""
    from core.extensions import db

    settings = current_app.extensions["krisrutin.settings"]
    lookup = current_app.extensions.get(_OFFICER_CONTACT)
    return {
        "officer": lookup(db.session, instant) if lookup is not None else None,
        "team": {"email": settings.team_email, "mobile": settings.team_mobile},
    }


@bp.get("/check-plan")
@public
def check_plan():
    """The monthly contact check's dates for ``month`` (``YYYY-MM``; default: this local month)."""
    policy = _policy()
    raw = request.args.get("month")
    try:
        if raw is None:
            today = current_clock().now().astimezone(policy.timezone)
            year, month = today.year, today.month
        else:
            year, month = parse_month(raw)
    except BadParameter as error:
        return _bad_request(error)
    response = jsonify(calendar.check_plan(year, month, policy).to_json())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
