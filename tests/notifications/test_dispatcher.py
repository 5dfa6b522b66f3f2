"""The dispatcher with an in-memory recording channel: sends once, retries with backoff, gives
up, marks bad addresses, keeps lanes apart, warns about a failing channel, wakes on commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from contacts.models import ContactPerson
from core.extensions import db
from notifications.channels.base import PermanentFailure, TransientFailure
from notifications.dispatcher import Dispatcher
from notifications.models import Channel, ChannelState, Message
from notifications.outbox import DEGRADED_AFTER, claim_next, retry_delay
from notifications.wakeup import remove_wake_listener
from tests.conftest import TEST_SECRET, build_app, create_schema
from tests.notifications.dispatcher_app import (
    Recorder,
    events_of,
    make_contact,
    queue,
    reload,
    seconds_until_sent,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorder():
    return Recorder()


def dispatcher_for(app, recorder, **kwargs) -> Dispatcher:
    # No jitter: the longest wait of each step, so that the tests can reason about the clock.
    return Dispatcher(app, name="test-dispatcher", channels=recorder.setup(), jitter=lambda: 1.0, **kwargs)


def test_dispatch_sends_each_queued_message_once_and_records_it(make_app, clock, recorder):
    app = make_app()
    with app.app_context():
        messages = [m for n in range(5) for m in queue(now=clock.now(), key=f"m{n}", channels=["email", "sms"])]

    report = dispatcher_for(app, recorder).run_until_idle(timeout=30)
    again = dispatcher_for(app, recorder).run_until_idle(timeout=30)

    assert (report.sent, report.retried, report.failed, report.errors) == (10, 0, 0, 0)
    assert again.sent == 0
    assert sorted(recorder.sent_ids()) == sorted(m.id for m in messages)
    with app.app_context():
        for message in messages:
            stored = reload(message.id)
            assert stored.status == "sent"
            assert stored.gateway == "memory" and stored.gateway_id.startswith(f"mem-{stored.channel}-{stored.id}-")
            assert (stored.attempts, stored.sent_at, stored.lease_until, stored.leased_by) == (
                1,
                clock.now(),
                None,
                None,
            )
            assert events_of(message.id) == ["queued", "sending", "sent"]
        state = db.session.get(ChannelState, "email")
        assert (state.gateway, state.consecutive_failures, state.last_success_at) == ("memory", 0, clock.now())
    email = next(o for o in recorder.outgoing if hasattr(o, "subject"))
    assert email.message_id.startswith("<krisrutin-") and email.html is not None
    sms = next(o for o in recorder.outgoing if hasattr(o, "status_callback"))
    assert sms.status_callback.startswith("http://127.0.0.1:5000/webhooks/twilio/status?message=")


def test_a_transient_failure_is_retried_with_exponential_backoff(make_app, clock, recorder):
    app = make_app()
    with app.app_context():
        [message] = queue(now=clock.now(), key="retry")
    recorder.script["email"] = [TransientFailure("451 try later"), TransientFailure("451 try later")]
    start = clock.now()
    dispatcher = dispatcher_for(app, recorder)

    assert dispatcher.run_until_idle().retried == 1
    with app.app_context():
        stored = reload(message.id)
        assert (stored.status, stored.attempts, stored.last_error) == ("queued", 1, "TransientFailure: 451 try later")
        assert stored.next_attempt_at == start + timedelta(seconds=10)

    clock.advance(seconds=9)
    assert dispatcher.run_until_idle().retried == 0, "not due yet"
    clock.advance(seconds=1)
    assert dispatcher.run_until_idle().retried == 1
    with app.app_context():
        assert reload(message.id).next_attempt_at == clock.now() + timedelta(seconds=20), "the wait doubles"

    clock.advance(seconds=20)
    assert dispatcher.run_until_idle().sent == 1
    with app.app_context():
        stored = reload(message.id)
        assert (stored.status, stored.attempts, stored.last_error) == ("sent", 3, None)
        assert events_of(message.id) == ["queued", "sending", "retry", "sending", "retry", "sending", "sent"]


def test_backoff_has_jitter_a_cap_and_respects_retry_after():
    assert retry_delay(1, jitter=lambda: 0.0) == timedelta(seconds=5)
    assert retry_delay(1, jitter=lambda: 1.0) == timedelta(seconds=10)
    assert retry_delay(4, jitter=lambda: 1.0) == timedelta(seconds=80)
    assert retry_delay(30, jitter=lambda: 1.0) == timedelta(hours=1)
    assert retry_delay(1, retry_after=120, jitter=lambda: 1.0) == timedelta(seconds=120)


def test_a_message_fails_after_its_last_attempt(make_app, clock, recorder):
    app = make_app(MESSAGE_MAX_ATTEMPTS=3)
    with app.app_context():
        [message] = queue(now=clock.now(), key="hopeless", channels=["sms"])
    recorder.always["sms"] = TransientFailure("HTTP 503")
    dispatcher = dispatcher_for(app, recorder)

    outcomes = []
    for _ in range(3):
        report = dispatcher.run_until_idle()
        outcomes.append((report.retried, report.failed))
        clock.advance(hours=1)

    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    with app.app_context():
        stored = reload(message.id)
        assert (stored.status, stored.attempts, stored.failed_at) == ("failed", 3, clock.now() - timedelta(hours=1))
        assert events_of(message.id)[-1] == "failed"


def test_a_permanent_failure_fails_at_once_and_marks_the_contacts_address(make_app, clock, recorder):
    app = make_app()
    with app.app_context():
        contact = make_contact(now=clock.now())
        [message] = queue(now=clock.now(), key="bad-address", contact=contact)
    recorder.script["email"] = [PermanentFailure("550 5.1.1 mailbox unknown", address_rejected=True)]

    report = dispatcher_for(app, recorder).run_until_idle()

    assert (report.failed, report.retried) == (1, 0)
    with app.app_context():
        stored = reload(message.id)
        assert (stored.status, stored.attempts, stored.failed_at) == ("failed", 1, clock.now())
        person = db.session.get(ContactPerson, contact.id)
        assert person.email_failing_since == clock.now()
        assert person.email_failure_reason == "memory rejected the address: PermanentFailure: 550 5.1.1 mailbox unknown"
        assert person.mobile_failing_since is None
        assert db.session.get(ChannelState, "email").consecutive_failures == 0, (
            "a bad address is not the channel's fault"
        )


def test_a_corrected_address_is_not_marked_failing(make_app, clock, recorder):
    app = make_app()
    with app.app_context():
        contact = make_contact(now=clock.now())
        queue(now=clock.now(), key="old-address", contact=contact)
        db.session.get(ContactPerson, contact.id).email = "corrected@example.se"
        db.session.commit()
    recorder.script["email"] = [PermanentFailure("550 5.1.1", address_rejected=True)]

    dispatcher_for(app, recorder).run_until_idle()

    with app.app_context():
        assert db.session.get(ContactPerson, contact.id).email_failing_since is None


def test_an_unexpected_adapter_error_is_retried_without_its_message(make_app, clock, recorder):
    app = make_app()
    with app.app_context():
        [message] = queue(now=clock.now(), key="bug")
    recorder.script["email"] = [RuntimeError("boom for kontakt@example.se")]

    assert dispatcher_for(app, recorder).run_until_idle().retried == 1
    with app.app_context():
        assert reload(message.id).last_error == "unexpected RuntimeError in the adapter"


def test_a_channel_that_keeps_failing_is_degraded_until_it_succeeds(make_app, clock, recorder):
    app = make_app()
    with app.app_context():
        for n in range(DEGRADED_AFTER):
            queue(now=clock.now(), key=f"f{n}", channels=["sms"])
    recorder.always["sms"] = TransientFailure("HTTP 503 from the gateway")
    dispatcher = dispatcher_for(app, recorder)

    dispatcher.run_until_idle()
    with app.app_context():
        state = db.session.get(ChannelState, "sms")
        assert state.consecutive_failures == DEGRADED_AFTER
        assert state.degraded_since == clock.now()
        assert state.last_error == "TransientFailure: HTTP 503 from the gateway"
        assert db.session.get(ChannelState, "email").degraded_since is None

    recorder.always["sms"] = None
    clock.advance(minutes=1)
    assert dispatcher.run_until_idle().sent == DEGRADED_AFTER
    with app.app_context():
        state = db.session.get(ChannelState, "sms")
        assert (state.consecutive_failures, state.degraded_since, state.last_success_at) == (0, None, clock.now())


def test_an_expired_lease_is_reclaimed_and_the_message_sent_again(make_app, clock, recorder):
    app = make_app(DISPATCH_LEASE_SECONDS=30)
    with app.app_context():
        [message] = queue(now=clock.now(), key="orphan")
        claimed = claim_next(db.session, channel="email", now=clock.now(), lease_seconds=30, name="crashed")
        assert claimed.id == message.id
    dispatcher = dispatcher_for(app, recorder)

    assert dispatcher.run_until_idle().sent == 0, "the lease still holds"
    clock.advance(seconds=31)
    assert dispatcher.run_until_idle().sent == 1
    with app.app_context():
        assert reload(message.id).attempts == 2
        assert events_of(message.id) == ["queued", "sending", "queued", "sending", "sent"]


def test_a_failing_email_lane_does_not_hold_up_sms(make_app, clock, recorder):
    app = make_app(EMAIL_CONCURRENCY=2, SMS_CONCURRENCY=2)
    with app.app_context():
        for n in range(20):
            queue(now=clock.now(), key=f"both{n}", channels=["email", "sms"])
    recorder.delay["email"] = 0.2  # a gateway that answers slowly, and with an error
    recorder.always["email"] = TransientFailure("timed out")
    dispatcher = dispatcher_for(app, recorder, poll_seconds=0.1)

    dispatcher.start()
    try:
        recorder.wait_for(lambda r: len(r.sent_ids("sms")) == 20, timeout=10, what="all SMS")
        email_attempts = len([a for a in recorder.attempts if a[0] == "email"])
    finally:
        dispatcher.stop()

    assert email_attempts < 20, "SMS did not wait for the e-mail lane"
    assert recorder.sent_ids("email") == []


def test_the_lane_pauses_after_repeated_transient_failures(make_app, clock, recorder):
    app = make_app(EMAIL_CONCURRENCY=1)
    with app.app_context():
        for n in range(30):
            queue(now=clock.now(), key=f"p{n}")
    recorder.always["email"] = TransientFailure("connection refused")
    dispatcher = dispatcher_for(app, recorder, poll_seconds=0.05)

    dispatcher.start()
    try:
        lane = dispatcher.lanes[Channel.EMAIL]
        wait_until(lambda: lane.pause_remaining() > 0, timeout=5, what="the lane to pause")
    finally:
        dispatcher.stop()  # within the first pause (1 s)

    assert len(recorder.attempts) == 5, "a dead gateway does not use up every queued message's attempts"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_commit_elsewhere_wakes_a_listening_dispatcher_at_once(make_app, clock, recorder):
    app = make_app()
    dispatcher = dispatcher_for(app, recorder, poll_seconds=30)
    dispatcher.start()
    # Only PostgreSQL's NOTIFY can wake it now: not the in-process hook, and not the 30 s poll.
    remove_wake_listener(dispatcher.wake)
    try:
        assert dispatcher.listening.wait(10), "the dispatcher LISTENs"
        latency = seconds_until_sent(app, clock, recorder, key="urgent-letter")
    finally:
        dispatcher.stop()

    print(f"\nwake-on-commit latency (PostgreSQL NOTIFY): {latency * 1000:.0f} ms")
    assert latency < 2.0, f"sent {latency:.2f} s after the commit (the poll interval is 30 s)"


def test_a_commit_in_the_same_process_wakes_the_dispatcher_on_sqlite_too(sqlite_url, clock, recorder):
    app = build_app(sqlite_url, clock)
    create_schema(app)
    dispatcher = dispatcher_for(app, recorder, poll_seconds=30)
    dispatcher.start()
    try:
        seconds_until_sent(app, clock, recorder, key="warm-up")
        # Now the workers wait for the 30 s poll, unless the commit wakes them.
        latency = seconds_until_sent(app, clock, recorder, key="in-process")
    finally:
        dispatcher.stop()
        with app.app_context():
            db.engine.dispose()
    assert latency < 2.0


def test_a_rolled_back_message_wakes_nobody_and_is_never_sent(make_app, clock, recorder):
    app = make_app()
    dispatcher = dispatcher_for(app, recorder, poll_seconds=0.05)
    dispatcher.start()
    try:
        with app.app_context():
            queue(now=clock.now(), key="never", commit=False)
            db.session.rollback()
            [kept] = queue(now=clock.now(), key="kept")
        recorder.wait_for(lambda r: kept.id in r.sent_ids(), what="the committed message")
    finally:
        dispatcher.stop()
    assert recorder.sent_ids() == [kept.id]


def test_drain_and_status_commands(make_app, clock):
    app = make_app()
    with app.app_context():
        queue(now=clock.now(), key="cli", channels=["email", "sms"])
    runner = app.test_cli_runner()

    status = runner.invoke(args=["dispatcher", "status"])
    assert status.exit_code == 0, status.output
    assert '"queued": 1' in status.output

    drained = runner.invoke(args=["dispatcher", "drain", "--timeout", "30"])  # the console channels
    assert drained.exit_code == 0, drained.output
    assert drained.output.strip() == '{"sent": 2, "retried": 0, "failed": 0, "errors": 0}'
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Message.status == "sent")) == 2


def test_dispatcher_run_stops_cleanly_on_sigterm(sqlite_url, clock):
    app = build_app(sqlite_url, clock)
    create_schema(app)
    with app.app_context():
        [message] = queue(now=datetime.now(timezone.utc), key="sigterm")
    env = {**os.environ, "DATABASE_URL": sqlite_url, "SECRET_KEY": TEST_SECRET, "KRISRUTIN_ENV": "testing"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "dispatcher", "run", "--name", "cli-dispatcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with app.app_context():
            wait_until(lambda: reload(message.id).status == "sent", timeout=20, what="the console send")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert b"dispatcher stopped" in stderr and b"SIGTERM" in stderr
    with app.app_context():
        assert reload(message.id).leased_by is None
        db.engine.dispose()


@pytest.mark.parametrize("setting, worker_mode", [(None, 1), ("on", 2)])
def test_on_sqlite_only_the_dispatchers_bookkeeping_may_skip_the_flush(
    sqlite_url, clock, recorder, setting, worker_mode, request
):
    """SQLite (WAL): the web process and the scheduler commit with synchronous = FULL (2), each
    commit flushed; the dispatcher's connections with NORMAL (1) unless DISPATCH_SYNCHRONOUS_COMMIT=on."""
    from sqlalchemy.engine import Engine

    from tests.support import speedups

    # The suite's own speed-up turns the flush off on every SQLite connection: not in this test.
    sa.event.remove(Engine, "connect", speedups._sqlite_without_sync)
    request.addfinalizer(lambda: sa.event.listen(Engine, "connect", speedups._sqlite_without_sync))
    overrides = {} if setting is None else {"DISPATCH_SYNCHRONOUS_COMMIT": setting}
    app = build_app(sqlite_url, clock, **overrides)
    create_schema(app)
    with app.app_context():
        queue(now=clock.now(), key="durable-1", channels=("sms",))
        assert db.session.execute(sa.text("PRAGMA synchronous")).scalar() == 2
        message_id = db.session.scalar(sa.select(Message.id))
        db.session.remove()
    dispatcher = dispatcher_for(app, recorder)
    engine = dispatcher._worker_engine()
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("PRAGMA synchronous")).scalar() == worker_mode
        dispatcher.run_until_idle()
        assert recorder.sent == [("sms", message_id)]
    finally:
        engine.dispose()


