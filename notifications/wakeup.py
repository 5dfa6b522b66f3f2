"""Waking the dispatchers when a transaction that queued messages commits.

On PostgreSQL :func:`notifications.service.send` also runs ``pg_notify('krisrutin_outbox',
<channel>)`` in the same transaction (:func:`wake_on_commit`). PostgreSQL delivers a
notification only when (and if) its transaction commits, so listening dispatchers wake exactly at
the commit and never for a rolled-back message. In the same process, an ``after_commit`` hook
calls the registered wake-up listeners.

SQLite has no NOTIFY, and the service's web processes and its dispatcher are separate processes
on one machine (a SQLite database is a local file). So on SQLite the same hook also appends a
byte to a **wake file** per channel beside the database (``<database>-wake-email`` and so on, as
SQLite keeps its ``-wal`` beside it), and each dispatcher's housekeeper looks at those files'
size and time every :data:`WAKE_FILE_POLL_SECONDS` (a ``stat`` each: nothing for the database)
and wakes the lanes of the channels whose file changed (:class:`WakeFiles`). A message queued by a
web process thus leaves within a few tens of milliseconds instead of at the lanes' next poll
(``DISPATCH_POLL_SECONDS``, 0.5 s by default), which stays the safety net: a wake file that
cannot be written (a read-only directory) costs only that delay, never the commit. The file is
emptied when it passes 4 KB.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from notifications.models import Message

log = logging.getLogger("notifications.dispatcher")

NOTIFY_CHANNEL = "krisrutin_outbox"
WAKE_FILE_POLL_SECONDS = 0.025
WAKE_FILE_LIMIT = 4096  # bytes; the file is emptied above it (a change like any other)
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
    bind = session.get_bind(mapper=Message)
    if bind.dialect.name == "sqlite":
        for channel in channels:
            path = wake_file(bind.url.database, channel)
            if path is not None:
                _signal(path)
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(frozenset(channels))


@event.listens_for(Session, "after_rollback")
def _forget_wake_after_rollback(session: Session) -> None:
    session.info.pop(_WAKE, None)


def _dialect(db_session: Session) -> str:
    return db_session.get_bind(mapper=Message).dialect.name


def wake_file(database: str | None, channel: str) -> Path | None:
    """The wake file of ``channel`` for a SQLite database file (None for an in-memory one)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}-wake-{channel}")


def _signal(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, b"\n")
            if os.fstat(descriptor).st_size > WAKE_FILE_LIMIT:
                os.ftruncate(descriptor, 0)
        finally:
            os.close(descriptor)
    except OSError as error:
        # The dispatchers' poll finds the message instead; the commit has happened either way.
        log.debug("could not write the wake file", extra={"error": type(error).__name__})


class WakeFiles:
    """A dispatcher's view of the wake files of ``channels`` for the SQLite database file
    ``database``: :meth:`changed` names the channels whose file changed since it last looked."""

    def __init__(self, database: str | None, channels: Iterable[str]):
        self.paths = {channel: path for channel in channels if (path := wake_file(database, channel)) is not None}
        self._seen = {channel: _signature(path) for channel, path in self.paths.items()}

    def changed(self) -> frozenset[str]:
        changed = []
        for channel, path in self.paths.items():
            signature = _signature(path)
            if signature != self._seen[channel]:
                self._seen[channel] = signature
                changed.append(channel)
        return frozenset(changed)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)
