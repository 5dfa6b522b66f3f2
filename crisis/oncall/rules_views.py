"""A staff member's own paging rules ("Mina larmregler", ``/account/alerting``) and the roster's
test SMS and test call.

The rules page
    The logged-in staff member edits their own steps: rows "efter X minuter: [x] sms [x] e-post
    [x] samtal". "Lägg till rad" and "Ta bort" change the form only (nothing is saved); "Spara"
    validates every row within the routine's limits (:func:`crisis.oncall.paging.validate_steps`)
    and saves all or nothing; "Återställ standard" removes the own rules, so the routine's default
    rules apply again. The rows' minutes must increase: they are kept in the order given.

The test buttons
    ``POST /roster/members/<member id>/test`` (the team and admins for anyone on the roster, a member for
    themself) queues a test SMS or a test call (kind ``oncall.test``, ``ref=("staff_test", user
    id)``) to the member's alert mobile. The roster shows the last test per channel with its
    delivery state as the deliveries overview names it (queued, sent, delivered, failed ...).
"""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import STAFF, Role
from core import audit
from core.clock import current_clock
from core.extensions import db
from core.numbers import whole_number
from crisis.oncall import paging
from crisis.oncall.models import RosterMember
from notifications.models import Channel, Message, Priority
from notifications.service import send

bp = Blueprint("alerting", __name__, template_folder="templates")

TEST_KIND = "oncall.test"
TEST_REF = "staff_test"
TEST_CHANNELS = ("sms", "call")


def _policy():
    return current_app.extensions["krisrutin.routine"].paging


def _rows_from_form(form) -> list[dict]:
    """The form's rows as typed (minute text, channels), in order."""
    count = whole_number(form.get("rows"), low=0, high=_policy().max_steps + 1)
    if count is None:
        abort(400, description=_("Formuläret är inte komplett. Ladda om sidan och försök igen."))
    return [
        {
            "minute": (form.get(f"minute-{i}") or "").strip(),
            "channels": tuple(c for c in paging.CHANNELS if form.get(f"{c}-{i}") == "on"),
        }
        for i in range(count)
    ]


def _rows_of(steps: list[paging.Step]) -> list[dict]:
    return [{"minute": str(step.minute), "channels": step.channels} for step in steps]


def _render(rows: list[dict], *, errors: dict | None = None, own: bool, status: int = 200):
    policy = _policy()
    return render_template(
        "oncall/alerting.html",
        rows=rows,
        errors=errors or {},
        own=own,
        policy=policy,
        defaults=paging.describe(paging.default_steps()),
        current=paging.describe(paging.steps_for(db.session, g.user)),
        mobile=g.user.mobile,
    ), status


@bp.get("/account/alerting")
@roles_required(*STAFF)
def page():
    """The user's own paging rules, or the default rules to start from."""
    own = paging.personal_steps(db.session, g.user.id)
    return _render(_rows_of(own or paging.default_steps()), own=bool(own))


@bp.post("/account/alerting")
@roles_required(*STAFF)
def save():
    """Save, reset to the default rules, or add or remove a row of the form (nothing saved)."""
    action = request.form.get("action", "save")
    own = bool(paging.personal_steps(db.session, g.user.id))
    if action == "reset":
        paging.save_steps(db.session, g.user.id, [])
        db.session.commit()
        flash(_("Dina larmregler är återställda till standard."), "success")
        return redirect(url_for("alerting.page"))
    rows = _rows_from_form(request.form)
    if action == "add":
        if len(rows) >= _policy().max_steps:
            return _render(
                rows, errors={"_": _("Högst %(count)s steg.", count=_policy().max_steps)}, own=own, status=422
            )
        return _render([*rows, {"minute": "", "channels": ()}], own=own)
    if action.startswith("remove-"):
        index = whole_number(action.removeprefix("remove-"), low=0, high=len(rows) - 1) if rows else None
        if index is None:
            abort(400, description=_("Raden finns inte."))
        return _render(rows[:index] + rows[index + 1 :], own=own)
    if action != "save":
        abort(400, description=_("Välj spara, lägg till, ta bort eller återställ."))
    errors: dict[str, str] = {}
    steps = []
    for index, row in enumerate(rows):
        minute = whole_number(row["minute"], low=0, high=10_000)
        if minute is None:
            errors[f"minute-{index}"] = _("Rad %(row)s: ange minuter som ett heltal, t.ex. 5.", row=index + 1)
            minute = -1
        steps.append(paging.Step(minute, row["channels"]))
    if not errors:
        for error in paging.validate_steps(steps):
            errors.setdefault("_" if error.row is None else f"{error.field}-{error.row}", error.message)
    if errors:
        return _render(rows, errors=errors, own=own, status=422)
    paging.save_steps(db.session, g.user.id, steps)
    db.session.commit()
    flash(_("Dina larmregler är sparade: %(rules)s.", rules=paging.describe(steps)), "success")
    return redirect(url_for("alerting.page"))


# --- the roster's test SMS and call ---------------------------------------------------------------


def last_tests(user_ids) -> dict[int, dict[str, Message]]:
    """The newest test message per member and channel."""
    ids = [str(i) for i in user_ids]
    if not ids:
        return {}
    found: dict[int, dict[str, Message]] = {}
    query = select(Message).where(Message.ref_type == TEST_REF, Message.ref_id.in_(ids)).order_by(Message.id)
    for message in db.session.scalars(query):
        found.setdefault(int(message.ref_id), {})[message.channel] = message
    return found


@bp.post("/roster/members/<int:member_id>/test")
@roles_required(*STAFF)
def test(member_id: int):
    """Queue a test SMS or a test call to a roster member's alert mobile."""
    member = db.session.get(RosterMember, member_id)
    user = db.session.get(User, member.user_id) if member is not None else None
    if user is None:
        abort(404, description=_("Personen finns inte i beredskapslistan."))
    if g.user.role_enum not in (Role.TEAM, Role.ADMIN) and g.user.id != user.id:
        abort(403, description=_("Du kan bara testa dina egna nummer."))
    channel = request.form.get("channel")
    if channel not in TEST_CHANNELS:
        abort(400, description=_("Välj test-sms eller provsamtal."))
    if not user.mobile:
        flash(_("%(name)s har inget mobilnummer att testa.", name=user.display_name), "error")
        return redirect(url_for("roster.page"))
    now = current_clock().now()
    send(
        db_session=db.session,
        kind=TEST_KIND,
        context={"name": user.display_name},
        channels=(Channel(channel),),
        priority=Priority.URGENT,
        idempotency_key=f"oncall-test:{user.id}:{now.isoformat()}:{secrets.token_hex(4)}",
        now=now,
        to_mobile=user.mobile,
        ref=(TEST_REF, user.id),
    )
    db.session.commit()
    audit.viewed("user", user.id, action="test", channel=channel)
    if channel == "sms":
        flash(_("Test-sms till %(name)s är skickat.", name=user.display_name), "success")
    else:
        flash(_("Provsamtal till %(name)s är skickat.", name=user.display_name), "success")
    return redirect(url_for("roster.page"))
