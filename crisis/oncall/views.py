"""The on-call roster page (``/roster``) and the personal iCalendar feeds of the shifts.

The team and administrators keep the roster: members in order (add a staff user, move up or
down, deactivate or activate again), their alert details (e-mail and an E.164 mobile), swaps
("X takes Y's week") and exceptions (X is on call from ... to ...). The on-call officer reads
the page. Times on the page and in the forms are Stockholm local time.

iCalendar feeds
    ``/roster/feed/<token>.ics`` is public, so that a phone's calendar can subscribe without a
    login; the token is the secret. A member's token is ``u<user id>-<mac>``, the team's
    ``team-<mac>``, with ``mac`` an HMAC-SHA256 (under the application's secret key, truncated to
    128 bits, URL-safe base64) of the subject and a version: the member's ``session_version``
    (changing the password or disabling the account voids the old feed URL), for the team a
    constant. A member's feed holds their own shifts, the team's everyone's, from two weeks back
    to twelve weeks ahead. The calendar is written by hand per RFC 5545: CRLF line ends, lines
    folded at 75 octets, text escaped, and times in UTC (``DTSTART:20270329T054500Z``), which
    every calendar shows in its own time zone; the shift still starts 07:45 Stockholm time in a
    week of a daylight-saving change because the roster computes it so. UIDs are stable per shift.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from accounts.access import public, roles_required
from accounts.models import User
from accounts.roles import STAFF, Role
from core import audit
from core.clock import current_clock
from core.extensions import db
from core.local_time import LocalTimeError, form_instant
from core.numbers import record_id, whole_number
from core.text import one_line
from crisis.oncall import paging, roster
from crisis.oncall.models import RosterMember, RosterOverride
from crisis.oncall.rules_views import last_tests
from notifications.addresses import AddressError, normalize_email, normalize_mobile

bp = Blueprint("roster", __name__, template_folder="templates")

EDITORS = (Role.TEAM, Role.ADMIN)
ROSTER_ROLES = (Role.ON_CALL.value, Role.TEAM.value)
WEEKS_SHOWN = 8
FEED_BACK = timedelta(weeks=2)
FEED_AHEAD = timedelta(weeks=12)
_PURPOSE = b"krisrutin roster feed v1"
_TEAM_VERSION = 1
_TOKEN = re.compile(r"(team|u([0-9]{1,10}))-([A-Za-z0-9_-]{22})")
FEED_KEPT_IN_LOG = r"(team|u[0-9]{1,12})-"  # the start of a feed token the audit log may keep: whose feed


def _policy():
    return current_app.extensions["krisrutin.routine"]


# --- feed tokens ---------------------------------------------------------------------------------


def _mac(subject: str, version: int) -> str:
    secret = current_app.config["SECRET_KEY"]
    key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
    digest = hmac.new(key, f"{subject}:{version}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def feed_token(user: User | None) -> str:
    """The feed token of a member, or of the team (``user`` None)."""
    if user is None:
        return f"team-{_mac('team', _TEAM_VERSION)}"
    return f"u{user.id}-{_mac(f'user:{user.id}', user.session_version)}"


def feed_url(user: User | None) -> str:
    base = current_app.extensions["krisrutin.settings"].public_base_url.rstrip("/")
    return f"{base}/roster/feed/{feed_token(user)}.ics"


def _feed_subject(token: str) -> tuple[bool, User | None]:
    """(valid, member); the team's feed is (True, None)."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return False, None
    if match[1] == "team":
        return hmac.compare_digest(match[3], _mac("team", _TEAM_VERSION)), None
    user_id = record_id(match[2])
    user = db.session.get(User, user_id) if user_id is not None else None
    if user is None or not user.is_active:
        return False, None
    return hmac.compare_digest(match[3], _mac(f"user:{user.id}", user.session_version)), user