@pytest.mark.durable_commits  # the server's setting, not the test schemas' (tests/support/speedups.py)
@pytest.mark.parametrize("setting, worker_mode", [(None, "off"), ("on", "on")])
def test_writing_a_message_is_always_durable_and_only_the_dispatchers_bookkeeping_may_skip_the_flush(
    postgres_url, clock, recorder, setting, worker_mode
):
    """PostgreSQL: the commit that writes a message waits for its WAL flush (a message is never
    lost); the dispatcher's claims and 'sent' records do not, unless DISPATCH_SYNCHRONOUS_COMMIT=on."""
    overrides = {} if setting is None else {"DISPATCH_SYNCHRONOUS_COMMIT": setting}
    app = build_app(postgres_url, clock, **overrides)
    create_schema(app)
    with app.app_context():
        queue(now=clock.now(), key="durable-1", channels=("sms",), commit=False)
        assert db.session.execute(sa.text("SHOW synchronous_commit")).scalar() == "on"
        db.session.commit()
        message_id = db.session.scalar(sa.select(Message.id))
    dispatcher = dispatcher_for(app, recorder)
    engine = dispatcher._worker_engine()
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SHOW synchronous_commit")).scalar() == worker_mode
        dispatcher.run_until_idle()
        assert recorder.sent == [("sms", message_id)]
    finally:
        engine.dispose()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


