"""What to do now: the task list of a staff member's start page (``/``).

The start page belongs to :mod:`accounts`, which knows nothing of incidents, visits or the monthly
check. Each domain that gives staff work registers a *source* here in its ``init_app``
(:func:`register_todo`); a source is ``source(db_session, now, user)`` and returns the
:class:`TodoItem` s that user should see at ``now`` (UTC), or an empty list for a role it does
not serve. :func:`collect` asks every source and orders the list: most urgent first, then the
newest first within one urgency.

An item at :data:`STATUS` urgency is not a task but the state of things (the month's check):
the page shows it under the tasks, and "nothing to do" is said when only such items are left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_REGISTRY = "krisrutin.todo"

# Urgency, highest first.
ACKNOWLEDGE = 40  # someone is waiting for this person to take an incident or a handover
OVERDUE = 30  # something should have happened already (a visit not made in time)
CALL = 20  # calls due today
WAITING = 15  # providers who have not acknowledged a letter or a visit alert yet
REVIEW = 10  # work without a clock running (corrections to review)
STATUS = 0  # the state of things, not a task


@dataclass(frozen=True)
class TodoAction:
    """A button on the task's row: a POST to ``url`` that returns to the start page."""

    label: str
    url: str


@dataclass(frozen=True)
class TodoItem:
    """One row of the task list: ``text`` in plain language, ``link`` to where the work is done,
    ``at`` (UTC) the moment it became due or happened, ``kind`` a stable name for styling and tests."""

    urgency: int
    at: datetime | None
    text: str
    link: str
    kind: str
    action: TodoAction | None = None
    show_at: str = "time"  # "time"; "day" when ``at`` names a day (a call day); "none" when the text says it

    @property
    def is_task(self) -> bool:
        return self.urgency > STATUS


Source = Callable[[Session, datetime, object], list[TodoItem]]


def register_todo(app, source: Source) -> None:
    """Add ``source(db_session, now, user)`` to the start page's task list."""
    app.extensions.setdefault(_REGISTRY, []).append(source)


def _sort_key(item: TodoItem) -> tuple:
    stamp = item.at.timestamp() if item.at is not None else float("-inf")
    return (-item.urgency, -stamp, item.text)


def collect(app, db_session: Session, now: datetime, user) -> list[TodoItem]:
    """Every source's items for ``user`` at ``now``, most urgent first, newest first within one urgency."""
    items: list[TodoItem] = []
    for source in app.extensions.get(_REGISTRY, []):
        items.extend(source(db_session, now, user))
    return sorted(items, key=_sort_key)
