"""TOTP second factor: RFC 6238 vectors, enrolment, login with a code, replay, admins must enrol."""

import base64
from datetime import datetime, timedelta, timezone

import pyotp
import pytest

from accounts import security
from accounts.models import User
from core.extensions import db
from tests.conftest import csrf_token_from, log_in

RFC_KEY = b"12345678901234567890"


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc_6238_sha1_test_vectors(unix_time, expected):
    at = datetime.fromtimestamp(unix_time, tz=timezone.utc)
    assert security.hotp(RFC_KEY, security.time_step(at), digits=8) == expected
    secret = base64.b32encode(RFC_KEY).decode()
    assert security.totp(secret, at) == expected[-6:]


def test_codes_one_step_either_side_are_accepted_but_not_two():
    secret = security.new_totp_secret()
    now = datetime(2026, 11, 23, 9, 0, 15, tzinfo=timezone.utc)
    for offset, ok in ((-60, False), (-30, True), (0, True), (30, True), (60, False)):
        code = security.totp(secret, now + timedelta(seconds=offset))
        assert (security.matching_step(secret, code, now) is not None) is ok
    assert security.matching_step(secret, "12ab56", now) is None


def test_the_otpauth_uri_names_the_service_and_the_parameters():
    uri = security.provisioning_uri("JBSWY3DPEHPK3PXP", "anna")
    assert uri.startswith("otpauth://totp/Krisrutin%3Aanna?secret=JBSWY3DPEHPK3PXP")
    assert "issuer=Krisrutin" in uri and "digits=6" in uri and "period=30" in uri


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc),  # the first second of a step
        datetime(2026, 11, 23, 9, 0, 29, tzinfo=timezone.utc),  # its last second
        datetime(2026, 3, 29, 1, 59, 59, tzinfo=timezone.utc),  # just before summer time begins
        datetime(2026, 10, 25, 1, 0, 30, tzinfo=timezone.utc),  # just after it ends
    ],
)
def test_the_code_an_authenticator_app_shows_is_accepted_at_that_instant(instant):
    secret = security.new_totp_secret()
    app_code = pyotp.TOTP(secret).at(instant)  # what an app with the enrolled key shows
    assert security.totp(secret, instant) == app_code
    assert security.matching_step(secret, app_code, instant) == security.time_step(instant)
    user = User(totp_secret=secret)
    assert security.verify_user_code(user, app_code, instant)
    assert user.totp_last_step == int(instant.timestamp()) // 30


def test_a_step_once_accepted_is_never_accepted_again():
    secret = security.new_totp_secret()
    app = pyotp.TOTP(secret)
    now = datetime(2026, 11, 23, 9, 0, 5, tzinfo=timezone.utc)
    user = User(totp_secret=secret)
    assert security.verify_user_code(user, app.at(now), now)
    # the same code again, ten seconds later and still inside its step: refused
    assert not security.verify_user_code(user, app.at(now), now + timedelta(seconds=10))
    # the next step's code is accepted; after it, the previous step's code (still inside the ±1
    # window) is refused too
    later = now + timedelta(seconds=30)
    assert security.verify_user_code(user, app.at(later), later)
    assert not security.verify_user_code(user, app.at(now), later)
    assert user.totp_last_step == security.time_step(later)


def enrol(client, clock):
    page = client.get("/account/totp")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    secret = html.split('<code id="totp-secret">')[1].split("</code>")[0]
    assert "otpauth://totp/" in html
    token = csrf_token_from(html)
    wrong = client.post("/account/totp", data={"code": "000000", "csrf_token": token})
    if security.totp(secret, clock.now()) != "000000":
        assert wrong.status_code == 400 and "Koden stämmer inte" in wrong.get_data(as_text=True)
    done = client.post("/account/totp", data={"code": security.totp(secret, clock.now()), "csrf_token": token})
    assert done.status_code == 302
    return secret


def logout(client):
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/account/totp").get_data(as_text=True))})