# --- iCalendar -----------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1), never inside a UTF-8 character."""
    out, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        limit = 75 if not out else 74  # continuation lines start with a space
        if size + width > limit:
            out.append(current)
            current, size = "", 0
        current += char
        size += width
    out.append(current)
    return "\r\n ".join(out)


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_text(shifts: list[roster.Shift], names: dict[int, str], *, title: str, now: datetime, host: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Krisrutin//Beredskap//SV",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(title)}",
    ]
    for shift in shifts:
        name = names.get(shift.user_id, "")
        summary = _("Beredskap (TIB): %(name)s", name=name)
        description = (
            _("Tjänsteman i beredskap. Byte eller undantag.") if shift.override_id else _("Tjänsteman i beredskap.")
        )
        lines += [
            "BEGIN:VEVENT",
            f"UID:{shift.uid}@{host}",
            f"DTSTAMP:{_utc(now)}",
            f"DTSTART:{_utc(shift.starts_at)}",
            f"DTEND:{_utc(shift.ends_at)}",
            f"SUMMARY:{_escape(summary)}",
            f"DESCRIPTION:{_escape(description)}",
            "TRANSP:OPAQUE",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


@bp.get("/roster/feed/<token>.ics")
@public
@audit.secret_in_path("token", keep=FEED_KEPT_IN_LOG)
def feed(token: str):
    """A member's shifts (or the team's view of all shifts) as an iCalendar feed."""
    valid, user = _feed_subject(token)
    if not valid:
        abort(404)
    now = current_clock().now()
    shifts = roster.shifts(db.session, now - FEED_BACK, now + FEED_AHEAD)
    if user is not None:
        shifts = [s for s in shifts if s.user_id == user.id]
    names = _names({s.user_id for s in shifts})
    title = _("Beredskap: %(name)s", name=user.display_name) if user else _("Beredskap (TIB), alla")
    host = re.sub(r"^https?://", "", current_app.extensions["krisrutin.settings"].public_base_url).split("/")[0]
    body = calendar_text(shifts, names, title=title, now=now, host=host or "krisrutin")
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


# --- the page ------------------------------------------------------------------------------------


def _names(user_ids) -> dict[int, str]:
    ids = set(user_ids) - {None}
    if not ids:
        return {}
    return {u.id: u.display_name for u in db.session.scalars(select(User).where(User.id.in_(ids)))}


def _render(errors: dict | None = None, values: dict | None = None, status: int = 200):
    policy = _policy()
    now = current_clock().now()
    all_members = roster.members(db.session, active_only=False)
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_([m.user_id for m in all_members])))}
    this_week = roster.week_of(now, policy)
    weeks_end = roster.week_start(this_week + WEEKS_SHOWN, policy)
    shifts = roster.shifts(db.session, now, weeks_end - timedelta(seconds=1))
    overrides = list(
        db.session.scalars(
            select(RosterOverride).where(RosterOverride.ends_at > now).order_by(RosterOverride.starts_at)
        )
    )
    on_roster = {m.user_id for m in all_members}
    candidates = [
        u
        for u in db.session.scalars(
            select(User).where(User.role.in_(ROSTER_ROLES), User.is_active.is_(True)).order_by(User.display_name)
        )
        if u.id not in on_roster
    ]
    staff_users = list(
        db.session.scalars(
            select(User).where(User.role.in_(ROSTER_ROLES), User.is_active.is_(True)).order_by(User.display_name)
        )
    )
    weeks = [(week, roster.week_start(week, policy)) for week in range(this_week, this_week + WEEKS_SHOWN)]
    may_edit = g.user.role_enum in EDITORS
    feeds = {}
    if may_edit:
        feeds = {m.user_id: feed_url(users[m.user_id]) for m in all_members if m.user_id in users}
        team_feed = feed_url(None)
    else:
        if g.user.id in on_roster:
            feeds = {g.user.id: feed_url(g.user)}
        team_feed = feed_url(None)
    return render_template(
        "oncall/roster.html",
        members=all_members,
        users=users,
        shifts=shifts,
        names=_names({s.user_id for s in shifts} | {o.user_id for o in overrides}),
        overrides=overrides,
        candidates=candidates,
        staff_users=staff_users,
        weeks=weeks,
        may_edit=may_edit,
        feeds=feeds,
        team_feed=team_feed,
        on_call=roster.on_call_at(db.session, now),
        rules={m.user_id: paging.describe(paging.steps_for(db.session, users.get(m.user_id))) for m in all_members},
        tests=last_tests(users),
        errors=errors or {},
        values=values or {},
    ), status


@bp.get("/roster")
@roles_required(*STAFF)
@audit.audited_view("user", roster=True)
def page():
    """The rotation, the next weeks' shifts, swaps and exceptions, and the calendar feeds."""
    return _render()


def _user(raw: str | None) -> User | None:
    user_id = record_id(raw)
    return db.session.get(User, user_id) if user_id is not None else None


def _member(member_id: int) -> RosterMember:
    member = db.session.get(RosterMember, member_id)
    if member is None:
        abort(404, description=_("Personen finns inte i beredskapslistan."))
    return member


@bp.post("/roster/members")
@roles_required(*EDITORS)
def add_member():
    user = _user(request.form.get("user_id"))
    if user is None or user.role not in ROSTER_ROLES or not user.is_active:
        return _render({"user_id": _("Välj en person i teamet eller en tjänsteman i beredskap.")}, status=400)
    if db.session.scalars(select(RosterMember).where(RosterMember.user_id == user.id)).first() is not None:
        return _render({"user_id": _("Personen finns redan i beredskapslistan.")}, status=400)
    last = db.session.scalar(select(func.max(RosterMember.position)))
    db.session.add(RosterMember(user_id=user.id, position=(last if last is not None else -1) + 1, is_active=True))
    db.session.commit()
    flash(_("%(name)s är tillagd sist i beredskapslistan.", name=user.display_name), "success")
    return redirect(url_for("roster.page"))


