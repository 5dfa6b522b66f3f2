"""Acknowledging an alert however it is answered — the page's button, an SMS reply, a key pressed
on a call — and telling the domain whose alert it is.

This layer knows alerts, not what they are about. Each domain registers, for the alert reasons it
owns, an *acknowledger*: it does what acknowledging means there (the incidents take the incident,
the handovers mark the handover taken, the visits mark the provider's escalation seen) and says in
Swedish words what was acknowledged, for the SMS reply or the spoken answer::

    register_acknowledger(app, "routed", take_incident)          # exact reason
    register_acknowledger(app, "handover:", take_handover)       # a prefix: ends with ":"

``fn(db_session, alert, user, via, now) -> str | None``: ``user`` is who acknowledged (None: the
team's duty phone), ``via`` one of :data:`VIA`; None when it was acknowledged already. The
longest matching reason wins. An acknowledger whose alert stops nothing else uses
:func:`mark_acknowledged`.

The acknowledgers of this project: ``routed`` (the incident is taken, its escalation stops) and
``update_due:``, ``expected_end:``, ``call_list:``, ``supplier_update:`` (the reminder is seen) in
:mod:`crisis.incidents.routing`; ``handover:`` in :mod:`crisis.incidents.handover`;
``visit_call_list`` and ``visit_overdue:`` in :mod:`crisis.visits.acknowledge`.

Listeners are told of what happens to an alert after it was sent (acknowledged, called, a call's
outcome ...), so that a domain can put it on its record (the incidents' timeline) without this
layer importing it::

    register_alert_listener(app, fn)   # fn(db_session, alert, event, now, detail: dict) -> None

Events: ``"acknowledged"`` (detail ``via``, ``user_id``; told by :func:`acknowledge_alert`),
``"called"`` and ``"call_status"`` (detail ``status``: Twilio's call status), told by the paging.
The incidents' listener puts those of incident alerts on the timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import update
from sqlalchemy.orm import Session

from accounts.models import User
from crisis.oncall.models import Alert

VIA = ("web", "sms", "call")

Acknowledger = Callable[[Session, Alert, "User | None", str, datetime], "str | None"]
AlertListener = Callable[[Session, Alert, str, datetime, dict], None]

_ACKNOWLEDGERS = "krisrutin.alert_acknowledgers"
_LISTENERS = "krisrutin.alert_listeners"


def register_acknowledger(app: Flask, reason: str, fn: Acknowledger) -> None:
    """Let ``fn`` acknowledge the alerts of ``reason`` (exact, or a prefix when it ends with ":")."""
    acknowledgers = app.extensions.setdefault(_ACKNOWLEDGERS, {})
    existing = acknowledgers.get(reason)
    if existing is not None and existing is not fn:
        raise ValueError(f"an acknowledger for alert reason {reason!r} is already registered")
    acknowledgers[reason] = fn


def register_alert_listener(app: Flask, fn: AlertListener) -> None:
    listeners = app.extensions.setdefault(_LISTENERS, [])
    if fn not in listeners:
        listeners.append(fn)


def acknowledger_for(reason: str, app: Flask | None = None) -> Acknowledger | None:
    """The acknowledger registered for ``reason``: the exact one, else the longest prefix."""
    acknowledgers = (app or current_app).extensions.get(_ACKNOWLEDGERS, {})
    if reason in acknowledgers and not reason.endswith(":"):
        return acknowledgers[reason]
    prefixes = [key for key in acknowledgers if key.endswith(":") and reason.startswith(key)]
    return acknowledgers[max(prefixes, key=len)] if prefixes else None


def alert_event(db_session: Session, alert: Alert, event: str, now: datetime, **detail) -> None:
    """Tell every listener that ``event`` happened to ``alert``. Does not commit."""
    for listener in current_app.extensions.get(_LISTENERS, []):
        listener(db_session, alert, event, now, detail)


def acknowledge_alert(db_session: Session, alert: Alert, *, user: User | None, via: str, now: datetime) -> str | None:
    """Acknowledge ``alert`` through its domain's acknowledger; the words of what was acknowledged,
    or None when it was acknowledged already (or no domain acknowledges its reason). The listeners
    are then told (``"acknowledged"``, detail ``via`` and ``user_id``): callers do not tell them
    again. Does not commit."""
    if via not in VIA:
        raise ValueError(f"unknown acknowledgement channel {via!r}")
    if alert.acknowledged_at is not None:
        return None
    fn = acknowledger_for(alert.reason)
    if fn is None:
        return None
    words = fn(db_session, alert, user, via, now)
    if words is not None:
        alert_event(db_session, alert, "acknowledged", now, via=via, user_id=user.id if user is not None else None)
    return words


def mark_acknowledged(db_session: Session, alert: Alert, user: User | None, now: datetime) -> bool:
    """Mark this one alert acknowledged (seen) by ``user`` (None: the team's duty phone); False
    when someone was first. For the acknowledgers whose alerts stop nothing but themselves (the
    reminders, the visits' call list). Does not commit."""
    result = db_session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=user.id if user is not None else None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    db_session.refresh(alert)
    return True
