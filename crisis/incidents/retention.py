"""Gallring of closed incidents: the names and call outcomes on their letters' receipts and the
originals of their notices; and of the supplier mailbox's messages once judged (the rules
core/retention.py describes)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select

from config.routine import RetentionPolicy
from core.retention import Clearing, months_before, register_clearing
from crisis.incidents.models import (
    InboundEmail,
    InboundEmailStatus,
    Incident,
    IncidentStatus,
    Letter,
    LetterReceipt,
    Notice,
)


def _closed_incidents(policy: RetentionPolicy, now: datetime):
    """The ids of incidents closed more than ``incident_months`` before ``now``."""
    return select(Incident.id).where(
        Incident.status.in_((IncidentStatus.RESOLVED.value, IncidentStatus.NOT_RELEVANT.value)),
        func.coalesce(Incident.resolved_at, Incident.updated_at, Incident.created_at)
        < months_before(now, policy.incident_months),
    )


def letter_receipts(policy: RetentionPolicy, now: datetime) -> Clearing:
    """Receipts of those incidents' letters: the name typed when acknowledging, the call outcome."""
    old_letters = select(Letter.id).where(Letter.incident_id.in_(_closed_incidents(policy, now)))
    return Clearing(
        LetterReceipt,
        and_(
            LetterReceipt.letter_id.in_(old_letters),
            or_(LetterReceipt.acknowledged_by.is_not(None), LetterReceipt.call_outcome.is_not(None)),
        ),
        {"acknowledged_by": None, "call_outcome": None},
    )


def notice_originals(policy: RetentionPolicy, now: datetime) -> Clearing:
    """The originals (raw e-mail/JSON) of those incidents' notices."""
    return Clearing(
        Notice,
        and_(Notice.incident_id.in_(_closed_incidents(policy, now)), Notice.original.is_not(None)),
        {"original": None, "original_type": None},
    )


def inbound_emails(policy: RetentionPolicy, now: datetime) -> Clearing:
    """Messages read from the supplier mailbox and judged (a notice, a duplicate, dismissed) more
    than ``incident_months`` ago: their bytes, sender and subject (a notice keeps its own original
    until its incident is cleared). Messages still waiting in the triage list are kept."""
    return Clearing(
        InboundEmail,
        and_(
            InboundEmail.status != InboundEmailStatus.TRIAGE.value,
            InboundEmail.received_at < months_before(now, policy.incident_months),
            or_(InboundEmail.raw.is_not(None), InboundEmail.sender.is_not(None), InboundEmail.subject.is_not(None)),
        ),
        {"raw": None, "sender": None, "subject": None},
    )


def init_app(app) -> None:
    register_clearing(app, "letter_receipts", _l("Kvittenser på utskick"), letter_receipts)
    register_clearing(app, "notices", _l("Originalmeddelanden"), notice_originals)
    register_clearing(app, "inbound_emails", _l("Inkommande e-post"), inbound_emails)