class _Session:
    """Stands in for the session in ``_write``: the step itself plays the database."""

    def commit(self):
        pass

    def rollback(self):
        pass


def _outage(monkeypatch, failures: int | None):
    """A step that fails with a lost connection ``failures`` times (None: always), on a fake
    monotonic clock that sleeping advances; returns (step, calls, slept)."""
    import notifications.dispatcher as dispatcher_module

    clock = {"t": 1000.0}
    slept: list[float] = []
    monkeypatch.setattr(dispatcher_module.time, "monotonic", lambda: clock["t"])

    def sleep(seconds):
        slept.append(seconds)
        clock["t"] += seconds

    monkeypatch.setattr(dispatcher_module.time, "sleep", sleep)
    calls = []

    def step(now):
        calls.append(now)
        if failures is None or len(calls) <= failures:
            raise sa.exc.OperationalError("UPDATE messages", {}, Exception("the connection is lost"))
        return "stored"

    return step, calls, slept


def test_a_sends_record_waits_out_a_database_restart_of_a_few_seconds(app, recorder, monkeypatch):
    dispatcher = dispatcher_for(app, recorder, lease_seconds=120)
    step, calls, slept = _outage(monkeypatch, failures=5)

    with app.app_context():
        _now, result = dispatcher._write(_Session(), step, {"channel": "email"})

    # Three tries in 0.6 s lost the record to a 5-second outage, and the message was sent again
    # when its lease ran out (bench.drills pg_restart); now it is stored after the outage.
    assert result == "stored" and len(calls) == 6
    assert slept == [0.2, 0.4, 0.8, 1.6, 3.2]


