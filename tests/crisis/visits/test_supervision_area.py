"""The incident's affected area (camera-supervised clients' area): given on the notice form, the
edit form and the notices API, shown back, corrected on the timeline, and checked."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent
from tests.conftest import csrf_token_from, log_in
from tests.support.openapi import DOCUMENT_URL, assert_documented

GSM = {"title": "GSM-störning", "service": "camera_supervision", "starts_at": "2026-11-23T09:30:00+01:00"}


@pytest.fixture
def token(make_user, make_token):
    user_id, _, _ = make_user(role="alarm_operator")
    return make_token(user_id)


def _area(app):
    with app.app_context():
        return db.session.scalars(select(Incident.area)).one()


def test_the_api_takes_the_area_shows_it_and_corrects_it(app, client, token):
    document = client.get(DOCUMENT_URL).get_json()
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/v1/notices", json={**GSM, "area": "  Norra   kommundelen "}, headers=headers)
    assert created.status_code == 201
    assert_documented(document, created, "POST", "/api/v1/notices")
    assert created.get_json()["area"] == "Norra kommundelen"
    notice_id = created.get_json()["id"]
    every = client.post("/api/v1/notices", json=GSM, headers=headers)
    assert every.get_json()["area"] is None  # every area
    patched = client.patch(f"/api/v1/notices/{notice_id}", json={"area": "Söder"}, headers=headers)
    # The alarm operator may not PATCH notices (the supplier and staff may).
    assert patched.status_code == 403


def test_staff_correct_the_area_through_the_api(app, client, make_user, make_token):
    user_id, _, _ = make_user(role="team")
    headers = {"Authorization": f"Bearer {make_token(user_id)}"}
    document = client.get(DOCUMENT_URL).get_json()
    notice_id = client.post("/api/v1/notices", json={**GSM, "area": "Norr"}, headers=headers).get_json()["id"]
    patched = client.patch(f"/api/v1/notices/{notice_id}", json={"area": "Söder"}, headers=headers)
    assert patched.status_code == 200
    assert_documented(document, patched, "PATCH", "/api/v1/notices/{notice_id}")
    assert patched.get_json()["area"] == "Söder"
    with app.app_context():
        notes = db.session.scalars(select(IncidentEvent).where(IncidentEvent.kind == "note")).all()
        assert [note.detail["fields"] for note in notes] == [["area"]]
    too_long = client.patch(f"/api/v1/notices/{notice_id}", json={"area": "x" * 101}, headers=headers)
    assert too_long.status_code == 422 and "area" in too_long.get_json()["fields"]
    wrong_type = client.patch(f"/api/v1/notices/{notice_id}", json={"area": 5}, headers=headers)
    assert wrong_type.status_code == 400
    assert _area(app) == "Söder"


def test_a_too_long_area_is_refused_and_nothing_saved(app, client, token):
    response = client.post(
        "/api/v1/notices", json={**GSM, "area": "x" * 101}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422 and "area" in response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalars(select(Incident)).all() == []


def test_the_forms_take_and_correct_the_area(app, client, make_user):
    _, username, _ = make_user(role="team")
    log_in(client, username)
    page = client.get("/incidents/new").get_data(as_text=True)
    assert 'for="area"' in page
    response = client.post(
        "/incidents/new",
        data={
            "csrf_token": csrf_token_from(page),
            "title": "GSM-störning",
            "service": "camera_supervision",
            "providers": "all",
            "area": "Norr",
        },
    )
    assert response.status_code == 302
    assert _area(app) == "Norr"
    with app.app_context():
        incident_id = db.session.scalars(select(Incident.id)).one()
    edit = client.get(f"/incidents/{incident_id}/edit").get_data(as_text=True)
    assert 'value="Norr"' in edit
    response = client.post(
        f"/incidents/{incident_id}/edit",
        data={"csrf_token": csrf_token_from(edit), "service": "camera_supervision", "providers": "all", "area": ""},
    )
    assert response.status_code == 302
    assert _area(app) is None  # cleared: every area
