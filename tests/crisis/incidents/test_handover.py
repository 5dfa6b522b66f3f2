"""Handover at the boundaries of office hours, through the scheduler tick with a fake clock:
once per incident and boundary however often the tick runs, the receiving side alerted, the
handing-over side told, acknowledgement and one re-alert."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from accounts.models import User
from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent
from crisis.incidents.routing import acknowledge_incident
from crisis.oncall.models import Handover
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_routing_helpers import (
    TEAM_EMAIL,
    TEAM_MOBILE,
    events,
    local,
    local_text,
    new_incident,
    outbox,
    put_on_roster,
    routing_app,
    run_tick,
    staff,
)

SATURDAY = date(2026, 11, 28)  # bo on call until Monday 07:45
MONDAY = date(2026, 11, 30)


@pytest.fixture
def app(make_app):
    return routing_app(make_app)


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    ids |= staff(app, make_user, ["teamet"], role="team", first=8)
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    return ids


@pytest.fixture
def night_incident(app, clock, people):
    """Saturday 02:10: routed to bo, who acknowledges at 02:20; still open on Monday."""
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    clock.set(local(SATURDAY, 2, 20))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        acknowledge_incident(db.session, incident, db.session.get(User, people["bo"]), clock.now())
        db.session.commit()
    return incident_id


def handovers(app) -> list[tuple[int, str, str, str]]:
    with app.app_context():
        rows = [
            (h.incident_id, local_text(h.boundary_at), h.from_party, h.to_party)
            for h in db.session.scalars(select(Handover).order_by(Handover.id))
        ]
        db.session.remove()
        return rows


def tick_every_minute(app, clock, start, minutes):
    for minute in range(minutes + 1):
        run_tick(app, clock, start + timedelta(minutes=minute))


def test_an_incident_open_since_saturday_night_is_handed_to_the_team_once_at_monday_0745(
    app, clock, people, night_incident
):
    tick_every_minute(app, clock, local(MONDAY, 7, 40), 10)
    run_tick(app, clock, local(MONDAY, 7, 50))  # twice at the same instant
    assert handovers(app) == [(night_incident, "2026-11-30 07:45", "on_call", "team")]
    with app.app_context():
        incident = db.session.get(Incident, night_incident)
        assert (incident.party, incident.handler_user_id) == ("team", None)
        assert incident.party_since == local(MONDAY, 7, 45)
        handover = db.session.scalars(select(Handover)).one()
        assert handover.from_user_id == people["bo"]
        # The history handed over: every step before the handover (the weekend's reminders to
        # send an update included), starting with the routing and the officer's acknowledgement.
        before = [
            event.kind
            for event in db.session.scalars(
                select(IncidentEvent).where(IncidentEvent.incident_id == night_incident).order_by(IncidentEvent.id)
            )
            if event.at < local(MONDAY, 7, 45)
        ]
        assert [e["kind"] for e in handover.summary["events"]] == before
        assert before[:3] == ["routed", "alerted", "acknowledged"] and "update_due" in before
        handover_id = handover.id

    # The team is alerted, with a link to the handover; bo hears that the team has it.
    assert outbox(app, "crisis.handover") == [
        (
            "2026-11-30 07:45",
            f"crisis-alert:{night_incident}:handover:{handover_id}:0:email",
            TEAM_EMAIL,
            "crisis.handover",
        ),
        (
            "2026-11-30 07:45",
            f"crisis-alert:{night_incident}:handover:{handover_id}:0:sms",
            TEAM_MOBILE,
            "crisis.handover",
        ),
    ]
    told = outbox(app, "crisis.handover_given")
    assert [(at, address) for at, _, address, _ in told] == [
        ("2026-11-30 07:45", "bo@kommun.example.se"),
        ("2026-11-30 07:45", "+46701000002"),
    ]
    kinds = [kind for _, kind, _ in events(app, night_incident)]
    assert kinds.count("handover") == 1
    with app.app_context():
        from notifications.models import Message

        sms = db.session.scalars(select(Message).where(Message.to_address == TEAM_MOBILE)).one()
        assert f"https://krisrutin.kommun.example.se/handovers/{handover_id}" in sms.body_text


def test_an_unacknowledged_handover_is_alerted_once_more_after_15_minutes(app, clock, people, night_incident):
    tick_every_minute(app, clock, local(MONDAY, 7, 44), 1)
    run_tick(app, clock, local(MONDAY, 7, 59))
    assert len(outbox(app, "crisis.handover")) == 2
    tick_every_minute(app, clock, local(MONDAY, 8, 0), 30)
    realerts = [row for row in outbox(app, "crisis.handover") if row[1].endswith((":1:email", ":1:sms"))]
    assert [(at, address) for at, _, address, _ in realerts] == [
        ("2026-11-30 08:00", TEAM_EMAIL),
        ("2026-11-30 08:00", TEAM_MOBILE),
    ]
    assert len(outbox(app, "crisis.handover")) == 4


def test_the_team_acknowledges_the_handover_on_its_page_and_no_realert_follows(app, clock, people, night_incident):
    tick_every_minute(app, clock, local(MONDAY, 7, 45), 0)
    with app.app_context():
        handover_id = db.session.scalars(select(Handover.id)).one()

    # The officer coming off duty may read it, but only the receiving side acknowledges.
    officer = app.test_client()
    log_in(officer, "bo")
    page = officer.get(f"/handovers/{handover_id}").get_data(as_text=True)
    assert "Kvittera överlämningen" not in page
    assert (
        officer.post(f"/handovers/{handover_id}/acknowledge", data={"csrf_token": csrf_token_from(page)}).status_code
        == 403
    )

    clock.set(local(MONDAY, 7, 52))
    team = app.test_client()
    log_in(team, "teamet")
    page = team.get(f"/handovers/{handover_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Historik vid överlämningen" in html and "Fördelat" in html and "Larmat" in html
    response = team.post(f"/handovers/{handover_id}/acknowledge", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 302
    again = team.post(
        f"/handovers/{handover_id}/acknowledge", data={"csrf_token": csrf_token_from(html)}, follow_redirects=True
    )
    assert "redan kvitterad" in again.get_data(as_text=True)

    tick_every_minute(app, clock, local(MONDAY, 8, 0), 20)
    assert len(outbox(app, "crisis.handover")) == 2
    with app.app_context():
        handover = db.session.get(Handover, handover_id)
        assert handover.acknowledged_at == local(MONDAY, 7, 52)
        assert handover.acknowledged_by_id == people["teamet"]
    assert "handover_acknowledged" in [kind for _, kind, _ in events(app, night_incident)]

    # The incident page shows the handover.
    detail = team.get(f"/incidents/{night_incident}").get_data(as_text=True)
    assert f"/handovers/{handover_id}" in detail


@pytest.mark.parametrize(
    ("day", "closing", "officer", "address"),
    [
        (date(2026, 11, 24), (17, 0), "bo", "bo@kommun.example.se"),  # office hours end at 17:00
        (date(2027, 6, 15), (16, 0), "anna", "anna@kommun.example.se"),  # at 16:00 in June
    ],
)
def test_an_open_incident_passes_from_the_team_to_the_officer_when_office_hours_end(
    app, clock, people, day, closing, officer, address
):
    incident_id = new_incident(app, clock, local(day, 10))
    with app.app_context():
        assert db.session.get(Incident, incident_id).party == "team"
    end = local(day, *closing)
    tick_every_minute(app, clock, end - timedelta(minutes=5), 4)
    assert handovers(app) == []
    tick_every_minute(app, clock, end, 3)
    assert handovers(app) == [(incident_id, local_text(end), "team", "on_call")]
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.party, incident.handler_user_id) == ("on_call", people[officer])
    alerted = {row[2] for row in outbox(app, "crisis.handover")}
    assert address in alerted and TEAM_EMAIL not in alerted
    # The officer gets the list of what is open.
    listed = outbox(app, "crisis.handover_given")
    assert address in {row[2] for row in listed}
    with app.app_context():
        from notifications.models import Message

        mail = db.session.scalars(
            select(Message).where(Message.kind == "crisis.handover_given", Message.channel == "email")
        ).one()
        assert "Larmcentralen nere" in mail.body_text


def test_a_closed_incident_is_not_handed_over(app, clock, people):
    incident_id = new_incident(app, clock, local(date(2026, 11, 24), 10))
    with app.app_context():
        db.session.get(Incident, incident_id).status = "not_relevant"
        db.session.commit()
    tick_every_minute(app, clock, local(date(2026, 11, 24), 17), 2)
    assert handovers(app) == []


def test_an_unacknowledged_night_alert_stops_escalating_once_the_team_has_the_incident(app, clock, people):
    from dataclasses import replace

    policy = app.extensions["krisrutin.routine"]
    app.extensions["krisrutin.routine"] = replace(policy, crisis=replace(policy.crisis, manager_username="teamet"))
    incident_id = new_incident(app, clock, local(MONDAY, 7, 20))  # cia's week has not begun: bo
    run_tick(app, clock, local(MONDAY, 7, 35))  # bo silent: the backup (cia) is alerted
    tick_every_minute(app, clock, local(MONDAY, 7, 45), 10)  # handover; the manager step falls due at 07:50
    alerted = [(row[0], row[2]) for row in outbox(app, "crisis.alert")]
    assert alerted == [
        ("2026-11-30 07:20", "bo@kommun.example.se"),
        ("2026-11-30 07:20", "+46701000002"),
        ("2026-11-30 07:35", "cia@kommun.example.se"),
        ("2026-11-30 07:35", "+46701000003"),
    ]
    assert handovers(app) == [(incident_id, "2026-11-30 07:45", "on_call", "team")]
    assert {row[2] for row in outbox(app, "crisis.handover")} == {TEAM_EMAIL, TEAM_MOBILE}
