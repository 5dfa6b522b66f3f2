"""Who handles an incident, and alerting them (a stub until the routing part of issue 5 lands:
it sets the party by the calendar and records the step)."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from crisis import timeline
from crisis.models import Incident
from worktime.calendar import responsible_at


def route_incident(db_session: Session, incident: Incident, now: datetime) -> None:
    """Give a new incident (already flushed, so it has an id) to the party the calendar names at
    ``now`` and alert it; does not commit."""
    policy = current_app.extensions["krisrutin.routine"]
    party = responsible_at(now, policy).responsible
    incident.party = party
    incident.party_since = now
    timeline.record(db_session, incident.id, "routed", now, party=party)
