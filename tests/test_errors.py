"""Errors reach people as clear messages, never as stack traces."""

from flask import request

from accounts.access import public
from tests.conftest import build_app


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
