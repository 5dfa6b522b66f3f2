"""Visits: alerting the providers, their acknowledgement, marking visits, escalation.

A failed camera supervision becomes a :class:`~crisis.visits.models.Visit` for the client's
provider (:mod:`crisis.visits.supervision` creates them and calls :func:`visits_created`). From there:

- **Alert.** :func:`visits_created` groups the new visits by provider and gives each provider one
  :class:`~crisis.visits.models.VisitAlert` (a random nonce for its signed link ``/v/<token>``)
  and, at once, an urgent SMS and e-mail to each of its active contacts: how many visits, the
  first due time (local), the link. Each provider's message and page hold only its own visits.
- **No alert storms.** A provider that already has an *unacknowledged* alert younger than
  ``visit_acknowledge_minutes`` gets no new message: the new visits are added to that alert
  (``visit_ids``, a ``added_to_alert`` event). Its link already shows every open visit of the
  provider, and that alert's escalation (due at its creation + ``visit_acknowledge_minutes``)
  covers the added visits too. After the alert is acknowledged, or once it is older than that,
  new visits get a new alert and a new message.
- **Acknowledgement** ("Vi tar dessa", :func:`acknowledge`) marks the provider's unacknowledged
  alerts and open visits taken, which stops their escalation.
- **Escalation** (scheduled tasks, run by the scheduler's tick): at the alert's creation +
  ``visit_acknowledge_minutes``, an unacknowledged alert whose visits are not all closed is sent
  to the provider again (``realerted_at``) and put on the call list (``call_listed_at``) of the
  party responsible by the calendar at that moment: the team in office hours (its mailbox and
  duty phone), else the on-call officer on duty (the roster; the team's addresses when nobody is
  on the roster or the officer has no address), told by SMS and e-mail with a link to the call
  list. Visits of an incident get ``visits_escalated`` on its timeline.
  At each visit's ``due_at`` + ``visit_overdue_minutes``, if it is still open, the responsible
  party gets one message listing *all* the provider's overdue visits not yet reported overdue
  (``overdue_alerted_at`` makes it once per visit; visits of one provider due at the same time
  make one message).
- **Marking** (:func:`mark_visits`): many visits at once, done (with when) or not done (with a
  reason); validated all-or-nothing.

Every step is a :class:`~crisis.visits.models.VisitEvent`. Nothing here commits.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from contacts.models import ContactPerson, Provider
from core.local_time import local_text
from core.signed_links import InvalidLink, make_token, new_nonce, row_for_token, sign
from crisis.visits.models import NOT_DONE_REASONS, Visit, VisitAlert, VisitEvent, VisitStatus
from notifications.bulk import Outgoing, send_many
from notifications.models import Channel, Priority
from scheduling.service import schedule

log = logging.getLogger(__name__)

ALERT_KIND = "crisis.visit.alert"
ESCALATION_KIND = "crisis.visit.escalation"
OVERDUE_KIND = "crisis.visit.overdue"
ACK_TASK = "crisis.visit_ack_check"
OVERDUE_TASK = "crisis.visit_overdue_check"
REF_TYPE = "visit_alert"
CHANNELS = (Channel.EMAIL, Channel.SMS)
LINK_PATH = "/v/"
CALLS_PATH = "/visits/calls"
DASHBOARD_PATH = "/visits"
# A visit marked done may not be said to have happened more than this before it was due.
EARLIEST_BEFORE_DUE = timedelta(hours=24)
# A little leeway for the clocks of phones: "done at" may be this much after now.
CLOCK_LEEWAY = timedelta(minutes=2)
REASON_LABELS = {
    "not_home": "Brukaren var inte hemma",
    "in_hospital": "Brukaren är på sjukhus",
    "refused": "Brukaren tackade nej till besöket",
    "moved": "Brukaren har flyttat",
    "other": "Annat",
}
CALL_OUTCOMES = ("reached", "not_reached", "wrong_number")
ERROR_CODES = (
    "visits_none",
    "visits_unknown",
    "visits_closed",
    "done_at_missing",
    "done_at_future",
    "done_at_early",
    "reason_missing",
    "comment_missing",
    "outcome_missing",
    "comment_long",
    "name_missing",
    "name_long",
    "call_outcome_missing",
    "note_long",
)


class VisitError(Exception):
    """Bad input to :func:`mark_visits` or :func:`record_call`; ``errors`` maps a field to an
    error code (the pages hold the text of each code, see :data:`ERROR_CODES`)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors))
        self.errors = errors


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _settings():
    return current_app.extensions["krisrutin.settings"]


