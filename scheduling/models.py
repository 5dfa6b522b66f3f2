"""Durable due work (scheduled tasks) and the scheduler processes' heartbeats."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from core.types import UTCDateTime


class TaskStatus(StrEnum):
    PENDING = "pending"  # waits for due_at; also after a failed attempt that will be retried
    DONE = "done"
    FAILED = "failed"  # gave up: too many attempts, or no handler for the kind
    CANCELLED = "cancelled"


class ScheduledTask(db.Model):
    """One piece of work that falls due at ``due_at`` and must take effect exactly once.

    ``(kind, key)`` is the idempotency key: ``kind="contacts.monthly_check", key="2026-12"``.
    ``last_error`` holds an exception's class and message only, never personal data.
    """

    __tablename__ = "scheduled_tasks"
    __table_args__ = (
        UniqueConstraint("kind", "key"),
        # The tick's query: status = 'pending' AND due_at <= now ORDER BY due_at.
        Index("ix_scheduled_tasks_status_due_at", "status", "due_at"),
        CheckConstraint(
            "status IN ('pending', 'done', 'failed', 'cancelled')",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:  # the payload may hold personal data: leave it out
        return f"<ScheduledTask id={self.id} kind={self.kind} key={self.key} status={self.status}>"


class SchedulerHeartbeat(db.Model):
    """The last tick of one scheduler process (``host:pid`` by default), for operators."""

    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_tick_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ticks: Mapped[int] = mapped_column(Integer, default=0)
