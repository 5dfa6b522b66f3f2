"""Deny by default: only health, login, the calendar and public link pages answer anonymously."""

import pytest
from flask import Blueprint
from werkzeug.routing import IntegerConverter

from accounts.access import access_rule_for, exempt_from_csrf, public, roles_required
from tests.conftest import build_app, log_in

# Endpoints that answer without authentication, by design (issue #2). Extending this list is a
# security decision: say why in the commit.
PUBLIC_ENDPOINTS = {
    "static",
    "health.healthz",
    "health.readyz",
    "accounts.login",
    # The login's second step (/login/code): reached with the password checked but no
    # access granted yet; it only accepts the one-time code of the user kept in the session.
    "accounts.login_code",
    "worktime_api.responsible",
    "worktime_api.check_plan",
    # Twilio's webhooks: Twilio has no session; every request must carry Twilio's signature
    # (X-Twilio-Signature, our Auth Token) for our public URL, which authenticates it instead.
    "twilio_webhooks.status_callback",
    "twilio_webhooks.inbound_sms",
    "twilio_webhooks.call_gather",
    "twilio_webhooks.call_status",
    # The OpenAPI description: it describes the interface and holds no data, and an integrator
    # needs it before being given a token.
    "openapi.document",
    # The monthly check's personal links (/k/<token>): contact persons answer without an account.
    # Each token is signed (HMAC under the secret key) for one recipient and valid only while its
    # month's check is open; the form posts still need the session's CSRF token.
    "check_public.link",
    "check_public.correct",
    # The on-call roster's iCalendar feeds (/roster/feed/<token>.ics): a phone's calendar
    # subscribes without a login. Each token is an HMAC under the secret key of one member (and
    # their session version) or of the team; it only reads shifts.
    "roster.feed",
    # The provider's page of an incident's letters (/d/<token>): contact persons read the
    # letters and acknowledge them without an account. Each token is signed (HMAC under the secret
    # key) for one letter receipt; the acknowledgement post still needs the session's CSRF token.
    "provider_page.page",
    # The provider's visit list (/v/<token>): staff of a provider read their open visits,
    # acknowledge them and mark them done at night without an account. Each token is signed (HMAC
    # under the secret key) for one visit alert and shows only that alert's provider; the posts
    # still need the session's CSRF token.
    "visit_page.page",
    "visit_page.mark",
}


def test_the_set_of_public_endpoints_is_exactly_the_allowed_one(app):
    public_endpoints = {r.endpoint for r in app.url_map.iter_rules() if access_rule_for(app, r.endpoint).public}
    assert public_endpoints == PUBLIC_ENDPOINTS


def _url_for_rule(app, rule):
    values = {
        argument: ("1" if isinstance(rule._converters[argument], IntegerConverter) else "x")
        for argument in rule.arguments
    }
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def test_every_other_endpoint_refuses_anonymous_requests(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = _url_for_rule(app, rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            if url.startswith("/api/") or url == "/metrics":
                assert response.status_code == 401, (method, url, response.status_code)
            elif method == "GET":
                assert response.status_code == 302, (method, url, response.status_code)
                assert response.headers["Location"].startswith("/login?next=")
            else:
                # Unsafe methods without a session are stopped (CSRF or login) before any work.
                assert response.status_code in (302, 400), (method, url, response.status_code)
            checked += 1
    assert checked >= 3


def test_an_endpoint_without_an_access_rule_stops_start_up(sqlite_url, clock, monkeypatch):
    import worktime

    bp = Blueprint("forgotten", __name__)

    @bp.get("/forgotten")
    def forgotten():
        return "should never be served"

    original = worktime.init_app

    def init_with_forgotten(app):
        original(app)
        app.register_blueprint(bp)

    monkeypatch.setattr(worktime, "init_app", init_with_forgotten)
    with pytest.raises(RuntimeError, match=r"forgotten\.forgotten"):
        build_app(sqlite_url, clock)


def test_public_marker_is_needed_explicitly():
    def view():
        return ""

    assert getattr(view, "access_rule", None) is None
    assert public(view).access_rule.public is True


def _add_blueprint_at_start_up(monkeypatch, bp):
    import worktime

    original = worktime.init_app

    def init_with_extra(app):
        original(app)
        app.register_blueprint(bp)

    monkeypatch.setattr(worktime, "init_app", init_with_extra)


def test_only_views_marked_exempt_skip_the_csrf_check(sqlite_url, clock, monkeypatch):
    bp = Blueprint("hooks", __name__)

    @bp.post("/hooks/signed")
    @public
    @exempt_from_csrf
    def signed():
        return "accepted"

    @bp.post("/hooks/plain")
    @public
    def plain():
        return "accepted"

    _add_blueprint_at_start_up(monkeypatch, bp)
    app = build_app(sqlite_url, clock)
    client = app.test_client()
    assert client.post("/hooks/signed", data={"x": "1"}).status_code == 200
    assert client.post("/hooks/plain", data={"x": "1"}).status_code == 400  # no CSRF token


def test_exempt_webhook_needs_no_csrf_token_even_with_a_staff_session(client, make_user):
    # The marker is honoured whoever calls: the webhook authenticates by its signature, not the session.
    _, username, password = make_user("team")
    log_in(client, username, password)
    response = client.post("/webhooks/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "sent"})
    assert response.status_code == 403  # refused for its missing Twilio signature, not for CSRF (400)


def test_a_role_protected_view_cannot_be_exempt_from_csrf(sqlite_url, clock, monkeypatch):
    bp = Blueprint("unsafe", __name__)

    @bp.post("/unsafe")
    @roles_required("team")
    @exempt_from_csrf
    def unsafe():
        return "would accept cross-site posts"

    _add_blueprint_at_start_up(monkeypatch, bp)
    with pytest.raises(RuntimeError, match=r"only public views may be exempt from CSRF: unsafe\.unsafe"):
        build_app(sqlite_url, clock)
