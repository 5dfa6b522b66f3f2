"""Shared by the monthly check tests: a small register, the tick, local times, the outbox."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from contacts import register
from contacts.check_models import CheckRecipient
from contacts.check_queries import check_for_month
from contacts.register import Actor
from core.extensions import db
from notifications.models import Message
from scheduling.service import tick

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TEAM = Actor("team")


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """An aware instant at a Stockholm wall time."""
    return datetime.combine(day, time(hour, minute), tzinfo=STOCKHOLM)


def local_text(instant: datetime) -> str:
    return instant.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


def make_register(clock, people: dict[str, dict]) -> dict[str, int]:
    """Providers and contacts through the register (in an app context); ``people`` maps a short
    name to the contact's data plus ``provider``. Returns the contacts' ids by short name."""
    providers: dict[str, object] = {}
    ids = {}
    for short, data in people.items():
        data = dict(data)
        provider_name = data.pop("provider")
        if provider_name not in providers:
            providers[provider_name] = register.find_provider_by_name(db.session, provider_name)
        if providers[provider_name] is None:
            providers[provider_name] = register.create_provider(
                db.session, {"name": provider_name, "kind": "kommunal"}, actor=TEAM, now=clock.now()
            ).record
        contact = register.create_contact(db.session, providers[provider_name], data, actor=TEAM, now=clock.now())
        ids[short] = contact.record.id
    db.session.commit()
    return ids


def run_tick(app, clock, at: datetime | None = None):
    if at is not None:
        clock.set(at)
    with app.app_context():
        report = tick(db_session=db.session, now=clock.now())
        db.session.remove()
        return report


def outbox(app, *kinds: str) -> list[tuple[str, str, str, str]]:
    """Every queued message of the given kinds as (local time queued, idempotency key, address,
    kind), in key order."""
    with app.app_context():
        query = select(Message).order_by(Message.idempotency_key)
        if kinds:
            query = query.where(Message.kind.in_(kinds))
        rows = [
            (local_text(message.created_at), message.idempotency_key, message.to_address, message.kind)
            for message in db.session.scalars(query)
        ]
        db.session.remove()
        return rows


def recipient_of(month: str, contact_id: int) -> CheckRecipient:
    check = check_for_month(db.session, month)
    return db.session.scalars(
        select(CheckRecipient).where(CheckRecipient.check_id == check.id, CheckRecipient.contact_id == contact_id)
    ).one()


def invite_anna_to_june(app, clock) -> tuple[int, int, str]:
    """Anna Lind (Hemtjänst Norr) registered on 20 May 2026 and invited to June 2026's check by the
    tick: (contact id, recipient id, the recipient's nonce)."""
    clock.set(local(date(2026, 5, 20), 9))
    with app.app_context():
        [contact_id] = make_register(
            clock, {"anna": {"provider": "Hemtjänst Norr", "name": "Anna Lind", "mobile": "+46701000001"}}
        ).values()
        db.session.remove()
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    with app.app_context():
        recipient = recipient_of("2026-06", contact_id)
        invited = contact_id, recipient.id, recipient.nonce
        db.session.remove()
    return invited


def days(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