def _base_url() -> str:
    return _settings().public_base_url.rstrip("/")


def event(
    db_session: Session,
    kind: str,
    now: datetime,
    *,
    provider_id: int | None = None,
    incident_id: int | None = None,
    visit_id: int | None = None,
    alert_id: int | None = None,
    actor: str | None = None,
    **detail,
) -> VisitEvent:
    row = VisitEvent(
        at=now,
        kind=kind,
        provider_id=provider_id,
        incident_id=incident_id,
        visit_id=visit_id,
        alert_id=alert_id,
        actor=(actor or None) and actor[:200],
        detail=detail,
    )
    db_session.add(row)
    return row


# --- signed links to the provider's visit list ----------------------------------------------------

_PURPOSE = b"krisrutin visit alert link v1"


def _mac(secret: str, row_id: int, nonce: str) -> str:
    return sign(secret, _PURPOSE, row_id, nonce)


def link_token(alert: VisitAlert, secret: str | None = None) -> str:
    secret = secret or current_app.config["SECRET_KEY"]
    return make_token(alert.id, alert.nonce, secret=secret, purpose=_PURPOSE)


def link_url(alert: VisitAlert) -> str:
    return f"{_base_url()}{LINK_PATH}{link_token(alert)}"


def alert_for_token(db_session: Session, token: str, *, secret: str) -> VisitAlert:
    """The alert a visit link belongs to; raises :class:`~core.signed_links.InvalidLink`."""
    return row_for_token(db_session, VisitAlert, token, secret=secret, purpose=_PURPOSE)


def _contacts_of(db_session: Session, provider_id: int) -> list[ContactPerson]:
    return list(
        db_session.scalars(
            select(ContactPerson)
            .join(Provider, Provider.id == ContactPerson.provider_id)
            .where(
                ContactPerson.provider_id == provider_id,
                ContactPerson.is_active.is_(True),
                Provider.is_active.is_(True),
            )
            .order_by(ContactPerson.id)
        )
    )


def open_visits(db_session: Session, provider_id: int) -> list[Visit]:
    """The provider's open visits, the earliest due first (with their clients: the pages show them)."""
    return list(
        db_session.scalars(
            select(Visit)
            .options(selectinload(Visit.client))
            .where(Visit.provider_id == provider_id, Visit.status == VisitStatus.OPEN.value)
            .order_by(Visit.due_at, Visit.id)
        )
    )


def alert_provider(db_session: Session, alert: VisitAlert, now: datetime, *, again: bool) -> int:
    """Queue the alert's SMS and e-mail to the provider's active contacts; returns how many.
    The message counts the provider's open visits and names the first due: what the link shows."""
    provider = db_session.get(Provider, alert.provider_id)
    visits = open_visits(db_session, alert.provider_id)
    contacts = _contacts_of(db_session, alert.provider_id)
    if not contacts:
        log.warning("visit alert: the provider has no active contact", extra={"provider_id": alert.provider_id})
        return 0
    common = {
        "provider": provider.name,
        "count": len(visits),
        "first_due": local_text(visits[0].due_at) if visits else "",
        "link": link_url(alert),
        "again": again,
    }
    suffix = ":again" if again else ""
    items = [
        Outgoing(
            idempotency_key=f"visit_alert:{alert.id}:contact:{contact.id}{suffix}",
            context={**common, "name": contact.name},
            contact_id=contact.id,
            to_email=contact.email,
            to_mobile=contact.mobile,
        )
        for contact in contacts
    ]
    send_many(
        db_session=db_session,
        kind=ALERT_KIND,
        items=items,
        channels=CHANNELS,
        priority=Priority.URGENT,
        now=now,
        ref=(REF_TYPE, alert.id),
    )
    return len(contacts)


