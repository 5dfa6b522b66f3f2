"""Server-side sessions: a cookie saved before a session ended opens nothing afterwards, from any
client (both databases), and the session id is never one the browser held before login."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from accounts import security
from accounts.models import User, UserSession
from accounts.service import set_password
from core.extensions import db
from tests.conftest import DEFAULT_PASSWORD, csrf_token_from, log_in

NEW_PASSWORD = "ett-helt-nytt-losenord"


def saved_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "the client holds no session cookie"
    return cookie.value


def replayed(app, cookie: str):
    """Another client (another computer) presenting a copy of a saved cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def opens_the_register(client) -> bool:
    answer = client.get("/register/")
    assert answer.status_code in (200, 302), answer.status_code
    return answer.status_code == 200


def cookie_contents(app, cookie: str) -> dict:
    return app.session_interface.get_signing_serializer(app).loads(cookie)


def post_form(client, path, page="/account", **fields):
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **fields})


def end_reasons(app, user_id) -> list[str | None]:
    with app.app_context():
        rows = db.session.scalars(select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.id))
        return [row.end_reason for row in rows]


def test_a_cookie_saved_before_logout_opens_nothing_afterwards(app, client, make_user):
    user_id, username, _ = make_user("team")
    log_in(client, username)
    cookie = saved_cookie(client)
    assert opens_the_register(replayed(app, cookie))  # a copy works while the session is open
    assert post_form(client, "/logout", page="/").status_code == 302
    assert not opens_the_register(client)
    copy = replayed(app, cookie)
    assert not opens_the_register(copy)
    assert copy.get("/api/v1/providers").status_code == 401
    # A form post with the copy's own CSRF token changes nothing either: it is told to log in.
    refused = replayed(app, cookie).post("/account/logout-everywhere", data={"csrf_token": "whatever"})
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert end_reasons(app, user_id) == ["logout"]