def send_code(client, code):
    token = csrf_token_from(client.get("/login/code").get_data(as_text=True))
    return client.post("/login/code", data={"code": code, "csrf_token": token})


def test_enrol_then_log_in_with_password_and_code(app, client, clock, make_user):
    user_id, username, password = make_user("team")
    log_in(client, username, password)
    secret = enrol(client, clock)
    with app.app_context():
        assert db.session.get(User, user_id).totp_secret == secret
    assert "Tvåstegsverifiering är aktiverad" in client.get("/account/totp").get_data(as_text=True)
    logout(client)
    clock.advance(minutes=5)
    step_one = log_in(client, username, password)
    assert step_one.status_code == 302 and step_one.headers["Location"] == "/login/code"
    assert client.get("/").status_code == 302  # the password alone grants nothing
    assert client.get("/account/totp").status_code == 302
    ok = send_code(client, security.totp(secret, clock.now()))
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_or_reused_code_is_refused(app, client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    secret = enrol(client, clock)
    logout(client)
    clock.advance(minutes=2)
    log_in(client, username, password)
    code = security.totp(secret, clock.now())
    wrong = "000000" if code != "000000" else "111111"
    refused = send_code(client, wrong)
    assert refused.status_code == 400 and "Koden stämmer inte" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    assert send_code(client, code).status_code == 302
    logout(client)
    # The same code, still inside its time window, cannot be used a second time.
    clock.advance(seconds=5)
    log_in(client, username, password)
    replay = send_code(client, code)
    assert replay.status_code == 400
    assert client.get("/").status_code == 302


def test_wrong_codes_count_towards_the_lock_out(client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    secret = enrol(client, clock)
    logout(client)
    clock.advance(minutes=2)
    log_in(client, username, password)
    bad = "000000" if security.totp(secret, clock.now()) != "000000" else "111111"
    answers = [send_code(client, bad) for _ in range(5)]
    assert "Kontot är spärrat" in answers[-1].get_data(as_text=True)
    right = send_code(client, security.totp(secret, clock.now()))
    assert right.status_code == 400 and client.get("/").status_code == 302


def test_the_half_logged_in_state_expires(client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    secret = enrol(client, clock)
    logout(client)
    clock.advance(minutes=2)
    log_in(client, username, password)
    token = csrf_token_from(client.get("/login/code").get_data(as_text=True))
    clock.advance(minutes=6)
    late = client.post("/login/code", data={"code": security.totp(secret, clock.now()), "csrf_token": token})
    assert late.status_code == 302 and late.headers["Location"] == "/login"
    assert "Logga in med användarnamn" in client.get("/login/code").get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_an_admin_without_totp_must_enrol_before_anything_else(app, client, clock, make_user):
    app.config["ADMIN_TOTP_REQUIRED"] = True
    _, username, password = make_user("admin")
    assert log_in(client, username, password).status_code == 302
    start = client.get("/")
    assert start.status_code == 302 and start.headers["Location"] == "/account/totp"
    assert client.get("/metrics").status_code == 403
    page = client.get("/account/totp")
    assert "Administratörer måste använda tvåstegsverifiering" in page.get_data(as_text=True)
    enrol(client, clock)
    assert client.get("/").status_code == 200


def test_team_members_may_log_in_without_totp(app, client, make_user):
    app.config["ADMIN_TOTP_REQUIRED"] = True
    _, username, password = make_user("team")
    log_in(client, username, password)
    start = client.get("/")
    assert start.status_code == 200
    assert "Aktivera tvåstegsverifiering" in start.get_data(as_text=True)  # optional, offered


def test_a_lost_phone_is_handled_by_resetting_the_second_factor(app, client, clock, runner, make_user):
    user_id, username, password = make_user("team")
    log_in(client, username, password)
    enrol(client, clock)
    result = runner.invoke(args=["users", "reset-totp", username])
    assert result.exit_code == 0, result.output
    assert client.get("/").status_code == 302  # the old session ended
    assert log_in(client, username, password).headers["Location"] == "/"
    with app.app_context():
        assert db.session.get(User, user_id).totp_secret is None
