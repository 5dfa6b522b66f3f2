"""``flask scheduler run``: APScheduler as a clock with one tick job, and a short real run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.triggers.interval import IntervalTrigger

from core.extensions import db
from scheduling.models import ScheduledTask, SchedulerHeartbeat, TaskStatus
from scheduling.process import TICK_JOB_ID, build_scheduler, default_scheduler_name, run_scheduler, run_tick
from scheduling.service import schedule
from tests.conftest import TEST_SECRET, build_app, create_schema
from tests.scheduling.helpers import create_effects_table, effect_keys, record_effect, wait_until

KIND = "test.scheduler_effect"
ROOT = Path(__file__).resolve().parents[2]


def test_the_tick_job_never_drops_a_late_run_and_never_overlaps(app):
    before = datetime.now(timezone.utc)
    scheduler = build_scheduler(app, interval_seconds=30, name="test")

    assert not scheduler.running, "building the scheduler does not start it"
    [job] = scheduler.get_jobs()
    assert job.id == TICK_JOB_ID
    assert job.misfire_grace_time is None
    assert job.coalesce is True
    assert job.max_instances == 1
    assert isinstance(job.trigger, IntervalTrigger) and job.trigger.interval == timedelta(seconds=30)
    assert before <= job.next_run_time <= datetime.now(timezone.utc), "the first tick runs at once"
    assert isinstance(scheduler._lookup_jobstore("default"), MemoryJobStore)


def test_creating_the_app_starts_no_scheduler(app):
    assert not [thread for thread in threading.enumerate() if "APScheduler" in thread.name]


def test_default_scheduler_name_is_host_and_pid():
    import socket

    assert default_scheduler_name() == f"{socket.gethostname()}:{os.getpid()}"[:100]


def test_a_failing_tick_is_logged_and_does_not_end_the_scheduler(app, caplog):
    with app.app_context():
        db.drop_all()  # e.g. the database is not migrated yet
    assert run_tick(app, "test") is None
    assert any(r.levelname == "ERROR" and r.msg.startswith("tick failed") for r in caplog.records)


def test_the_scheduler_ticks_at_once_on_start_and_again_each_interval(sqlite_url, clock, global_registry):
    app = build_app(sqlite_url, clock)
    create_schema(app)
    with app.app_context():
        create_effects_table()
        schedule(db_session=db.session, kind=KIND, key="missed-while-down", due_at=clock.now(), now=clock.now())
        db.session.commit()
    global_registry.task_handler(KIND)(record_effect)

    def heartbeat_ticks():
        with app.app_context():
            beat = db.session.get(SchedulerHeartbeat, "test-scheduler")
            return beat.ticks if beat else 0

    def status(key):
        with app.app_context():
            return db.session.scalars(db.select(ScheduledTask.status).where(ScheduledTask.key == key)).one()

    stop = threading.Event()
    runner = threading.Thread(
        target=run_scheduler,
        args=(app,),
        kwargs={"interval_seconds": 1, "name": "test-scheduler", "stop": stop},
        name="test-scheduler-main",
    )
    runner.start()
    try:
        wait_until(lambda: heartbeat_ticks() >= 1, what="the first tick")
        assert status("missed-while-down") == TaskStatus.DONE

        with app.app_context():
            schedule(db_session=db.session, kind=KIND, key="added-later", due_at=clock.now(), now=clock.now())
            db.session.commit()
        wait_until(lambda: status("added-later") == TaskStatus.DONE, what="the next interval's tick")
    finally:
        stop.set()
        runner.join(timeout=15)
    assert not runner.is_alive(), "the scheduler shut down"
    assert heartbeat_ticks() >= 2
    with app.app_context():
        assert effect_keys() == ["missed-while-down", "added-later"]
        db.session.remove()
        db.engine.dispose()


def test_scheduler_run_command_ticks_and_stops_cleanly_on_sigterm(sqlite_url, clock):
    app = build_app(sqlite_url, clock)
    create_schema(app)

    def heartbeat_ticks():
        with app.app_context():
            beat = db.session.get(SchedulerHeartbeat, "cli-scheduler")
            db.session.remove()
            return beat.ticks if beat else 0

    env = {
        **os.environ,
        "DATABASE_URL": sqlite_url,
        "SECRET_KEY": TEST_SECRET,
        "KRISRUTIN_ENV": "testing",
        "LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "flask", "--app", "app", "scheduler", "run", "--interval", "60"]
    process = subprocess.Popen(
        [*command, "--name", "cli-scheduler"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: heartbeat_ticks() >= 1, what="the scheduler process's first tick")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert b"scheduler stopped" in stderr and b"SIGTERM" in stderr
    with app.app_context():
        db.engine.dispose()
