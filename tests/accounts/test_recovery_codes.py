"""TOTP recovery codes: a person whose phone is not at hand logs in with a one-time code from a
list shown once; each code works once, new codes void the old, and nobody without a second
factor (or without the password) gets anywhere with them."""

from __future__ import annotations

import re

from accounts.models import User
from core.extensions import db
from tests.accounts.test_security_totp import enrol, logout
from tests.conftest import csrf_token_from, log_in


def create_codes(client) -> list[str]:
    token = csrf_token_from(client.get("/account/totp").get_data(as_text=True))
    page = client.post("/account/totp/recovery-codes", data={"csrf_token": token})
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    return re.findall(r"<code>([A-Z0-9-]+)</code>", page.get_data(as_text=True))


def send_recovery(client, code):
    token = csrf_token_from(client.get("/login/code").get_data(as_text=True))
    return client.post("/login/code", data={"recovery_code": code, "csrf_token": token})


def test_a_recovery_code_logs_in_once_and_the_codes_are_stored_only_as_digests(app, client, clock, make_user):
    user_id, username, password = make_user("admin")
    log_in(client, username, password)
    enrol(client, clock)
    codes = create_codes(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", code) for code in codes)
    with app.app_context():
        stored = db.session.get(User, user_id).totp_recovery
        assert len(stored) == 10 and not any(code.replace("-", "") in str(stored) for code in codes)
    assert "Oanvända reservkoder: 10" in client.get("/account/totp").get_data(as_text=True)
    logout(client)

    clock.advance(minutes=3)
    log_in(client, username, password)
    # typed in lower case with spaces instead of dashes: still the code
    ok = send_recovery(client, codes[3].lower().replace("-", " "))
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert "Oanvända reservkoder: 9" in client.get("/").get_data(as_text=True)
    with app.app_context():
        from sqlalchemy import select

        from core.audit import AuditEntry

        used = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "login")).all()
        assert [e.detail.get("factor") for e in used if e.detail.get("factor")] == ["recovery_code"]
    logout(client)

    log_in(client, username, password)
    reused = send_recovery(client, codes[3])
    assert reused.status_code == 400
    assert "Reservkoden stämmer inte eller är redan använd" in reused.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in
    with app.app_context():
        assert db.session.get(User, user_id).failed_logins == 1  # counts towards the lock-out


def test_new_codes_void_the_old_ones(app, client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    enrol(client, clock)
    old = create_codes(client)
    new = create_codes(client)
    assert not set(old) & set(new)
    logout(client)
    log_in(client, username, password)
    assert send_recovery(client, old[0]).status_code == 400
    assert send_recovery(client, new[0]).status_code == 302


def test_codes_need_a_second_factor_and_a_reset_removes_them(app, client, clock, runner, make_user):
    user_id, username, password = make_user("team")
    log_in(client, username, password)
    token = csrf_token_from(client.get("/account/totp").get_data(as_text=True))
    refused = client.post("/account/totp/recovery-codes", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "Aktivera tvåstegsverifiering" in refused.get_data(as_text=True)
    enrol(client, clock)
    codes = create_codes(client)
    assert runner.invoke(args=["users", "reset-totp", username]).exit_code == 0
    with app.app_context():
        assert db.session.get(User, user_id).totp_recovery is None
    # without a second factor the password alone logs in; a code is never asked for or accepted
    client.get("/")
    assert log_in(client, username, password).headers["Location"] == "/"
    assert codes  # the old list is simply worthless now


def test_a_recovery_code_without_the_password_step_gets_nowhere(client, clock, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    enrol(client, clock)
    codes = create_codes(client)
    logout(client)
    answer = send_recovery(client, codes[0])  # no password given in this session
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
