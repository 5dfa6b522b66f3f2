"""Staff login, logout and the start page."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import segno
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from accounts import security, sessions
from accounts.access import begin_login_session, end_login_session, public, renew_login_session, roles_required
from accounts.roles import ALL_ROLES
from accounts.service import authenticate_password, get_user, get_user_by_username
from core import audit, todo
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


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _start_session(user) -> None:
    """Grant the logged-in state: only here, after the password and (if enrolled) the code, with
    a session id the browser never held before."""
    begin_login_session(user)
    audit.viewed("user", user.id, action="login", actor_kind="user", actor_id=user.id)


def _locked_message() -> str:
    return _("För många misslyckade inloggningsförsök. Kontot är spärrat i 15 minuter. Försök igen senare.")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    errors: dict[str, str] = {}
    username = ""
    notice = None
    if request.args.get("expired"):
        notice = _("Du har varit inaktiv för länge och har loggats ut. Logga in igen.")
    if request.method == "POST":
        now = current_clock().now()
        ip = _client_ip()
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if security.ip_blocked(db.session, ip, now):
            log.warning("login refused: too many failures from one address")
            errors["password"] = _(
                "För många misslyckade inloggningar från din adress. Vänta 15 minuter och försök igen."
            )
            return render_template("accounts/login.html", errors=errors, username=username, notice=None), 429
        if not username:
            errors["username"] = _("Ange ditt användarnamn")
        if not password:
            errors["password"] = _("Ange ditt lösenord")
        if not errors:
            known = get_user_by_username(db_session=db.session, username=username)
            if security.is_locked(known, now) or (
                known is None and security.unknown_account_locked(db.session, username, now)
            ):
                security.record_failure(db.session, user=None, username=username, ip=ip, now=now)
                db.session.commit()
                errors["password"] = _locked_message()
            else:
                user = authenticate_password(db_session=db.session, username=username, password=password, now=now)
                if user is None:
                    security.record_failure(db.session, user=known, username=username, ip=ip, now=now)
                    db.session.commit()
                    log.info("login failed")
                    if security.is_locked(known, now) or (
                        known is None and security.unknown_account_locked(db.session, username, now)
                    ):
                        errors["password"] = _locked_message()
                    else:
                        errors["password"] = _("Fel användarnamn eller lösenord")
                else:
                    security.reset_failures(user)
                    db.session.commit()
                    if user.totp_secret:
                        end_login_session(sessions.END_REPLACED)
                        session["pending_uid"] = user.id
                        session["pending_at"] = int(now.timestamp())
                        session["pending_next"] = _safe_next(request.args.get("next"))
                        return redirect(url_for("accounts.login_code"))
                    _start_session(user)
                    log.info("login", extra={"user_id": user.id})
                    return redirect(_safe_next(request.args.get("next")))
    status = 400 if errors else 200
    return render_template("accounts/login.html", errors=errors, username=username, notice=notice), status


PENDING_SECONDS = 300


@bp.route("/login/code", methods=["GET", "POST"])
@public
def login_code():
    """The second step for users with TOTP: the password was right, access is not granted yet."""
    now = current_clock().now()
    user_id = session.get("pending_uid")
    pending_at = session.get("pending_at") or 0
    user = get_user(db_session=db.session, user_id=user_id) if user_id is not None else None
    if user is None or not user.totp_secret or now.timestamp() - pending_at > PENDING_SECONDS:
        for key in ("pending_uid", "pending_at", "pending_next"):
            session.pop(key, None)
        if request.method == "POST":
            return redirect(url_for("accounts.login"))
        notice = _("Logga in med användarnamn och lösenord först.")
        return render_template("accounts/login.html", errors={}, username="", notice=notice)
    errors: dict[str, str] = {}
    if request.method == "POST":
        recovery = request.form.get("recovery_code", "").strip()
        if security.is_locked(user, now):
            errors["recovery_code" if recovery else "code"] = _locked_message()
        elif (
            security.use_recovery_code(user, recovery)
            if recovery
            else security.verify_user_code(user, request.form.get("code", ""), now)
        ):
            security.reset_failures(user)
            user.last_login_at = now
            target = session.get("pending_next") or url_for("accounts.index")
            if recovery:
                audit.record("login", "user", user.id, actor_kind="user", actor_id=user.id, factor="recovery_code")
            db.session.commit()
            _start_session(user)
            if recovery:
                log.info("login with a recovery code", extra={"user_id": user.id})
                flash(
                    _(
                        "Du loggade in med en reservkod. Oanvända reservkoder: %(n)s. Skapa nya om telefonen är borta.",
                        n=len(user.totp_recovery or []),
                    ),
                    "warning",
                )
            log.info("login", extra={"user_id": user.id})
            return redirect(_safe_next(target))
        else:
            security.record_failure(db.session, user=user, username=user.username, ip=_client_ip(), now=now)
            db.session.commit()
            log.info("login code refused", extra={"user_id": user.id})
            if security.is_locked(user, now):
                errors["recovery_code" if recovery else "code"] = _locked_message()
            elif recovery:
                errors["recovery_code"] = _("Reservkoden stämmer inte eller är redan använd.")
            else:
                errors["code"] = _("Koden stämmer inte. Ange den sexsiffriga koden från din app.")
    return render_template("accounts/login_code.html", errors=errors), 400 if errors else 200


def _qr_code_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (scaled by CSS), named for screen readers.

    segno writes no ARIA attributes, so role and name go on its <svg> element here. A white
    background and the standard quiet zone keep the code readable whatever is around it."""
    svg = segno.make_qr(uri).svg_inline(omitsize=True, svgclass="qr-code", lineclass=None, light="#fff")
    named = Markup('<svg role="img" aria-label="{0}" ').format(
        _("QR-kod för att lägga till Krisrutin i din autentiseringsapp")
    )
    return named + Markup(svg.removeprefix("<svg "))  # noqa: S704 (segno's markup: numbers and fixed attributes)


