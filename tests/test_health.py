from tests.conftest import build_app


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_reports_a_migrated_database_as_ready(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "migrations": "current"}


def test_readyz_is_unavailable_until_migrations_have_run(sqlite_url, clock):
    app = build_app(sqlite_url, clock)  # nothing migrated
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["migrations"] == "pending"
    assert "db upgrade" in body["hint"]


def test_readyz_is_unavailable_when_the_database_is_unreachable(clock, tmp_path):
    app = build_app("postgresql://nobody@127.0.0.1:1/none", clock)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unreachable"


def test_every_response_carries_security_headers(client):
    for url in ("/login", "/healthz", "/no-such-page"):
        headers = client.get(url).headers
        assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'self': no inline scripts
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in headers  # plain HTTP in tests


def test_hsts_is_sent_when_served_over_https(sqlite_url, clock):
    app = build_app(sqlite_url, clock, PUBLIC_BASE_URL="https://krisrutin.example.se")
    assert app.test_client().get("/healthz").headers["Strict-Transport-Security"].startswith("max-age=")
