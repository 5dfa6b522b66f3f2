"""The one clock of the service.

Domain code never reads the wall clock: business rules take ``now`` as an argument, and only
views, jobs and CLI commands ask the application's clock (``current_clock().now()``). Tests and
``flask tick --at`` install a :class:`FixedClock` instead of the :class:`SystemClock`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

from flask import current_app


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that stands still until told to move; for tests and for replaying a moment."""

    def __init__(self, at: datetime):
        self._now = _require_aware(at)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        self._now = _require_aware(at)

    def advance(self, delta: timedelta | None = None, **kwargs) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new instant."""
        self._now = self._now + (delta if delta is not None else timedelta(**kwargs))
        return self._now


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the clock needs a timezone-aware instant")
    return at.astimezone(timezone.utc)


def current_clock() -> Clock:
    """The clock installed on the current application."""
    return current_app.extensions["krisrutin.clock"]


def install_clock(app, clock: Clock) -> None:
    app.extensions["krisrutin.clock"] = clock
