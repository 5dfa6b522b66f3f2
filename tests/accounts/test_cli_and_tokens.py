from sqlalchemy import select

from accounts.models import ApiToken, User
from accounts.service import revoke_token
from core.extensions import db


def test_users_create_refuses_non_ascii_usernames(app, runner):
    result = runner.invoke(
        args=["users", "create", "--role", "admin", "--username", "Första.Admin", "--password", "a-long-admin-password"]
    )
    assert result.exit_code != 0
    with app.app_context():
        assert db.session.scalar(select(User)) is None
    assert "username" in result.output


def test_users_create_with_valid_input(app, runner):
    result = runner.invoke(
        args=["users", "create", "--role", "admin", "--username", "root-admin", "--password", "a-long-admin-password"]
    )
    assert result.exit_code == 0, result.output
    assert "Created user root-admin (admin)" in result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "root-admin"))
        assert user.role == "admin" and user.password_hash.startswith("$argon2id$")


def test_users_create_prompts_for_a_hidden_password(app, runner):
    result = runner.invoke(
        args=["users", "create", "--role", "team", "--username", "tea"],
        input="a-long-team-password\na-long-team-password\n",
    )
    assert result.exit_code == 0, result.output
    assert "a-long-team-password" not in result.output


def test_users_create_refuses_short_passwords_and_duplicates(app, runner):
    short = runner.invoke(args=["users", "create", "--role", "team", "--username", "tea", "--password", "short"])
    assert short.exit_code != 0 and "12 characters" in short.output
    ok = runner.invoke(args=["users", "create", "--role", "team", "--username", "tea", "--password", "x" * 12])
    assert ok.exit_code == 0
    again = runner.invoke(args=["users", "create", "--role", "team", "--username", "tea", "--password", "x" * 12])
    assert again.exit_code != 0 and "already exists" in again.output


def test_users_create_refuses_unknown_roles(runner):
    result = runner.invoke(args=["users", "create", "--role", "king", "--username", "x1", "--password", "x" * 12])
    assert result.exit_code != 0
    assert "admin" in result.output  # the valid choices are listed


def test_tokens_create_prints_a_token_that_is_stored_only_hashed(app, runner, make_user):
    make_user("admin", username="ops")
    result = runner.invoke(args=["tokens", "create", "--user", "ops", "--name", "prometheus"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    assert secret.startswith("krt_") and len(secret) > 40
    with app.app_context():
        token = db.session.scalar(select(ApiToken))
        assert token.name == "prometheus"
        assert secret not in (token.token_hash, token.prefix)
        assert secret.startswith(token.prefix)


def test_tokens_create_for_unknown_user_fails_clearly(runner):
    result = runner.invoke(args=["tokens", "create", "--user", "ghost"])
    assert result.exit_code != 0 and "no user named 'ghost'" in result.output


def test_token_authenticates_api_requests_and_records_last_use(app, client, clock, make_user, make_token):
    user_id, _, _ = make_user("admin")
    secret = make_token(user_id)
    response = client.get("/metrics", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert b"krisrutin_http_requests_total" in response.data
    with app.app_context():
        assert db.session.scalar(select(ApiToken)).last_used_at == clock.now()


def test_token_of_a_role_without_access_gets_403(client, make_user, make_token):
    user_id, _, _ = make_user("team")
    response = client.get("/metrics", headers={"Authorization": f"Bearer {make_token(user_id)}"})
    assert response.status_code == 403
    assert response.get_json()["error"]


def test_revoked_or_forged_tokens_get_401(app, client, clock, make_user, make_token):
    user_id, _, _ = make_user("admin")
    secret = make_token(user_id)
    with app.app_context():
        revoke_token(db_session=db.session, token=db.session.scalar(select(ApiToken)), now=clock.now())
        db.session.commit()
    for value in (secret, secret[:-1] + ("A" if secret[-1] != "A" else "B"), "krt_nonsense", "garbage"):
        response = client.get("/metrics", headers={"Authorization": f"Bearer {value}"})
        assert response.status_code == 401, value
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_requests_need_no_csrf_but_cookie_requests_do(client, make_user, make_token):
    """A bearer token is no ambient credential, so CSRF does not apply; a session cookie is."""
    user_id, username, _ = make_user("team")
    secret = make_token(user_id)
    with_token = client.post("/logout", headers={"Authorization": f"Bearer {secret}"})
    assert with_token.status_code == 302
    from tests.conftest import log_in

    log_in(client, username)
    without_csrf = client.post("/logout")
    assert without_csrf.status_code == 400


def test_provider_contact_accounts_belong_to_a_provider(app, runner, clock):
    from contacts.models import Provider

    with app.app_context():
        db.session.add(Provider(name="Hemtjänst Test", kind="municipal", is_active=True, created_at=clock.now()))
        db.session.commit()
    without = runner.invoke(args=["users", "create", "--role", "provider", "--username", "kontakt1"])
    assert without.exit_code != 0 and "needs the provider" in without.output
    unknown = runner.invoke(
        args=["users", "create", "--role", "provider", "--username", "kontakt1", "--provider", "Finns Inte"]
    )
    assert unknown.exit_code != 0 and "no provider named" in unknown.output
    ok = runner.invoke(
        args=["users", "create", "--role", "provider", "--username", "kontakt1", "--provider", "Hemtjänst Test"]
    )
    assert ok.exit_code == 0, ok.output
    staff = runner.invoke(
        args=[
            "users",
            "create",
            "--role",
            "team",
            "--username",
            "t2",
            "--password",
            "x" * 12,
            "--provider",
            "Hemtjänst Test",
        ]
    )
    assert staff.exit_code != 0 and "only provider contacts" in staff.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "kontakt1"))
        assert user.provider_id is not None and user.password_hash is None


def test_demo_load_prints_the_login_address_from_public_base_url(make_app):
    app = make_app(PUBLIC_BASE_URL="https://krisrutin.example.se/")
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output
    assert "Log in at https://krisrutin.example.se/login with:" in result.output
    assert "127.0.0.1:5000" not in result.output
