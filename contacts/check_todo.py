"""The monthly check's part of the start page's task list (:mod:`core.todo`).

The team (and an admin) phone the contacts who have not answered once the call day has come and
review the corrections providers sent; every member of staff sees the open month's state (how
many have answered), which is not a task.
"""

from __future__ import annotations

from datetime import date, datetime, time

from flask import current_app, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.roles import STAFF, Role
from contacts.check_models import CheckCorrection
from contacts.check_queries import month_summary
from contacts.checks import open_check_at
from core import todo

_TEAM = (Role.TEAM, Role.ADMIN)


def items(db_session: Session, now: datetime, user) -> list[todo.TodoItem]:
    role = user.role_enum
    if role not in STAFF:
        return []
    found: list[todo.TodoItem] = []
    if role in _TEAM:
        waiting, newest = db_session.execute(
            select(func.count(), func.max(CheckCorrection.submitted_at)).where(CheckCorrection.status == "pending")
        ).one()
        if waiting:
            found.append(
                todo.TodoItem(
                    urgency=todo.REVIEW,
                    at=newest,
                    text=ngettext(
                        "%(num)d rättelse från månadskontrollen att granska",
                        "%(num)d rättelser från månadskontrollen att granska",
                        waiting,
                    ),
                    link=url_for("checks.review"),
                    kind="corrections",
                )
            )
    check = open_check_at(db_session, now)
    if check is None:
        return found
    tz = current_app.extensions["krisrutin.routine"].timezone
    today = now.astimezone(tz).date()
    summary = month_summary(db_session, check, today=today)
    first_day = date(int(check.month[:4]), int(check.month[5:7]), 1)
    month_name = format_date(first_day, "LLLL yyyy")
    if role in _TEAM and summary.calls_to_make:
        found.append(
            todo.TodoItem(
                urgency=todo.CALL,
                at=datetime.combine(check.call_on, time(0, 0), tzinfo=tz),
                text=ngettext(
                    "Ring %(num)d kontaktperson som inte har svarat på månadskontrollen",
                    "Ring %(num)d kontaktpersoner som inte har svarat på månadskontrollen",
                    summary.calls_to_make,
                ),
                link=url_for("checks.calls", month=check.month),
                kind="check_calls",
                show_at="day",
            )
        )
    answered = summary.answered_yes + summary.answered_no
    found.append(
        todo.TodoItem(
            urgency=todo.STATUS,
            at=check.opened_at,
            text=_(
                "Månadskontrollen %(month)s: %(answered)s av %(total)s kontaktpersoner har svarat.",
                month=month_name,
                answered=answered,
                total=summary.recipients,
            ),
            link=url_for("checks.month", month=check.month),
            kind="check_status",
        )
    )
    return found
