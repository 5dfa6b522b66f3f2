"""Staff login, logout and the start page."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from accounts.access import public, roles_required
from accounts.roles import ALL_ROLES
from accounts.service import authenticate_password
from core.clock import current_clock
from core.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("accounts", __name__, template_folder="templates")


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never redirect a login to another host."""
    if not target:
        return url_for("accounts.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("accounts.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    errors: dict[str, str] = {}
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not username:
            errors["username"] = _("Ange ditt användarnamn")
        if not password:
            errors["password"] = _("Ange ditt lösenord")
        if not errors:
            user = authenticate_password(
                db_session=db.session, username=username, password=password, now=current_clock().now()
            )
            if user is None:
                log.info("login failed")
                errors["password"] = _("Fel användarnamn eller lösenord")
            else:
                db.session.commit()
                session.clear()
                session.permanent = True
                session["uid"] = user.id
                session["sv"] = user.session_version
                log.info("login", extra={"user_id": user.id})
                return redirect(_safe_next(request.args.get("next")))
    status = 400 if errors else 200
    return render_template("accounts/login.html", errors=errors, username=username), status


@bp.post("/logout")
@roles_required(*ALL_ROLES)
def logout():
    session.clear()
    return redirect(url_for("accounts.login"))


@bp.get("/")
@roles_required(*ALL_ROLES)
def index():
    """Start page: who holds the routine right now, and this month's contact check."""
    from worktime.calendar import check_plan, responsible_at

    policy = current_app.extensions["krisrutin.routine"]
    now = current_clock().now()
    local_now = now.astimezone(policy.timezone)
    return render_template(
        "accounts/index.html",
        user=g.user,
        now=local_now,
        responsibility=responsible_at(now, policy),
        plan=check_plan(local_now.year, local_now.month, policy),
        timezone=policy.timezone,
    )
