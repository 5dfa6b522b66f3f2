"""API tokens for admins (``/admin/tokens``): every token, create one for a user, revoke.

The list shows each token's user, name, prefix, when it was created and last used (Stockholm
local time) and whether it is revoked; never the secret, which is stored only as a hash. A new
token's secret is shown once, on a page that must not be cached (``Cache-Control: no-store``).
Revoking is a CSRF-protected post; a revoked token gets 401 from the API from then on.
Only admins reach these pages (others get 403).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from accounts.access import roles_required
from accounts.models import ApiToken, User
from accounts.roles import Role
from accounts.service import create_token, revoke_token
from core.clock import current_clock
from core.extensions import db
from core.numbers import record_id

log = logging.getLogger(__name__)
bp = Blueprint("tokens", __name__)

NAME_MAX = 100


def local_time(instant: datetime | None) -> str:
    if instant is None:
        return ""
    local = instant.astimezone(current_app.extensions["krisrutin.routine"].timezone)
    return f"{local:%Y-%m-%d %H:%M}"


def _users() -> list[User]:
    return list(db.session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.username)))


def _list_page(*, errors=None, values=None, status=200):
    tokens = list(db.session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))
    return render_template(
        "accounts/tokens.html",
        tokens=tokens,
        users=_users(),
        local_time=local_time,
        errors=errors or {},
        values=values or {"user_id": "", "name": ""},
        revoked=request.args.get("revoked") == "1",
    ), status


@bp.get("/admin/tokens")
@roles_required(Role.ADMIN)
def index():
    """Every API token, and the form that creates one."""
    return _list_page()


@bp.post("/admin/tokens")
@roles_required(Role.ADMIN)
def create():
    """Create a token for a user; its secret is shown once."""
    values = {
        "user_id": request.form.get("user_id", "").strip(),
        "name": " ".join(request.form.get("name", "").split()),
    }
    errors = {}
    user_id = record_id(values["user_id"])
    user = db.session.get(User, user_id) if user_id is not None else None
    if user is None or not user.is_active:
        errors["user_id"] = _("Välj en aktiv användare.")
    if not values["name"]:
        errors["name"] = _("Skriv vad nyckeln ska användas till.")
    elif len(values["name"]) > NAME_MAX:
        errors["name"] = _("Namnet får vara högst 100 tecken.")
    if errors:
        return _list_page(errors=errors, values=values, status=400)
    token, secret = create_token(db_session=db.session, user=user, name=values["name"], now=current_clock().now())
    db.session.commit()
    log.info("api token created", extra={"token_id": token.id, "user_id": user.id})
    return (
        render_template("accounts/tokens_created.html", token=token, secret=secret, user=user),
        200,
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@bp.post("/admin/tokens/<int:token_id>/revoke")
@roles_required(Role.ADMIN)
def revoke(token_id: int):
    """Revoke a token: it stops working at once."""
    token = db.session.get(ApiToken, token_id) or abort(404)
    if token.revoked_at is None:
        revoke_token(db_session=db.session, token=token, now=current_clock().now())
        db.session.commit()
        log.info("api token revoked", extra={"token_id": token.id})
    return redirect(url_for("tokens.index", revoked=1), code=303)
