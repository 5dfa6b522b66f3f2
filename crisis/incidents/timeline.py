"""The incident timeline: every step of an incident is one :class:`IncidentEvent` row.

Writers call :func:`record` in the transaction of the step itself, so the timeline never misses
or invents a step. ``detail`` holds ids and short texts (no addresses: the recipients of a
letter are read from the outbox when the timeline is shown or exported).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from crisis.incidents.models import IncidentEvent

# The kinds of step, in the order they usually happen.
EVENT_KINDS = (
    "notice_received",  # detail: notice_id, source
    "flagged",  # planned work announced late or outside the window; detail: reason
    "routed",  # detail: party, user_id
    "alerted",  # detail: alert_id, reason, step, user_id
    "acknowledged",  # the handling party took the incident; detail: via ("sms", "call"; none: the page)
    "escalated",  # nobody acknowledged: the next step alerted; detail: step, user_id
    "called",  # the paging called the person alerted; detail: alert_id, step, user_id
    "call_status",  # how that call went; detail: alert_id, status (Twilio's call status)
    "alert_acknowledged",  # a reminder seen (by SMS reply, a call); detail: alert_id, reason, via
    "assessed",  # detail: relevant, apply_local_routines, reason
    "letter_sent",  # detail: letter_id, number, kind, recipients
    "letter_acknowledged",  # a provider acknowledged; detail: letter_id, provider_id
    "letter_resent",  # detail: letter_id, providers
    "call_listed",  # detail: letter_id, providers
    "update_due",  # the handling party reminded to send an update
    "estimate_requested",  # expected end passed; detail: asked (supplier contact kind)
    "expected_end_changed",  # detail: old, new
    "handover",  # detail: handover_id, from_party, to_party
    "handover_acknowledged",  # detail: handover_id, via ("sms", "call"; none: the page)
    "resolved",
    "visits_created",  # supervisions in the window became visits; detail: count, providers
    "visits_escalated",  # a provider did not react; detail: provider_id, step
    "supervision_returned",  # the outage ended: later supervisions back to the alarm operator
    "note",  # a free note by the handling party
)


def record(
    db_session: Session,
    incident_id: int,
    kind: str,
    now: datetime,
    *,
    actor_id: int | None = None,
    party: str | None = None,
    **detail,
) -> IncidentEvent:
    """Add one step to the incident's timeline; does not commit."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown incident event kind {kind!r}")
    event = IncidentEvent(
        incident_id=incident_id, at=now, kind=kind, actor_user_id=actor_id, party=party, detail=detail
    )
    db_session.add(event)
    return event
