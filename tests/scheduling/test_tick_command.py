"""``flask tick [--at]`` and ``flask scheduler status``."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from core.clock import FixedClock, current_clock
from core.extensions import db
from scheduling.models import ScheduledTask, TaskStatus
from scheduling.service import schedule
from tests.scheduling.helpers import at, effect_keys, record_effect

KIND = "test.cli_effect"
DUE = at("2026-12-01T07:00:00Z")  # 08:00 in Stockholm


def schedule_task(app, clock, key, due_at=DUE, kind=KIND):
    with app.app_context():
        schedule(db_session=db.session, kind=kind, key=key, due_at=due_at, now=clock.now())
        db.session.commit()


def test_tick_at_an_instant_with_an_offset_runs_what_is_due_and_prints_json(
    app, runner, clock, global_registry, effects_table
):
    global_registry.task_handler(KIND)(record_effect)
    schedule_task(app, clock, "due")
    schedule_task(app, clock, "later", due_at=DUE + timedelta(seconds=1))

    result = runner.invoke(args=["tick", "--at", "2026-12-01T08:00:00+01:00"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == {
        "at": "2026-12-01T07:00:00+00:00",
        "planned": 0,
        "planner_errors": [],
        "ran": 1,
        "retried": 0,
        "failed": 0,
        "more_due": False,
    }
    with app.app_context():
        assert effect_keys() == ["due"]


def test_tick_twice_at_the_same_instant_does_the_work_once(app, runner, clock, global_registry, effects_table):
    global_registry.task_handler(KIND)(record_effect)
    schedule_task(app, clock, "once")
    first = runner.invoke(args=["tick", "--at", "2026-12-01T07:00:00Z"])
    second = runner.invoke(args=["tick", "--at", "2026-12-01T07:00:00Z"])
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert (json.loads(first.output)["ran"], json.loads(second.output)["ran"]) == (1, 0)
    with app.app_context():
        assert effect_keys() == ["once"]


def test_tick_refuses_an_instant_without_offset(app, runner, clock, global_registry, effects_table):
    global_registry.task_handler(KIND)(record_effect)
    schedule_task(app, clock, "due")
    result = runner.invoke(args=["tick", "--at", "2026-12-01T08:00:00"])
    assert result.exit_code == 2
    assert "has no UTC offset" in result.output and "2026-12-01T08:00:00+01:00" in result.output
    with app.app_context():
        assert effect_keys() == []


def test_tick_refuses_text_that_is_not_an_instant(runner):
    result = runner.invoke(args=["tick", "--at", "next tuesday"])
    assert result.exit_code == 2 and "not an ISO 8601 instant" in result.output


def test_tick_without_at_uses_the_application_clock(app, runner, clock, global_registry, effects_table):
    global_registry.task_handler(KIND)(record_effect)
    schedule_task(app, clock, "now", due_at=clock.now())
    schedule_task(app, clock, "tomorrow", due_at=clock.now() + timedelta(days=1))
    result = runner.invoke(args=["tick"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["at"] == clock.now().isoformat()
    with app.app_context():
        assert effect_keys() == ["now"]


def test_domain_code_sees_the_at_instant_as_now_during_the_tick(app, runner, clock, global_registry):
    seen = []

    @global_registry.task_handler(KIND)
    def look_at_the_clock(db_session, task, now):
        seen.append((current_clock().now(), now))

    schedule_task(app, clock, "clock")
    result = runner.invoke(args=["tick", "--at", "2026-12-01T09:30:00+01:00"])
    assert result.exit_code == 0, result.output
    assert seen == [(at("2026-12-01T08:30:00Z"), at("2026-12-01T08:30:00Z"))]
    assert isinstance(app.extensions["krisrutin.clock"], FixedClock)
    assert app.extensions["krisrutin.clock"] is clock, "the application's clock is restored afterwards"


def test_tick_exits_non_zero_when_a_planner_failed(app, runner, global_registry):
    @global_registry.planner("test.broken")
    def broken(db_session, now):
        raise RuntimeError("cannot plan")

    result = runner.invoke(args=["tick", "--at", "2026-12-01T07:00:00Z"])
    assert result.exit_code == 1
    assert json.loads(result.output)["planner_errors"] == ["test.broken"]


def test_a_failed_task_shows_in_the_row_and_in_scheduler_status(app, runner, clock, global_registry):
    @global_registry.task_handler(KIND, max_attempts=1)
    def broken(db_session, task, now):
        raise ValueError("no contact for alarms")

    schedule_task(app, clock, "broken", due_at=clock.now())
    schedule_task(app, clock, "waiting", kind="test.unhandled", due_at=clock.now() + timedelta(days=2))
    assert runner.invoke(args=["tick"]).exit_code == 0
    with app.app_context():
        task = db.session.scalars(select(ScheduledTask).where(ScheduledTask.key == "broken")).one()
        assert (task.status, task.last_error) == (TaskStatus.FAILED, "ValueError: no contact for alarms")

    result = runner.invoke(args=["scheduler", "status"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["tasks"] == {"pending": 1, "done": 0, "failed": 1, "cancelled": 0}
    assert status["due"] == 0 and status["oldest_due_at"] is None
    assert status["failed_by_kind"] == {KIND: 1}
    assert status["schedulers"] == []


def test_scheduler_status_shows_overdue_work(app, runner, clock):
    schedule_task(app, clock, "overdue", due_at=clock.now() - timedelta(hours=3))
    status = json.loads(runner.invoke(args=["scheduler", "status"]).output)
    assert status["due"] == 1 and status["oldest_due_at"] == "2026-11-23T06:00:00+00:00"