@bp.route("/account/totp", methods=["GET", "POST"])
@roles_required(*ALL_ROLES)
def totp_enrol():
    """Enrol an authenticator app: show the secret (as text and as a QR code), confirm with a code.
    Admins must do this. Like every page, the answer is not stored (``Cache-Control: no-store``)."""
    user = g.user
    now = current_clock().now()
    if user.totp_secret:
        return render_template(
            "accounts/totp.html", enrolled=True, errors={}, recovery_left=len(user.totp_recovery or [])
        )
    login_session = g.get("login_session")
    if login_session is None:  # an API token: the key is shown and confirmed in a browser session
        abort(400, description=_("Tvåstegsverifiering aktiveras i webbläsaren, inloggad med ditt lösenord."))
    secret = login_session.totp_pending
    if not secret:
        secret = login_session.totp_pending = security.new_totp_secret()
        db.session.commit()
    errors: dict[str, str] = {}
    if request.method == "POST":
        step = security.matching_step(secret, request.form.get("code", ""), now)
        if step is None:
            errors["code"] = _("Koden stämmer inte. Ange den sexsiffriga koden från din app.")
        else:
            user.totp_secret = secret
            user.totp_last_step = step
            login_session.totp_pending = None
            renew_login_session()  # the session's rights grew: a copy of the old cookie opens nothing
            db.session.commit()
            log.info("totp enrolled", extra={"user_id": user.id})
            flash(
                _("Tvåstegsverifiering är aktiverad. Skapa reservkoder nu, för dagen då telefonen inte finns."),
                "success",
            )
            return redirect(url_for("accounts.index"))
    uri = security.provisioning_uri(secret, user.username)
    return (
        render_template(
            "accounts/totp.html",
            enrolled=False,
            errors=errors,
            secret=secret,
            uri=uri,
            qr_code=_qr_code_svg(uri),
            required=g.get("totp_required", False),
        ),
        400 if errors else 200,
    )


@bp.post("/account/totp/recovery-codes")
@roles_required(*ALL_ROLES)
def recovery_codes():
    """New one-time recovery codes (the old ones stop working), shown once on this answer only."""
    user = g.user
    if not user.totp_secret:
        abort(400, description=_("Aktivera tvåstegsverifiering innan du skapar reservkoder."))
    codes = security.new_recovery_codes(user)
    audit.changed("user", user.id, fields=["totp_recovery"])
    db.session.commit()
    log.info("recovery codes created", extra={"user_id": user.id})
    return render_template("accounts/recovery_codes.html", codes=codes)


@bp.post("/logout")
@roles_required(*ALL_ROLES)
def logout():
    audit.viewed("user", g.user.id, action="logout")
    end_login_session(sessions.END_LOGOUT)
    return redirect(url_for("accounts.login"))


@bp.get("/")
@roles_required(*ALL_ROLES)
def index():
    """Start page: what to do now (the task list every domain fills through :mod:`core.todo`,
    most urgent and newest first), who holds the routine right now, and this month's check plan."""
    from worktime.calendar import check_plan, responsible_at

    policy = current_app.extensions["krisrutin.routine"]
    now = current_clock().now()
    local_now = now.astimezone(policy.timezone)
    items = todo.collect(current_app, db.session, now, g.user)
    return render_template(
        "accounts/index.html",
        user=g.user,
        now=local_now,
        today=local_now.date(),
        tasks=[item for item in items if item.is_task],
        statuses=[item for item in items if not item.is_task],
        responsibility=responsible_at(now, policy),
        plan=check_plan(local_now.year, local_now.month, policy),
        timezone=policy.timezone,
    )
