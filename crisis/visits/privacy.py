"""The visits' part of a contact person's erasure (contacts/privacy.py): their name where it was
typed on their provider's visit page (marking a visit, acknowledging an alert) or stands as an
event's actor."""

from __future__ import annotations

from sqlalchemy import Update, update

from contacts.models import ContactPerson
from crisis.visits.models import Visit, VisitAlert, VisitEvent


def erasure(contact: ContactPerson) -> list[tuple[str, Update]]:
    """Clear ``contact``'s name on their provider's visits, visit alerts and visit events."""
    provider_id, name = contact.provider_id, contact.name
    return [
        (
            "visits",
            update(Visit).where(Visit.provider_id == provider_id, Visit.marked_by == name).values(marked_by=None),
        ),
        (
            "visit_alerts",
            update(VisitAlert)
            .where(VisitAlert.provider_id == provider_id, VisitAlert.acknowledged_by == name)
            .values(acknowledged_by=None),
        ),
        (
            "visit_events",
            update(VisitEvent)
            .where(VisitEvent.provider_id == provider_id, VisitEvent.actor == name)
            .values(actor=None),
        ),
    ]
