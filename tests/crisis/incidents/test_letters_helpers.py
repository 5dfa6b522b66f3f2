"""Shared by the letters and follow-up tests: a small register, incidents made with the models,
the outbox, the timeline and the tick."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contacts import register
from contacts.register import Actor
from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent, IncidentProvider, Letter, LetterReceipt, Supplier
from notifications.models import Message
from scheduling.service import tick

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TEAM = Actor("team")
BASE_URL = "https://krisrutin.kommun.example.se"
TEAM_EMAIL = "valfardsteknik@kommun.example.se"
TEAM_MOBILE = "+46701999999"
SETTINGS = {"PUBLIC_BASE_URL": BASE_URL, "TEAM_EMAIL": TEAM_EMAIL, "TEAM_MOBILE": TEAM_MOBILE}

# Two providers of camera supervision (one contact inactive), one that only has alarms.
PEOPLE = {
    "anna": {
        "provider": "Hemtjänst Norr",
        "name": "Anna Lind",
        "mobile": "+46701000001",
        "email": "anna@norr.se",
        "services": ["camera_supervision"],
    },
    "bo": {"provider": "Hemtjänst Norr", "name": "Bo Ek", "mobile": "+46701000002", "email": "bo@norr.se"},
    "cia": {
        "provider": "Omsorg Söder AB",
        "name": "Cia Berg",
        "mobile": "+46701000003",
        "email": "cia@soder.se",
        "services": ["camera_supervision", "alarms"],
    },
    "dan": {
        "provider": "Omsorg Söder AB",
        "name": "Dan Ås",
        "mobile": "+46701000004",
        "email": "dan@soder.se",
        "services": ["camera_supervision"],
    },
    "eva": {
        "provider": "Larmgruppen Väst",
        "name": "Eva Holm",
        "mobile": "+46701000005",
        "email": "eva@vast.se",
        "services": ["alarms"],
    },
}


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=STOCKHOLM)


def make_people(clock, people=PEOPLE, inactive=("dan",)) -> dict[str, int]:
    """Providers and contacts through the register (in an app context); returns contact ids."""
    providers: dict[str, object] = {}
    ids = {}
    for short, data in people.items():
        data = dict(data)
        provider_name = data.pop("provider")
        if provider_name not in providers:
            providers[provider_name] = register.create_provider(
                db.session, {"name": provider_name, "kind": "municipal"}, actor=TEAM, now=clock.now()
            ).record
        contact = register.create_contact(db.session, providers[provider_name], data, actor=TEAM, now=clock.now())
        ids[short] = contact.record.id
    db.session.flush()
    for short in inactive:
        contact = db.session.get(register.ContactPerson, ids[short])
        register.deactivate_contact(db.session, contact, actor=TEAM, now=clock.now())
    db.session.commit()
    return ids


def make_incident(
    clock, *, planned=False, party="team", providers=None, supplier_email=None, supplier="Telia", **fields
) -> int:
    """An open incident made directly with the models (intake is another part); returns its id.
    ``supplier=None``: without a supplier (a migration test on a schema older than the model's)."""
    supplier_id = None
    if supplier is not None:
        row = Supplier(name=supplier, email=supplier_email, created_at=clock.now())
        db.session.add(row)
        db.session.flush()
        supplier_id = row.id
    values = {
        "title": "GSM-nätet nere i norra kommundelen",
        "service": "camera_supervision",
        "supplier_id": supplier_id,
        "planned": planned,
        "starts_at": clock.now(),
        "expected_end_at": clock.now() + timedelta(hours=4),
        "all_providers": providers is None,
        "status": "open",
        "party": party,
        "party_since": clock.now(),
        "created_at": clock.now(),
        **fields,
    }
    incident = Incident(**values)
    db.session.add(incident)
    db.session.flush()
    for provider_id in providers or []:
        db.session.add(IncidentProvider(incident_id=incident.id, provider_id=provider_id))
    db.session.commit()
    return incident.id


def messages(kind: str | None = "crisis.letter") -> list[Message]:
    query = select(Message).order_by(Message.id)
    if kind:
        query = query.where(Message.kind == kind)
    return list(db.session.scalars(query))


def addresses(kind: str | None = "crisis.letter", key_contains: str = "") -> list[tuple[str, str]]:
    return sorted((m.channel, m.to_address) for m in messages(kind) if key_contains in m.idempotency_key)


def events(incident_id: int, kind: str | None = None) -> list[IncidentEvent]:
    query = select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id)
    if kind:
        query = query.where(IncidentEvent.kind == kind)
    return list(db.session.scalars(query))


def receipts(letter_id: int) -> list[LetterReceipt]:
    return list(
        db.session.scalars(
            select(LetterReceipt).where(LetterReceipt.letter_id == letter_id).order_by(LetterReceipt.provider_id)
        )
    )


def letters(incident_id: int) -> list[Letter]:
    return list(db.session.scalars(select(Letter).where(Letter.incident_id == incident_id).order_by(Letter.number)))


def run_tick(app, clock, at: datetime | None = None):
    if at is not None:
        clock.set(at)
    with app.app_context():
        report = tick(db_session=db.session, now=clock.now())
        db.session.remove()
        return report