def _incident_of(visits: list[Visit]) -> int | None:
    ids = {visit.incident_id for visit in visits}
    return ids.pop() if len(ids) == 1 else None


def visits_created(db_session: Session, visits: list, now: datetime) -> None:
    """New visits exist (flushed): alert each provider once with the link to its own visit
    list and start the escalation clock. Does not commit."""
    if not visits:
        return
    crisis = _policy().crisis
    ack_window = timedelta(minutes=crisis.visit_acknowledge_minutes)
    overdue_after = timedelta(minutes=crisis.visit_overdue_minutes)
    by_provider: dict[int, list[Visit]] = defaultdict(list)
    for visit in visits:
        by_provider[visit.provider_id].append(visit)
    for provider_id in sorted(by_provider):
        batch = sorted(by_provider[provider_id], key=lambda v: (v.due_at, v.id))
        ids = [visit.id for visit in batch]
        recent = db_session.scalars(
            select(VisitAlert)
            .where(
                VisitAlert.provider_id == provider_id,
                VisitAlert.acknowledged_at.is_(None),
                VisitAlert.created_at > now - ack_window,
            )
            .order_by(VisitAlert.id.desc())
            .limit(1)
        ).first()
        if recent is not None:
            recent.visit_ids = [*(recent.visit_ids or []), *ids]
            for visit in batch:
                visit.alert_id = recent.id
            event(
                db_session,
                "added_to_alert",
                now,
                provider_id=provider_id,
                incident_id=_incident_of(batch),
                alert_id=recent.id,
                visits=ids,
            )
        else:
            alert = VisitAlert(
                provider_id=provider_id,
                incident_id=_incident_of(batch),
                nonce=new_nonce(),
                visit_ids=ids,
                created_at=now,
            )
            db_session.add(alert)
            db_session.flush()
            for visit in batch:
                visit.alert_id = alert.id
            contacts = alert_provider(db_session, alert, now, again=False)
            event(
                db_session,
                "alerted",
                now,
                provider_id=provider_id,
                incident_id=alert.incident_id,
                alert_id=alert.id,
                visits=ids,
                contacts=contacts,
            )
            schedule(
                db_session=db_session,
                kind=ACK_TASK,
                key=str(alert.id),
                due_at=now + ack_window,
                payload={"alert_id": alert.id},
                now=now,
            )
        for visit in batch:
            schedule(
                db_session=db_session,
                kind=OVERDUE_TASK,
                key=str(visit.id),
                due_at=max(visit.due_at + overdue_after, now),
                payload={"visit_id": visit.id},
                now=now,
            )
    log.info("visits alerted", extra={"visits": len(visits), "providers": len(by_provider)})


# --- acknowledgement, marking -------------------------------------------------------------------------


def acknowledge(db_session: Session, provider_id: int, *, name: str, now: datetime) -> list[VisitAlert]:
    """The provider's "Vi tar dessa": its unacknowledged alerts and open visits are taken (the
    page shows all of them). Returns the alerts acknowledged now (none when already done). Does not commit."""
    alerts = list(
        db_session.scalars(
            select(VisitAlert)
            .where(VisitAlert.provider_id == provider_id, VisitAlert.acknowledged_at.is_(None))
            .order_by(VisitAlert.id)
        )
    )
    for alert in alerts:
        alert.acknowledged_at = now
        alert.acknowledged_by = name[:200]
        event(
            db_session,
            "acknowledged",
            now,
            provider_id=provider_id,
            incident_id=alert.incident_id,
            alert_id=alert.id,
            actor=name,
        )
    for visit in open_visits(db_session, provider_id):
        if visit.acknowledged_at is None:
            visit.acknowledged_at = now
    return alerts


