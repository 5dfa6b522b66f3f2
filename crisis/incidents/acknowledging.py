"""The incidents' part in acknowledging alerts however they are answered (crisis.oncall.acknowledge).

- The reminders to the handling party (``update_due:``, ``expected_end:``, ``call_list:``,
  ``supplier_update:``) stop nothing when answered: the alert is marked seen
  (:func:`~crisis.oncall.acknowledge.mark_acknowledged`) and the words of the SMS reply name it.
  Taking the incident (``routed``) is :mod:`crisis.incidents.routing`'s, the handover's
  :mod:`crisis.incidents.handover`'s.
- The listener :func:`on_alert_event` puts what happens to an incident's alert on its timeline:
  a reminder acknowledged (``alert_acknowledged``, with ``via``), and the paging's calls
  (``called``, ``call_status`` with Twilio's ``status``). An incident taken or a handover
  acknowledged are on the timeline already, as ``acknowledged`` and ``handover_acknowledged``
  with their ``via``; alerts without an incident (the visits') are not the incidents'.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from accounts.models import User
from crisis.incidents import timeline
from crisis.incidents.models import Incident
from crisis.incidents.routing import incident_words
from crisis.oncall.acknowledge import mark_acknowledged, register_acknowledger, register_alert_listener
from crisis.oncall.models import Alert

# What each reminder is, in the SMS reply's words ('Kvitterat: påminnelse om uppdatering, "…". Tack.').
REMINDERS = {
    "update_due:": "påminnelse om uppdatering",
    "expected_end:": "påminnelse om beräknat slut",
    "call_list:": "ringlistan",
    "supplier_update:": "besked från leverantören",
}
CALL_EVENTS = ("called", "call_status")


def _acknowledge_reminder(db_session: Session, alert: Alert, user: User | None, via: str, now: datetime) -> str | None:
    """A reminder answered: seen, nothing else stops."""
    if not mark_acknowledged(db_session, alert, user, now):
        return None
    incident = db_session.get(Incident, alert.incident_id)
    what = next((words for prefix, words in REMINDERS.items() if alert.reason.startswith(prefix)), "larm")
    return f"{what}, {incident_words(incident)}" if incident is not None else what


def on_alert_event(db_session: Session, alert: Alert, event: str, now: datetime, detail: dict) -> None:
    """An incident alert's event on the incident's timeline (see the module's docstring)."""
    if alert.incident_id is None:
        return
    if event == "acknowledged":
        if not any(alert.reason.startswith(prefix) for prefix in REMINDERS):
            return  # the incident taken, a handover acknowledged: recorded as such
        timeline.record(
            db_session,
            alert.incident_id,
            "alert_acknowledged",
            now,
            actor_id=detail.get("user_id"),
            party=alert.party,
            alert_id=alert.id,
            reason=alert.reason,
            via=detail.get("via"),
        )
    elif event in CALL_EVENTS:
        more = {"status": str(detail["status"])} if detail.get("status") else {}
        timeline.record(
            db_session,
            alert.incident_id,
            event,
            now,
            party=alert.party,
            alert_id=alert.id,
            step=alert.step,
            user_id=alert.user_id,
            **more,
        )


def init_app(app) -> None:
    for prefix in REMINDERS:
        register_acknowledger(app, prefix, _acknowledge_reminder)
    register_alert_listener(app, on_alert_event)
