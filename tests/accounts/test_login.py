from datetime import timedelta

import pytest

from accounts.models import User
from accounts.service import set_password
from core.extensions import db
from tests.conftest import csrf_token_from, log_in


def test_login_page_is_swedish_by_default_with_lang_attribute(client):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="sv">' in html
    assert "Logga in" in html and "Lösenord" in html


def test_english_is_available_and_remembered(client):
    english = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english
    assert "Log in" in english and "Password" in english
    again = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in again


def test_staff_log_in_with_password_and_reach_the_start_page(client, make_user):
    _, username, password = make_user("team")
    response = log_in(client, username, password)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    start = client.get("/")
    assert start.status_code == 200
    assert f"Test {username}" in start.get_data(as_text=True)


def test_wrong_password_is_refused_with_a_message_beside_the_field(client, make_user):
    _, username, _ = make_user("team")
    response = log_in(client, username, "not-the-password")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Fel användarnamn eller lösenord" in html
    assert 'href="#password"' in html  # the error summary links to the field
    assert client.get("/").status_code == 302


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client):
    response = log_in(client, "nobody-here", "whatever-password")
    assert response.status_code == 400
    assert "Fel användarnamn eller lösenord" in response.get_data(as_text=True)


def test_deactivated_user_cannot_log_in(app, client, make_user):
    user_id, username, password = make_user("team")
    with app.app_context():
        db.session.get(User, user_id).is_active = False
        db.session.commit()
    assert log_in(client, username, password).status_code == 400


def test_login_form_without_csrf_token_is_rejected(client, make_user):
    _, username, password = make_user("team")
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_login_redirects_only_to_local_paths(client, make_user):
    _, username, password = make_user("team")
    page = client.get("/login?next=https://evil.example/")
    token = csrf_token_from(page.get_data(as_text=True))
    response = client.post(
        "/login?next=https://evil.example/", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.headers["Location"] == "/"


def test_login_returns_to_the_page_asked_for(client, make_user):
    _, username, password = make_user("team")
    assert client.get("/").headers["Location"] == "/login?next=%2F"
    page = client.get("/login?next=/")
    token = csrf_token_from(page.get_data(as_text=True))
    response = client.post("/login?next=/", data={"username": username, "password": password, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_logout_ends_the_session(client, make_user):
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_changing_the_password_ends_existing_sessions(app, client, make_user):
    user_id, username, password = make_user("team")
    log_in(client, username, password)
    assert client.get("/").status_code == 200
    with app.app_context():
        set_password(db_session=db.session, user=db.session.get(User, user_id), password="another-long-password")
        db.session.commit()
    assert client.get("/").status_code == 302


def test_passwords_are_stored_as_argon2id_hashes(app, make_user):
    user_id, _, password = make_user("admin")
    with app.app_context():
        stored = db.session.get(User, user_id).password_hash
    assert stored.startswith("$argon2id$")
    assert password not in stored


def test_session_cookie_is_http_only_and_expires(app, client, make_user):
    _, username, password = make_user("team")
    response = log_in(client, username, password)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert app.permanent_session_lifetime <= timedelta(hours=12)


@pytest.mark.parametrize("env", ["development", "production"])
def test_outside_the_test_environment_passwords_get_the_strong_argon2id_parameters(tmp_path, clock, env):
    """The test suite hashes cheaply (KRISRUTIN_ENV=testing); every real environment must not."""
    from accounts.service import hash_password
    from tests.conftest import TEST_SECRET, build_app

    build_app(f"sqlite:///{tmp_path / 'strong.sqlite3'}", clock, KRISRUTIN_ENV=env, SECRET_KEY=TEST_SECRET)
    try:
        assert hash_password("ett långt lösenord").startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    finally:
        build_app(f"sqlite:///{tmp_path / 'again.sqlite3'}", clock)  # back to the test environment's hashing
