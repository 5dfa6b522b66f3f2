"""Who is responsible at an instant, and how to reach them.

The calendar (:func:`worktime.calendar.responsible_at`) names the party: the welfare technology
team in office hours, the on-call officer (TIB) outside them — the officer being whoever the
roster (:mod:`crisis.oncall.roster`) has on call then. This module adds the addresses: the team's
functional mailbox and duty phone (``TEAM_EMAIL``/``TEAM_MOBILE``), the officer's e-mail and mobile
from their account. Without an officer on the roster, or one without any address, the team's
addresses stand in, so nobody is ever told "call nobody".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from accounts.models import User
from core.contact_now import ContactDetails
from crisis.oncall.models import Party
from crisis.oncall.roster import on_call_at
from worktime.calendar import is_office_hours, responsible_at

TEAM_NAME = "Välfärdsteknikteamet"


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _settings():
    return current_app.extensions["krisrutin.settings"]


def team_addresses() -> tuple[str | None, str | None]:
    """The team's functional mailbox and duty phone."""
    settings = _settings()
    return settings.team_email, settings.team_mobile


def officer_contact(db_session: Session, instant: datetime) -> dict | None:
    """The on-call officer at ``instant`` as the calendar API shows them (``name``, ``mobile``,
    ``email``; unset addresses as null), or None with an empty roster."""
    officer = on_call_at(db_session, instant)
    if officer is None:
        return None
    return {"name": officer.display_name, "mobile": officer.mobile, "email": officer.email}


def handler_user(db_session: Session, party: str, now: datetime) -> User | None:
    """The person alerted for ``party``: the officer on call at ``now``; None for the team (its
    mailbox and duty phone are alerted)."""
    return on_call_at(db_session, now) if party == Party.ON_CALL.value else None


@dataclass(frozen=True)
class Responsible:
    """The party responsible by the calendar at an instant, and how to reach it."""

    party: str  # "team" or "on_call"
    user_id: int | None
    name: str
    email: str | None
    mobile: str | None


def responsible_party(db_session: Session, now: datetime) -> Responsible:
    """The team in office hours, else the on-call officer on duty (the team's addresses when
    nobody is on the roster or the officer has no address)."""
    email, mobile = team_addresses()
    team = Responsible(Party.TEAM.value, None, TEAM_NAME, email, mobile)
    if responsible_at(now, _policy()).responsible == Party.TEAM.value:
        return team
    officer = on_call_at(db_session, now)
    if officer is None or not (officer.email or officer.mobile):
        return Responsible(Party.ON_CALL.value, None, team.name, team.email, team.mobile)
    return Responsible(Party.ON_CALL.value, officer.id, officer.display_name, officer.email, officer.mobile)


def contact_details(db_session: Session, instant: datetime) -> ContactDetails:
    """Whom to contact at ``instant``: in office hours the team's mailbox, with its duty phone for
    urgent matters; outside them the on-call officer on duty, else the team's duty phone."""
    team_email, team_mobile = team_addresses()
    if is_office_hours(instant, _policy()):
        return ContactDetails(True, team_email, None, team_mobile, None)
    officer = on_call_at(db_session, instant)
    if officer is not None and (officer.mobile or officer.email):
        return ContactDetails(False, team_email, officer.display_name, officer.mobile, officer.email)
    return ContactDetails(False, team_email, None, team_mobile, None)
