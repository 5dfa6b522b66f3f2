"""The monthly contact check (test av rutin): one check per month, one recipient row per contact.

A :class:`MonthlyCheck` opens at the send instant of its month's plan and closes when the next
month's check opens (``closes_at``): until then every link of the month works and late answers
count. Each active contact of an active provider gets a :class:`CheckRecipient` (at the start,
or when added or reactivated during the month) with the personal link's nonce, the answer, the
reminders sent and the outcome of the team's call. "No" answers and proposed new contact
persons become :class:`CheckCorrection` rows in the team's review queue.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contacts.models import ContactPerson, Provider
from core.extensions import db
from core.types import UTCDateTime

ANSWERS = ("yes", "no")
ANSWER_VIA = ("link", "sms", "call")
ADDED_REASONS = ("start", "created", "reactivated")
CALL_OUTCOMES = ("confirmed", "corrections", "not_reached", "wrong_number")
# A contact whose last call ended so is still to be called again ("Inte nådd" is not done).
CALL_AGAIN_OUTCOMES = ("not_reached",)
CORRECTION_KINDS = ("correction", "new_contact")
CORRECTION_STATUSES = ("pending", "accepted", "rejected", "superseded")


class MonthlyCheck(db.Model):
    __tablename__ = "monthly_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), unique=True)  # "2027-01"
    send_on: Mapped[date] = mapped_column(Date)
    first_reminder_on: Mapped[date] = mapped_column(Date)
    second_reminder_on: Mapped[date] = mapped_column(Date)
    call_on: Mapped[date] = mapped_column(Date)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the send instant
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the next month's send instant
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    recipients: Mapped[list[CheckRecipient]] = relationship(back_populates="check", order_by="CheckRecipient.id")

    def is_open(self, now: datetime) -> bool:
        return self.opened_at <= now < self.closes_at


class CheckRecipient(db.Model):
    __tablename__ = "check_recipients"
    __table_args__ = (
        UniqueConstraint("check_id", "contact_id"),
        Index("ix_check_recipients_check_answer", "check_id", "answer"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("monthly_checks.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact_persons.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    added_reason: Mapped[str] = mapped_column(String(16))  # ADDED_REASONS
    nonce: Mapped[str] = mapped_column(String(16))  # part of the signed link; a new nonce voids old links
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # opening is not answering
    answer: Mapped[str | None] = mapped_column(String(8))  # ANSWERS
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_via: Mapped[str | None] = mapped_column(String(8))  # ANSWER_VIA
    reminders_sent: Mapped[int] = mapped_column(default=0)
    call_outcome: Mapped[str | None] = mapped_column(String(16))  # CALL_OUTCOMES
    call_note: Mapped[str | None] = mapped_column(Text)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    called_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Every call recorded, oldest first: {"at": ISO instant, "by": user id, "outcome": CALL_OUTCOMES}
    # (the note stays the latest call's only). None before the first call.
    call_attempts: Mapped[list | None] = mapped_column(JSON)

    check: Mapped[MonthlyCheck] = relationship(back_populates="recipients")
    contact: Mapped[ContactPerson] = relationship()
    provider: Mapped[Provider] = relationship()


class CheckCorrection(db.Model):
    """What a contact says is wrong (or a new contact person to add), waiting for the team."""

    __tablename__ = "check_corrections"
    __table_args__ = (Index("ix_check_corrections_status", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("check_recipients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # CORRECTION_KINDS
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact_persons.id"))  # None for a new contact
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    proposed: Mapped[dict] = mapped_column(JSON)  # register field -> proposed value (as typed, cleaned)
    comment: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # CORRECTION_STATUSES
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_via: Mapped[str] = mapped_column(String(8))  # ANSWER_VIA
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    created_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact_persons.id"))

    recipient: Mapped[CheckRecipient] = relationship()
