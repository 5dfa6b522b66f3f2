"""Shared by the routing, roster and handover tests: staff on the roster, incidents, the tick,
local times and the outbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select

from accounts.models import User
from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent
from crisis.oncall.models import RosterMember
from notifications.models import Message
from scheduling.service import tick

STOCKHOLM = ZoneInfo("Europe/Stockholm")
BASE_URL = "https://krisrutin.kommun.example.se"
TEAM_EMAIL = "valfardsteknik@kommun.example.se"
TEAM_MOBILE = "+46701999999"


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=STOCKHOLM)


def local_text(instant: datetime) -> str:
    return instant.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


def routing_app(make_app, *, manager: str = ""):
    app = make_app(PUBLIC_BASE_URL=BASE_URL, TEAM_EMAIL=TEAM_EMAIL, TEAM_MOBILE=TEAM_MOBILE)
    policy = app.extensions["krisrutin.routine"]
    app.extensions["krisrutin.routine"] = replace(policy, crisis=replace(policy.crisis, manager_username=manager))
    return app


def staff(app, make_user, names, role="on_call", first=1) -> dict[str, int]:
    """Users with e-mail and mobile (``anna`` -> anna@kommun.example.se, +4670100000n); ids by name."""
    ids = {}
    for n, name in enumerate(names, start=first):
        user_id, _, _ = make_user(role=role, username=name)
        with app.app_context():
            user = db.session.get(User, user_id)
            user.email = f"{name}@kommun.example.se"
            user.mobile = f"+4670100000{n}"
            db.session.commit()
        ids[name] = user_id
    return ids


def put_on_roster(app, user_ids: list[int]) -> None:
    with app.app_context():
        for position, user_id in enumerate(user_ids):
            db.session.add(RosterMember(user_id=user_id, position=position, is_active=True))
        db.session.commit()


def new_incident(app, clock, at: datetime, title: str = "Larmcentralen nere") -> int:
    """An unplanned incident arriving at ``at``, routed as intake does."""
    from crisis.incidents.routing import route_incident

    clock.set(at)
    with app.app_context():
        now = clock.now()
        incident = Incident(
            title=title, service="alarms", planned=False, party="team", party_since=now, status="new", created_at=now
        )
        db.session.add(incident)
        db.session.flush()
        route_incident(db.session, incident, now)
        db.session.commit()
        incident_id = incident.id
        db.session.remove()
        return incident_id


def run_tick(app, clock, at: datetime | None = None):
    if at is not None:
        clock.set(at)
    with app.app_context():
        report = tick(db_session=db.session, now=clock.now())
        db.session.remove()
        return report


def outbox(app, *kinds: str, calls: bool = False) -> list[tuple[str, str, str, str]]:
    """Queued messages as (local time, idempotency key, address, kind), in key order; phone calls
    (the paging steps of crisis/oncall/paging.py) only with ``calls=True``."""
    with app.app_context():
        query = select(Message).order_by(Message.idempotency_key)
        if kinds:
            query = query.where(Message.kind.in_(kinds))
        if not calls:
            query = query.where(Message.channel != "call")
        rows = [(local_text(m.created_at), m.idempotency_key, m.to_address, m.kind) for m in db.session.scalars(query)]
        db.session.remove()
        return rows


def events(app, incident_id: int) -> list[tuple[str, str, dict]]:
    with app.app_context():
        rows = [
            (local_text(e.at), e.kind, e.detail)
            for e in db.session.scalars(
                select(IncidentEvent).where(IncidentEvent.incident_id == incident_id).order_by(IncidentEvent.id)
            )
        ]
        db.session.remove()
        return rows
