"""Request-level protections: nothing with personal data may be cached, oversized requests are
refused with a clear 413 before anything is changed, and behind a trusted reverse proxy the
client's own address is what the audit log (and the login limits) see."""

from __future__ import annotations

from sqlalchemy import select

from core.extensions import db
from tests.conftest import log_in


def test_pages_and_api_answers_are_never_stored_but_static_files_may_be(app, client, make_user, make_token):
    user_id, name, _ = make_user("team")
    token = make_token(user_id)
    log_in(client, name)
    assert client.get("/register/").headers["Cache-Control"] == "no-store"
    api = client.get("/api/v1/providers", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200 and api.headers["Cache-Control"] == "no-store"
    static = client.get("/static/css/check.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("Cache-Control", "")


def test_an_oversized_request_is_refused_with_413_and_changes_nothing(make_app):
    from contacts.models import Provider

    app = make_app(MAX_REQUEST_BYTES="4096")
    client = app.test_client()
    with app.app_context():
        from accounts.service import create_token, create_user
        from core.clock import current_clock

        user = create_user(
            db_session=db.session,
            username="team-big",
            display_name="Team",
            role="team",
            now=current_clock().now(),
            password="a-long-test-password",
        )
        _, token = create_token(db_session=db.session, user=user, name="t", now=current_clock().now())
        db.session.commit()
    body = {"name": "Hemtjänst Norr", "organisation_number": "556016-0680", "note": "x" * 5000}
    response = client.post("/api/v1/providers", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413
    assert "MAX_REQUEST_BYTES" in response.get_json()["error"]
    page = client.post("/login", data={"username": "team-big", "password": "p" * 5000})
    assert page.status_code == 413 and "större än tjänsten tar emot" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Provider)).all() == []


def _login_addresses(app):
    from core.audit import AuditEntry

    with app.app_context():
        return [e.ip for e in db.session.scalars(select(AuditEntry).where(AuditEntry.action == "login"))]


def test_behind_a_trusted_proxy_the_audit_log_records_the_clients_address(make_app):
    from accounts.service import create_user
    from core.clock import current_clock

    for proxies, expected in (("0", "127.0.0.1"), ("1", "203.0.113.7")):
        app = make_app(TRUSTED_PROXIES=proxies)
        with app.app_context():
            create_user(
                db_session=db.session,
                username=f"team-{proxies}",
                display_name="Team",
                role="team",
                now=current_clock().now(),
                password="a-long-test-password",
            )
            db.session.commit()
        client = app.test_client()
        # Without a trusted proxy the header is the client's own claim and is ignored.
        client.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.7"
        log_in(client, f"team-{proxies}")
        assert _login_addresses(app)[-1] == expected
