"""How the channels are doing: the staff banner and /readyz read it from ``channel_states``.

Dispatchers keep ``ChannelState`` up to date (consecutive failures, ``degraded_since``); this
module only reads it, with one cheap query, because it runs on every staff page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import g, has_request_context
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from notifications.models import Channel, ChannelState

log = logging.getLogger(__name__)


def degraded_channels(db_session: Session, now: datetime) -> list[ChannelState]:
    """The channels that keep failing (``degraded_since`` set, not after ``now``), by name."""
    return list(
        db_session.scalars(
            select(ChannelState)
            .where(ChannelState.degraded_since.is_not(None), ChannelState.degraded_since <= now)
            .order_by(ChannelState.channel)
        )
    )


def channel_summary(degraded: list[ChannelState]) -> dict[str, str]:
    """``{"email": "ok" | "degraded", "sms": ...}`` for every channel the service sends by, and
    the inbound ones (``imap``: the supplier mailbox) while degraded."""
    names = {state.channel for state in degraded}
    summary = {channel.value: "degraded" if channel.value in names else "ok" for channel in Channel}
    return {**summary, **{name: "degraded" for name in sorted(names - set(summary))}}


def readiness_report(db_session: Session, now: datetime) -> dict[str, object]:
    """What /readyz reports of the channels (``channels``, ``warnings``).

    Beside the readiness checks, never one of them: a failing SMS gateway must not take the web
    service out of the load balancer (the outbox keeps the messages until it recovers)."""
    degraded = degraded_channels(db_session, now)
    return {
        "channels": channel_summary(degraded),
        "warnings": [
            f"{state.channel} channel degraded since {state.degraded_since.isoformat()}"
            f" ({state.consecutive_failures} consecutive failures)"
            for state in degraded
        ],
    }


@dataclass(frozen=True)
class ChannelWarning:
    channel: str
    since: datetime
    failures: int
    same_day: bool  # degraded since earlier today (local time): the banner shows only the time

    @property
    def outgoing(self) -> bool:
        """A channel the service sends by (e-mail, SMS); else one it reads (the supplier mailbox)."""
        return self.channel in {channel.value for channel in Channel}


@dataclass(frozen=True)
class ChannelWarnings:
    items: list[ChannelWarning]
    all_degraded: bool  # no channel left that works

    @property
    def any_outgoing(self) -> bool:
        return any(item.outgoing for item in self.items)


NO_WARNINGS = ChannelWarnings(items=[], all_degraded=False)


def staff_channel_warnings() -> ChannelWarnings:
    """The banner's content for the current page: warnings for staff, nothing for everyone else.

    Called by templates/base.html (the context processor hands templates this function, so the
    query runs only for pages that show the banner). A page must render even when this cannot be
    known (no request, database down, schema not migrated): the banner is then left out, logged.
    """
    user = g.get("user") if has_request_context() else None
    if user is None or not user.role_enum.is_staff:
        return NO_WARNINGS
    from flask import current_app

    from core.clock import current_clock
    from core.extensions import db

    now = current_clock().now()
    try:
        states = degraded_channels(db.session, now)
    except SQLAlchemyError as error:
        db.session.rollback()
        log.warning("channel states could not be read for the banner: %s", type(error).__name__)
        return NO_WARNINGS
    zone = current_app.extensions["krisrutin.routine"].timezone
    today = now.astimezone(zone).date()
    items = [
        ChannelWarning(
            channel=state.channel,
            since=state.degraded_since,
            failures=state.consecutive_failures,
            same_day=state.degraded_since.astimezone(zone).date() == today,
        )
        for state in states
    ]
    return ChannelWarnings(items=items, all_degraded=sum(item.outgoing for item in items) >= len(Channel))


def channel_warning_context() -> dict[str, object]:
    """Context processor: ``channel_warnings()`` in every template (see templates/base.html)."""
    return {"channel_warnings": staff_channel_warnings}
