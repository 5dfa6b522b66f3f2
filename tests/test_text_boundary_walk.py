"""Every form of the service passes the text boundary (core.text_input) before its view runs:
the URL map walked with a role that may use each form."""

from __future__ import annotations

import pytest

from contacts import register
from contacts.register import Actor
from core.extensions import db
from tests.conftest import DEFAULT_PASSWORD, csrf_token_from


@pytest.fixture
def database_url(sqlite_url):
    """The boundary does not depend on the database: SQLite only."""
    return sqlite_url


def test_every_form_of_the_service_refuses_a_hidden_character_before_its_view_runs(make_app, clock):
    """Walk the URL map: every page that takes a form (not the JSON API, not the signed Twilio
    webhooks, which clean their own values) answers 400 naming the field, as a role that may use it."""
    from accounts.service import create_token, create_user
    from tests.test_route_roles import PUBLIC, ROUTE_ROLES, _url

    app = make_app()
    tokens = {}
    with app.app_context():
        provider = register.create_provider(
            db.session, {"name": "Hemtjänst Norr", "kind": "municipal"}, actor=Actor("team"), now=clock.now()
        ).record
        for role in ("admin", "team", "on_call", "provider", "alarm_operator", "supplier"):
            user = create_user(
                db_session=db.session,
                username=f"walk-{role.replace('_', '-')}",
                display_name=role,
                role=role,
                now=clock.now(),
                password=DEFAULT_PASSWORD,
                provider_id=provider.id if role == "provider" else None,
            )
            db.session.flush()
            tokens[role] = create_token(db_session=db.session, user=user, name="walk", now=clock.now())[1]
        db.session.commit()
    anonymous = app.test_client()
    csrf = csrf_token_from(anonymous.get("/login").get_data(as_text=True))
    walked = 0
    for rule in app.url_map.iter_rules():
        methods = rule.methods & {"POST", "PUT", "PATCH"}
        view = app.view_functions[rule.endpoint]
        if not methods or rule.rule.startswith("/api/") or getattr(view, "raw_text", False):
            continue
        allowed = ROUTE_ROLES[rule.endpoint]
        for method in sorted(methods):
            if allowed == PUBLIC:
                client, headers, data = anonymous, {}, {"csrf_token": csrf}
            else:
                role = sorted(allowed)[0]
                client, headers, data = app.test_client(), {"Authorization": f"Bearer {tokens[role]}"}, {}
            data = {**data, "name": "Anna\u202eLind", "comment": "ok"}
            response = client.open(_url(app, rule), method=method, data=data, headers=headers)
            assert response.status_code == 400, (method, rule.rule, response.status_code)
            html = response.get_data(as_text=True)
            assert "<strong>Namn:</strong>" in html and "U+202E" in html, rule.rule
            walked += 1
    assert walked >= 30
