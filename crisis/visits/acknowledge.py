"""The visits' staff alerts answered by an SMS reply (or a key on a call): a provider on the call
list (reason ``visit_call_list``) and overdue visits (``visit_overdue:<first visit id>``).

Acknowledging says "seen, I am on it": the alert is marked acknowledged
(:func:`~crisis.oncall.acknowledge.mark_acknowledged`) and the step is a
:class:`~crisis.visits.models.VisitEvent` (``staff_acknowledged``, detail ``via``,
``staff_alert_id``, ``reason``; the actor ``user:<id>``), as the visits record every step. The
paging's calls about these alerts are recorded the same way (:func:`on_alert_event`:
``staff_called``, ``staff_call_status`` with Twilio's ``status``). Nothing else changes: the
provider's own acknowledgement ("Vi tar dessa") and the call record on the call list are still
the provider's and the caller's.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from accounts.models import User
from contacts.models import Provider
from crisis.oncall.acknowledge import mark_acknowledged, register_acknowledger, register_alert_listener
from crisis.oncall.models import Alert
from crisis.visits.jobs import CALL_LIST_REASON, OVERDUE_REASON_PREFIX, OVERDUE_SUBJECT
from crisis.visits.models import VisitAlert
from crisis.visits.service import REF_TYPE, event

ACKNOWLEDGED_EVENT = "staff_acknowledged"
CALL_EVENTS = {"called": "staff_called", "call_status": "staff_call_status"}
SUBJECTS = (REF_TYPE, OVERDUE_SUBJECT)


def _provider_id(db_session: Session, alert: Alert) -> int | None:
    if alert.subject_type == REF_TYPE:
        visit_alert = db_session.get(VisitAlert, alert.subject_id)
        return visit_alert.provider_id if visit_alert is not None else None
    return alert.subject_id  # ("provider", id)


def acknowledge_by_reply(db_session: Session, alert: Alert, user: User | None, via: str, now: datetime) -> str | None:
    """Mark the alert seen and record it; the words name the provider (Swedish, as every staff SMS)."""
    if not mark_acknowledged(db_session, alert, user, now):
        return None
    provider_id = _provider_id(db_session, alert)
    event(
        db_session,
        ACKNOWLEDGED_EVENT,
        now,
        provider_id=provider_id,
        alert_id=alert.subject_id if alert.subject_type == REF_TYPE else None,
        actor=f"user:{user.id}" if user is not None else None,
        via=via,
        staff_alert_id=alert.id,
        reason=alert.reason,
    )
    provider = db_session.get(Provider, provider_id) if provider_id is not None else None
    name = f'"{provider.name}"' if provider is not None else "utföraren"
    if alert.reason == CALL_LIST_REASON:
        return f"{name} på ringlistan"
    return f"försenade besök hos {name}"


def on_alert_event(db_session: Session, alert: Alert, event_name: str, now: datetime, detail: dict) -> None:
    """The paging's calls about a visits' alert, recorded as the visits record every step."""
    if alert.subject_type not in SUBJECTS or event_name not in CALL_EVENTS:
        return
    more = {"status": str(detail["status"])} if detail.get("status") else {}
    event(
        db_session,
        CALL_EVENTS[event_name],
        now,
        provider_id=_provider_id(db_session, alert),
        alert_id=alert.subject_id if alert.subject_type == REF_TYPE else None,
        staff_alert_id=alert.id,
        user_id=alert.user_id,
        **more,
    )


def init_app(app) -> None:
    register_acknowledger(app, CALL_LIST_REASON, acknowledge_by_reply)
    register_acknowledger(app, OVERDUE_REASON_PREFIX, acknowledge_by_reply)
    register_alert_listener(app, on_alert_event)
