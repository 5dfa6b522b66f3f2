"""Gallring of the monthly check's rows: the call notes of answered recipients, the proposed
values of corrections, and the routine-test record once its own period is over (the rules
core/retention.py describes)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from config.routine import RetentionPolicy
from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck
from core.retention import Clearing, months_before, register_clearing, register_deletion


def answered_recipients(policy: RetentionPolicy, now: datetime) -> Clearing:
    """Answered recipients older than ``check_months``: the call note and who called (the call
    attempts with it)."""
    cutoff = months_before(now, policy.check_months)
    return Clearing(
        CheckRecipient,
        and_(
            CheckRecipient.answered_at.is_not(None),
            CheckRecipient.answered_at < cutoff,
            or_(CheckRecipient.call_note.is_not(None), CheckRecipient.called_by_id.is_not(None)),
        ),
        {"call_note": None, "called_by_id": None, "call_attempts": None},
    )


def corrections(policy: RetentionPolicy, now: datetime) -> Clearing:
    """Corrections submitted more than ``check_months`` ago: proposed values, comment, reason."""
    return Clearing(
        CheckCorrection,
        CheckCorrection.submitted_at < months_before(now, policy.check_months),
        {"proposed": {}, "comment": "", "reject_reason": None},
        # JSON is not comparable the same way on both databases: filtered in Python
        pending=lambda row: bool(row.proposed or row.comment or row.reject_reason),
    )


def delete_check_records(db_session: Session, *, policy: RetentionPolicy, now: datetime, dry_run: bool) -> int:
    """Delete monthly checks closed more than ``check_record_years`` ago with their recipients
    and corrections."""
    cutoff = months_before(now, 12 * policy.check_record_years)
    check_ids = list(db_session.scalars(select(MonthlyCheck.id).where(MonthlyCheck.closes_at < cutoff)))
    if check_ids and not dry_run:
        recipients = select(CheckRecipient.id).where(CheckRecipient.check_id.in_(check_ids))
        db_session.execute(delete(CheckCorrection).where(CheckCorrection.recipient_id.in_(recipients)))
        db_session.execute(delete(CheckRecipient).where(CheckRecipient.check_id.in_(check_ids)))
        db_session.execute(delete(MonthlyCheck).where(MonthlyCheck.id.in_(check_ids)))
    return len(check_ids)


def init_app(app) -> None:
    register_clearing(app, "check_recipients", _l("Besvarade kontrollmottagare"), answered_recipients)
    register_clearing(app, "check_corrections", _l("Rättelser"), corrections)
    register_deletion(app, "check_records", _l("Månadskontroller (raderade)"), delete_check_records)
