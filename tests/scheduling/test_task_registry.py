"""The registry of task handlers and planners."""

from __future__ import annotations

import pytest

from scheduling.registry import DEFAULT_MAX_ATTEMPTS, Registry, default_registry


def handle(db_session, task, now):
    pass


def other_handler(db_session, task, now):
    pass


def plan(db_session, now):
    pass


def test_a_registered_handler_is_found_by_its_kind_with_its_attempt_limit():
    registry = Registry()
    registry.task_handler("contacts.monthly_check", max_attempts=3)(handle)
    handler = registry.handler_for("contacts.monthly_check")
    assert (handler.fn, handler.max_attempts) == (handle, 3)
    assert registry.handler_for("unknown") is None
    assert registry.kinds() == ["contacts.monthly_check"]


def test_the_default_attempt_limit_is_eight():
    registry = Registry()
    registry.task_handler("k")(handle)
    assert registry.handler_for("k").max_attempts == DEFAULT_MAX_ATTEMPTS == 8


def test_two_handlers_for_one_kind_are_refused_but_registering_the_same_one_again_is_harmless():
    registry = Registry()
    registry.task_handler("k")(handle)
    registry.task_handler("k")(handle)
    with pytest.raises(ValueError, match="already registered"):
        registry.task_handler("k")(other_handler)


def test_an_attempt_limit_below_one_is_refused():
    with pytest.raises(ValueError):
        Registry().task_handler("k", max_attempts=0)


def test_planners_keep_their_registration_order():
    registry = Registry()
    registry.planner("b")(plan)
    registry.planner("a")(lambda db_session, now: None)
    assert [name for name, _ in registry.planners()] == ["b", "a"]


def test_scoped_forgets_what_was_registered_inside_it():
    before = (default_registry.kinds(), default_registry.planners())
    with default_registry.scoped():
        default_registry.task_handler("test.scoped")(handle)
        default_registry.planner("test.scoped")(plan)
        assert default_registry.handler_for("test.scoped") is not None
    assert (default_registry.kinds(), default_registry.planners()) == before


def test_a_job_module_listed_by_its_package_must_have_registered_work():
    import sys

    registry = Registry()
    registry.task_handler("k")(handle)  # registered by this test module
    registry.expect_jobs(sys.modules[__name__])
    import json  # a module that registers nothing

    with pytest.raises(RuntimeError, match="json"):
        registry.expect_jobs(sys.modules[__name__], json)


def test_the_application_s_planners_run_in_the_order_its_packages_register_them():
    """In a fresh interpreter (a test run imports job modules in the order it collects tests):
    the handover is planned before the follow-ups, and visits last."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from app import create_app\n"
        "from scheduling.registry import default_registry\n"
        "create_app({'DATABASE_URL': 'sqlite:///:memory:', 'KRISRUTIN_ENV': 'testing'})\n"
        "print(','.join(name for name, _ in default_registry.planners()))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1].split(",") == [
        "core.retention",
        "contacts.monthly_check",
        "crisis.handover",
        "crisis.followups",
        "incidents.mailbox",
        "crisis.supervision",
    ]
