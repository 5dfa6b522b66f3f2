"""The account page (``/account``): where one is logged in, "Logga ut överallt", a new password.

Every user reaches only their own account. The sessions listed are those that would still open
a page (:func:`accounts.sessions.open_sessions`), with when each began and was last used, from
which address and which browser; the one in use is marked. "Logga ut överallt" ends all of them,
this one included. A new password needs the current one (a wrong one counts towards the login
lock-out) and ends every other session; this one continues under a new id.
"""

from __future__ import annotations

import logging

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from accounts import security, sessions
from accounts.access import renew_login_session, roles_required, session_limits
from accounts.roles import ALL_ROLES
from accounts.service import MIN_PASSWORD_LENGTH, check_password, set_password
from core import audit
from core.clock import current_clock
from core.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("account", __name__, template_folder="templates")


def _page(*, errors: dict[str, str] | None = None, status: int = 200):
    user = g.user
    rows = sessions.open_sessions(
        db_session=db.session, user_id=user.id, now=current_clock().now(), limits=session_limits()
    )
    current = g.get("login_session")
    return render_template(
        "accounts/account.html",
        user=user,
        sessions=rows,
        current_id=None if current is None else current.id,
        errors=errors or {},
        min_length=MIN_PASSWORD_LENGTH,
    ), status


@bp.get("/account")
@roles_required(*ALL_ROLES)
def page():
    """The user's open sessions, the button that ends them all, and the password form."""
    return _page()


@bp.post("/account/logout-everywhere")
@roles_required(*ALL_ROLES)
def logout_everywhere():
    """End every session of the user, on every device, this one included."""
    user_id = g.user.id
    ended = sessions.end_all(
        db_session=db.session, user_id=user_id, now=current_clock().now(), reason=sessions.END_EVERYWHERE
    )
    db.session.commit()
    audit.viewed("user", user_id, action="logout", everywhere=True, sessions=ended)
    session.clear()
    log.info("logged out everywhere", extra={"user_id": user_id, "sessions": ended})
    flash(_("Du är utloggad överallt, även här. Logga in igen för att fortsätta."), "success")
    return redirect(url_for("accounts.login"))


@bp.post("/account/password")
@roles_required(*ALL_ROLES)
def change_password():
    """A new password: the current one first, the new one twice. Other sessions end."""
    user = g.user
    now = current_clock().now()
    errors: dict[str, str] = {}
    new = request.form.get("new_password", "")
    if security.is_locked(user, now):
        errors["current_password"] = _("För många felaktiga lösenord. Försök igen om 15 minuter.")
    elif not check_password(user, request.form.get("current_password", "")):
        security.record_failure(db.session, user=user, username=user.username, ip=request.remote_addr or "", now=now)
        db.session.commit()
        errors["current_password"] = _("Det nuvarande lösenordet stämmer inte.")
    if len(new) < MIN_PASSWORD_LENGTH:
        errors["new_password"] = _("Det nya lösenordet måste ha minst %(n)s tecken.", n=MIN_PASSWORD_LENGTH)
    elif new != request.form.get("new_password_again", ""):
        errors["new_password_again"] = _("Skriv samma nya lösenord i båda fälten.")
    if errors:
        return _page(errors=errors, status=400)
    ended = set_password(db_session=db.session, user=user, password=new, now=now, keep=g.get("login_session"))
    security.reset_failures(user)
    renew_login_session()  # whoever saw this session's old cookie cannot use it with the new password
    db.session.commit()
    log.info("password changed", extra={"user_id": user.id, "sessions": ended})
    flash(_("Lösenordet är bytt. Du har loggats ut på alla andra enheter."), "success")
    return redirect(url_for("account.page"))
