"""Disruptions: suppliers, notices, incidents and their timeline, letters and the providers'
acknowledgements (../shared/seeds/001_…, sections 4-7). Who handles an incident and how they
are alerted is :mod:`crisis.oncall.models`.

One supplier notice opens one incident (an incident may later collect further notices about the
same disruption). The incident is handled by one *party* at a time — the team in office hours,
the on-call officer (TIB) outside them — and every step is written to ``incident_events``, the
timeline the follow-up with the supplier is built from. Times are UTC; decisions are made in
the routine's local time.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.types import UTCDateTime


class IncidentStatus(StrEnum):
    NEW = "new"  # received and routed, not yet acknowledged by the handling party
    OPEN = "open"  # acknowledged; being handled (assessed relevant or not yet assessed)
    NOT_RELEVANT = "not_relevant"  # closed by the team's assessment, nothing sent
    RESOLVED = "resolved"  # closed by a resolution letter


OPEN_STATUSES = (IncidentStatus.NEW.value, IncidentStatus.OPEN.value)


class NoticeSource(StrEnum):
    FORM = "form"  # typed in by the team or the on-call officer
    API = "api"  # POST /api/v1/notices (supplier or alarm centre token)
    EMAIL = "email"  # a forwarded e-mail (RFC 822), kept as received


class LetterKind(StrEnum):
    FIRST = "first"  # the information letter
    UPDATE = "update"
    RESOLUTION = "resolution"  # closes the incident
    PLANNED_REMINDER = "planned_reminder"  # the working day before planned work starts


class Supplier(db.Model):
    """Telia, Careium, ...: who sends notices. A supplier with an API user may post notices and
    is asked for a new estimate when its expected end passes; ``email`` is asked otherwise."""

    __tablename__ = "suppliers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    # The account whose API token posts this supplier's notices (role "supplier").
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The addresses its notices come from, one a line: an exact address (drift@telia.se) or a
    # whole domain (@careium.se); see crisis.incidents.email_ingest.supplier_for.
    sender_addresses: Mapped[str | None] = mapped_column(Text)

    @property
    def sender_address_list(self) -> list[str]:
        return [line.strip() for line in (self.sender_addresses or "").splitlines() if line.strip()]


class InboundEmailStatus(StrEnum):
    NOTICE = "notice"  # made a notice (at once from a known supplier, or from the triage list)
    TRIAGE = "triage"  # waits in "Inkommande e-post att bedöma"
    DISMISSED = "dismissed"  # judged in triage as no notice, with a reason
    DUPLICATE = "duplicate"  # its Message-ID was received before: nothing more to do


class InboundEmailReason(StrEnum):
    """Why a message waits in the triage list."""

    UNKNOWN_SENDER = "unknown_sender"
    TOO_BIG = "too_big"
    UNPARSABLE = "unparsable"
    REFUSED = "refused"  # the e-mail intake refused it; ``reason_text`` says why


class InboundEmail(db.Model):
    """A message read from the supplier mailbox (IMAP), kept whatever became of it.

    ``mailbox_key`` (folder, UIDVALIDITY and UID) is unique: the row is the proof that a message
    was handled, so a second process or a run after a crash does nothing twice
    (crisis.incidents.mailbox)."""

    __tablename__ = "inbound_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_key: Mapped[str] = mapped_column(String(400), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(300), index=True)
    sender: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    server_date: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the server's INTERNALDATE
    size: Mapped[int] = mapped_column(Integer)
    # The message byte for byte; only the headers when it was too big (``raw_is_headers``).
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    raw_is_headers: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(String(32))
    reason_text: Mapped[str | None] = mapped_column(String(500))
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dismiss_reason: Mapped[str | None] = mapped_column(String(500))
    # Moved to the done folder (or flagged) on the server; a row without it is moved at the next run.
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Incident(db.Model):
    """One disruption, from the first notice to its resolution (or the assessment "not relevant")."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    service: Mapped[str] = mapped_column(String(32))  # contacts.models.SERVICES
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"), index=True)
    planned: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expected_end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # All providers using the service (recomputed when a letter goes out), or the chosen ones in
    # incident_providers.
    all_providers: Mapped[bool] = mapped_column(Boolean, default=True)
    # The area affected (the camera-supervised clients' area); None: every area.
    area: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=IncidentStatus.NEW.value, index=True)
    # The party handling it now, and since when; the on-call officer alerted (a user) if any.
    party: Mapped[str] = mapped_column(String(16))
    party_since: Mapped[datetime] = mapped_column(UTCDateTime())
    handler_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The team's assessment (office hours): relevant or not, local routines to apply, reason.
    assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assessed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    relevant: Mapped[bool | None] = mapped_column(Boolean)
    apply_local_routines: Mapped[bool | None] = mapped_column(Boolean)
    assessment_reason: Mapped[str | None] = mapped_column(Text)
    # Planned work announced too late or outside the preferred window: accepted, flagged to the team.
    flag_reason: Mapped[str | None] = mapped_column(String(300))
    last_letter_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    supplier: Mapped[Supplier | None] = relationship()
    notices: Mapped[list[Notice]] = relationship(back_populates="incident", order_by="Notice.id")
    events: Mapped[list[IncidentEvent]] = relationship(order_by="IncidentEvent.id")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class Notice(db.Model):
    """A supplier notice as received, kept unchanged (``original``: the raw e-mail or JSON)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # NoticeSource
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id"))
    # The e-mail's Message-ID (forwarded notices are de-duplicated by it) or the API's
    # Idempotency-Key; unique when present.
    external_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    original: Mapped[str | None] = mapped_column(Text)
    original_type: Mapped[str | None] = mapped_column(String(64))  # message/rfc822, application/json
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    incident: Mapped[Incident] = relationship(back_populates="notices")


class IncidentProvider(db.Model):
    """A provider chosen as affected (when the incident is not for all providers of the service)."""

    __tablename__ = "incident_providers"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), primary_key=True)


class IncidentEvent(db.Model):
    """The incident's timeline: one row per step, never changed (see crisis.timeline)."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident_at", "incident_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))  # crisis.timeline.EVENT_KINDS
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    party: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class Letter(db.Model):
    """An information letter, update or resolution letter, as sent (subject and text frozen)."""

    __tablename__ = "letters"
    __table_args__ = (UniqueConstraint("incident_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the incident
    kind: Mapped[str] = mapped_column(String(20))  # LetterKind
    party: Mapped[str] = mapped_column(String(16))  # who wrote it (decides the contact details shown)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    apply_local_routines: Mapped[bool] = mapped_column(Boolean, default=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # contacts the letter was queued for

    receipts: Mapped[list[LetterReceipt]] = relationship(back_populates="letter", order_by="LetterReceipt.provider_id")


class LetterReceipt(db.Model):
    """One affected provider's copy of a letter: its page (a signed link), its acknowledgement
    (with the answer to "have you started your local routines?"), re-sending and the call-list step."""

    __tablename__ = "letter_receipts"
    __table_args__ = (UniqueConstraint("letter_id", "provider_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    nonce: Mapped[str] = mapped_column(String(32))  # part of the signed link; new nonce voids it
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))  # a name typed on the page
    # "Har ni startat era lokala rutiner?": yes, not_yet, not_needed (crisis.incidents.receipt_answers)
    local_routines: Mapped[str | None] = mapped_column(String(16))
    resent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    call_listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    call_outcome: Mapped[str | None] = mapped_column(String(300))

    letter: Mapped[Letter] = relationship(back_populates="receipts")