def mark_visits(
    db_session: Session,
    provider_id: int,
    visit_ids: list[int],
    *,
    outcome: str,
    done_at: datetime | None,
    reason: str | None,
    comment: str | None,
    by: str,
    now: datetime,
) -> list[Visit]:
    """Mark the provider's open visits ``visit_ids`` done (at ``done_at``) or not done (with
    ``reason``; "other" needs ``comment``). All or nothing: raises :class:`VisitError` with every
    problem and changes nothing. Does not commit."""
    errors: dict[str, str] = {}
    comment = (comment or "").strip()
    visits: list[Visit] = []
    if not visit_ids:
        errors["visits"] = "visits_none"
    else:
        found = {
            visit.id: visit
            for visit in db_session.scalars(
                select(Visit).where(Visit.id.in_(visit_ids), Visit.provider_id == provider_id)
            )
        }
        if len(found) != len(set(visit_ids)):
            errors["visits"] = "visits_unknown"
        elif any(visit.status != VisitStatus.OPEN.value for visit in found.values()):
            errors["visits"] = "visits_closed"
        visits = sorted(found.values(), key=lambda v: (v.due_at, v.id))
    if outcome == VisitStatus.DONE.value:
        if done_at is None:
            errors["done_at"] = "done_at_missing"
        elif done_at > now + CLOCK_LEEWAY:
            errors["done_at"] = "done_at_future"
        elif visits and any(done_at < visit.due_at - EARLIEST_BEFORE_DUE for visit in visits):
            errors["done_at"] = "done_at_early"
    elif outcome == VisitStatus.NOT_DONE.value:
        if reason not in NOT_DONE_REASONS:
            errors["reason"] = "reason_missing"
        elif reason == "other" and not comment:
            errors["comment"] = "comment_missing"
    else:
        errors["outcome"] = "outcome_missing"
    if len(comment) > 500:
        errors["comment"] = "comment_long"
    if not (by or "").strip():
        errors["name"] = "name_missing"
    elif len(by) > 200:
        errors["name"] = "name_long"
    if errors:
        raise VisitError(errors)
    for visit in visits:
        visit.status = outcome
        visit.done_at = done_at if outcome == VisitStatus.DONE.value else None
        visit.not_done_reason = reason if outcome == VisitStatus.NOT_DONE.value else None
        visit.comment = comment or None
        visit.marked_at = now
        visit.marked_by = by
        if visit.acknowledged_at is None:
            visit.acknowledged_at = now
        event(
            db_session,
            "marked",
            now,
            provider_id=provider_id,
            incident_id=visit.incident_id,
            visit_id=visit.id,
            alert_id=visit.alert_id,
            actor=by,
            status=outcome,
            reason=visit.not_done_reason,
        )
    return visits


# --- escalation -------------------------------------------------------------------------------------


# --- the call list ------------------------------------------------------------------------------------


def record_call(
    db_session: Session, alert: VisitAlert, *, outcome: str, note: str, user_id: int | None, now: datetime
) -> None:
    """Record a call to a provider on the visits' call list; "reached" also acknowledges (the
    provider took the visits on the phone). Raises :class:`VisitError`. Does not commit."""
    note = (note or "").strip()
    errors = {}
    if outcome not in CALL_OUTCOMES:
        errors["outcome"] = "call_outcome_missing"
    if len(note) > 250:
        errors["note"] = "note_long"
    if errors:
        raise VisitError(errors)
    alert.called_at = now
    alert.call_outcome = outcome + (f": {note}" if note else "")
    event(
        db_session,
        "called",
        now,
        provider_id=alert.provider_id,
        incident_id=alert.incident_id,
        alert_id=alert.id,
        actor=f"user:{user_id}" if user_id else None,
        outcome=outcome,
    )
    if outcome == "reached" and alert.acknowledged_at is None:
        acknowledge(db_session, alert.provider_id, name="Per telefon", now=now)


__all__ = [
    "CALL_OUTCOMES",
    "NOT_DONE_REASONS",
    "REASON_LABELS",
    "InvalidLink",
    "VisitError",
    "acknowledge",
    "alert_for_token",
    "link_url",
    "mark_visits",
    "open_visits",
    "record_call",
    "visits_created",
]