def _password_changed_on_the_account_page(app, client, runner, username):
    answer = post_form(
        client,
        "/account/password",
        current_password=DEFAULT_PASSWORD,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/account"


def _password_set_by_the_service(app, client, runner, username):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        set_password(db_session=db.session, user=user, password=NEW_PASSWORD)
        db.session.commit()


def _logged_out_everywhere(app, client, runner, username):
    answer = post_form(client, "/account/logout-everywhere")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"


def _cli(*args):
    def run(app, client, runner, username):
        result = runner.invoke(args=[*args, username])
        assert result.exit_code == 0, result.output
        assert "2 sessions ended" in result.output

    return run


ENDINGS = {
    "password changed on the account page": (_password_changed_on_the_account_page, "password_changed"),
    "password set by an administrator": (_cli("users", "set-password", "--password", NEW_PASSWORD), "password_changed"),
    "password set through the service": (_password_set_by_the_service, "password_changed"),
    "log out everywhere": (_logged_out_everywhere, "logout_everywhere"),
    "user deactivated": (_cli("users", "deactivate"), "deactivated"),
    "second factor reset": (_cli("users", "reset-totp"), "totp_reset"),
    "administrator logs the user out": (_cli("users", "logout"), "ended_by_admin"),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_cookies_saved_before_a_session_ending_event_open_nothing_afterwards(app, client, runner, make_user, ending):
    act, reason = ENDINGS[ending]
    user_id, username, _ = make_user("team")
    laptop = app.test_client()
    log_in(laptop, username)
    log_in(client, username)
    saved = [saved_cookie(laptop), saved_cookie(client)]
    assert all(opens_the_register(replayed(app, cookie)) for cookie in saved)

    act(app, client, runner, username)

    assert not opens_the_register(laptop)
    for cookie in saved:
        assert not opens_the_register(replayed(app, cookie)), ending
    if ending == "password changed on the account page":
        # The session that changed the password goes on, under a new id; only the other ended.
        assert opens_the_register(client)
        assert saved_cookie(client) not in saved
        assert end_reasons(app, user_id) == [reason, None]
    else:
        assert not opens_the_register(client)
        assert end_reasons(app, user_id) == [reason, reason]


def test_a_session_of_a_user_deactivated_in_the_database_ends_at_its_next_request(app, client, make_user):
    user_id, username, _ = make_user("team")
    log_in(client, username)
    with app.app_context():
        db.session.get(User, user_id).is_active = False
        db.session.commit()
    assert not opens_the_register(client)
    assert end_reasons(app, user_id) == ["deactivated"]


def test_the_cookie_carries_only_the_session_id_and_the_table_only_its_hash(app, client, make_user):
    user_id, username, _ = make_user("team")
    log_in(client, username)
    contents = cookie_contents(app, saved_cookie(client))
    assert set(contents) <= {"sid", "csrf_token", "_permanent", "lang"}
    with app.app_context():
        row = db.session.scalars(select(UserSession).where(UserSession.user_id == user_id)).one()
        assert row.token_hash == hashlib.sha256(contents["sid"].encode()).hexdigest()
        assert contents["sid"] not in (row.token_hash, row.ip, row.user_agent)


def test_a_login_gets_a_new_session_id_and_ends_the_one_the_browser_held(app, client, make_user):
    _, username, _ = make_user("team")
    other_id, other, _ = make_user("team")
    client.get("/login")
    assert "sid" not in cookie_contents(app, saved_cookie(client))  # none before a login
    log_in(client, other)
    first = saved_cookie(client)
    log_in(client, username)  # someone else logs in at the same computer
    second = saved_cookie(client)
    assert cookie_contents(app, second)["sid"] != cookie_contents(app, first)["sid"]
    assert not opens_the_register(replayed(app, first))
    assert end_reasons(app, other_id) == ["replaced"]
    assert "Test " + username in client.get("/").get_data(as_text=True)


def test_enrolling_a_second_factor_gives_the_session_a_new_id(app, client, clock, make_user):
    _, username, _ = make_user("team")
    log_in(client, username)
    before = saved_cookie(client)
    page = client.get("/account/totp").get_data(as_text=True)
    secret = page.split('<code id="totp-secret">')[1].split("</code>")[0]
    assert secret not in str(cookie_contents(app, before))  # the key waits in the session row
    enrolled = client.post(
        "/account/totp", data={"code": security.totp(secret, clock.now()), "csrf_token": csrf_token_from(page)}
    )
    assert enrolled.status_code == 302
    after = saved_cookie(client)
    assert cookie_contents(app, after)["sid"] != cookie_contents(app, before)["sid"]
    assert not opens_the_register(replayed(app, before))
    assert opens_the_register(replayed(app, after))


def test_after_the_second_factor_the_session_id_is_new_and_the_halfway_cookie_opens_nothing(
    app, client, clock, make_user
):
    user_id, username, password = make_user("team")
    secret = security.new_totp_secret()
    with app.app_context():
        db.session.get(User, user_id).totp_secret = secret
        db.session.commit()
    assert log_in(client, username, password).headers["Location"] == "/login/code"
    halfway = saved_cookie(client)
    token = csrf_token_from(client.get("/login/code").get_data(as_text=True))
    done = client.post("/login/code", data={"code": security.totp(secret, clock.now()), "csrf_token": token})
    assert done.status_code == 302 and opens_the_register(client)
    final = cookie_contents(app, saved_cookie(client))
    assert "pending_uid" not in final and final["sid"] not in cookie_contents(app, halfway).values()
    assert not opens_the_register(replayed(app, halfway))


def test_the_idle_and_absolute_limits_end_the_session_row(app, client, clock, make_user):
    app.config.update(SESSION_IDLE_MINUTES=30, SESSION_MAX_HOURS=12)
    user_id, username, _ = make_user("team")
    log_in(client, username)
    cookie = saved_cookie(client)
    clock.advance(minutes=31)
    assert not opens_the_register(client)
    assert not opens_the_register(replayed(app, cookie))
    log_in(client, username)
    for _ in range(12 * 3):  # active every 20 minutes
        clock.advance(minutes=20)
        client.get("/")
    clock.advance(minutes=1)
    assert not opens_the_register(client)
    assert end_reasons(app, user_id) == ["idle", "max_age"]


def test_the_account_page_lists_the_users_own_open_sessions_and_marks_this_one(app, client, make_user):
    _, username, _ = make_user("team")
    _, stranger, _ = make_user("team")
    phone = app.test_client()
    phone.environ_base["REMOTE_ADDR"] = "192.0.2.77"
    phone.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.0 Mobile/15E148 Safari/604.1"
    )
    log_in(phone, username)
    client.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    )
    log_in(client, username)
    log_in(app.test_client(), stranger)
    html = client.get("/account").get_data(as_text=True)
    assert "Safari, iPhone" in html and "192.0.2.77" in html
    assert "Firefox, Windows" in html
    assert html.count("(den här)") == 1
    assert html.count("<time") == 4  # two sessions, not the other user's
    post_form(phone, "/logout", page="/")
    assert "192.0.2.77" not in client.get("/account").get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"current_password": "fel-losenord-helt"}, "current_password", "Det nuvarande lösenordet stämmer inte."),
        ({"new_password": "kort"}, "new_password", "minst 12 tecken"),
        ({"new_password_again": "ett-annat-losenord"}, "new_password_again", "Skriv samma nya lösenord"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(app, client, make_user, fields, field, message):
    user_id, username, _ = make_user("team")
    laptop = app.test_client()
    log_in(laptop, username)
    log_in(client, username)
    with app.app_context():
        before = db.session.get(User, user_id).password_hash
    form = {
        "current_password": DEFAULT_PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
        **fields,
    }
    answer = post_form(client, "/account/password", **form)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert message in html and f'href="#{field}"' in html
    with app.app_context():
        assert db.session.get(User, user_id).password_hash == before
    assert opens_the_register(laptop) and opens_the_register(client)


def test_logging_out_everywhere_is_audited_and_leaves_api_tokens_working(app, client, make_user, make_token):
    from core.audit import AuditEntry

    user_id, username, _ = make_user("team")
    secret = make_token(user_id)
    log_in(client, username)
    post_form(client, "/account/logout-everywhere")
    assert "Du är utloggad överallt" in client.get("/login").get_data(as_text=True)
    assert client.get("/api/v1/providers", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    with app.app_context():
        entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "logout")).all()
        assert [(e.entity_id, e.actor_id, e.detail) for e in entries] == [
            (str(user_id), str(user_id), {"everywhere": True, "sessions": 1})
        ]


