"""The on-call part of the start page's task list (:mod:`core.todo`), for all staff: who is the
on-call officer (TIB) now, or from the next end of office hours, as the state of things; and a
task when nobody is, or the officer has no number and no address to be alerted on (the roster
page is where that is fixed). Uncovered now is more urgent than uncovered from tonight.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from accounts.roles import STAFF
from core import todo
from crisis.oncall.roster import on_call_at
from worktime.calendar import responsible_at


def items(db_session: Session, now: datetime, user) -> list[todo.TodoItem]:
    if user.role_enum not in STAFF:
        return []
    responsibility = responsible_at(now, current_app.extensions["krisrutin.routine"])
    starts = now if not responsibility.office_hours else responsibility.next_change
    if starts is None:
        return []
    officer = on_call_at(db_session, starts)
    link = url_for("roster.page")
    when = format_datetime(starts, _("EEEE d MMMM 'kl.' HH:mm"))
    if officer is None or not (officer.mobile or officer.email):
        text = (
            _("Ingen tjänsteman i beredskap kan larmas nu. Lägg till någon i beredskapen.")
            if starts is now
            else _("Ingen tjänsteman i beredskap kan larmas från %(when)s. Lägg till någon i beredskapen.", when=when)
        )
        urgency = todo.OVERDUE if starts is now else todo.REVIEW
        return [todo.TodoItem(urgency=urgency, at=starts, text=text, link=link, kind="roster_gap", show_at="none")]
    text = (
        _("Tjänsteman i beredskap nu: %(name)s.", name=officer.display_name)
        if starts is now
        else _("Tjänsteman i beredskap från %(when)s: %(name)s.", when=when, name=officer.display_name)
    )
    return [todo.TodoItem(urgency=todo.STATUS, at=starts, text=text, link=link, kind="on_call_now")]
