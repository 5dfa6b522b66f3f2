"""Errors reach people as clear messages, never as stack traces."""

from flask import request

from accounts.access import public
from tests.conftest import build_app, log_in


def _app_with_a_broken_view(sqlite_url, clock):
    app = build_app(sqlite_url, clock)

    @public
    def broken():
        raise RuntimeError("secret internals of " + request.args.get("phone", ""))

    app.add_url_rule("/broken", "broken", broken)
    app.add_url_rule("/api/v1/broken", "api_broken", broken)
    return app


def test_an_unexpected_error_shows_a_plain_page_and_is_logged_without_details(sqlite_url, clock, caplog):
    client = _app_with_a_broken_view(sqlite_url, clock).test_client()
    response = client.get("/broken?phone=+46701740605")
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Något gick fel hos oss" in html
    assert "Traceback" not in html and "secret internals" not in html
    record = next(r for r in caplog.records if r.getMessage().startswith("unhandled error"))
    assert "GET /broken" in record.getMessage()
    assert record.error == "RuntimeError"
    assert record.where.startswith("tests/test_errors.py:")
    assert "raise RuntimeError" in record.stack and "46701740605" not in record.stack  # frames, not values
    assert record.exc_info is None  # the formatted exception would repeat its message


def test_api_errors_are_json(sqlite_url, clock):
    client = _app_with_a_broken_view(sqlite_url, clock).test_client()
    failure = client.get("/api/v1/broken")
    assert failure.status_code == 500
    assert failure.get_json() == {"error": "Something went wrong on our side. The error has been logged."}
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and "error" in missing.get_json()
    wrong_method = client.post("/api/v1/calendar/responsible")
    assert wrong_method.status_code == 405 and "error" in wrong_method.get_json()


def test_a_wrong_method_answers_405_with_the_allowed_methods(sqlite_url, clock):
    """RFC 9110: a 405 lists the methods the resource supports (found by tests/api/test_fuzz.py:
    the JSON and page error handlers dropped the Allow header)."""
    client = build_app(sqlite_url, clock).test_client()
    for method, url in (("TRACE", "/api/v1/providers"), ("DELETE", "/api/v1/calendar/check-plan"), ("PUT", "/login")):
        response = client.open(url, method=method)
        assert response.status_code == 405, (method, url)
        assert "GET" in response.headers["Allow"].split(", "), (method, url)
        assert response.headers["Content-Type"].startswith(
            "application/json" if url.startswith("/api/") else "text/html"
        ), (method, url)


def test_unknown_pages_get_a_swedish_not_found_page(client):
    response = client.get("/finns-inte")
    assert response.status_code == 404
    assert "Sidan finns inte" in response.get_data(as_text=True)


# --- the error pages: Swedish first, whom to contact now, JSON under /api/ ----------------------

TEAM_EMAIL = "valfardsteknik@kommun.example.se"
TEAM_MOBILE = "+46701999999"
HEADINGS = {
    400: ("Begäran kunde inte utföras", "The request could not be carried out"),
    403: ("Du har inte behörighet till den här sidan", "You do not have access to this page"),
    404: ("Sidan finns inte", "Page not found"),
    405: ("Begäran kunde inte utföras", "The request could not be carried out"),
    410: ("Sidan finns inte längre", "The page no longer exists"),
    413: ("Det du skickade är för stort", "What you sent is too large"),
    429: ("För många försök", "Too many attempts"),
    500: ("Något gick fel hos oss", "Something went wrong on our side"),
}


def _app_with_every_error(make_app, **settings):
    from flask import abort

    app = make_app(TEAM_EMAIL=TEAM_EMAIL, TEAM_MOBILE=TEAM_MOBILE, **settings)

    @public
    def failing(code):
        abort(code)

    app.add_url_rule("/fel/<int:code>", "failing", failing)
    app.add_url_rule("/api/v1/fel/<int:code>", "api_failing", failing)
    return app


