"""Who is responsible and how they were reached: the parties, the on-call roster, the alerts of
staff and the handovers between the parties at the edges of office hours.

An alert and a handover belong to an incident (``incidents.id``, a foreign key by table name: the
on-call layer stands below the incidents and does not import them). Times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.types import UTCDateTime


class Party(StrEnum):
    """Who handles an incident: the welfare technology team or the on-call officer (TIB)."""

    TEAM = "team"
    ON_CALL = "on_call"


class Alert(db.Model):
    """One alert of a person about an incident or a handover (SMS and e-mail with a link), one
    step of the escalation chain: 0 the handling party, 1 the backup, 2 the manager, ...

    An alert about something else than an incident (a provider's visits on the call list, overdue
    visits) has no ``incident_id`` but a subject: ``subject_type`` and ``subject_id`` (e.g.
    ``("visit_alert", 7)``, ``("provider", 3)``), a reference by name to the domain that owns it.
    Each kind is alerted once per step: (incident, reason, step) or (subject, reason, step) is
    unique (NULLs never collide, so each constraint only binds its own kind)."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("incident_id", "reason", "step"),
        UniqueConstraint("subject_type", "subject_id", "reason", "step"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(20))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    # "routed", "handover:<id>", "update_due:<n>", "expected_end:<n>", "call_list:<letter id>",
    # "visit_call_list", "visit_overdue:<first visit id>", ...
    reason: Mapped[str] = mapped_column(String(60))
    step: Mapped[int] = mapped_column(Integer, default=0)
    party: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the team's mailbox
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Handover(db.Model):
    """An open incident passing between the parties at a boundary of office hours."""

    __tablename__ = "handovers"
    __table_args__ = (UniqueConstraint("incident_id", "boundary_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    boundary_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the start/end of office hours
    from_party: Mapped[str] = mapped_column(String(16))
    to_party: Mapped[str] = mapped_column(String(16))
    from_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # the history handed over
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    realerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RosterMember(db.Model):
    """The weekly on-call rotation, in order: week n (counted from the policy's rotation anchor)
    belongs to the member at position n mod the number of active members."""

    __tablename__ = "roster_members"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class RosterOverride(db.Model):
    """A swap or an exception: ``user_id`` is on call from ``starts_at`` to ``ends_at`` instead of
    whoever the rotation names. The newest override covering an instant wins."""

    __tablename__ = "roster_overrides"
    __table_args__ = (Index("ix_roster_overrides_span", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PagingStep(db.Model):
    """One step of a staff member's own paging rules ("Mina larmregler"): ``minute`` after an
    alert that demands acknowledgement, the channels used then if it is still unacknowledged.
    A user without rows is paged by the routine's default rules (``[paging]``)."""

    __tablename__ = "paging_steps"
    __table_args__ = (UniqueConstraint("user_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 0, 1, ... in minute order
    minute: Mapped[int] = mapped_column(Integer)
    sms: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[bool] = mapped_column(Boolean, default=False)
    call: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(name for name in ("sms", "email", "call") if getattr(self, name))
