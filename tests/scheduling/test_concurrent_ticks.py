"""Two workers ticking at once run every task exactly once.

On PostgreSQL: two threads with their own connections (claims with SKIP LOCKED), and two real
``flask tick`` subprocesses. On SQLite: two threads on one database file (compare-and-set under
SQLite's single writer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.extensions import db
from scheduling.service import schedule, tick
from tests.conftest import TEST_SECRET, build_app, create_schema
from tests.scheduling.helpers import create_effects_table, effects, record_effect
from tests.scheduling.subprocess_app import KIND as SUBPROCESS_KIND

ROOT = Path(__file__).resolve().parents[2]
KIND = "test.concurrent_effect"


@pytest.fixture
def make_app(clock):
    """Build applications on a given database URL, with the schema and the effects table."""
    built = []

    def make(url):
        application = build_app(url, clock)
        create_schema(application)
        with application.app_context():
            create_effects_table()
            db.session.remove()
        built.append(application)
        return application

    yield make
    for application in built:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def schedule_many(app, clock, count, kind=KIND):
    with app.app_context():
        for n in range(count):
            schedule(db_session=db.session, kind=kind, key=f"task-{n:03}", due_at=clock.now(), now=clock.now())
        db.session.commit()


def tick_in_threads(app, clock, registry, workers=2):
    """Start ``workers`` threads together, each ticking in its own app context (own session and
    connection); returns their reports."""
    barrier = threading.Barrier(workers)
    reports, errors = {}, []

    def work(name):
        try:
            with app.app_context():
                barrier.wait(timeout=10)
                reports[name] = tick(db_session=db.session, now=clock.now(), registry=registry)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"worker-{n}",), name=f"worker-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return reports


def effect_rows(app):
    with app.app_context():
        return db.session.execute(sa.select(effects.c.task_key, effects.c.worker)).all()


def assert_each_ran_once(app, count):
    rows = effect_rows(app)
    per_key = Counter(key for key, _ in rows)
    assert len(per_key) == count, "every task took effect"
    assert set(per_key.values()) == {1}, [key for key, n in per_key.items() if n > 1]
    return Counter(worker for _, worker in rows)


@pytest.mark.postgres
def test_two_workers_on_postgresql_run_each_of_200_tasks_once(postgres_url, make_app, clock, registry):
    app = make_app(postgres_url)
    registry.task_handler(KIND)(record_effect)
    schedule_many(app, clock, 200)

    reports = tick_in_threads(app, clock, registry)

    assert sum(report.ran for report in reports.values()) == 200
    by_worker = assert_each_ran_once(app, 200)
    print("tasks per worker:", dict(by_worker))  # both usually share the work; timing decides


def test_two_workers_on_one_sqlite_file_run_each_task_once(sqlite_url, make_app, clock, registry):
    app = make_app(sqlite_url)
    registry.task_handler(KIND)(record_effect)
    schedule_many(app, clock, 100)

    reports = tick_in_threads(app, clock, registry)

    assert sum(report.ran for report in reports.values()) == 100
    by_worker = assert_each_ran_once(app, 100)
    print("tasks per worker:", dict(by_worker))


@pytest.mark.postgres
def test_two_flask_tick_processes_on_postgresql_run_each_task_once(postgres_url, make_app, clock):
    app = make_app(postgres_url)
    schedule_many(app, clock, 200, kind=SUBPROCESS_KIND)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": postgres_url,
        "SECRET_KEY": TEST_SECRET,
        "KRISRUTIN_ENV": "testing",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "flask",
        "--app",
        "tests.scheduling.subprocess_app",
        "tick",
        "--at",
        clock.now().isoformat(),
    ]
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    reports = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert sum(report["ran"] for report in reports) == 200
    by_worker = assert_each_ran_once(app, 200)
    print("tasks per process:", dict(by_worker))
