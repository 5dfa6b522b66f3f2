"""Shared by the visits tests: providers and contacts (the letters tests' register), visits made
directly with the models (the supervision part creates them in the application), the outbox,
the visit events and the tick."""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime

from sqlalchemy import select

from accounts.models import User
from contacts.models import Provider
from core.extensions import db
from crisis.incidents.models import IncidentEvent
from crisis.oncall.models import RosterMember
from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitAlert, VisitEvent
from crisis.visits.service import visits_created
from notifications.models import Message
from tests.crisis.incidents.test_letters_helpers import (  # noqa: F401  (re-exported for the visit tests)
    BASE_URL,
    SETTINGS,
    TEAM_EMAIL,
    TEAM_MOBILE,
    local,
    make_incident,
    make_people,
    run_tick,
)

NORR = "Hemtjänst Norr"  # contacts Anna and Bo
SODER = "Omsorg Söder AB"  # contact Cia (Dan is inactive)
VAST = "Larmgruppen Väst"  # contact Eva
TUESDAY = date(2026, 11, 24)  # a working day

_references = itertools.count(1)


def provider_id(name: str) -> int:
    return db.session.scalars(select(Provider.id).where(Provider.name == name)).one()


def new_visits(
    clock, provider: str, due: list[datetime], *, incident_id: int | None = None, announce: bool = True
) -> list[int]:
    """Clients, failures and open visits of ``provider`` due at ``due`` (in an app context);
    calls ``visits_created`` like the supervision part does, commits; returns the visit ids."""
    pid = provider_id(provider)
    now = clock.now()
    visits = []
    for instant in due:
        reference = f"{provider[:4].upper()}-{next(_references):04d}"
        client = SupervisedClient(reference=reference, provider_id=pid, area="Norr", is_active=True, created_at=now)
        db.session.add(client)
        db.session.flush()
        failure = SupervisionFailure(
            client_id=client.id,
            provider_id=pid,
            scheduled_at=instant,
            reason="GSM nere",
            source="incident" if incident_id else "operator",
            incident_id=incident_id,
            created_at=now,
        )
        db.session.add(failure)
        db.session.flush()
        visit = Visit(
            failure_id=failure.id,
            client_id=client.id,
            provider_id=pid,
            incident_id=incident_id,
            due_at=instant,
            status="open",
            created_at=now,
        )
        db.session.add(visit)
        visits.append(visit)
    db.session.flush()
    if announce:
        visits_created(db.session, visits, now)
    db.session.commit()
    return [visit.id for visit in visits]


def references(visit_ids: list[int]) -> list[str]:
    return [db.session.get(Visit, vid).client.reference for vid in visit_ids]


def messages(kind: str | None = None) -> list[Message]:
    query = select(Message).order_by(Message.id)
    if kind:
        query = query.where(Message.kind == kind)
    return list(db.session.scalars(query))


def sent_to(kind: str) -> list[tuple[str, str]]:
    """(channel, address) of every message of ``kind``, sorted."""
    return sorted((m.channel, m.to_address) for m in messages(kind))


def link_in(message: Message) -> str:
    """The path of the visit link in a message (``/v/<token>``)."""
    match = re.search(re.escape(BASE_URL) + r"(/v/[A-Za-z0-9_-]+)", message.body_text)
    assert match, "the message has no visit link"
    return match.group(1)


def link_of(provider_mobile: str) -> str:
    sms = next(m for m in messages("crisis.visit.alert") if m.to_address == provider_mobile and m.channel == "sms")
    return link_in(sms)


def alerts() -> list[VisitAlert]:
    return list(db.session.scalars(select(VisitAlert).order_by(VisitAlert.id)))


def visit_events(kind: str | None = None) -> list[VisitEvent]:
    query = select(VisitEvent).order_by(VisitEvent.id)
    if kind:
        query = query.where(VisitEvent.kind == kind)
    return list(db.session.scalars(query))


def timeline(incident_id: int, kind: str) -> list[IncidentEvent]:
    return list(
        db.session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == kind)
            .order_by(IncidentEvent.id)
        )
    )


def on_call_officer(app, make_user) -> int:
    """One on-call officer on the roster (on call every week), with e-mail and mobile."""
    user_id, _, _ = make_user(role="on_call", username="tib")
    with app.app_context():
        user = db.session.get(User, user_id)
        user.email = "tib@kommun.example.se"
        user.mobile = "+46701777777"
        db.session.add(RosterMember(user_id=user_id, position=0, is_active=True))
        db.session.commit()
    return user_id


def provider_user(app, clock, provider: str, username: str = "utforare") -> str:
    """A user of ``provider`` (role provider, with a password to log in); returns the username."""
    from accounts.service import create_user
    from tests.conftest import DEFAULT_PASSWORD

    with app.app_context():
        create_user(
            db_session=db.session,
            username=username,
            display_name=f"Personal {provider}",
            role="provider",
            now=clock.now(),
            password=DEFAULT_PASSWORD,
            provider_id=provider_id(provider),
        )
        db.session.commit()
    return username
