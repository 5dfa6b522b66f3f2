"""Sending a letter takes the incident, on both paths: the team's letter from the incident page and
a letter sent with a notice over the API acknowledge the incident by the writer (one rule,
``crisis.incidents.letters.send_staff_letter``)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from core.extensions import db
from crisis.incidents.models import Incident
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import SETTINGS, events, local, make_incident, make_people

OFFICE = local(date(2026, 11, 24), 10)


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def test_the_teams_letter_from_the_incident_page_acknowledges_the_incident(app, client, clock, make_user):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, status="new")
        db.session.remove()
    user_id, username, password = make_user("team")
    log_in(client, username, password)
    assert "Ny, inte kvitterad" in client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    form = client.get(f"/incidents/{incident_id}/letters/new?kind=first").get_data(as_text=True)
    data = {
        "csrf_token": csrf_token_from(form),
        "subject": re.search(r'id="subject" name="subject" value="([^"]*)"', form).group(1),
        "body": "Kameratillsynen fungerar inte.",
        "apply_local_routines": "yes",
        "action": "send",
    }
    assert client.post(f"/incidents/{incident_id}/letters/new?kind=first", data=data).status_code == 303
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.status, incident.acknowledged_by_id) == ("open", user_id)
        assert incident.acknowledged_at == clock.now()
        assert [e.actor_user_id for e in events(incident_id, "acknowledged")] == [user_id]
    assert "Ny, inte kvitterad" not in client.get(f"/incidents/{incident_id}").get_data(as_text=True)


def test_a_refused_letter_from_the_page_leaves_the_incident_unacknowledged(app, client, clock, make_user):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, status="new")
        db.session.remove()
    _, username, password = make_user("team")
    log_in(client, username, password)
    form = client.get(f"/incidents/{incident_id}/letters/new?kind=update").get_data(as_text=True)
    data = {"csrf_token": csrf_token_from(form), "subject": "Uppdatering", "body": "Text.", "action": "send"}
    refused = client.post(f"/incidents/{incident_id}/letters/new?kind=update", data=data)
    assert refused.status_code == 400 and "Skicka informationsbrevet först." in refused.get_data(as_text=True)
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.status, incident.acknowledged_at) == ("new", None)


def test_a_letter_sent_with_a_notice_over_the_api_acknowledges_the_incident(app, client, clock, make_user, make_token):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        db.session.remove()
    user_id, _, _ = make_user("team")
    token = make_token(user_id)
    body = {
        "title": "GSM-nätet nere",
        "service": "camera_supervision",
        "letter": {"subject": "GSM-nätet nere", "body": "Kameratillsynen fungerar inte.", "apply_local_routines": True},
    }
    response = client.post("/api/v1/notices", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        incident = db.session.scalars(db.select(Incident)).one()
        assert (incident.status, incident.acknowledged_by_id) == ("open", user_id)
        assert [e.actor_user_id for e in events(incident.id, "acknowledged")] == [user_id]
