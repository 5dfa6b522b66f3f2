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
from functools import wraps
from urllib.parse import urlencode

from flask import abort, g, jsonify, redirect, request, session, url_for

from accounts.roles import Role
from core.clock import current_clock
from core.extensions import csrf, db

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    from accounts.service import authenticate_token, get_user

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
    user_id = session.get("uid")
    if user_id is not None:
        user = get_user(db_session=db.session, user_id=user_id)
        if user is None or not user.is_active or session.get("sv") != user.session_version:
            session.clear()
        elif _session_expired():
            session.clear()
            g.session_expired = True
        else:
            g.user, g.auth_method = user, "session"
            session["seen_at"] = int(current_clock().now().timestamp())
    return None


def _session_expired() -> bool:
    """Idle for SESSION_IDLE_MINUTES, or logged in longer than SESSION_MAX_HOURS (app clock)."""
    from flask import current_app

    now = current_clock().now().timestamp()
    idle = current_app.config.get("SESSION_IDLE_MINUTES")
    max_hours = current_app.config.get("SESSION_MAX_HOURS")
    login_at = session.get("login_at")
    seen_at = session.get("seen_at", login_at)
    if login_at is None:  # a session from before timeouts existed: start counting now
        session["login_at"] = session["seen_at"] = int(now)
        return False
    if idle and seen_at is not None and now - seen_at > idle * 60:
        return True
    return bool(max_hours and now - login_at > max_hours * 3600)


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
