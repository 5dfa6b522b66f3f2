"""The visits' part of the start page's task list (:mod:`core.todo`), for all staff (a missed
visit is shown at once, whoever opens the start page; ../shared/seeds/004_…).

Per provider, so forty visits of one provider are one row: its overdue visits (open longer than
``visit_overdue_minutes`` after they were due), and whether it must be phoned (on the visit call
list) or has only not acknowledged its visit alert yet. A provider on the call list is not also
listed as "not acknowledged".
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from flask import current_app, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.roles import STAFF
from contacts.models import Provider
from core import todo
from crisis.visits.models import Visit, VisitAlert, VisitStatus


def items(db_session: Session, now: datetime, user) -> list[todo.TodoItem]:
    if user.role_enum not in STAFF:
        return []
    overdue_after = timedelta(minutes=current_app.extensions["krisrutin.routine"].crisis.visit_overdue_minutes)
    open_visits = list(db_session.scalars(select(Visit).where(Visit.status == VisitStatus.OPEN.value)))
    if not open_visits:
        return []
    open_by_alert: dict[int, int] = defaultdict(int)
    overdue: dict[int, list[Visit]] = defaultdict(list)
    for visit in open_visits:
        if visit.alert_id is not None:
            open_by_alert[visit.alert_id] += 1
        if visit.due_at + overdue_after <= now:
            overdue[visit.provider_id].append(visit)
    alerts = [
        alert
        for alert in db_session.scalars(select(VisitAlert).where(VisitAlert.acknowledged_at.is_(None)))
        if open_by_alert[alert.id]
    ]
    provider_ids = set(overdue) | {alert.provider_id for alert in alerts}
    names = dict(db_session.execute(select(Provider.id, Provider.name).where(Provider.id.in_(provider_ids))).all())
    found = [
        todo.TodoItem(
            urgency=todo.OVERDUE,
            at=max(visit.due_at for visit in visits) + overdue_after,
            text=ngettext(
                "%(num)d försenat besök hos %(provider)s",
                "%(num)d försenade besök hos %(provider)s",
                len(visits),
                provider=names.get(provider_id, ""),
            ),
            link=url_for("visit_views.dashboard"),
            kind="overdue_visits",
        )
        for provider_id, visits in overdue.items()
    ]
    to_call: dict[int, datetime] = {}
    waiting: dict[int, datetime] = {}
    for alert in alerts:
        if alert.call_listed_at is not None:
            to_call[alert.provider_id] = max(to_call.get(alert.provider_id, alert.call_listed_at), alert.call_listed_at)
        else:
            waiting[alert.provider_id] = max(waiting.get(alert.provider_id, alert.created_at), alert.created_at)
    for provider_id, at in to_call.items():
        found.append(
            todo.TodoItem(
                urgency=todo.CALL,
                at=at,
                text=_(
                    "Ring %(provider)s: har inte kvitterat besöken",
                    provider=names.get(provider_id, ""),
                ),
                link=url_for("visit_views.calls"),
                kind="visit_calls",
            )
        )
    for provider_id, at in waiting.items():
        if provider_id in to_call:
            continue
        found.append(
            todo.TodoItem(
                urgency=todo.WAITING,
                at=at,
                text=_(
                    "%(provider)s har inte kvitterat besökslarmet",
                    provider=names.get(provider_id, ""),
                ),
                link=url_for("visit_views.dashboard"),
                kind="visit_alerts",
            )
        )
    return found
