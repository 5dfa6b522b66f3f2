"""Whom to contact now, for the pages core renders itself: the error pages and the link pages'
"expired" and "too many attempts" answers. Every page a provider can reach ends with it.

The calendar decides (the team in office hours, the on-call officer outside them), and who is on
call lives above core, in :mod:`crisis.oncall`: it registers its lookup here with
:func:`register_lookup` in its ``init_app``. Without a lookup, or when it fails (an error page
must render even with the database down), the team's mailbox and duty phone from the settings
stand in, so nobody is told to contact nobody. Templates call ``contact_now()`` (a template
global); ``templates/_contact_now.html`` is the section every error page a provider can reach
ends with, ``templates/contact_macros.html`` the block the letters and provider pages share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.extensions import db

log = logging.getLogger(__name__)

_REGISTRY = "krisrutin.contact_now"


@dataclass(frozen=True)
class ContactDetails:
    """Whom the providers contact, as a letter or a page says it."""

    office_hours: bool
    team_email: str | None
    urgent_name: str | None  # the on-call officer, or None for the team's duty phone
    urgent_phone: str | None
    urgent_email: str | None

    def as_context(self) -> dict:
        return {
            "office_hours": self.office_hours,
            "team_email": self.team_email or "",
            "urgent_name": self.urgent_name or "",
            "urgent_phone": self.urgent_phone or "",
            "urgent_email": self.urgent_email or "",
        }


Lookup = Callable[[Session, datetime], ContactDetails]


def register_lookup(app, lookup: Lookup) -> None:
    """Let ``lookup(db_session, instant)`` decide whom core's pages name."""
    app.extensions[_REGISTRY] = lookup


def team_contact() -> ContactDetails:
    """The team's mailbox and duty phone (``TEAM_EMAIL``, ``TEAM_MOBILE``)."""
    settings = current_app.extensions["krisrutin.settings"]
    return ContactDetails(True, settings.team_email, None, settings.team_mobile, None)


def contact_now() -> ContactDetails:
    """Whom to contact at this moment, by the registered lookup, else the team.

    The lookup reads in a session of its own: the request's may hold a failed transaction or
    changes that must not be flushed (this runs while an error is answered).
    """
    lookup = current_app.extensions.get(_REGISTRY)
    if lookup is None:
        return team_contact()
    try:
        with Session(db.engine) as session:
            return lookup(session, current_clock().now())
    except Exception as error:  # handled: the team's addresses are shown instead, and it is logged
        log.warning("whom to contact could not be decided; the team's addresses are shown: %s", type(error).__name__)
        return team_contact()


def readiness_report(db_session: Session, now: datetime) -> dict:
    """What /readyz says of the providers' contact: ``{"team_contact": {"TEAM_EMAIL": "ok" | "missing", ...}}``."""
    missing = current_app.extensions["krisrutin.settings"].team_contact_missing
    return {"team_contact": {name: "missing" if name in missing else "ok" for name in ("TEAM_EMAIL", "TEAM_MOBILE")}}


def init_app(app) -> None:
    """The template global, the readiness report, and in production a warning at start-up when
    the team's mailbox or phone is not configured: every provider page names them."""
    from core.health import register_readiness_report

    app.add_template_global(contact_now)
    register_readiness_report(app, readiness_report)
    settings = app.extensions["krisrutin.settings"]
    if settings.is_production and settings.team_contact_missing:
        log.warning(
            "%s not set: the providers' pages cannot name the team's mailbox and phone",
            " and ".join(settings.team_contact_missing),
        )