@bp.post("/roster/members/<int:member_id>/move")
@roles_required(*EDITORS)
def move_member(member_id: int):
    member = _member(member_id)
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        return _render({"_": _("Välj upp eller ned.")}, status=400)
    ordered = roster.members(db.session, active_only=False)
    index = next(i for i, m in enumerate(ordered) if m.id == member.id)
    other_index = index - 1 if direction == "up" else index + 1
    if 0 <= other_index < len(ordered):
        ordered[index], ordered[other_index] = ordered[other_index], ordered[index]
        for position, row in enumerate(ordered):
            row.position = position
        db.session.commit()
    return redirect(url_for("roster.page"))


@bp.post("/roster/members/<int:member_id>/active")
@roles_required(*EDITORS)
def set_active(member_id: int):
    member = _member(member_id)
    active = request.form.get("active")
    if active not in ("0", "1"):
        return _render({"_": _("Välj aktivera eller inaktivera.")}, status=400)
    member.is_active = active == "1"
    db.session.commit()
    flash(_("Beredskapslistan är ändrad."), "success")
    return redirect(url_for("roster.page"))


@bp.post("/roster/members/<int:member_id>/contact")
@roles_required(*EDITORS)
def contact(member_id: int):
    """The member's alert details: e-mail and mobile (E.164)."""
    member = _member(member_id)
    user = db.session.get(User, member.user_id)
    errors, values = {}, {}
    email_raw, mobile_raw = request.form.get("email", ""), request.form.get("mobile", "")
    try:
        email = normalize_email(email_raw) if email_raw.strip() else None
    except AddressError as error:
        errors[f"email-{member.id}"] = str(error)
    try:
        mobile = normalize_mobile(mobile_raw) if mobile_raw.strip() else None
    except AddressError as error:
        errors[f"mobile-{member.id}"] = str(error)
    if errors:
        values = {f"email-{member.id}": email_raw, f"mobile-{member.id}": mobile_raw}
        return _render(errors, values, status=422)
    user.email, user.mobile = email, mobile
    db.session.commit()
    flash(_("Larmuppgifterna för %(name)s är sparade.", name=user.display_name), "success")
    return redirect(url_for("roster.page"))


def _form_time(form, name: str, missing: str, errors: dict[str, str]) -> datetime | None:
    """A local date-time from the form (core.local_time's rule: the gap and the repeated autumn
    hour are refused with a message), or None with the field's message in ``errors``."""
    try:
        value = form_instant(form, name, _policy().timezone)
    except LocalTimeError as error:
        errors[name] = error.message
        return None
    if value is None:
        errors[name] = missing
    return value


@bp.post("/roster/overrides")
@roles_required(*EDITORS)
def add_override():
    """A swap (the chosen person takes a whole rotation week) or an exception (from ... to ...)."""
    policy = _policy()
    form = request.form
    kind = form.get("kind")
    errors: dict[str, str] = {}
    user = _user(form.get("override_user_id"))
    if user is None or user.role not in ROSTER_ROLES or not user.is_active:
        errors["override_user_id"] = _("Välj vem som har beredskap.")
    starts = ends = None
    if kind == "swap":
        first, last = roster.calendar_weeks(policy)
        week = whole_number(form.get("week"), low=first, high=last)
        if week is None:
            errors["week"] = _("Välj vilken vecka som byts.")
        else:
            starts, ends = roster.week_start(week, policy), roster.week_start(week + 1, policy)
    elif kind == "exception":
        starts = _form_time(form, "starts_at", _("Ange när undantaget börjar, t.ex. 2026-12-24 17:00."), errors)
        ends = _form_time(form, "ends_at", _("Ange när undantaget slutar, t.ex. 2026-12-25 07:45."), errors)
        if starts is not None and ends is not None and ends <= starts:
            errors["ends_at"] = _("Undantaget måste sluta efter att det börjar.")
    else:
        errors["kind"] = _("Välj byte eller undantag.")
    reason = one_line(form.get("reason") or "")
    if len(reason) > 200:
        errors["reason"] = _("Skriv högst 200 tecken.")
    if errors:
        return _render(errors, dict(form), status=422)
    db.session.add(
        RosterOverride(
            user_id=user.id,
            starts_at=starts,
            ends_at=ends,
            reason=reason,
            created_by_id=g.user.id,
            created_at=current_clock().now(),
        )
    )
    db.session.commit()
    flash(_("Ändringen av beredskapen är sparad."), "success")
    return redirect(url_for("roster.page"))


@bp.post("/roster/overrides/<int:override_id>/delete")
@roles_required(*EDITORS)
def delete_override(override_id: int):
    override = db.session.get(RosterOverride, override_id)
    if override is None:
        abort(404, description=_("Ändringen finns inte."))
    db.session.delete(override)
    db.session.commit()
    flash(_("Ändringen av beredskapen är borttagen."), "success")
    return redirect(url_for("roster.page"))
