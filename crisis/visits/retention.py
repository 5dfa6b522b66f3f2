"""Gallring of visits, their alerts and events older than ``visit_months`` (the rules
core/retention.py describes)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_

from config.routine import RetentionPolicy
from core.retention import Clearing, months_before, register_clearing
from crisis.visits.models import Visit, VisitAlert, VisitEvent


def visits(policy: RetentionPolicy, now: datetime) -> Clearing:
    """The comment and who marked the visit."""
    return Clearing(
        Visit,
        and_(
            func.coalesce(Visit.marked_at, Visit.created_at) < months_before(now, policy.visit_months),
            or_(Visit.comment.is_not(None), Visit.marked_by.is_not(None)),
        ),
        {"comment": None, "marked_by": None},
    )


def visit_alerts(policy: RetentionPolicy, now: datetime) -> Clearing:
    """The name typed when acknowledging the alert and the call outcome."""
    return Clearing(
        VisitAlert,
        and_(
            VisitAlert.created_at < months_before(now, policy.visit_months),
            or_(VisitAlert.acknowledged_by.is_not(None), VisitAlert.call_outcome.is_not(None)),
        ),
        {"acknowledged_by": None, "call_outcome": None},
    )


def visit_events(policy: RetentionPolicy, now: datetime) -> Clearing:
    """The event's actor."""
    return Clearing(
        VisitEvent,
        and_(VisitEvent.at < months_before(now, policy.visit_months), VisitEvent.actor.is_not(None)),
        {"actor": None},
    )


def init_app(app) -> None:
    register_clearing(app, "visits", _l("Besök"), visits)
    register_clearing(app, "visit_alerts", _l("Besökslarm"), visit_alerts)
    register_clearing(app, "visit_events", _l("Besökshändelser"), visit_events)
