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
from crisis.oncall.handovers import acknowledge_handover
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


def addresses_of(app, user_id: int) -> tuple[str, str]:
    with app.app_context():
        user = db.session.get(User, user_id)
        return user.email, user.mobile


def told(app) -> list[tuple[str, str, str]]:
    """The handover messages queued: (local time, kind, address), in order."""
    return sorted(
        (at, kind, address) for at, _, address, kind in outbox(app, "crisis.handover", "crisis.handover_given")
    )


@pytest.mark.parametrize(
    ("day", "notice", "closing"),
    [
        (date(2026, 11, 24), (10, 0), (17, 0)),  # office hours end at 17:00
        (date(2027, 5, 11), (16, 30), (17, 0)),  # May, a notice at 16:30 still open at 17:00
        (date(2027, 6, 15), (10, 0), (16, 0)),  # at 16:00 in June
        (date(2027, 5, 12), (10, 0), (17, 0)),  # the day before Ascension Day: the officer until Monday
    ],
)
def test_at_the_end_of_office_hours_the_officer_is_alerted_once_and_the_team_gets_one_note(
    app, clock, people, day, notice, closing
):
    incident_id = new_incident(app, clock, local(day, *notice))
    with app.app_context():
        assert db.session.get(Incident, incident_id).party == "team"
    end = local(day, *closing)
    tick_every_minute(app, clock, end - timedelta(minutes=5), 4)
    assert handovers(app) == []
    tick_every_minute(app, clock, end, 3)
    assert handovers(app) == [(incident_id, local_text(end), "team", "on_call")]
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        officer = incident.handler_user_id
        assert incident.party == "on_call" and officer in {people["anna"], people["bo"], people["cia"]}
    email, mobile = addresses_of(app, officer)
    at = local_text(end)
    # The receiving side (the officer): one alert, by e-mail and SMS. The side handing over (the
    # team's mailbox and duty phone): one note. Nothing else about the handover to anyone.
    assert told(app) == sorted(
        [
            (at, "crisis.handover", email),
            (at, "crisis.handover", mobile),
            (at, "crisis.handover_given", TEAM_EMAIL),
            (at, "crisis.handover_given", TEAM_MOBILE),
        ]
    )
    with app.app_context():
        from notifications.models import Message

        alert_sms = db.session.scalars(
            select(Message).where(Message.kind == "crisis.handover", Message.channel == "sms")
        ).one()
        assert "till TIB" in alert_sms.body_text and "/handovers/" in alert_sms.body_text
        note_sms = db.session.scalars(
            select(Message).where(Message.kind == "crisis.handover_given", Message.channel == "sms")
        ).one()
        assert "TIB har tagit över 1 öppen driftstörning från teamet" in note_sms.body_text
        note = db.session.scalars(
            select(Message).where(Message.kind == "crisis.handover_given", Message.channel == "email")
        ).one()
        assert "Larmcentralen nere" in note.body_text and "lämnats över till tjänstemannen i beredskap" in (
            note.body_text
        )
    # The officer acknowledges; the next boundary (07:45 on the next working day) hands it back:
    # the team alerted once, the officer told once.
    with app.app_context():
        handover = db.session.scalars(select(Handover)).one()
        assert acknowledge_handover(db.session, handover, db.session.get(User, officer), clock.now())
        db.session.commit()
    opening = local(day + timedelta(days=1), 7, 45)
    while not _office_at(app, opening):
        opening += timedelta(days=1)
    tick_every_minute(app, clock, opening, 2)
    back = [row for row in told(app) if row[0] == local_text(opening)]
    assert back == sorted(
        [
            (local_text(opening), "crisis.handover", TEAM_EMAIL),
            (local_text(opening), "crisis.handover", TEAM_MOBILE),
            (local_text(opening), "crisis.handover_given", email),
            (local_text(opening), "crisis.handover_given", mobile),
        ]
    )


def _office_at(app, instant) -> bool:
    from worktime.calendar import is_office_hours

    return is_office_hours(instant, app.extensions["krisrutin.routine"])


def test_after_a_holiday_the_team_is_alerted_once_and_the_officer_gets_one_note(app, clock, people):
    # Trettondedag jul (Wednesday 6 January 2027) belongs to the officer; Thursday 07:45 the team.
    incident_id = new_incident(app, clock, local(date(2027, 1, 6), 11, 0))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert incident.party == "on_call"
        email, mobile = addresses_of(app, incident.handler_user_id)
    tick_every_minute(app, clock, local(date(2027, 1, 7), 7, 44), 3)
    assert handovers(app) == [(incident_id, "2027-01-07 07:45", "on_call", "team")]
    assert [row for row in told(app)] == sorted(
        [
            ("2027-01-07 07:45", "crisis.handover", TEAM_EMAIL),
            ("2027-01-07 07:45", "crisis.handover", TEAM_MOBILE),
            ("2027-01-07 07:45", "crisis.handover_given", email),
            ("2027-01-07 07:45", "crisis.handover_given", mobile),
        ]
    )


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
