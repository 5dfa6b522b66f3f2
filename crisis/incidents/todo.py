"""The incidents' part of the start page's task list (:mod:`core.todo`).

Each role sees the work of the incidents its party handles (the team the team's, the on-call
officer the officer's; an admin all): a new incident not yet acknowledged and a handover to the
user's side not yet acknowledged, each with its acknowledge button on the row; the providers on
an incident's call list; the providers who have not acknowledged a letter yet; an update to the
providers that is due (:func:`crisis.incidents.followups.updates_due`: the reminder goes by e-mail
once the incident is acknowledged, so the start page is where it is seen at night).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from flask import url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.roles import Role
from core import todo
from crisis.incidents.models import OPEN_STATUSES, Incident, IncidentStatus, Letter, LetterReceipt
from crisis.oncall.handovers import may_acknowledge
from crisis.oncall.models import Handover, Party

_PARTY_OF_ROLE = {Role.TEAM: Party.TEAM.value, Role.ON_CALL: Party.ON_CALL.value}


def _parties(user) -> tuple[str, ...] | None:
    """The parties whose incidents ``user`` works on; None for all (an admin), () for none."""
    role = user.role_enum
    if role is Role.ADMIN:
        return None
    party = _PARTY_OF_ROLE.get(role)
    return (party,) if party else ()


def _open_incidents(db_session: Session, parties) -> list[Incident]:
    query = select(Incident).where(Incident.status.in_(OPEN_STATUSES))
    if parties is not None:
        query = query.where(Incident.party.in_(parties))
    return list(db_session.scalars(query.order_by(Incident.id)))


def items(db_session: Session, now: datetime, user) -> list[todo.TodoItem]:
    parties = _parties(user)
    if parties == ():
        return []
    incidents = _open_incidents(db_session, parties)
    found: list[todo.TodoItem] = []
    for incident in incidents:
        if incident.acknowledged_at is None and incident.status == IncidentStatus.NEW.value:
            found.append(
                todo.TodoItem(
                    urgency=todo.ACKNOWLEDGE,
                    at=incident.party_since or incident.created_at,
                    text=_("Ny störning, inte kvitterad: %(title)s", title=incident.title),
                    link=url_for("incidents.detail", incident_id=incident.id),
                    kind="incident",
                    action=todo.TodoAction(
                        _("Kvittera"), url_for("routing.acknowledge", incident_id=incident.id, next="start")
                    ),
                )
            )
    found += _handovers(db_session, user)
    by_id = {incident.id: incident for incident in incidents}
    found += _letters(db_session, by_id)
    found += _updates_due(db_session, now, by_id)
    return found


def _updates_due(db_session: Session, now: datetime, incidents: dict[int, Incident]) -> list[todo.TodoItem]:
    """An update due for an acknowledged incident of the user's party (an unacknowledged one is
    already on the list with its acknowledge button)."""
    from crisis.incidents.followups import updates_due

    return [
        todo.TodoItem(
            urgency=todo.OVERDUE,
            at=row["due_at"],
            text=_("Dags att skicka en uppdatering till utförarna: %(title)s", title=row["incident"].title),
            link=url_for("letters.compose", incident_id=row["incident"].id, kind="update"),
            kind="update_due",
        )
        for row in updates_due(db_session, now)
        if row["incident"].id in incidents and row["incident"].acknowledged_at is not None
    ]


def _handovers(db_session: Session, user) -> list[todo.TodoItem]:
    rows = db_session.execute(
        select(Handover, Incident)
        .join(Incident, Incident.id == Handover.incident_id)
        .where(Handover.acknowledged_at.is_(None), Incident.status.in_(OPEN_STATUSES))
        .order_by(Handover.id)
    ).all()
    return [
        todo.TodoItem(
            urgency=todo.ACKNOWLEDGE,
            at=handover.boundary_at,
            text=_("Överlämning till dig, inte kvitterad: %(title)s", title=incident.title),
            link=url_for("handovers.page", handover_id=handover.id),
            kind="handover",
            action=todo.TodoAction(
                _("Kvittera"), url_for("handovers.acknowledge", handover_id=handover.id, next="start")
            ),
        )
        for handover, incident in rows
        if may_acknowledge(handover, user)
    ]


def _letters(db_session: Session, incidents: dict[int, Incident]) -> list[todo.TodoItem]:
    """Per incident: the providers on its call list (one entry per provider), and the others
    that have not acknowledged an urgent letter."""
    if not incidents:
        return []
    rows = db_session.execute(
        select(LetterReceipt.provider_id, LetterReceipt.call_listed_at, Letter.incident_id, Letter.sent_at)
        .join(Letter, Letter.id == LetterReceipt.letter_id)
        .where(
            Letter.incident_id.in_(incidents),
            Letter.urgent.is_(True),
            LetterReceipt.acknowledged_at.is_(None),
        )
    ).all()
    to_call: dict[int, set[int]] = defaultdict(set)
    waiting: dict[int, set[int]] = defaultdict(set)
    latest: dict[tuple[str, int], datetime] = {}
    for provider_id, call_listed_at, incident_id, sent_at in rows:
        key, at = (("call", incident_id), call_listed_at) if call_listed_at else (("wait", incident_id), sent_at)
        (to_call if call_listed_at else waiting)[incident_id].add(provider_id)
        latest[key] = max(latest.get(key, at), at)
    found = []
    for incident_id, providers in to_call.items():
        title = incidents[incident_id].title
        found.append(
            todo.TodoItem(
                urgency=todo.CALL,
                at=latest[("call", incident_id)],
                text=ngettext(
                    "Ring %(num)d utförare som inte har kvitterat brevet om %(title)s",
                    "Ring %(num)d utförare som inte har kvitterat brevet om %(title)s",
                    len(providers),
                    title=title,
                ),
                link=url_for("letters.calls"),
                kind="letter_calls",
            )
        )
    for incident_id, providers in waiting.items():
        providers = providers - to_call.get(incident_id, set())
        if not providers:
            continue
        found.append(
            todo.TodoItem(
                urgency=todo.WAITING,
                at=latest[("wait", incident_id)],
                text=ngettext(
                    "%(num)d utförare har inte kvitterat brevet om %(title)s",
                    "%(num)d utförare har inte kvitterat brevet om %(title)s",
                    len(providers),
                    title=incidents[incident_id].title,
                ),
                link=url_for("incidents.detail", incident_id=incident_id),
                kind="letter_receipts",
            )
        )
    return found
