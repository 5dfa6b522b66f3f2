"""Reading a month's check: the call list, the month at a glance, the report rows.

Messages of a check carry ``ref = ("monthly_check", check.id)`` (see :mod:`contacts.checks`);
their states come from the notifications package's ``messages`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck
from contacts.models import ContactPerson, Provider
from notifications.models import Message, MessageStatus

REF_TYPE = "monthly_check"
_DELIVERED = (MessageStatus.DELIVERED.value,)
_SENT_OR_LATER = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value, MessageStatus.UNDELIVERED.value)


def check_for_month(db_session: Session, month: str) -> MonthlyCheck | None:
    return db_session.scalars(select(MonthlyCheck).where(MonthlyCheck.month == month)).first()


def call_list(db_session: Session, check: MonthlyCheck) -> list[CheckRecipient]:
    """Contacts of the check who have not answered, by provider name and contact name: whom
    the team phones on the call day (whether or not a call outcome is recorded yet). Contacts
    (or providers) deactivated during the month are left off: there is nobody to phone."""
    return list(
        db_session.scalars(
            select(CheckRecipient)
            .join(Provider, Provider.id == CheckRecipient.provider_id)
            .join(ContactPerson, ContactPerson.id == CheckRecipient.contact_id)
            .where(
                CheckRecipient.check_id == check.id,
                CheckRecipient.answer.is_(None),
                ContactPerson.is_active.is_(True),
                Provider.is_active.is_(True),
            )
            .order_by(Provider.name, ContactPerson.name, CheckRecipient.id)
            .options(joinedload(CheckRecipient.contact), joinedload(CheckRecipient.provider))
        )
    )


@dataclass(frozen=True)
class MonthSummary:
    month: str
    recipients: int
    messages_sent: int  # accepted by a gateway (or later states)
    messages_delivered: int  # confirmed delivered (SMS delivery callbacks)
    messages_failed: int
    answered_yes: int
    answered_no: int
    outstanding: int  # no answer yet
    corrections_waiting: int
    calls_to_make: int  # no answer and no call outcome, once the call day has come
    calls_made: int


def month_summary(db_session: Session, check: MonthlyCheck, *, today: date) -> MonthSummary:
    """The month at a glance; ``today`` is the local date (Europe/Stockholm), which decides
    whether the call day has come."""
    answers = dict(
        db_session.execute(
            select(CheckRecipient.answer, func.count())
            .where(CheckRecipient.check_id == check.id)
            .group_by(CheckRecipient.answer)
        ).all()
    )
    statuses = dict(
        db_session.execute(
            select(Message.status, func.count())
            .where(Message.ref_type == REF_TYPE, Message.ref_id == str(check.id))
            .group_by(Message.status)
        ).all()
    )
    silent_uncalled = db_session.scalar(
        select(func.count())
        .select_from(CheckRecipient)
        .where(
            CheckRecipient.check_id == check.id,
            CheckRecipient.answer.is_(None),
            CheckRecipient.call_outcome.is_(None),
        )
    )
    calls_made = db_session.scalar(
        select(func.count())
        .select_from(CheckRecipient)
        .where(CheckRecipient.check_id == check.id, CheckRecipient.call_outcome.is_not(None))
    )
    waiting = db_session.scalar(
        select(func.count())
        .select_from(CheckCorrection)
        .join(CheckRecipient, CheckRecipient.id == CheckCorrection.recipient_id)
        .where(CheckRecipient.check_id == check.id, CheckCorrection.status == "pending")
    )
    call_day_reached = today >= check.call_on
    return MonthSummary(
        month=check.month,
        recipients=sum(answers.values()),
        messages_sent=sum(statuses.get(status, 0) for status in _SENT_OR_LATER),
        messages_delivered=sum(statuses.get(status, 0) for status in _DELIVERED),
        messages_failed=statuses.get(MessageStatus.FAILED.value, 0),
        answered_yes=answers.get("yes", 0),
        answered_no=answers.get("no", 0),
        outstanding=answers.get(None, 0),
        corrections_waiting=waiting or 0,
        calls_to_make=(silent_uncalled or 0) if call_day_reached else 0,
        calls_made=calls_made or 0,
    )