def test_every_error_page_speaks_swedish_and_ends_with_whom_to_contact(make_app):
    from werkzeug.exceptions import default_exceptions

    app = _app_with_every_error(make_app)
    client = app.test_client()
    for code, (heading, _) in HEADINGS.items():
        response = client.get(f"/fel/{code}")
        html = response.get_data(as_text=True)
        assert response.status_code == code and response.mimetype == "text/html", code
        assert f"<h1>{heading}</h1>" in html and '<html lang="sv">' in html, code
        assert default_exceptions[code].description not in html, code  # Werkzeug's English text
        assert "Behöver du hjälp nu?" in html and f"mailto:{TEAM_EMAIL}" in html, code  # office hours: the team
        api = client.get(f"/api/v1/fel/{code}")
        assert api.status_code == code and api.mimetype == "application/json" and api.get_json()["error"], code
    english = app.test_client()
    for code, (_, heading) in HEADINGS.items():
        html = english.get(f"/fel/{code}", query_string={"lang": "en"}).get_data(as_text=True)
        assert f"<h1>{heading}</h1>" in html and "Do you need help now?" in html, code


def test_outside_office_hours_the_error_page_names_the_officer_on_call(make_app, make_user, clock):
    from datetime import datetime, timezone

    from accounts.models import User
    from core.extensions import db
    from crisis.oncall.models import RosterMember

    app = _app_with_every_error(make_app)
    user_id, _, _ = make_user(role="on_call", username="tib")
    with app.app_context():
        officer = db.session.get(User, user_id)
        officer.mobile = "+46701777777"
        db.session.add(RosterMember(user_id=user_id, position=0, is_active=True))
        db.session.commit()
    client = app.test_client()
    assert "tel:+46701777777" not in client.get("/finns-inte").get_data(as_text=True)  # Monday 10:00: the team
    clock.set(datetime(2026, 11, 23, 21, 0, tzinfo=timezone.utc))  # 22:00 in Stockholm
    html = client.get("/finns-inte").get_data(as_text=True)
    assert "tjänsteman i beredskap Test tib" in html and "tel:+46701777777" in html


def test_real_errors_answer_swedish_pages(make_app, make_user):
    app = _app_with_every_error(make_app, MAX_REQUEST_BYTES="4096")
    client = app.test_client()
    wrong_method = client.put("/login")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["Allow"]
    assert "Sidan kan inte användas på det sättet" in wrong_method.get_data(as_text=True)
    too_large = client.post("/login", data={"username": "x", "password": "p" * 5000})
    assert too_large.status_code == 413 and "högst 4 kB åt gången" in too_large.get_data(as_text=True)
    no_token = client.post("/login", data={"username": "x", "password": "y"})
    assert no_token.status_code == 400 and "Formuläret hade gått ut" in no_token.get_data(as_text=True)
    _, username, password = make_user("team")
    log_in(client, username, password)
    forbidden = client.get("/audit")
    assert forbidden.status_code == 403 and "Ditt konto får inte göra det här" in forbidden.get_data(as_text=True)


def test_a_failed_database_statement_still_gets_the_page_with_whom_to_contact(make_app, make_user):
    from sqlalchemy import text

    from core.extensions import db

    app = _app_with_every_error(make_app)

    @public
    def broken_query():
        db.session.execute(text("SELECT * FROM no_such_table"))  # PostgreSQL: the transaction is now failed

    app.add_url_rule("/trasig", "broken_query", broken_query)
    _, username, password = make_user("team")
    client = app.test_client()
    log_in(client, username, password)
    response = client.get("/trasig")
    html = response.get_data(as_text=True)
    assert response.status_code == 500 and "<h1>Något gick fel hos oss</h1>" in html
    assert "Felet är loggat" in html and f"mailto:{TEAM_EMAIL}" in html and "Logga ut" in html


def test_when_the_layout_or_the_calendar_fails_the_page_still_names_the_team(make_app, monkeypatch):
    import core.errors
    from core.contact_now import register_lookup

    app = _app_with_every_error(make_app)

    def no_calendar(db_session, instant):
        raise RuntimeError("the roster cannot be read")

    register_lookup(app, no_calendar)
    page = app.test_client().get("/finns-inte").get_data(as_text=True)
    assert "<h1>Sidan finns inte</h1>" in page and f"tel:{TEAM_MOBILE}" in page
    assert 'class="site-header"' in page  # the whole page: only the calendar's answer was replaced

    real = core.errors.render_template

    def layout_fails(name, **context):
        if name == "error.html":
            raise RuntimeError("the layout cannot be rendered")
        return real(name, **context)

    monkeypatch.setattr(core.errors, "render_template", layout_fails)
    plain = app.test_client().get("/fel/500")
    html = plain.get_data(as_text=True)
    assert plain.status_code == 500 and "<h1>Något gick fel hos oss</h1>" in html and f"tel:{TEAM_MOBILE}" in html
    assert 'class="site-header"' not in html  # the plain page, which needs no database
