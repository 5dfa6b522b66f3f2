"""Scheduling tasks and running them at ticks: once, on time, caught up, retried, given up."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from core.extensions import db
from core.metrics import REGISTRY
from scheduling.models import ScheduledTask, SchedulerHeartbeat, TaskStatus
from scheduling.service import BACKOFF, cancel, run_due, schedule, tick
from tests.scheduling.helpers import at, effect_keys, effects, record_effect

KIND = "test.effect"


def make_task(app, clock, key, *, due_at=None, kind=KIND, payload=None):
    with app.app_context():
        task = schedule(
            db_session=db.session, kind=kind, key=key, due_at=due_at or clock.now(), payload=payload, now=clock.now()
        )
        db.session.commit()
        return task.id


def run_tick(app, clock, registry, **kwargs):
    with app.app_context():
        return tick(db_session=db.session, now=clock.now(), registry=registry, **kwargs)


def load(app, kind=KIND, key=None):
    with app.app_context():
        task = db.session.scalars(
            select(ScheduledTask).where(ScheduledTask.kind == kind, ScheduledTask.key == key)
        ).one()
        db.session.expunge(task)
        return task


def keys_done(app):
    with app.app_context():
        return effect_keys()


def test_scheduling_the_same_kind_and_key_twice_creates_one_row(app, clock):
    first = make_task(app, clock, "2026-12", payload={"n": 1})
    with app.app_context():
        again = schedule(
            db_session=db.session,
            kind=KIND,
            key="2026-12",
            due_at=clock.now() + timedelta(days=3),
            payload={"n": 2},
            now=clock.now(),
        )
        db.session.commit()
        assert again.id == first
        assert again.payload == {"n": 1} and again.due_at == clock.now(), "the existing row is returned unchanged"
        assert db.session.scalar(select(func.count()).select_from(ScheduledTask)) == 1


def test_same_key_under_another_kind_is_another_task(app, clock):
    make_task(app, clock, "2026-12", kind="a.kind")
    make_task(app, clock, "2026-12", kind="b.kind")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ScheduledTask)) == 2


def test_schedule_refuses_a_naive_due_at(app, clock):
    with app.app_context(), pytest.raises(Exception, match="timezone-aware"):
        schedule(db_session=db.session, kind=KIND, key="k", due_at=clock.now().replace(tzinfo=None), now=clock.now())


def test_task_due_later_waits_then_runs_once_at_its_due_time(app, clock, registry, effects_table):
    registry.task_handler(KIND)(record_effect)
    make_task(app, clock, "later", due_at=clock.now() + timedelta(hours=2))

    assert run_tick(app, clock, registry).ran == 0
    clock.advance(hours=1, minutes=59, seconds=59)
    assert run_tick(app, clock, registry).ran == 0
    assert keys_done(app) == []

    clock.advance(seconds=1)  # exactly due_at
    assert run_tick(app, clock, registry).ran == 1
    assert run_tick(app, clock, registry).ran == 0
    clock.advance(days=40)
    assert run_tick(app, clock, registry).ran == 0

    assert keys_done(app) == ["later"]
    task = load(app, key="later")
    assert task.status == TaskStatus.DONE and task.attempts == 1 and task.finished_at == at("2026-11-23T11:00:00Z")


def test_handler_gets_the_task_and_the_tick_instant(app, clock, registry):
    seen = []
    registry.task_handler(KIND)(lambda db_session, task, now: seen.append((task.key, task.payload, now)))
    make_task(app, clock, "k", payload={"provider_id": 7})
    clock.advance(minutes=3)
    run_tick(app, clock, registry)
    assert seen == [("k", {"provider_id": 7}, clock.now())]


def test_tasks_that_fell_due_while_down_all_run_at_the_next_tick_oldest_first(app, clock, registry, effects_table):
    registry.task_handler(KIND)(record_effect)
    start = clock.now()
    # Scheduled out of order: the order of running is due_at's, not insertion's.
    make_task(app, clock, "third", due_at=start + timedelta(days=3))
    make_task(app, clock, "first", due_at=start + timedelta(days=1))
    make_task(app, clock, "second", due_at=start + timedelta(days=2))
    make_task(app, clock, "not-yet", due_at=start + timedelta(days=9))

    clock.advance(days=5)  # the service was down; no tick ran for five days
    report = run_tick(app, clock, registry)

    assert report.ran == 3
    assert keys_done(app) == ["first", "second", "third"]


def test_tasks_due_at_the_same_instant_run_in_the_order_they_were_scheduled(app, clock, registry, effects_table):
    registry.task_handler(KIND)(record_effect)
    for key in ("a", "b", "c"):
        make_task(app, clock, key)
    run_tick(app, clock, registry)
    assert keys_done(app) == ["a", "b", "c"]


def test_a_failing_handler_is_rolled_back_retried_with_backoff_and_then_succeeds(app, clock, registry, effects_table):
    calls = {"n": 0}

    @registry.task_handler(KIND)
    def flaky(db_session, task, now):
        calls["n"] += 1
        record_effect(db_session, task, now)  # written, then undone by the failure
        if calls["n"] <= 2:
            raise TimeoutError("the alarm centre did not answer")

    make_task(app, clock, "flaky")
    first = run_tick(app, clock, registry)
    assert (first.ran, first.retried, first.failed) == (0, 1, 0)
    task = load(app, key="flaky")
    assert task.status == TaskStatus.PENDING and task.attempts == 1
    assert task.last_error == "TimeoutError: the alarm centre did not answer"
    assert task.due_at == clock.now() + BACKOFF[0] and task.finished_at is None
    assert keys_done(app) == [], "the handler's own writes were rolled back"

    clock.advance(BACKOFF[0] - timedelta(seconds=1))
    assert run_tick(app, clock, registry).retried == 0, "not before the backoff has passed"
    clock.advance(seconds=1)
    assert run_tick(app, clock, registry).retried == 1
    assert load(app, key="flaky").due_at == clock.now() + BACKOFF[1]

    clock.advance(BACKOFF[1])
    assert run_tick(app, clock, registry).ran == 1
    task = load(app, key="flaky")
    assert task.status == TaskStatus.DONE and task.attempts == 3
    assert keys_done(app) == ["flaky"]
    assert calls["n"] == 3
    clock.advance(days=1)
    run_tick(app, clock, registry)
    assert calls["n"] == 3


def test_a_task_that_keeps_failing_is_marked_failed_after_max_attempts(app, clock, registry, effects_table, caplog):
    @registry.task_handler(KIND, max_attempts=3)
    def broken(db_session, task, now):
        record_effect(db_session, task, now)
        raise ValueError("provider 17 has no contact for alarms")

    def failed_count():
        return REGISTRY.get_sample_value("krisrutin_scheduled_tasks_total", {"kind": KIND, "outcome": "failed"}) or 0

    before = failed_count()
    make_task(app, clock, "broken")
    outcomes = []
    for _ in range(5):
        report = run_tick(app, clock, registry)
        outcomes.append((report.retried, report.failed))
        clock.advance(days=1)

    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    task = load(app, key="broken")
    assert task.status == TaskStatus.FAILED and task.attempts == 3
    assert task.last_error == "ValueError: provider 17 has no contact for alarms"
    assert task.finished_at == at("2026-11-25T09:00:00Z")
    assert keys_done(app) == []
    assert failed_count() == before + 1
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "scheduling.service"]
    assert len(errors) == 1 and errors[0].kind == KIND and errors[0].attempts == 3


def test_a_task_of_an_unknown_kind_fails_at_once_with_a_clear_error(app, clock, registry):
    make_task(app, clock, "x", kind="nobody.handles.this")
    report = run_tick(app, clock, registry)
    assert report.failed == 1
    task = load(app, kind="nobody.handles.this", key="x")
    assert task.status == TaskStatus.FAILED
    assert task.last_error == "no handler is registered for kind 'nobody.handles.this'"


def test_a_database_error_in_a_handler_is_recorded_without_the_values_involved(app, clock, registry):
    people = sa.Table("scheduling_test_people", sa.MetaData(), sa.Column("email", sa.String(100), unique=True))
    with app.app_context():
        people.metadata.create_all(db.engine)

    @registry.task_handler(KIND)
    def add_twice(db_session, task, now):
        db_session.execute(people.insert().values(email="anna.andersson@example.se"))
        db_session.execute(people.insert().values(email="anna.andersson@example.se"))

    make_task(app, clock, "dup")
    assert run_tick(app, clock, registry).retried == 1
    task = load(app, key="dup")
    assert task.last_error.startswith("IntegrityError (")
    assert "anna" not in task.last_error
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(people)) == 0


def test_a_handler_that_commits_is_refused_and_leaves_nothing_behind(app, clock, registry, effects_table):
    @registry.task_handler(KIND, max_attempts=1)
    def commits(db_session, task, now):
        record_effect(db_session, task, now)
        db_session.commit()

    make_task(app, clock, "commits")
    assert run_tick(app, clock, registry).failed == 1
    task = load(app, key="commits")
    assert task.status == TaskStatus.FAILED
    assert task.last_error.startswith("HandlerMisuse: a task handler must not commit")
    assert keys_done(app) == []


def test_a_handler_may_use_savepoints_of_its_own(app, clock, registry, effects_table):
    @registry.task_handler(KIND)
    def careful(db_session, task, now):
        try:
            with db_session.begin_nested():
                record_effect(db_session, task, now)
                raise LookupError("undo just this part")
        except LookupError:
            pass
        with db_session.begin_nested():
            record_effect(db_session, task, now)

    make_task(app, clock, "careful")
    assert run_tick(app, clock, registry).ran == 1
    assert keys_done(app) == ["careful"]


def test_a_cancelled_task_does_not_run(app, clock, registry, effects_table):
    registry.task_handler(KIND)(record_effect)
    make_task(app, clock, "cancel-me", due_at=clock.now() + timedelta(hours=1))
    with app.app_context():
        assert cancel(db_session=db.session, kind=KIND, key="cancel-me", now=clock.now()) is True
        assert cancel(db_session=db.session, kind=KIND, key="cancel-me", now=clock.now()) is False
        db.session.commit()
    clock.advance(hours=2)
    assert run_tick(app, clock, registry).ran == 0
    assert load(app, key="cancel-me").status == TaskStatus.CANCELLED
    assert keys_done(app) == []


def test_a_task_scheduled_by_a_handler_for_now_runs_in_the_same_tick(app, clock, registry, effects_table):
    @registry.task_handler("test.first")
    def first(db_session, task, now):
        record_effect(db_session, task, now)
        schedule(db_session=db_session, kind=KIND, key="follow-up", due_at=now, now=now)

    registry.task_handler(KIND)(record_effect)
    make_task(app, clock, "start", kind="test.first")
    assert run_tick(app, clock, registry).ran == 2
    assert keys_done(app) == ["start", "follow-up"]


def test_run_due_stops_at_its_limit_and_says_more_is_due(app, clock, registry, effects_table):
    registry.task_handler(KIND)(record_effect)
    for n in range(5):
        make_task(app, clock, f"t{n}")
    with app.app_context():
        first = run_due(db_session=db.session, now=clock.now(), registry=registry, limit=3)
        second = run_due(db_session=db.session, now=clock.now(), registry=registry, limit=3)
    assert (first.ran, first.more_due) == (3, True)
    assert (second.ran, second.more_due) == (2, False)


def test_planners_create_their_tasks_once_however_many_ticks_run(app, clock, registry, effects_table):
    @registry.planner("test.monthly")
    def plan_monthly(db_session, now):
        # This month's task, due on the first working hour of the month's 1st (UTC here, simply).
        due = now.replace(day=1, hour=7, minute=0, second=0, microsecond=0)
        schedule(db_session=db_session, kind=KIND, key=f"{now:%Y-%m}", due_at=due, now=now)

    registry.task_handler(KIND)(record_effect)
    planned = []
    for _ in range(3 * 24 * 4):  # every 15 minutes for three days, across no month boundary
        planned.append(run_tick(app, clock, registry).planned)
        clock.advance(minutes=15)
    assert sum(planned) == 1 and planned[0] == 1

    clock.set(at("2026-12-01T06:59:00Z"))
    assert run_tick(app, clock, registry).planned == 1  # December's, not yet due
    clock.set(at("2026-12-01T07:00:00Z"))
    assert run_tick(app, clock, registry).planned == 0
    with app.app_context():
        keys = db.session.scalars(select(ScheduledTask.key).order_by(ScheduledTask.key)).all()
    assert keys == ["2026-11", "2026-12"]
    assert keys_done(app) == ["2026-11", "2026-12"]


def test_a_failing_planner_is_reported_and_the_others_still_run(app, clock, registry, caplog):
    @registry.planner("test.broken")
    def broken(db_session, now):
        schedule(db_session=db_session, kind="test.broken", key="half", due_at=now, now=now)
        raise RuntimeError("cannot plan")

    @registry.planner("test.fine")
    def fine(db_session, now):
        schedule(db_session=db_session, kind="test.fine", key="k", due_at=now + timedelta(days=1), now=now)

    report = run_tick(app, clock, registry)
    assert report.planner_errors == ["test.broken"] and report.planned == 1
    with app.app_context():
        assert db.session.scalars(select(ScheduledTask.kind)).all() == ["test.fine"], "the broken planner rolled back"
    assert any(r.levelname == "ERROR" and getattr(r, "planner", None) == "test.broken" for r in caplog.records)


def test_a_named_tick_records_the_scheduler_heartbeat(app, clock, registry):
    run_tick(app, clock, registry, scheduler_name="host-a:1")
    clock.advance(seconds=30)
    run_tick(app, clock, registry, scheduler_name="host-a:1")
    run_tick(app, clock, registry)  # anonymous ticks (flask tick) leave no heartbeat
    with app.app_context():
        beat = db.session.get(SchedulerHeartbeat, "host-a:1")
        assert (beat.ticks, beat.last_tick_at) == (2, clock.now())
        assert db.session.scalar(select(func.count()).select_from(SchedulerHeartbeat)) == 1
    last_tick = REGISTRY.get_sample_value("krisrutin_scheduler_last_tick_timestamp_seconds")
    assert last_tick == clock.now().timestamp()


def test_effects_table_has_no_unique_constraint_so_duplicates_would_show(app, effects_table):
    with app.app_context():
        db.session.execute(effects.insert(), [{"task_key": "same", "worker": "w"}] * 2)
        db.session.commit()
        assert effect_keys() == ["same", "same"]
