"""Planned work: announced at least 7 days ahead, starting Tuesday-Thursday 10-13 Stockholm time,
or accepted and flagged to the team. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.extensions import db
from crisis.incidents.intake import planned_work_flag
from crisis.incidents.models import Incident, IncidentEvent

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NOTICES = "/api/v1/notices"


def local(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=STOCKHOLM)


@pytest.mark.parametrize(
    ("now", "starts_at", "flagged_for"),
    [
        (local(2026, 11, 22, 10), local(2026, 12, 2, 10, 30), None),  # 10 days ahead, a Wednesday 10:30
        (local(2026, 11, 20, 10), local(2026, 11, 30, 10, 30), "utanför"),  # 10 days ahead, a Monday
        (local(2026, 11, 22, 10), local(2026, 11, 25, 10, 30), "mindre än 7 dagar"),  # 3 days ahead
        (local(2026, 11, 22, 10), local(2026, 11, 29, 10, 0), "utanför"),  # a Sunday
        (local(2026, 11, 1, 10), local(2026, 11, 10, 13, 0), "utanför"),  # Tuesday 13:00: the window has ended
        (local(2026, 11, 1, 10), local(2026, 11, 12, 12, 59), None),  # Thursday 12:59
        (local(2026, 11, 1, 10), local(2026, 11, 11, 9, 59), "utanför"),  # Wednesday 9:59
        # Summer time: 10:30 in Stockholm is 08:30 UTC, still inside the window.
        (local(2027, 5, 1, 10), local(2027, 6, 16, 10, 30), None),
        (local(2026, 11, 25, 10, 31), local(2026, 12, 2, 10, 30), "mindre än 7 dagar"),  # a minute short of 7 days
        (local(2026, 11, 25, 10, 30), local(2026, 12, 2, 10, 30), None),  # exactly 7 days
    ],
)
def test_planned_work_is_flagged_when_late_or_outside_the_window(app, now, starts_at, flagged_for):
    policy = app.extensions["krisrutin.routine"]
    reason = planned_work_flag(starts_at, now, policy)
    if flagged_for is None:
        assert reason is None
    else:
        assert flagged_for in reason


def test_the_reason_names_both_problems(app):
    policy = app.extensions["krisrutin.routine"]
    reason = planned_work_flag(local(2026, 11, 23, 22), local(2026, 11, 22, 10), policy)
    assert "mindre än 7 dagar" in reason and "måndag 2026-11-23 22:00" in reason


def _post(client, token, starts_at, planned=True):
    body = {"title": "Planerat underhåll", "service": "camera_supervision", "planned": planned, "starts_at": starts_at}
    response = client.post(NOTICES, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _flag_steps(app, incident_id):
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        events = db.session.scalars(
            select(IncidentEvent).where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "flagged")
        ).all()
        return incident.flag_reason, [event.detail["reason"] for event in events]


def test_planned_work_three_days_ahead_is_accepted_and_flagged(app, client, clock, make_user, make_token):
    clock.set(local(2026, 11, 22, 10))
    user_id, _, _ = make_user("alarm_operator")
    notice = _post(client, make_token(user_id), "2026-11-25T10:30:00+01:00")
    reason, steps = _flag_steps(app, notice["incident_id"])
    assert "mindre än 7 dagar" in reason and steps == [reason]
    assert notice["flag_reason"] == reason


def test_planned_work_well_ahead_in_the_window_is_not_flagged(app, client, clock, make_user, make_token):
    clock.set(local(2026, 11, 22, 10))
    user_id, _, _ = make_user("alarm_operator")
    notice = _post(client, make_token(user_id), "2026-12-02T10:30:00+01:00")
    assert _flag_steps(app, notice["incident_id"]) == (None, [])


def test_planned_work_on_a_monday_is_flagged(app, client, clock, make_user, make_token):
    clock.set(local(2026, 11, 20, 10))
    user_id, _, _ = make_user("alarm_operator")
    notice = _post(client, make_token(user_id), "2026-11-30T10:30:00+01:00")
    reason, steps = _flag_steps(app, notice["incident_id"])
    assert "måndag" in reason and steps == [reason]


def test_an_unplanned_disruption_is_never_flagged(app, client, clock, make_user, make_token):
    clock.set(local(2026, 11, 22, 2, 10))
    user_id, _, _ = make_user("alarm_operator")
    notice = _post(client, make_token(user_id), "2026-11-22T02:00:00+01:00", planned=False)
    assert _flag_steps(app, notice["incident_id"]) == (None, [])
