"""Crash safety, end to end: a dispatcher process killed with SIGKILL in the middle of a batch
loses nothing, and after a restart sends again at most the messages that were in flight: at
most the claims a lane holds (``most_claims``: its window's maximum ``*_CONCURRENCY`` and the
claims ahead of it), of which only those already handed to a gateway (their ``sent`` not yet
committed) can arrive twice.

The peers are real: an SMTP server and a Twilio-speaking HTTP server (tests/support); the
dispatcher is ``flask --app app dispatcher run`` in a subprocess with the real SMTP and Twilio
adapters, on a real database file (SQLite) or PostgreSQL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from core.clock import SystemClock
from core.extensions import db
from notifications.models import Message, Priority
from notifications.window import most_claims
from tests.conftest import TEST_SECRET, build_app, create_schema
from tests.notifications.dispatcher_app import message_statuses, queue_many, wait_until

ROOT = Path(__file__).resolve().parents[2]
EMAILS = SMS = 300
EMAIL_WORKERS, SMS_WORKERS, BATCH = 2, 3, 10
_EMAIL_ID = re.compile(r"<krisrutin-(\d+)@")
_SMS_ID = re.compile(r"[?&]message=(\d+)")


def received(smtp_server, twilio_server) -> Counter:
    """How many times each message id arrived at the two sinks."""
    arrivals = Counter()
    for mail in smtp_server.messages:
        arrivals[int(_EMAIL_ID.search(mail.message["Message-ID"]).group(1))] += 1
    for request in twilio_server.messages:
        arrivals[int(_SMS_ID.search(request.params["StatusCallback"]).group(1))] += 1
    return arrivals


def start_dispatcher(env: dict, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "dispatcher", "run", "--name", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_killed_dispatcher_loses_nothing_and_resends_at_most_its_in_flight_messages(
    database_url, peer_settings, smtp_server, twilio_server
):
    app = build_app(database_url, SystemClock())
    create_schema(app)
    now = datetime.now(timezone.utc)
    with app.app_context():
        ids = queue_many(now=now, prefix="crash-mail", count=EMAILS, channel="email", priority=Priority.BULK)
        ids += queue_many(now=now, prefix="crash-sms", count=SMS, channel="sms", priority=Priority.BULK)
    env = {
        **os.environ,
        **peer_settings,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "KRISRUTIN_ENV": "testing",
        "LOG_LEVEL": "WARNING",
        "EMAIL_CONCURRENCY": str(EMAIL_WORKERS),
        "SMS_CONCURRENCY": str(SMS_WORKERS),
        "DISPATCH_BATCH_SIZE": str(BATCH),
        # About three seconds for the whole batch, so that the kill lands in the middle of it.
        "EMAIL_RATE_PER_SECOND": "100",
        "SMS_RATE_PER_SECOND": "100",
        "DISPATCH_LEASE_SECONDS": "5",
        "DISPATCH_POLL_SECONDS": "0.2",
    }

    first = start_dispatcher(env, "crash-first")
    try:
        wait_until(
            lambda: sum(received(smtp_server, twilio_server).values()) >= len(ids) // 3, timeout=30, what="a third"
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
    assert first.returncode == -signal.SIGKILL
    with app.app_context():
        in_flight = set(db.session.scalars(sa.select(Message.id).where(Message.status == "sending")))
        db.session.remove()
    arrived_at_kill = sum(received(smtp_server, twilio_server).values())
    assert arrived_at_kill < len(ids), "the kill came in the middle of the batch"
    # A lane holds at most its window and the claims ahead of it, not written back; of them,
    # those handed to a gateway whose `sent` was not committed yet are the ones that may arrive twice.
    assert len(in_flight) <= most_claims(EMAIL_WORKERS) + most_claims(SMS_WORKERS), "at most the lanes' claims"

    second = start_dispatcher(env, "crash-second")
    try:
        wait_until(lambda: message_statuses(app).get("sent", 0) == len(ids), timeout=60, what="every message sent")
        second.send_signal(signal.SIGTERM)
        _, stderr = second.communicate(timeout=15)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, stderr.decode()

    arrivals = received(smtp_server, twilio_server)
    assert set(arrivals) == set(ids), "every message arrived"
    duplicated = {message_id for message_id, count in arrivals.items() if count > 1}
    assert max(arrivals.values()) <= 2
    assert duplicated <= in_flight, "only messages in flight at the kill arrived twice"
    print(
        f"\n{database_url.split(':')[0]}: killed after {arrived_at_kill} of {len(ids)} arrived; "
        f"{len(in_flight)} in flight; {len(duplicated)} arrived twice"
    )
    with app.app_context():
        db.engine.dispose()
