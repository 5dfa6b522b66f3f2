"""Admin pages for API tokens: every token listed (never its secret), a new token shown once
on a page that is not cached, revoking stops it at once, and only admins reach the pages."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from tests.conftest import csrf_token_from, log_in

API = "/api/v1/providers"


def _admin(client, make_user):
    _, username, _ = make_user(role="admin")
    log_in(client, username)
    return csrf_token_from(client.get("/admin/tokens").get_data(as_text=True))


def _create(client, csrf, user_id, name="Larmcentralen"):
    return client.post("/admin/tokens", data={"csrf_token": csrf, "user_id": str(user_id), "name": name})


def test_a_new_token_is_shown_once_works_and_is_listed_without_its_secret(app, client, clock, make_user):
    csrf = _admin(client, make_user)
    owner_id, owner, _ = make_user(role="team")
    created = _create(client, csrf, owner_id)
    html = created.get_data(as_text=True)
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="secret" value="([^"]+)"', html).group(1)
    assert "visas bara den här gången" in html

    listing = client.get("/admin/tokens").get_data(as_text=True)
    assert secret not in listing and secret[:8] in listing
    assert owner in listing and "Larmcentralen" in listing and "Aldrig" in listing

    clock.set(datetime(2026, 11, 23, 13, 5, tzinfo=timezone.utc))  # 14:05 in Stockholm
    api = app.test_client()
    assert api.get(API, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert "2026-11-23 14:05" in client.get("/admin/tokens").get_data(as_text=True)


def test_revoking_a_token_makes_the_api_answer_401(app, client, clock, make_user, make_token):
    csrf = _admin(client, make_user)
    owner_id, _, _ = make_user(role="team")
    secret = make_token(owner_id, name="Skript")
    api = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.get(API, headers=headers).status_code == 200
    listing = client.get("/admin/tokens").get_data(as_text=True)
    token_id = re.search(r'action="/admin/tokens/(\d+)/revoke"', listing).group(1)
    response = client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert api.get(API, headers=headers).status_code == 401
    listing = client.get("/admin/tokens").get_data(as_text=True)
    assert "Återkallad 2026-11-23 10:00" in listing and f"/admin/tokens/{token_id}/revoke" not in listing
    assert client.post(f"/admin/tokens/{token_id}/revoke").status_code == 400  # CSRF is required


def test_bad_input_re_renders_the_form_with_errors(client, make_user):
    csrf = _admin(client, make_user)
    response = client.post("/admin/tokens", data={"csrf_token": csrf, "user_id": "x", "name": ""})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Välj en aktiv användare." in html and "Skriv vad nyckeln ska användas till." in html
    assert client.post("/admin/tokens/99999/revoke", data={"csrf_token": csrf}).status_code == 404


def test_only_admins_reach_the_token_pages(client, make_user, make_token):
    owner_id, username, _ = make_user(role="team")
    log_in(client, username)
    csrf = csrf_token_from(client.get("/login").get_data(as_text=True))
    assert client.get("/admin/tokens").status_code == 403
    assert _create(client, csrf, owner_id).status_code == 403
    assert client.post("/admin/tokens/1/revoke", data={"csrf_token": csrf}).status_code == 403
