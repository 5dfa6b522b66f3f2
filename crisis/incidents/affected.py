"""Which providers an incident affects, and which contacts its letters reach."""

from __future__ import annotations

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from contacts.models import ContactPerson, Provider
from crisis.incidents.models import Incident, IncidentProvider


def providers_using(db_session: Session, service: str) -> list[Provider]:
    """Active providers with at least one active contact who receives information about ``service``."""
    # Decided in the database, not by loading every contact (this runs on every incident page,
    # over the whole register): the services list is stored as JSON text and the keys of
    # SERVICES are plain words, so the quoted key matches exactly the element equal to it (a
    # quote inside a string element would be escaped as \").
    ids = set(
        db_session.scalars(
            select(ContactPerson.provider_id)
            .join(Provider)
            .where(
                ContactPerson.is_active.is_(True),
                Provider.is_active.is_(True),
                cast(ContactPerson.services, String).like(f'%"{service}"%'),
            )
            .distinct()
        )
    )
    if not ids:
        return []
    return list(db_session.scalars(select(Provider).where(Provider.id.in_(ids)).order_by(Provider.name)))


def affected_providers(db_session: Session, incident: Incident) -> list[Provider]:
    """The incident's providers: all providers using its service (as the register stands now),
    or the chosen ones (those still active)."""
    if incident.all_providers:
        return providers_using(db_session, incident.service) if incident.service else []
    return list(
        db_session.scalars(
            select(Provider)
            .join(IncidentProvider, IncidentProvider.provider_id == Provider.id)
            .where(IncidentProvider.incident_id == incident.id, Provider.is_active.is_(True))
            .order_by(Provider.name)
        )
    )


def letter_recipients(db_session: Session, incident: Incident) -> list[ContactPerson]:
    """Every active contact of the affected providers (a letter goes to all of them, whatever
    services each contact lists: the provider spreads it to its units)."""
    providers = [provider.id for provider in affected_providers(db_session, incident)]
    if not providers:
        return []
    return list(
        db_session.scalars(
            select(ContactPerson)
            .where(ContactPerson.provider_id.in_(providers), ContactPerson.is_active.is_(True))
            .order_by(ContactPerson.provider_id, ContactPerson.id)
        )
    )
