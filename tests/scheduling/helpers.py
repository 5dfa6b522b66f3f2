"""A table whose rows count how often task handlers took effect, and handlers that write to it.

The table has no unique constraint on purpose: a task that ran twice would show up as two rows.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from core.extensions import db

metadata = sa.MetaData()
effects = sa.Table(
    "scheduling_test_effects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_key", sa.String(200), nullable=False),
    sa.Column("worker", sa.String(100), nullable=False),
)


def create_effects_table() -> None:
    """In an app context: create the effects table next to the application's tables."""
    metadata.create_all(db.engine)


def record_effect(db_session, task, now) -> None:
    """A handler whose effect can be counted: one row per run, naming the process and thread that ran it."""
    db_session.execute(
        effects.insert().values(task_key=task.key, worker=f"{os.getpid()}:{threading.current_thread().name}")
    )


def effect_keys() -> list[str]:
    """In an app context: the task keys of all effects, in the order they happened."""
    return list(db.session.execute(sa.select(effects.c.task_key).order_by(effects.c.id)).scalars())


def at(text: str) -> datetime:
    """An aware instant from ISO text."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None
    return value.astimezone(timezone.utc)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds (for real background threads)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.05)


ONE_MINUTE = timedelta(minutes=1)
