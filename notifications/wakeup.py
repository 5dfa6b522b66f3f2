"""Waking the dispatchers when a transaction that queued messages commits.

On PostgreSQL :func:`notifications.service.send` also runs ``pg_notify('krisrutin_outbox',
<channel>)`` in the same transaction (:func:`wake_on_commit`). PostgreSQL delivers a
notification only when (and if) its transaction commits, so listening dispatchers wake exactly at
the commit and never for a rolled-back message. In the same process, an ``after_commit`` hook
calls the registered wake-up listeners (SQLite has no NOTIFY; another process on SQLite finds
the message at its next poll).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from notifications.models import Message

NOTIFY_CHANNEL = "krisrutin_outbox"
_WAKE = "notifications.wake"  # session.info: channels with messages queued in this transaction

_listeners: list[Callable[[frozenset[str]], None]] = []
_listeners_lock = threading.Lock()


def add_wake_listener(listener: Callable[[frozenset[str]], None]) -> None:
    """Call ``listener(channels)`` after every commit in this process that queued messages."""
    with _listeners_lock:
        _listeners.append(listener)


def remove_wake_listener(listener: Callable[[frozenset[str]], None]) -> None:
    with _listeners_lock:
        if listener in _listeners:
            _listeners.remove(listener)


def wake_on_commit(db_session: Session, channels: list[str]) -> None:
    """Wake the dispatchers of ``channels`` when ``db_session``'s transaction commits (not if it
    rolls back)."""
    pending = db_session.info.setdefault(_WAKE, set())
    new = [channel for channel in channels if channel not in pending]
    pending.update(new)
    if new and _dialect(db_session) == "postgresql":
        # Delivered by PostgreSQL at commit, to every LISTENing dispatcher; dropped on rollback.
        # Once per channel and transaction: a thousand messages queued together wake once.
        for channel in new:
            db_session.execute(text("SELECT pg_notify(:name, :channel)"), {"name": NOTIFY_CHANNEL, "channel": channel})


@event.listens_for(Session, "after_commit")
def _wake_listeners_after_commit(session: Session) -> None:
    channels = session.info.pop(_WAKE, None)
    if not channels:
        return
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(frozenset(channels))


@event.listens_for(Session, "after_rollback")
def _forget_wake_after_rollback(session: Session) -> None:
    session.info.pop(_WAKE, None)


def _dialect(db_session: Session) -> str:
    return db_session.get_bind(mapper=Message).dialect.name
