"""Who may reach which endpoint: deny by default, decided in one place.

Every view declares its rule with :func:`public` or :func:`roles_required`; an endpoint without
a rule makes ``create_app`` fail (see :func:`verify_all_endpoints`) and would be refused with 403
even if that check were bypassed. Requests authenticate either with the staff session cookie or
with an ``Authorization: Bearer`` API token. CSRF is checked here for every unsafe request that
relies on the session cookie; token requests carry no ambient credentials and need no CSRF token,
nor do public webhooks marked with :func:`exempt_from_csrf`, whose callers sign each request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from urllib.parse import urlencode

from flask import abort, g, jsonify, redirect, request, session, url_for

from accounts import sessions
from accounts.roles import Role
from accounts.sessions import Limits
from core.clock import current_clock
from core.extensions import csrf, db

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The one thing in the signed cookie that says who is logged in: the id of a ``user_sessions`` row.
SESSION_KEY = "sid"


@dataclass(frozen=True)
class AccessRule:
    public: bool
    roles: frozenset[Role]


def public(view):
    """Mark a view as reachable without authentication (health, login, calendar, signed links)."""
    view.access_rule = AccessRule(public=True, roles=frozenset())
    return view


def exempt_from_csrf(view):
    """Skip the CSRF check for a *public* view that authenticates its caller itself.

    For webhooks called by a gateway (Twilio signs every request with ``X-Twilio-Signature``):
    the gateway has no session and no CSRF token. Only public views may carry the marker — a
    view for logged-in users must never accept a cross-site form post — and
    :func:`verify_all_endpoints` refuses to start otherwise. Place it below ``@public``.
    """
    view.csrf_exempt = True
    return view


def is_csrf_exempt(app, endpoint: str) -> bool:
    rule = access_rule_for(app, endpoint)
    view = app.view_functions.get(endpoint)
    return rule is not None and rule.public and getattr(view, "csrf_exempt", False) is True


def roles_required(*roles: Role):
    """Mark a view as reachable only by authenticated users holding one of ``roles``."""
    if not roles:
        raise ValueError("roles_required needs at least one role")
    rule = AccessRule(public=False, roles=frozenset(Role(r) for r in roles))

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            return view(*args, **kwargs)

        wrapper.access_rule = rule
        return wrapper

    return decorate


def access_rule_for(app, endpoint: str) -> AccessRule | None:
    if endpoint == "static":
        return AccessRule(public=True, roles=frozenset())
    return getattr(app.view_functions.get(endpoint), "access_rule", None)


def verify_all_endpoints(app) -> None:
    """Refuse to start when any route lacks an access rule."""
    missing = sorted(
        {rule.endpoint for rule in app.url_map.iter_rules() if access_rule_for(app, rule.endpoint) is None}
    )
    if missing:
        raise RuntimeError("endpoints without an access rule: " + ", ".join(missing))
    exempt_but_protected = sorted(
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(view, "csrf_exempt", False) and not getattr(access_rule_for(app, endpoint), "public", False)
    )
    if exempt_but_protected:
        raise RuntimeError("only public views may be exempt from CSRF: " + ", ".join(exempt_but_protected))


def is_api_request() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def _load_principal():
    """Set ``g.user`` (or None), ``g.auth_method`` ('token', 'session' or None) and, for a token,
    ``g.api_token_id`` (the audit log names the token that acted)."""
    from accounts.service import authenticate_token

    g.user = None
    g.auth_method = None
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        token = authenticate_token(db_session=db.session, secret=header[7:].strip(), now=current_clock().now())
        if token is None:
            return _deny(401, "the API token is not valid")
        g.user, g.auth_method, g.api_token_id = token.user, "token", token.id
        db.session.commit()  # last_used_at
        return None
    if session.get(SESSION_KEY) is not None:
        _load_session(session[SESSION_KEY])
    return None


def _load_session(session_id) -> None:
    """The cookie's session, if it is open: its row is read on every request (nothing is cached
    between requests), so a session ended anywhere opens nothing here at once."""
    now = current_clock().now()
    row = sessions.find(db_session=db.session, session_id=session_id)
    if row is not None and row.ended_at is None and not row.user.is_active:
        sessions.end(db_session=db.session, row=row, now=now, reason=sessions.END_DEACTIVATED)
        db.session.commit()
    if row is None or row.ended_at is not None:
        session.clear()
        return
    reason = sessions.expiry(row, now=now, limits=session_limits())
    if reason is not None:
        sessions.end(db_session=db.session, row=row, now=now, reason=reason)
        db.session.commit()
        session.clear()
        g.session_expired = True
        return
    if sessions.touch(row, now=now):
        db.session.commit()
    g.user, g.auth_method, g.login_session = row.user, "session", row


def session_limits() -> Limits:
    """The idle and absolute limits of sessions, from SESSION_IDLE_MINUTES and SESSION_MAX_HOURS."""
    from flask import current_app

    idle = current_app.config.get("SESSION_IDLE_MINUTES")
    max_hours = current_app.config.get("SESSION_MAX_HOURS")
    return Limits(
        idle=timedelta(minutes=idle) if idle else None, max_age=timedelta(hours=max_hours) if max_hours else None
    )


def begin_login_session(user) -> None:
    """Log this browser in as ``user`` with a new session id, never one it held before (a
    session the browser still held ends). Commits."""
    end_login_session(sessions.END_REPLACED)
    row, session_id = sessions.begin(
        db_session=db.session,
        user_id=user.id,
        now=current_clock().now(),
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )
    db.session.commit()
    session.permanent = True
    session[SESSION_KEY] = session_id
    g.login_session = row


def end_login_session(reason: str) -> None:
    """End the session this browser holds, if any, and empty its cookie. Commits."""
    row = sessions.find(db_session=db.session, session_id=session.get(SESSION_KEY))
    if row is not None and row.ended_at is None:
        sessions.end(db_session=db.session, row=row, now=current_clock().now(), reason=reason)
        db.session.commit()
    session.clear()
    g.pop("login_session", None)


def renew_login_session() -> None:
    """Give the current session a new id (its rights changed); the caller commits."""
    row = g.get("login_session")
    if row is not None:
        session[SESSION_KEY] = sessions.renew(row)


# Endpoints an administrator without a second factor may still reach (enrol, log out).
TOTP_ENROLMENT_ENDPOINTS = frozenset({"accounts.totp_enrol", "accounts.logout", "static"})


def _must_enrol_totp() -> bool:
    from flask import current_app

    return (
        g.auth_method == "session"
        and g.user is not None
        and g.user.role_enum is Role.ADMIN
        and not g.user.totp_secret
        and bool(current_app.config.get("ADMIN_TOTP_REQUIRED"))
    )


def _deny(status: int, message: str):
    if is_api_request():
        response = jsonify(error=message)
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="krisrutin"'
        return response
    if status == 401:
        return redirect(url_for("accounts.login") + "?" + urlencode({"next": request.full_path.rstrip("?")}))
    abort(status)


def enforce_access():
    """``before_request`` hook: authenticate, then apply the endpoint's rule."""
    from flask import current_app

    if request.endpoint is None:  # no such route: let Flask answer 404/405
        return None
    rule = access_rule_for(current_app, request.endpoint)
    denied = _load_principal()
    if denied is not None:
        return denied
    if rule is not None and not rule.public and g.user is None and g.get("session_expired"):
        if is_api_request():
            return _deny(401, "the session has expired: log in again")
        return redirect(url_for("accounts.login", expired=1, next=request.full_path.rstrip("?")))
    if _must_enrol_totp() and request.endpoint not in TOTP_ENROLMENT_ENDPOINTS:
        g.totp_required = True
        if is_api_request():
            return _deny(403, "administrators must enrol a second factor first")
        return redirect(url_for("accounts.totp_enrol"))
    if _must_enrol_totp():
        g.totp_required = True
    if rule is not None and not rule.public and g.user is None:
        # Before the CSRF check: an anonymous request to a protected endpoint is told to log in
        # (401), not that its CSRF token is missing; it can change nothing either way.
        return _deny(401, "authentication required: log in or send an API token")
    if (
        g.auth_method != "token"
        and request.method not in SAFE_METHODS
        and not is_csrf_exempt(current_app, request.endpoint)
    ):
        csrf.protect()
    if rule is None:
        return _deny(403, "this endpoint is not open to anyone")
    if rule.public:
        return None
    if g.user is None:
        return _deny(401, "authentication required: log in or send an API token")
    if g.user.role_enum not in rule.roles:
        return _deny(403, "your role may not use this endpoint")
    return None


def init_app(app) -> None:
    if app.config.get("WTF_CSRF_CHECK_DEFAULT", True):
        raise RuntimeError("set WTF_CSRF_CHECK_DEFAULT=False: enforce_access checks CSRF itself")
    # Session timeouts and the admin second factor, from app.config (tests may change them).
    # In the test environment they are off unless a test turns them on, so that the suite's
    # fake clock and admin logins elsewhere keep working; everywhere else they are on.
    app.config.setdefault("SESSION_IDLE_MINUTES", None if app.testing else 30)
    app.config.setdefault("SESSION_MAX_HOURS", None if app.testing else 12)
    app.config.setdefault("ADMIN_TOTP_REQUIRED", not app.testing)
    app.before_request(enforce_access)
