"""Alerting staff: one person (or the team's mailbox and duty phone) told about an incident by SMS
and e-mail, once per (incident, reason, step), and the escalation chain's steps.

An :class:`~crisis.oncall.models.Alert` is one step of a chain: step 0 the handling party, step 1
the backup (the next member on the roster), step 2 the manager (``manager_username`` in the
routine). What the alert is about, and what its message says, is the caller's: the message
``kind`` is rendered with the ``context`` given. The unique constraints on ``alerts`` and the
message idempotency key ``crisis-alert:<incident>:<reason>:<step>`` keep a retried task or two
concurrent requests from alerting twice. An alert about something else than an incident (the
visits' call list and overdue visits) names a *subject* instead (``("visit_alert", id)``) and may
keep its own idempotency key and message reference.

Every staff alert can be acknowledged by replying to its SMS (:mod:`crisis.oncall.sms_replies`):
the message's context carries ``ack_code`` (the alert's id) and ``ack_several`` (the person has
other alerts open), and every staff SMS template ends with the instruction
(``_acknowledge.sms.txt``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts.models import User
from crisis.oncall import paging, roster
from crisis.oncall.models import Alert
from crisis.oncall.responsible import team_addresses
from notifications.models import Channel, Priority
from notifications.service import send

log = logging.getLogger(__name__)

LAST_STEP = 2  # 0 the handling party, 1 the backup, 2 the manager
HANDOVER_REASON_PREFIX = "handover:"
# An alert older than this is no longer open to an SMS reply (it is on the pages still): reminders
# nobody answers would otherwise pile up and "1" would reach back days.
OPEN_FOR = timedelta(hours=24)


def alert(
    db_session: Session,
    *,
    incident_id: int | None = None,
    subject: tuple[str, int] | None = None,
    reason: str,
    step: int,
    party: str,
    user: User | None,
    kind: str,
    context: dict,
    now: datetime,
    channels: tuple[Channel, ...] = (Channel.SMS, Channel.EMAIL),
    page: bool = False,
    idempotency_key: str | None = None,
    ref: tuple[str, object] | None = None,
) -> Alert | None:
    """Alert ``user`` (or the team's mailbox and phone, ``user`` None): an :class:`Alert` row and
    its message of ``kind`` on ``channels`` (SMS and e-mail unless told otherwise; SMS as well
    when the person has no e-mail address, so nobody is alerted on nothing; urgent,
    ``ref=("alert", id)`` unless ``ref`` says otherwise). The alert is about ``incident_id`` or,
    without an incident, about ``subject`` (``(type, id)``). None when this (incident or subject,
    reason, step) was alerted already. The message's context gets ``ack_code`` (the alert's id,
    named in an SMS reply "1 <code>") and ``ack_several`` (whether the same person has other
    alerts open, so the SMS names the code). Does not commit.

    ``page``: the alert demands acknowledgement, and the person is paged by their rules
    (:mod:`crisis.oncall.paging`): minute 0's channels replace ``channels``, the later steps
    (reminders, calls) are scheduled until the alert is acknowledged."""
    if (incident_id is None) == (subject is None):
        raise ValueError("an alert is about an incident or a subject, not both nor neither")
    subject_type, subject_id = subject if subject is not None else (None, None)
    if incident_id is not None:
        same = (Alert.incident_id == incident_id, Alert.reason == reason, Alert.step == step)
    else:
        same = (Alert.subject_type == subject_type, Alert.subject_id == subject_id)
        same += (Alert.reason == reason, Alert.step == step)
    if db_session.scalars(select(Alert).where(*same)).first() is not None:
        return None
    row = Alert(
        incident_id=incident_id,
        subject_type=subject_type,
        subject_id=subject_id,
        reason=reason,
        step=step,
        party=party,
        user_id=user.id if user else None,
        sent_at=now,
    )
    try:
        with db_session.begin_nested():
            db_session.add(row)
            db_session.flush()
    except IntegrityError:  # alerted concurrently by another transaction
        return None
    to_email, to_mobile = (user.email, user.mobile) if user is not None else team_addresses()
    steps, calls_now = [], False
    if page:
        steps, channels, calls_now = paging.first_channels(db_session, user, to_email, to_mobile)
    if Channel.EMAIL in channels and Channel.SMS not in channels and not to_email:
        channels = (Channel.SMS, *channels)
    others = [other for other in open_alerts(db_session, user_id=row.user_id, now=now) if other.id != row.id]
    if idempotency_key is None:
        about = incident_id if incident_id is not None else f"{subject_type}:{subject_id}"
        idempotency_key = f"crisis-alert:{about}:{reason}:{step}"
    context = {**context, "ack_code": row.id, "ack_several": bool(others)}
    if channels:
        send(
            db_session=db_session,
            kind=kind,
            context=context,
            channels=channels,
            priority=Priority.URGENT,
            idempotency_key=idempotency_key,
            now=now,
            to_email=to_email,
            to_mobile=to_mobile,
            ref=ref or ("alert", row.id),
        )
    if page:
        paging.start(db_session, row, steps, calls_now=calls_now, kind=kind, context=context, now=now)
    if not to_email and not to_mobile:
        log.warning(
            "alert without any address", extra={"alert_id": row.id, "incident_id": incident_id, "reason": reason}
        )
    return row


def open_alerts(db_session: Session, *, user_id: int | None, now: datetime) -> list[Alert]:
    """The alerts addressed to ``user_id`` (None: the team's mailbox and duty phone) that nobody
    has acknowledged and that were sent within :data:`OPEN_FOR`, newest first: what an SMS reply
    "1" may acknowledge."""
    addressed = Alert.user_id.is_(None) if user_id is None else Alert.user_id == user_id
    return list(
        db_session.scalars(
            select(Alert)
            .where(addressed, Alert.acknowledged_at.is_(None), Alert.sent_at > now - OPEN_FOR)
            .order_by(Alert.sent_at.desc(), Alert.id.desc())
        )
    )


def escalation_person(db_session: Session, step: int, now: datetime) -> User | None:
    """Who step ``step`` of the chain alerts: 1 the backup on the roster, 2 the manager."""
    if step == 1:
        return roster.backup_at(db_session, now)
    if step == 2:
        return roster.manager(db_session, current_app.extensions["krisrutin.routine"])
    return None


def alerted_users(db_session: Session, incident_id: int, reason: str) -> set[int | None]:
    """The users already alerted for (incident, reason): a chain never alerts a person twice."""
    return set(
        db_session.scalars(select(Alert.user_id).where(Alert.incident_id == incident_id, Alert.reason == reason))
    )


def acknowledge_alerts(
    db_session: Session, *, user_id: int | None, now: datetime, incident_id=None, reason=None
) -> None:
    """Mark open alerts acknowledged: an incident's (all but its handover alerts), or those of one
    ``reason`` (a handover's); their pending paging steps stop. Does not commit."""
    conditions = [Alert.acknowledged_at.is_(None)]
    if incident_id is not None:
        conditions += [Alert.incident_id == incident_id, ~Alert.reason.like(f"{HANDOVER_REASON_PREFIX}%")]
    if reason is not None:
        conditions.append(Alert.reason == reason)
    alert_ids = list(db_session.scalars(select(Alert.id).where(*conditions)))
    if not alert_ids:
        return
    db_session.execute(
        update(Alert)
        .where(Alert.id.in_(alert_ids), Alert.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=user_id)
        .execution_options(synchronize_session=False)
    )
    paging.stop(db_session, alert_ids, now)


def incident_alerts(db_session: Session, incident_id: int) -> list[Alert]:
    return list(db_session.scalars(select(Alert).where(Alert.incident_id == incident_id).order_by(Alert.id)))
