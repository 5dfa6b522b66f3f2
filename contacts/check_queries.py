"""Reading a month's check: the call list, the month at a glance, the report rows.

Messages of a check carry ``ref = ("monthly_check", check.id)`` (see :mod:`contacts.checks`);
their states come from the notifications package's ``messages`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from contacts.check_models import CALL_AGAIN_OUTCOMES, CheckCorrection, CheckRecipient, MonthlyCheck
from contacts.models import ContactPerson, Provider
from notifications.models import Message, MessageStatus

REF_TYPE = "monthly_check"
_DELIVERED = (MessageStatus.DELIVERED.value,)
_SENT_OR_LATER = (MessageStatus.SENT.value, MessageStatus.DELIVERED.value, MessageStatus.UNDELIVERED.value)


def check_for_month(db_session: Session, month: str) -> MonthlyCheck | None:
    return db_session.scalars(select(MonthlyCheck).where(MonthlyCheck.month == month)).first()


# Whom the team can phone: active contacts of active providers (the call list and its count).
_REACHABLE = (ContactPerson.is_active.is_(True), Provider.is_active.is_(True))


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
                *_REACHABLE,
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
    calls_to_make: int  # no answer, and no call or one not reached, once the call day has come
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
    still_to_call = db_session.scalar(
        select(func.count())
        .select_from(CheckRecipient)
        .join(Provider, Provider.id == CheckRecipient.provider_id)
        .join(ContactPerson, ContactPerson.id == CheckRecipient.contact_id)
        .where(
            CheckRecipient.check_id == check.id,
            CheckRecipient.answer.is_(None),
            CheckRecipient.call_outcome.is_(None) | CheckRecipient.call_outcome.in_(CALL_AGAIN_OUTCOMES),
            *_REACHABLE,
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
        calls_to_make=(still_to_call or 0) if call_day_reached else 0,
        calls_made=calls_made or 0,
    )


# --- the team's pages ---------------------------------------------------------------------------

RECIPIENT_FILTERS = ("all", "outstanding", "answered", "no", "calls")


def checks_newest_first(db_session: Session) -> list[MonthlyCheck]:
    return list(db_session.scalars(select(MonthlyCheck).order_by(MonthlyCheck.month.desc())))


def recipients(db_session: Session, check: MonthlyCheck, *, show: str = "all") -> list[CheckRecipient]:
    """The check's recipients by provider and contact name. ``show``: ``outstanding`` (no answer),
    ``answered``, ``no`` (answered no), ``calls`` (the call sheet: no answer, or a call recorded,
    so that an outcome stays visible and changeable after the call answered for the contact)."""
    query = (
        select(CheckRecipient)
        .join(Provider, Provider.id == CheckRecipient.provider_id)
        .join(ContactPerson, ContactPerson.id == CheckRecipient.contact_id)
        .where(CheckRecipient.check_id == check.id)
        .order_by(Provider.name, ContactPerson.name, CheckRecipient.id)
        .options(joinedload(CheckRecipient.contact), joinedload(CheckRecipient.provider))
    )
    if show == "outstanding":
        query = query.where(CheckRecipient.answer.is_(None))
    elif show == "answered":
        query = query.where(CheckRecipient.answer.is_not(None))
    elif show == "no":
        query = query.where(CheckRecipient.answer == "no")
    elif show == "calls":
        query = query.where(CheckRecipient.answer.is_(None) | CheckRecipient.call_outcome.is_not(None))
    elif show != "all":
        raise ValueError(f"unknown filter {show!r}")
    return list(db_session.scalars(query))


def correction_counts(db_session: Session, check: MonthlyCheck) -> dict[int, dict[str, int]]:
    """Per recipient id, its corrections counted by status."""
    counts: dict[int, dict[str, int]] = {}
    rows = db_session.execute(
        select(CheckCorrection.recipient_id, CheckCorrection.status, func.count())
        .join(CheckRecipient, CheckRecipient.id == CheckCorrection.recipient_id)
        .where(CheckRecipient.check_id == check.id)
        .group_by(CheckCorrection.recipient_id, CheckCorrection.status)
    ).all()
    for recipient_id, status, count in rows:
        counts.setdefault(recipient_id, {})[status] = count
    return counts


def invitation_statuses(db_session: Session, check: MonthlyCheck) -> dict[tuple[int, str], str]:
    """``(contact_id, channel) -> status`` of the first message of the check to each contact on
    each channel: the invitation (reminders come later; message kinds are the engine's)."""
    first = (
        select(func.min(Message.id))
        .where(Message.ref_type == REF_TYPE, Message.ref_id == str(check.id), Message.contact_id.is_not(None))
        .group_by(Message.contact_id, Message.channel)
    )
    rows = db_session.execute(
        select(Message.contact_id, Message.channel, Message.status).where(Message.id.in_(first))
    ).all()
    return {(contact_id, channel): status for contact_id, channel, status in rows}


def pending_corrections(db_session: Session) -> list[CheckCorrection]:
    """The review queue: corrections waiting for the team, oldest first."""
    return list(
        db_session.scalars(
            select(CheckCorrection)
            .where(CheckCorrection.status == "pending")
            .order_by(CheckCorrection.submitted_at, CheckCorrection.id)
            .options(joinedload(CheckCorrection.recipient).joinedload(CheckRecipient.check))
        )
    )


def corrections_of(db_session: Session, recipient_ids: list[int]) -> dict[int, list[CheckCorrection]]:
    """Corrections of the given recipients, oldest first, by recipient id."""
    if not recipient_ids:
        return {}
    found: dict[int, list[CheckCorrection]] = {}
    for correction in db_session.scalars(
        select(CheckCorrection)
        .where(CheckCorrection.recipient_id.in_(recipient_ids))
        .order_by(CheckCorrection.submitted_at, CheckCorrection.id)
    ):
        found.setdefault(correction.recipient_id, []).append(correction)
    return found


def contact_recipients(db_session: Session, contact_id: int) -> list[CheckRecipient]:
    """The contact's recipient rows of every month, newest month first."""
    return list(
        db_session.scalars(
            select(CheckRecipient)
            .join(MonthlyCheck, MonthlyCheck.id == CheckRecipient.check_id)
            .where(CheckRecipient.contact_id == contact_id)
            .order_by(MonthlyCheck.month.desc())
            .options(joinedload(CheckRecipient.check))
        )
    )


def user_names(db_session: Session, user_ids) -> dict[int, str]:
    from accounts.models import User

    ids = sorted({user_id for user_id in user_ids if user_id is not None})
    if not ids:
        return {}
    return dict(db_session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).tuples().all())


