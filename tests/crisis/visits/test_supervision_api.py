"""The supervision API: the alarm operator maintains clients and schedules (all or nothing, every
error reported) and reports failed supervisions, each becoming one visit for the client's
provider, once. Runs on SQLite and PostgreSQL; every answer is checked against the OpenAPI
description."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from contacts import register
from contacts.register import Actor
from core.extensions import db
from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitEvent
from tests.support.openapi import DOCUMENT_URL, assert_documented

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CLIENTS = "/api/v1/supervised-clients"
ONE = "/api/v1/supervised-clients/{reference}"
FAILURES = "/api/v1/supervision-failures"
NIGHT = {"weekdays": ["mån-fre"], "times": ["23:00", "01:30", "04:00"]}


@pytest.fixture
def providers(app, clock):
    with app.app_context():
        team = Actor("team")
        ids = {}
        for name in ("Hemtjänst Norr", "Omsorg AB", "Vård i Väst"):
            ids[name] = register.create_provider(
                db.session, {"name": name, "kind": "municipal"}, actor=team, now=clock.now()
            ).record.id
        inactive = register.create_provider(
            db.session, {"name": "Nedlagd AB", "kind": "private"}, actor=team, now=clock.now()
        ).record
        register.update_provider(db.session, inactive, {"is_active": False}, actor=team, now=clock.now())
        ids["Nedlagd AB"] = inactive.id
        db.session.commit()
        return ids


@pytest.fixture
def operator(make_user, make_token):
    user_id, _, _ = make_user(role="alarm_operator")
    return make_token(user_id)


@pytest.fixture
def document(client):
    return client.get(DOCUMENT_URL).get_json()


@pytest.fixture
def call(client, document, operator):
    def do(method, url, template, token=None, **kwargs):
        response = client.open(url, method=method, headers={"Authorization": f"Bearer {token or operator}"}, **kwargs)
        assert_documented(document, response, method, template)
        return response

    return do


@pytest.fixture
def created_visits(monkeypatch):
    """What crisis.visits.visits_created was handed (the visits part alerts the providers)."""
    calls = []

    def record(db_session, visits, now):
        calls.append([visit.id for visit in visits])

    monkeypatch.setattr("crisis.visits.service.visits_created", record)
    return calls


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def put_clients(call, clients, **extra):
    return call("PUT", CLIENTS, CLIENTS, json={"clients": clients, **extra})


def test_the_operator_uploads_clients_with_schedules_and_reads_them_back(app, call, providers):
    response = put_clients(
        call,
        [
            {
                "reference": "K-001",
                "provider_id": providers["Hemtjänst Norr"],
                "area": "Norr",
                "schedules": [NIGHT, {"weekdays": ["sat", "sun"], "times": ["23:00"], "valid_from": "2027-01-01"}],
                "exceptions": [{"date": "2027-12-24", "action": "skip"}],
            },
            {"reference": "K-002", "provider": "omsorg ab", "area": "Söder", "schedules": [NIGHT]},
        ],
    )
    assert response.status_code == 200
    assert response.get_json() == {"created": 2, "updated": 0, "unchanged": 0, "deactivated": 0}
    listing = call("GET", CLIENTS, CLIENTS).get_json()
    assert listing["total"] == 2
    first = listing["items"][0]
    assert first["reference"] == "K-001"
    assert first["schedules"][0] == {
        "weekdays": ["mon", "tue", "wed", "thu", "fri"],
        "times": ["23:00", "01:30", "04:00"],
        "valid_from": None,
        "valid_until": None,
    }
    assert first["schedules"][1]["valid_from"] == "2027-01-01"
    assert first["exceptions"] == [{"date": "2027-12-24", "action": "skip", "time": None}]
    # Filters: by provider and by area, ignoring case.
    by_provider = call("GET", f"{CLIENTS}?provider_id={providers['Omsorg AB']}", CLIENTS).get_json()
    assert [c["reference"] for c in by_provider["items"]] == ["K-002"]
    assert [c["reference"] for c in call("GET", f"{CLIENTS}?area=SÖDER", CLIENTS).get_json()["items"]] == ["K-002"]
    # The same again changes nothing.
    again = put_clients(call, [{"reference": "K-002", "provider": "Omsorg AB", "area": "Söder", "schedules": [NIGHT]}])
    assert again.get_json()["unchanged"] == 1


def test_a_batch_with_errors_saves_nothing_and_reports_every_error(app, call, providers):
    good = {"reference": "K-001", "provider_id": providers["Hemtjänst Norr"], "area": "Norr", "schedules": [NIGHT]}
    response = put_clients(
        call,
        [
            good,
            {
                "reference": "K 002!",
                "provider_id": providers["Nedlagd AB"],
                "area": "",
                "schedules": [{"weekdays": ["moon"], "times": ["25:00"]}],
                "exceptions": [{"date": "2027-13-01", "action": "maybe"}],
            },
            {"reference": "k-001", "provider_id": 999999, "area": "Norr"},
        ],
    )
    assert response.status_code == 422
    fields = response.get_json()["fields"]
    assert set(fields) == {
        "clients[1].reference",
        "clients[1].provider_id",
        "clients[1].area",
        "clients[1].schedules[0].weekdays",
        "clients[1].schedules[0].times",
        "clients[1].exceptions[0].date",
        "clients[1].exceptions[0].action",
        "clients[2].provider_id",
    }
    assert "inaktiv" in fields["clients[1].provider_id"]
    with app.app_context():
        assert count(SupervisedClient) == 0


def test_a_duplicate_reference_in_one_batch_is_an_error(app, call, providers):
    item = {"reference": "K-001", "provider_id": providers["Hemtjänst Norr"], "area": "Norr"}
    response = put_clients(call, [item, {**item, "reference": "k-001"}])
    assert response.status_code == 422
    assert "clients[1].reference" in response.get_json()["fields"]


def test_a_body_of_the_wrong_shape_is_400(call, providers):
    assert call("PUT", CLIENTS, CLIENTS, json={"clients": "K-001"}).status_code == 400
    assert call("PUT", CLIENTS, CLIENTS, json={"clients": [], "extra": 1}).status_code == 400


def test_the_complete_set_deactivates_missing_clients_and_delete_deactivates_one(app, call, providers):
    base = {"provider_id": providers["Hemtjänst Norr"], "area": "Norr", "schedules": [NIGHT]}
    put_clients(call, [{**base, "reference": ref} for ref in ("K-1", "K-2", "K-3")])
    response = put_clients(call, [{**base, "reference": "K-1"}, {**base, "reference": "K-2"}], complete=True)
    assert response.get_json()["deactivated"] == 1
    deleted = call("DELETE", "/api/v1/supervised-clients/K-2", ONE)
    assert deleted.status_code == 200 and deleted.get_json()["active"] is False
    assert call("DELETE", "/api/v1/supervised-clients/NOPE", ONE).status_code == 404
    active = call("GET", f"{CLIENTS}?active=true", CLIENTS).get_json()
    assert [c["reference"] for c in active["items"]] == ["K-1"]


def test_who_may_use_the_supervision_api(client, make_user, make_token, providers):
    for role, status in (("team", 200), ("admin", 200), ("on_call", 403), ("supplier", 403)):
        user_id, _, _ = make_user(role=role)
        token = make_token(user_id)
        response = client.get(CLIENTS, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == status, role
    assert client.post(FAILURES, json={}).status_code == 401


@pytest.fixture
def night_clients(app, call, providers, clock):
    """Monday 11 January 2027, 23:10 in Stockholm: two clients on the nightly round."""
    clock.set(datetime(2027, 1, 11, 23, 10, tzinfo=STOCKHOLM))
    put_clients(
        call,
        [
            {"reference": "K-1", "provider_id": providers["Hemtjänst Norr"], "area": "Norr", "schedules": [NIGHT]},
            {"reference": "K-2", "provider_id": providers["Omsorg AB"], "area": "Norr", "schedules": [NIGHT]},
        ],
    )
    return providers


def at(hour, minute=0, day=11):
    return datetime(2027, 1, day, hour, minute, tzinfo=STOCKHOLM).isoformat()


def test_a_reported_failure_becomes_one_visit_for_the_clients_provider_once(
    app, call, night_clients, created_visits, clock
):
    failure = {"reference": "K-1", "scheduled_at": at(23), "reason": "Ingen bild"}
    first = call("POST", FAILURES, FAILURES, json=failure)
    assert first.status_code == 201
    visit = first.get_json()["visits"][0]
    assert visit["provider_id"] == night_clients["Hemtjänst Norr"]
    assert visit["due_at"] == datetime(2027, 1, 11, 22, 0, tzinfo=UTC).isoformat()
    assert visit["created"] is True and visit["scheduled"] is True
    assert len(created_visits) == 1 and created_visits[0] == [visit["id"]]
    # Reported again (another offset, same instant): the same visit, nothing new.
    again = call("POST", FAILURES, FAILURES, json={**failure, "scheduled_at": "2027-01-11T22:00:00+00:00"})
    assert again.status_code == 200
    assert again.get_json()["visits"][0]["id"] == visit["id"]
    assert again.get_json()["visits"][0]["created"] is False
    assert len(created_visits) == 1
    with app.app_context():
        assert count(SupervisionFailure) == 1 and count(Visit) == 1
        events = db.session.scalars(select(VisitEvent)).all()
        assert [(e.kind, e.visit_id) for e in events] == [("created", visit["id"])]


def test_a_batch_of_failures_calls_visits_created_once_with_the_new_visits(app, call, night_clients, created_visits):
    call("POST", FAILURES, FAILURES, json={"reference": "K-1", "scheduled_at": at(23)})
    response = call(
        "POST",
        FAILURES,
        FAILURES,
        json={
            "failures": [
                {"reference": "K-1", "scheduled_at": at(23)},
                {"reference": "K-2", "scheduled_at": at(23)},
                {"reference": "K-2", "scheduled_at": at(1, 30, day=12), "reason": "GSM nere"},
            ]
        },
    )
    assert response.status_code == 201
    assert [v["created"] for v in response.get_json()["visits"]] == [False, True, True]
    assert len(created_visits) == 2 and len(created_visits[1]) == 2


def test_bad_failures_save_nothing_and_every_error_is_reported(app, call, night_clients, created_visits):
    response = call(
        "POST",
        FAILURES,
        FAILURES,
        json={
            "failures": [
                {"reference": "K-1", "scheduled_at": at(23)},
                {"reference": "NOBODY", "scheduled_at": at(23)},
                {"reference": "K-2", "scheduled_at": "2027-01-11T23:00"},
                {"reference": "K-2", "scheduled_at": at(23, day=20)},
                {"reference": "K-2", "scheduled_at": at(23), "reason": "x" * 301, "colour": "red"},
            ]
        },
    )
    assert response.status_code == 422
    assert set(response.get_json()["fields"]) == {
        "failures[1].reference",
        "failures[2].scheduled_at",
        "failures[3].scheduled_at",
        "failures[4].reason",
        "failures[4].colour",
    }
    assert created_visits == []
    with app.app_context():
        assert count(SupervisionFailure) == 0 and count(Visit) == 0


def test_a_time_off_the_schedule_is_accepted_and_marked(app, call, night_clients, created_visits):
    response = call("POST", FAILURES, FAILURES, json={"reference": "K-1", "scheduled_at": at(23, 45)})
    assert response.status_code == 201
    assert response.get_json()["visits"][0]["scheduled"] is False
    with app.app_context():
        event = db.session.scalars(select(VisitEvent)).one()
        assert event.detail == {"source": "operator", "unscheduled": True}


def test_a_deactivated_client_cannot_get_failures(app, call, night_clients, created_visits):
    call("DELETE", "/api/v1/supervised-clients/K-1", ONE)
    response = call("POST", FAILURES, FAILURES, json={"reference": "K-1", "scheduled_at": at(23)})
    assert response.status_code == 422 and "reference" in response.get_json()["fields"]


def test_failures_are_refused_more_than_a_day_away(app, call, night_clients, clock):
    clock.set(clock.now() + timedelta(days=2))
    response = call("POST", FAILURES, FAILURES, json={"reference": "K-1", "scheduled_at": at(23)})
    assert response.status_code == 422


def test_a_time_a_few_minutes_off_is_the_scheduled_supervision(app, call, night_clients, created_visits):
    first = call("POST", FAILURES, FAILURES, json={"reference": "K-1", "scheduled_at": at(23)}).get_json()
    late = call("POST", FAILURES, FAILURES, json={"reference": "K-1", "scheduled_at": at(23, 3)})
    assert late.status_code == 200
    assert late.get_json()["visits"][0]["id"] == first["visits"][0]["id"]
    assert late.get_json()["visits"][0]["scheduled"] is True
