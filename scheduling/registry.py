"""Which code runs a task of a given kind, and which planners create tasks at every tick.

Domain modules register at import time; their package's ``init_app`` imports its job modules
(in the order their planners should run) and names them with :meth:`Registry.expect_jobs`::

    from scheduling.registry import planner, task_handler

    @task_handler("contacts.monthly_check")
    def start_monthly_check(db_session, task, now): ...

    @planner("contacts.monthly_check")
    def plan_monthly_check(db_session, now):
        schedule(db_session=db_session, kind="contacts.monthly_check", key=f"{now:%Y-%m}", ...)

A handler only does database work through ``db_session``: it runs inside the transaction that
marks its task done (``task.status`` already reads ``"done"``, ``task.attempts`` counts this
attempt), so its effect commits exactly once. It must not commit (refused with
``HandlerMisuse``) or roll back; it may use savepoints of its own. To fail, it raises: its
writes are undone and the task is retried with backoff. Keep personal data out of exception
messages: the message is stored in ``last_error`` and logged.
Tests build their own :class:`Registry` and pass it to ``tick``, or use
``default_registry.scoped()`` so that what they register is forgotten afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from scheduling.models import ScheduledTask

DEFAULT_MAX_ATTEMPTS = 8


class TaskHandlerFn(Protocol):
    def __call__(self, db_session: Session, task: ScheduledTask, now: datetime) -> None: ...


class PlannerFn(Protocol):
    def __call__(self, db_session: Session, now: datetime) -> None: ...


@dataclass(frozen=True)
class Handler:
    kind: str
    fn: TaskHandlerFn
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


class Registry:
    """Task handlers by kind, and planners by name."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._planners: dict[str, PlannerFn] = {}
        # The modules that ever registered something: a fact about the process, kept by scoped().
        self._modules: set[str] = set()

    def task_handler(self, kind: str, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Callable:
        """Decorator: ``fn(db_session, task, now)`` runs tasks of ``kind``; after ``max_attempts``
        failed attempts a task is marked failed."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

        def register(fn: TaskHandlerFn) -> TaskHandlerFn:
            _refuse_duplicate(self._handlers.get(kind, Handler(kind, fn)).fn, fn, f"task kind {kind!r}")
            self._handlers[kind] = Handler(kind, fn, max_attempts)
            self._modules.add(fn.__module__)
            return fn

        return register

    def planner(self, name: str) -> Callable:
        """Decorator: ``fn(db_session, now)`` runs at every tick and creates due tasks idempotently
        (with ``scheduling.service.schedule``)."""

        def register(fn: PlannerFn) -> PlannerFn:
            _refuse_duplicate(self._planners.get(name, fn), fn, f"planner {name!r}")
            self._planners[name] = fn
            self._modules.add(fn.__module__)
            return fn

        return register

    def handler_for(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def planners(self) -> list[tuple[str, PlannerFn]]:
        """The planners in registration order."""
        return list(self._planners.items())

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def expect_jobs(self, *modules) -> None:
        """Check that each of ``modules`` (a package's job modules, imported by its ``init_app``)
        registered a task handler or a planner: a job module that registers nothing is a bug."""
        missing = [module.__name__ for module in modules if module.__name__ not in self._modules]
        if missing:
            raise RuntimeError(f"job modules registered no task handler or planner: {', '.join(missing)}")

    @contextmanager
    def scoped(self) -> Iterator[Registry]:
        """Whatever is registered inside the ``with`` block is forgotten when it ends (tests)."""
        handlers, planners = dict(self._handlers), dict(self._planners)
        try:
            yield self
        finally:
            self._handlers, self._planners = handlers, planners


def _refuse_duplicate(existing: Callable, new: Callable, what: str) -> None:
    # The same function imported twice is harmless; two functions for one kind is a bug.
    same = existing is new or (
        getattr(existing, "__module__", None) == getattr(new, "__module__", None)
        and getattr(existing, "__qualname__", None) == getattr(new, "__qualname__", None)
    )
    if not same:
        raise ValueError(f"{what} is already registered by {existing.__module__}.{existing.__qualname__}")


default_registry = Registry()
task_handler = default_registry.task_handler
planner = default_registry.planner
