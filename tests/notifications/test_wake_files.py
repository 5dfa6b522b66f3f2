"""On SQLite a commit that queues messages wakes the dispatchers of other processes through a wake
file per channel beside the database (``notifications.wakeup``), as NOTIFY does on PostgreSQL.
Real files and a real dispatcher on a SQLite file; the in-process hook is taken away where a test
must show that only the file could have woken the dispatcher."""

from __future__ import annotations

import os

import pytest

from core.extensions import db
from notifications.dispatcher import Dispatcher
from notifications.wakeup import WAKE_FILE_LIMIT, WakeFiles, _signal, remove_wake_listener, wake_file
from tests.conftest import build_app, create_schema
from tests.notifications.dispatcher_app import Recorder, queue, seconds_until_sent


@pytest.fixture
def app(sqlite_url, clock):
    app = build_app(sqlite_url, clock)
    create_schema(app)
    yield app
    with app.app_context():
        db.engine.dispose()


def database_of(app) -> str:
    with app.app_context():
        return db.engine.url.database


def test_a_commit_in_another_process_wakes_a_sqlite_dispatcher_through_its_wake_file(app, clock):
    recorder = Recorder()
    dispatcher = Dispatcher(app, name="wake-file", channels=recorder.setup(), poll_seconds=30, jitter=lambda: 1.0)
    dispatcher.start()
    # As if the commit were in a web process: no in-process hook, and the poll is 30 s away.
    remove_wake_listener(dispatcher.wake)
    try:
        seconds_until_sent(app, clock, recorder, key="warm-up")  # then the lanes wait for the poll
        latency = seconds_until_sent(app, clock, recorder, key="letter-from-the-web")
    finally:
        dispatcher.stop()

    print(f"\nwake-on-commit latency (SQLite wake file): {latency * 1000:.0f} ms")
    assert latency < 2.0, f"sent {latency:.2f} s after the commit (the poll interval is 30 s)"


def test_a_commit_signals_only_the_channels_it_queued_and_a_rollback_signals_nothing(app, clock):
    files = WakeFiles(database_of(app), ["email", "sms", "call"])
    assert files.changed() == frozenset()

    with app.app_context():
        queue(now=clock.now(), key="e-mail only", channels=["email"])
        assert files.changed() == {"email"}

        queue(now=clock.now(), key="rolled back", channels=["sms"], commit=False)
        db.session.rollback()
        assert files.changed() == frozenset()

        queue(now=clock.now(), key="both", channels=["email", "sms"])
        assert files.changed() == {"email", "sms"}
        assert files.changed() == frozenset()  # each change is reported once


def test_the_wake_file_is_emptied_above_its_limit_and_that_is_a_change_too(tmp_path):
    database = str(tmp_path / "krisrutin.sqlite3")
    path = wake_file(database, "sms")
    files = WakeFiles(database, ["sms"])
    for _ in range(WAKE_FILE_LIMIT):
        _signal(path)
    assert path.stat().st_size == WAKE_FILE_LIMIT
    assert files.changed() == {"sms"}

    _signal(path)

    assert path.stat().st_size == 0
    assert files.changed() == {"sms"}


def test_a_wake_file_that_cannot_be_written_costs_the_commit_nothing(app, clock):
    os.mkdir(wake_file(database_of(app), "email"))  # in its place: opening it for writing fails

    with app.app_context():
        [message] = queue(now=clock.now(), key="still-queued", channels=["email"])
        assert message.id is not None
        assert message.status == "queued"


def test_an_in_memory_database_has_no_wake_files():
    assert wake_file(":memory:", "email") is None
    assert WakeFiles(None, ["email"]).changed() == frozenset()
