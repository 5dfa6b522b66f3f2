"""The outbox: every e-mail, SMS and phone call the service sends, with its delivery history.

A :class:`Message` row is written in the same transaction as the business change that causes
it; dispatchers then claim and send it. Bodies are personal data and fall under retention
(gallring); logs name messages only by id and kind.
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.types import UTCDateTime


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    CALL = "call"


class Priority(IntEnum):
    """Lower goes first. Urgent: outage letters and escalations; bulk: the monthly check."""

    URGENT = 0
    NORMAL = 5
    BULK = 9


class MessageStatus(StrEnum):
    QUEUED = "queued"  # waiting for a dispatcher (also between retries)
    SENDING = "sending"  # claimed by a dispatcher, under a lease
    SENT = "sent"  # the gateway accepted it (gateway_id set)
    DELIVERED = "delivered"  # the gateway reported delivery (SMS status callback; a call answered)
    UNDELIVERED = "undelivered"  # the gateway reported it could not deliver (a call: busy, no answer)
    FAILED = "failed"  # permanent error, or too many attempts
    CANCELLED = "cancelled"


OPEN_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING)


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        # The dispatcher's claim: status = 'queued' AND channel = ? AND next_attempt_at <= now
        # ORDER BY priority, next_attempt_at, id: the whole order is in the index, so a claim reads
        # one index entry instead of sorting the queue. On PostgreSQL only open messages are in it
        # (migration 5d1c0a9e7b42: the `sent` update no longer adds an entry for every message).
        Index(
            "ix_messages_claim",
            "status",
            "channel",
            "priority",
            "next_attempt_at",
            "id",
            postgresql_where=text("status IN ('queued', 'sending')"),
        ),
        Index("ix_messages_reference", "ref_type", "ref_id"),
        CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled')",
            name="status",
        ),
        CheckConstraint("channel IN ('email', 'sms', 'call')", name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the caller asked for, e.g. "check:2026-12:contact:7:reminder:1:sms": asking twice for
    # the same message finds this row instead of creating another.
    idempotency_key: Mapped[str] = mapped_column(String(250), unique=True)
    kind: Mapped[str] = mapped_column(String(100))  # the template, e.g. "contacts.check_link"
    channel: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(SmallInteger)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact_persons.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(254))  # e-mail address or E.164 number (SMS, call)
    language: Mapped[str] = mapped_column(String(5), default="sv")
    subject: Mapped[str | None] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)  # a call: the text spoken
    body_html: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None] = mapped_column(SmallInteger)  # SMS segments
    # What the message belongs to, so the team can see who received what per letter or check.
    ref_type: Mapped[str | None] = mapped_column(String(50))
    ref_id: Mapped[str | None] = mapped_column(String(100))

    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leased_by: Mapped[str | None] = mapped_column(String(100))
    gateway: Mapped[str | None] = mapped_column(String(16))  # smtp, twilio, console
    gateway_id: Mapped[str | None] = mapped_column(String(200), index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))  # no personal data

    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    events: Mapped[list[MessageEvent]] = relationship(
        back_populates="message", order_by="MessageEvent.id", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Message id={self.id} kind={self.kind} channel={self.channel} status={self.status}>"


class MessageEvent(db.Model):
    """One step in a message's life: queued, claimed, sent, retry, delivered, failed, ..."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))  # no personal data

    message: Mapped[Message] = relationship(back_populates="events")


class ChannelState(db.Model):
    """How a channel is doing, shared by all dispatchers: the team is warned when one keeps failing."""

    __tablename__ = "channel_states"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(16))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    degraded_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class InboundSms(db.Model):
    """A reply received by SMS (e.g. "JA" to the monthly check), kept until its domain handled it."""

    __tablename__ = "inbound_sms"

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(200), unique=True)  # Twilio MessageSid
    from_address: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact_persons.id"), index=True)
    handled_by: Mapped[str | None] = mapped_column(String(100))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
