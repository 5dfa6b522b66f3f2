"""The public calendar API: who is responsible at an instant, and a month's contact check dates."""

from datetime import UTC, datetime

import pytest

RESPONSIBLE = "/api/v1/calendar/responsible"
CHECK_PLAN = "/api/v1/calendar/check-plan"


def test_responsible_answers_anonymously_with_the_documented_body(client):
    response = client.get(RESPONSIBLE, query_string={"at": "2026-12-24T10:00:00+01:00"})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "at": "2026-12-24T10:00:00+01:00",
        "responsible": "on_call",
        "office_hours": False,
        "next_change": "2026-12-28T07:45:00+01:00",
    }


@pytest.mark.parametrize(
    ("at", "expected_at", "responsible", "next_change"),
    [
        ("2026-11-23T09:00:00Z", "2026-11-23T10:00:00+01:00", "team", "2026-11-23T17:00:00+01:00"),
        ("2026-11-23T09:00:00z", "2026-11-23T10:00:00+01:00", "team", "2026-11-23T17:00:00+01:00"),
        ("2026-11-23T04:00:00-05:00", "2026-11-23T10:00:00+01:00", "team", "2026-11-23T17:00:00+01:00"),
        ("2026-11-23 10:00+01:00", "2026-11-23T10:00:00+01:00", "team", "2026-11-23T17:00:00+01:00"),
        ("2026-11-27T17:00:00.5+01:00", "2026-11-27T17:00:00.500000+01:00", "on_call", "2026-11-30T07:45:00+01:00"),
        # Autumn DST change: the repeated hour, second time round.
        ("2026-10-25T01:30:00Z", "2026-10-25T02:30:00+01:00", "on_call", "2026-10-26T07:45:00+01:00"),
        ("2026-03-28T12:00:00+01:00", "2026-03-28T12:00:00+01:00", "on_call", "2026-03-30T07:45:00+02:00"),
    ],
)
def test_responsible_accepts_any_offset_and_answers_in_local_time(client, at, expected_at, responsible, next_change):
    body = client.get(RESPONSIBLE, query_string={"at": at}).get_json()
    assert body == {
        "at": expected_at,
        "responsible": responsible,
        "office_hours": responsible == "team",
        "next_change": next_change,
    }


@pytest.mark.parametrize(
    "raw_query",
    [
        "at=2026-11-23T10:00:00+01:00",  # an unencoded "+" arrives as a space
        "at=2026-11-23T10:00:00%2001:00",
        "at=2026-11-23T10:00:00%2B01:00",
    ],
)
def test_responsible_reads_a_space_before_the_offset_as_plus(client, raw_query):
    response = client.get(f"{RESPONSIBLE}?{raw_query}")
    assert response.status_code == 200
    assert response.get_json()["at"] == "2026-11-23T10:00:00+01:00"
    assert response.get_json()["responsible"] == "team"


def test_responsible_without_at_uses_the_applications_clock(client, clock):
    assert client.get(RESPONSIBLE).get_json() == {
        "at": "2026-11-23T10:00:00+01:00",
        "responsible": "team",
        "office_hours": True,
        "next_change": "2026-11-23T17:00:00+01:00",
    }
    clock.set(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))
    assert client.get(RESPONSIBLE).get_json()["responsible"] == "on_call"


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-23T10:00:00", "with a UTC offset"),  # naive
        ("2026-11-23 10:00", "with a UTC offset"),
        ("2026-11-23", "with a UTC offset"),
        ("garbage", "with a UTC offset"),
        ("", "with a UTC offset"),
        ("2026-02-30T10:00:00+01:00", "with a UTC offset"),
        ("2026-11-23T25:00:00+01:00", "with a UTC offset"),
        ("1899-12-31T23:00:00+00:00", "a year from 1900 to 2200"),
        ("2201-01-01T00:00:00+00:00", "a year from 1900 to 2200"),
    ],
)
def test_responsible_refuses_anything_but_an_instant_with_an_offset(client, at, expected):
    response = client.get(RESPONSIBLE, query_string={"at": at})
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error.startswith("at: expected")
    assert expected in error


def test_the_error_shows_an_example_of_the_expected_form(client):
    error = client.get(RESPONSIBLE, query_string={"at": "tomorrow"}).get_json()["error"]
    assert error == "at: expected an ISO 8601 instant with a UTC offset, e.g. 2026-11-23T10:00:00+01:00"


def test_check_plan_answers_anonymously_with_the_documented_body(client):
    response = client.get(CHECK_PLAN, query_string={"month": "2027-01"})
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"].startswith("public")
    assert response.get_json() == {
        "month": "2027-01",
        "send_on": "2027-01-04",
        "reminders": ["2027-01-07", "2027-01-08"],
        "call_on": "2027-01-11",
    }


def test_check_plan_without_month_is_for_the_current_local_month(client, clock):
    assert client.get(CHECK_PLAN).get_json() == {
        "month": "2026-11",
        "send_on": "2026-11-02",
        "reminders": ["2026-11-05", "2026-11-06"],
        "call_on": "2026-11-09",
    }
    # 23:30 UTC on 30 November is already December in Stockholm.
    clock.set(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    assert client.get(CHECK_PLAN).get_json()["month"] == "2026-12"


@pytest.mark.parametrize(
    ("month", "error"),
    [
        ("2026-13", "month: expected YYYY-MM, e.g. 2026-12"),
        ("2026-00", "month: expected YYYY-MM, e.g. 2026-12"),
        ("2026-1", "month: expected YYYY-MM, e.g. 2026-12"),
        ("abc", "month: expected YYYY-MM, e.g. 2026-12"),
        ("", "month: expected YYYY-MM, e.g. 2026-12"),
        ("2026-12-01", "month: expected YYYY-MM, e.g. 2026-12"),
        ("1899-12", "month: expected a year from 1900 to 2200"),
    ],
)
def test_check_plan_refuses_a_malformed_month(client, month, error):
    response = client.get(CHECK_PLAN, query_string={"month": month})
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": error}
