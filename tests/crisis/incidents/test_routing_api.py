"""GET /api/v1/calendar/responsible: public as before; an authenticated caller also learns how
to reach the officer on call and the team."""

from __future__ import annotations

import pytest

from tests.crisis.incidents.test_routing_helpers import TEAM_EMAIL, TEAM_MOBILE, put_on_roster, routing_app, staff
from tests.support.openapi import DOCUMENT_URL, assert_documented

URL = "/api/v1/calendar/responsible"
SATURDAY_NIGHT = "2026-11-28T02:10:00%2B01:00"  # bo on call (week 46 of the rotation)


@pytest.fixture
def app(make_app):
    return routing_app(make_app)


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    return ids


@pytest.fixture
def document(app):
    return app.test_client().get(DOCUMENT_URL).get_json()


def test_anonymous_callers_get_the_answer_without_names(app, people, document):
    response = app.test_client().get(f"{URL}?at={SATURDAY_NIGHT}")
    assert response.status_code == 200
    assert response.get_json() == {
        "at": "2026-11-28T02:10:00+01:00",
        "responsible": "on_call",
        "office_hours": False,
        "next_change": "2026-11-30T07:45:00+01:00",
    }
    assert_documented(document, response, "GET", URL)


def test_a_token_caller_gets_the_officer_and_the_team(app, people, make_user, make_token, document):
    user_id, _, _ = make_user(role="alarm_operator", username="larmcentralen")
    token = make_token(user_id)
    response = app.test_client().get(f"{URL}?at={SATURDAY_NIGHT}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["responsible"] == "on_call"
    assert body["officer"] == {"name": "Test bo", "mobile": "+46701000002", "email": "bo@kommun.example.se"}
    assert body["team"] == {"email": TEAM_EMAIL, "mobile": TEAM_MOBILE}
    assert response.headers["Cache-Control"] == "no-store"
    assert_documented(document, response, "GET", URL)


def test_a_logged_in_session_gets_them_too_and_null_with_an_empty_roster(app, make_user, document):
    from tests.conftest import log_in

    make_user(role="team", username="teamet")
    client = app.test_client()
    log_in(client, "teamet")
    body = client.get(f"{URL}?at=2026-11-24T10:00:00%2B01:00").get_json()
    assert body["responsible"] == "team"
    assert body["officer"] is None
    assert body["team"] == {"email": TEAM_EMAIL, "mobile": TEAM_MOBILE}


def test_a_bad_token_is_refused_rather_than_answered_anonymously(app):
    response = app.test_client().get(URL, headers={"Authorization": "Bearer krt_not-a-token"})
    assert response.status_code == 401