def test_retention_deletes_sessions_thirty_days_after_they_ended_or_were_last_seen(app, clock, make_user):
    from datetime import timedelta

    from accounts import sessions

    user_id, _, _ = make_user("team")
    now = clock.now()
    ages = {"ended 31 days ago": 31, "ended 29 days ago": 29, "abandoned 31 days ago": 31, "open now": 0}
    with app.app_context():
        for name, days in ages.items():
            start = now - timedelta(days=days + 1)
            row, _ = sessions.begin(db_session=db.session, user_id=user_id, now=start, ip=None, user_agent=None)
            row.user_agent, row.last_seen_at = name, now - timedelta(days=days)
            if name.startswith("ended"):
                sessions.end(db_session=db.session, row=row, now=now - timedelta(days=days), reason="logout")
        db.session.commit()
        counted = sessions.delete_old_sessions(db.session, policy=None, now=now, dry_run=True)
        assert counted == 2 and db.session.scalar(select(db.func.count()).select_from(UserSession)) == 4
        assert sessions.delete_old_sessions(db.session, policy=None, now=now, dry_run=False) == 2
        db.session.commit()
        kept = db.session.scalars(select(UserSession.user_agent).order_by(UserSession.id)).all()
    assert kept == ["ended 29 days ago", "open now"]


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36",
            "Chrome, Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0",
            "Edge, Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
            "Safari, macOS",
        ),
        ("curl/8.5.0", "curl/8.5.0"),
        ("\x00<script>", None),
        ("", None),
        (None, None),
    ],
)
def test_a_session_keeps_only_a_short_name_of_the_browser(header, shown):
    from accounts.sessions import describe_user_agent

    assert describe_user_agent(header) == shown


def test_an_administrator_lists_a_users_sessions_from_the_command_line(app, client, runner, make_user):
    _, username, _ = make_user("team")
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    log_in(client, username)
    listed = runner.invoke(args=["users", "sessions", username])
    assert listed.exit_code == 0 and "198.51.100.7" in listed.output and "2026-11-23 09:00" in listed.output
    runner.invoke(args=["users", "logout", username])
    assert "has no open sessions" in runner.invoke(args=["users", "sessions", username]).output
    assert runner.invoke(args=["users", "sessions", "nobody-here"]).exit_code != 0