# --- the report ---------------------------------------------------------------------------------

# The report is the municipality's record that the routine was tested: Swedish column names and
# values whatever the language of the page it was downloaded from.
REPORT_COLUMNS = (
    "Utförare",
    "Organisationsnummer",
    "Kontaktperson",
    "Roll",
    "Mobil",
    "E-post",
    "Tillagd",
    "Inbjudan e-post",
    "Inbjudan sms",
    "Svar",
    "Svar via",
    "Svarade",
    "Påminnelser",
    "Samtal",
    "Ringd",
    "Ringd av",
    "Rättelser godkända",
    "Rättelser avvisade",
    "Rättelser väntar",
)
ANSWER_TEXT = {"yes": "ja", "no": "nej"}
VIA_TEXT = {"link": "länk", "sms": "sms", "call": "samtal"}
CALL_TEXT = {
    "confirmed": "nådd, bekräftade",
    "corrections": "nådd, rättade uppgifter",
    "not_reached": "inte nådd",
    "wrong_number": "fel nummer",
}
STATUS_TEXT = {
    MessageStatus.QUEUED.value: "i kö",
    MessageStatus.SENDING.value: "skickas",
    MessageStatus.SENT.value: "skickat",
    MessageStatus.DELIVERED.value: "levererat",
    MessageStatus.UNDELIVERED.value: "kom inte fram",
    MessageStatus.FAILED.value: "misslyckades",
    MessageStatus.CANCELLED.value: "avbrutet",
}


def _local(moment, tz) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment is not None else ""


def report_rows(db_session: Session, check: MonthlyCheck, *, tz) -> list[list[str]]:
    """One row per recipient (columns :data:`REPORT_COLUMNS`), times local to ``tz``; the
    register's current details of each contact (the report is read after the corrections)."""
    rows = recipients(db_session, check)
    invitations = invitation_statuses(db_session, check)
    corrections = correction_counts(db_session, check)
    callers = user_names(db_session, [r.called_by_id for r in rows])
    result = []
    for r in rows:
        counts = corrections.get(r.id, {})
        result.append(
            [
                r.provider.name,
                r.provider.organisation_number or "",
                r.contact.name,
                r.contact.role_title or "",
                r.contact.mobile or "",
                r.contact.email or "",
                _local(r.added_at, tz),
                STATUS_TEXT.get(invitations.get((r.contact_id, "email")), ""),
                STATUS_TEXT.get(invitations.get((r.contact_id, "sms")), ""),
                ANSWER_TEXT.get(r.answer, ""),
                VIA_TEXT.get(r.answered_via, ""),
                _local(r.answered_at, tz),
                str(r.reminders_sent),
                CALL_TEXT.get(r.call_outcome, ""),
                _local(r.called_at, tz),
                callers.get(r.called_by_id, ""),
                str(counts.get("accepted", 0)),
                str(counts.get("rejected", 0)),
                str(counts.get("pending", 0)),
            ]
        )
    return result
