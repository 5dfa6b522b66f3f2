"""Login lock-out per user and per IP address, and session timeouts (fake clock, both databases)."""

import logging

from accounts.models import User
from core.extensions import db
from tests.conftest import csrf_token_from, log_in

LOCKED = "Kontot är spärrat i 15 minuter"


def fail(client, username, times):
    responses = [log_in(client, username, "not-the-password") for _ in range(times)]
    return responses[-1]


def test_five_failures_lock_the_account_for_fifteen_minutes(app, client, clock, make_user, caplog):
    user_id, username, password = make_user("team")
    assert "Fel användarnamn eller lösenord" in fail(client, username, 4).get_data(as_text=True)
    with caplog.at_level(logging.INFO):
        fifth = fail(client, username, 1)
    assert fifth.status_code == 400 and LOCKED in fifth.get_data(as_text=True)
    locked = [r for r in caplog.records if "account locked" in r.getMessage()]
    assert locked and locked[0].user_id == user_id
    assert username not in caplog.text  # the lock-out is logged with the id only
    # Even the right password is refused while the account is locked.
    refused = log_in(client, username, password)
    assert refused.status_code == 400 and LOCKED in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    clock.advance(minutes=14)
    assert LOCKED in log_in(client, username, password).get_data(as_text=True)
    clock.advance(minutes=2)
    assert log_in(client, username, password).status_code == 302
    assert client.get("/").status_code == 200
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user.failed_logins == 0 and user.locked_until is None


def test_failures_spread_over_more_than_fifteen_minutes_do_not_lock(client, clock, make_user):
    _, username, password = make_user("team")
    fail(client, username, 4)
    clock.advance(minutes=16)
    fail(client, username, 4)
    assert log_in(client, username, password).status_code == 302


def test_a_successful_login_resets_the_count(client, make_user):
    _, username, password = make_user("team")
    fail(client, username, 4)
    assert log_in(client, username, password).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/").get_data(as_text=True))})
    answer = fail(client, username, 4)
    assert "Fel användarnamn eller lösenord" in answer.get_data(as_text=True)


def test_an_unknown_username_gets_the_same_lock_message(client, make_user):
    _, known, _ = make_user("team")
    for username in (known, "nobody-here"):
        answers = [log_in(client, username, "wrong-password").get_data(as_text=True) for _ in range(5)]
        assert "Fel användarnamn eller lösenord" in answers[3]
        assert LOCKED in answers[4]
        assert LOCKED in log_in(client, username, "wrong-password").get_data(as_text=True)


def test_many_failures_from_one_address_get_429_but_other_addresses_do_not(client, make_user):
    _, username, password = make_user("team")
    for n in range(20):
        log_in(client, f"guess{n}", "wrong-password")
    blocked = log_in(client, username, password)
    assert blocked.status_code == 429
    assert "För många misslyckade inloggningar från din adress" in blocked.get_data(as_text=True)
    other = client.application.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.55"
    assert log_in(other, username, password).status_code == 302


def test_the_address_limit_ends_after_fifteen_minutes(client, clock, make_user):
    _, username, password = make_user("team")
    for n in range(20):
        log_in(client, f"guess{n}", "wrong-password")
    assert log_in(client, username, password).status_code == 429
    clock.advance(minutes=16)
    assert log_in(client, username, password).status_code == 302


# --- session timeouts ---------------------------------------------------------------------------


def timeouts_on(app):
    app.config.update(SESSION_IDLE_MINUTES=30, SESSION_MAX_HOURS=12)


def test_an_idle_session_expires_after_thirty_minutes(app, client, clock, make_user):
    timeouts_on(app)
    _, username, password = make_user("team")
    log_in(client, username, password)
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200  # activity keeps it alive
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    expired = client.get("/")
    assert expired.status_code == 302 and "/login?expired=1" in expired.headers["Location"]
    page = client.get(expired.headers["Location"]).get_data(as_text=True)
    assert "har loggats ut" in page
    assert client.get("/").status_code == 302  # the session was cleared


def test_a_session_ends_after_twelve_hours_even_when_active(app, client, clock, make_user):
    timeouts_on(app)
    _, username, password = make_user("team")
    log_in(client, username, password)
    for _ in range(11 * 3):  # active every 20 minutes for 11 hours
        clock.advance(minutes=20)
        assert client.get("/").status_code == 200
    clock.advance(minutes=61)
    assert "expired=1" in client.get("/").headers["Location"]


def test_api_tokens_are_not_affected_by_session_timeouts(app, client, clock, make_user, make_token):
    timeouts_on(app)
    user_id, _, _ = make_user("team")
    secret = make_token(user_id)
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/providers", headers=headers).status_code == 200
    clock.advance(hours=13)
    assert client.get("/api/v1/providers", headers=headers).status_code == 200


def test_session_cookie_is_httponly_lax_and_secure_over_https(make_app):
    plain = make_app()
    assert plain.config["SESSION_COOKIE_HTTPONLY"] is True
    assert plain.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    secure = make_app(PUBLIC_BASE_URL="https://krisrutin.example.se")
    assert secure.config["SESSION_COOKIE_SECURE"] is True
    client = secure.test_client()
    response = client.get("/login", base_url="https://krisrutin.example.se")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_an_administrator_can_unlock_an_account_from_the_command_line(client, runner, make_user):
    _, username, password = make_user("team")
    fail(client, username, 5)
    result = runner.invoke(args=["users", "unlock", username])
    assert result.exit_code == 0, result.output
    assert log_in(client, username, password).status_code == 302
    assert runner.invoke(args=["users", "unlock", "nobody-here"]).exit_code != 0
