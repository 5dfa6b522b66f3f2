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


def notify_handler(
    db_session: Session, incident: Incident, *, reason: str, kind: str, context: dict, now: datetime
) -> list:
    """Tell the party handling ``incident`` something (an update is due, a letter is on the call
    list, ...): message ``kind`` rendered with ``context`` (plus ``incident`` and ``link``) by
    e-mail and SMS to the on-call officer on duty, or to the team's mailbox and duty phone; an
    :class:`~crisis.models.Alert` with ``reason`` and an ``alerted`` step on the timeline. The
    same ``reason`` twice for one incident alerts once. Returns the alerts created (a stub until
    the routing part lands: records the step only)."""
    timeline.record(db_session, incident.id, "alerted", now, party=incident.party, reason=reason)
    return []
