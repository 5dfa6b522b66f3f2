"""Camera supervision failures become physical visits (../shared/seeds/001_…, section 4).

Data kept minimal: a camera-supervised client is known only by a pseudonymous ``reference``
shared by the alarm operator and the provider, the provider, an area and the scheduled
supervision times. No names, addresses or health data: the provider knows its clients.

A supervision that cannot be done (reported by the alarm operator, or derived from an incident's
window for the affected clients) is a :class:`SupervisionFailure`; each becomes one
:class:`Visit` for the client's provider, due at the scheduled time. The provider reaches its
visit list through a signed link (:class:`VisitAlert` carries the nonce and the escalation state
of one alert of one provider).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.types import UTCDateTime


class VisitStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    NOT_DONE = "not_done"  # with a reason


# Reasons a visit was not done (the provider picks one; "other" needs a comment).
NOT_DONE_REASONS = ("not_home", "in_hospital", "refused", "moved", "other")


class SupervisedClient(db.Model):
    """A client under remote camera supervision, pseudonymous."""

    __tablename__ = "supervised_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)  # shared by operator and provider
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    area: Mapped[str] = mapped_column(String(100), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    schedules: Mapped[list[SupervisionSchedule]] = relationship(
        back_populates="client", order_by="SupervisionSchedule.id", cascade="all, delete-orphan"
    )
    exceptions: Mapped[list[ScheduleException]] = relationship(
        order_by="ScheduleException.id", cascade="all, delete-orphan"
    )


class SupervisionSchedule(db.Model):
    """A weekly pattern: at ``local_time`` ("HH:MM", Europe/Stockholm wall clock) on ``weekdays``
    (0 = Monday), from ``valid_from`` until ``valid_until`` (inclusive; open-ended when None)."""

    __tablename__ = "supervision_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("supervised_clients.id"), index=True)
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=list)
    local_time: Mapped[str] = mapped_column(String(5))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)

    client: Mapped[SupervisedClient] = relationship(back_populates="schedules")


class ScheduleException(db.Model):
    """An exception to the weekly pattern on one local date: ``skip`` a supervision (``local_time``
    None: the whole day) or ``add`` one at ``local_time``."""

    __tablename__ = "schedule_exceptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("supervised_clients.id"), index=True)
    on_date: Mapped[date] = mapped_column(Date)
    local_time: Mapped[str | None] = mapped_column(String(5))
    action: Mapped[str] = mapped_column(String(8))  # "skip" or "add"


class SupervisionFailure(db.Model):
    """A scheduled supervision that could not be done: reported by the alarm operator
    (``source`` "operator") or derived from an incident's window ("incident")."""

    __tablename__ = "supervision_failures"
    __table_args__ = (UniqueConstraint("client_id", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("supervised_clients.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(String(16))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Visit(db.Model):
    """The physical visit that replaces a failed supervision; owned by the client's provider."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_provider_status_due", "provider_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    failure_id: Mapped[int] = mapped_column(ForeignKey("supervision_failures.id"), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("supervised_clients.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=VisitStatus.OPEN.value)
    # The provider took it ("we take these"): when, and which alert's list.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("visit_alerts.id"))
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when the visit took place
    not_done_reason: Mapped[str | None] = mapped_column(String(32))  # NOT_DONE_REASONS
    comment: Mapped[str | None] = mapped_column(String(500))
    marked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    marked_by: Mapped[str | None] = mapped_column(String(200))  # a name typed, or "user:<id>"
    overdue_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    client: Mapped[SupervisedClient] = relationship()
    failure: Mapped[SupervisionFailure] = relationship()


class VisitAlert(db.Model):
    """One alert of a provider about new visits (SMS and e-mail with the signed link to its
    visit list), and its escalation: acknowledged, alerted again, on the call list."""

    __tablename__ = "visit_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    nonce: Mapped[str] = mapped_column(String(32))
    visit_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # the visits it announced
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    realerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    call_listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    call_outcome: Mapped[str | None] = mapped_column(String(300))


class VisitEvent(db.Model):
    """Every step of the visits' handling (created, alerted, acknowledged, marked, alerted again,
    call-listed, overdue, handed back to the operator), for the record and the report."""

    __tablename__ = "visit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("visits.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("visit_alerts.id"))
    actor: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
