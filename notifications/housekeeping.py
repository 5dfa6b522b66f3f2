"""A dispatcher's housekeeper thread: expired leases, the due-messages gauge, and NOTIFY wake-ups.

Beside the workers each running dispatcher has one :class:`Housekeeper`. Every quarter of the
lease (0.5 to 5 seconds) it puts messages whose lease has expired back in the queue (their
dispatcher died while sending) and refreshes ``krisrutin_outbox_due_messages``. On PostgreSQL it
also LISTENs on a connection of its own for the ``pg_notify`` that
:func:`~notifications.service.send` issues at commit, and wakes the lanes of the channels named;
while that connection is down the workers' polling is the safety net. On SQLite it watches the
wake files that such commits write beside the database (:mod:`notifications.wakeup`) instead.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from prometheus_client import Gauge
from sqlalchemy import func, select

from core.clock import current_clock
from core.errors import describe_error
from core.extensions import db
from core.metrics import REGISTRY
from notifications.bookkeeping import safe_error
from notifications.models import Channel, Message, MessageStatus
from notifications.outbox import reclaim_expired
from notifications.wakeup import NOTIFY_CHANNEL, WAKE_FILE_POLL_SECONDS, WakeFiles

# The dispatcher's logger: its records keep the name operators filter on.
log = logging.getLogger("notifications.dispatcher")

DUE = Gauge(
    "krisrutin_outbox_due_messages",
    "Queued messages whose time has come, by channel",
    ["channel"],
    registry=REGISTRY,
    multiprocess_mode="max",
)


@dataclass(frozen=True, kw_only=True)
class Housekeeper:
    """The housekeeping loop of one dispatcher; :meth:`run` returns when ``stop`` is set.

    ``wake(channels)`` wakes the dispatcher's lanes (all of them for None); ``listening`` is set
    while the LISTEN connection is up.
    """

    app: Flask
    lease_seconds: float
    max_attempts: int
    listen: bool
    wake: Callable[[frozenset[str] | None], None]
    stop: threading.Event
    listening: threading.Event

    def run(self) -> None:
        """Reclaim expired leases, refresh the gauges, and wake the lanes on NOTIFY."""
        interval = max(0.5, min(5.0, self.lease_seconds / 4))
        next_pass = 0.0
        listener = None
        next_connect = 0.0
        with self.app.app_context():
            postgres = db.engine.dialect.name == "postgresql" and self.listen
            wake_files = None
            if db.engine.dialect.name == "sqlite" and self.listen:
                wake_files = WakeFiles(db.engine.url.database, [channel.value for channel in Channel])
            try:
                while not self.stop.is_set():
                    if time.monotonic() >= next_pass:
                        self.run_pass()
                        next_pass = time.monotonic() + interval
                    if not postgres:
                        if wake_files is None or not wake_files.paths:
                            self.stop.wait(max(0.0, next_pass - time.monotonic()))
                            continue
                        self.stop.wait(min(WAKE_FILE_POLL_SECONDS, max(0.0, next_pass - time.monotonic())))
                        if changed := wake_files.changed():
                            self.wake(changed)
                        continue
                    if listener is None and time.monotonic() >= next_connect:
                        listener = self._connect_listener()
                        next_connect = time.monotonic() + 5.0
                        if listener is not None:
                            self.wake(None)  # anything committed while we were not listening
                    if listener is None:
                        self.stop.wait(min(0.25, max(0.0, next_pass - time.monotonic())))
                        continue
                    try:
                        for notification in listener.notifies(
                            timeout=min(0.25, max(0.01, next_pass - time.monotonic()))
                        ):
                            self.wake(frozenset([notification.payload]) if notification.payload else None)
                    except Exception as error:
                        log.warning(
                            "LISTEN connection lost; polling until it is back", extra={"error": describe_error(error)}
                        )
                        self.listening.clear()
                        _close_quietly(listener)
                        listener = None
            finally:
                self.listening.clear()
                if listener is not None:
                    _close_quietly(listener)

    def run_pass(self) -> None:
        """One pass: expired leases back to the queue (waking the lanes if any), then the gauge."""
        try:
            now = current_clock().now()
            if reclaim_expired(db.session, now=now, max_attempts=self.max_attempts):
                self.wake(None)
            due = dict(
                db.session.execute(
                    select(Message.channel, func.count())
                    .where(Message.status == MessageStatus.QUEUED.value, Message.next_attempt_at <= now)
                    .group_by(Message.channel)
                ).all()
            )
            db.session.rollback()
            for channel in Channel:
                DUE.labels(channel.value).set(due.get(channel.value, 0))
        except Exception as error:
            db.session.rollback()
            log.error("dispatcher housekeeping failed", extra={"error": safe_error(error)})

    def _connect_listener(self):
        import psycopg

        url = db.engine.url.set(drivername="postgresql")
        try:
            connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5)
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except Exception as error:
            log.warning("could not LISTEN for new messages; polling", extra={"error": describe_error(error)})
            return None
        self.listening.set()
        return connection


def _close_quietly(connection) -> None:
    with contextlib.suppress(Exception):  # the connection is gone either way
        connection.close()