def test_recording_gives_up_before_half_the_lease_is_gone(app, recorder, monkeypatch):
    dispatcher = dispatcher_for(app, recorder, lease_seconds=10)
    step, calls, slept = _outage(monkeypatch, failures=None)

    with app.app_context():
        _now, result = dispatcher._write(_Session(), step, {"channel": "email"})

    assert result is None
    assert sum(slept) <= 5 and len(calls) == len(slept) + 1 == 5


def test_workers_whose_connections_the_server_ends_mid_batch_send_each_message_once(postgres_url, clock, recorder):
    """PostgreSQL ends the dispatcher's connections twice while it sends (as a restart or an
    administrator would): the workers carry on with fresh connections, every message is sent and
    recorded once, and none is sent twice (a 'sent' record that failed is written again)."""
    from notifications.models import MessageStatus, Priority
    from tests.notifications.dispatcher_app import queue_many

    name = f"krisrutin-kill-{os.getpid()}-{time.monotonic_ns()}"
    # Two sends in flight per lane, 10 ms each: the 300 messages take about 0.75 s, so that both
    # ends of connections fall in the middle of the sending.
    app = build_app(f"{postgres_url}&application_name={name}", clock, EMAIL_CONCURRENCY=2, SMS_CONCURRENCY=2)
    create_schema(app)
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="k", count=150, channel="email", priority=Priority.BULK)
        ids += queue_many(now=clock.now(), prefix="s", count=150, channel="sms", priority=Priority.BULK)
        db.session.remove()
    recorder.delay = {"email": 0.01, "sms": 0.01}
    dispatcher = dispatcher_for(app, recorder, lease_seconds=60)
    admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    dispatcher.start()
    try:
        for after in (60, 180):
            recorder.wait_for(lambda r, n=after: len(r.sent) >= n, timeout=30, what=f"{after} sends")
            with admin.connect() as connection:
                ended = connection.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).scalar()
            assert ended > 0
        recorder.wait_for(lambda r: len(r.sent) >= len(ids), timeout=60, what="every message")
        with app.app_context():
            wait_until(
                lambda: (
                    db.session.scalar(
                        sa.select(sa.func.count())
                        .select_from(Message)
                        .where(Message.status != MessageStatus.SENT.value)
                    )
                    == 0
                ),
                timeout=30,
                what="every message recorded as sent",
            )
            db.session.remove()
    finally:
        dispatcher.stop()
        admin.dispose()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    assert sorted(recorder.sent_ids()) == sorted(ids)  # each once: none lost, none twice
