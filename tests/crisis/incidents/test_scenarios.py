"""Whole disruption scenarios: a fake clock, the HTTP API and pages, the
scheduler tick — intake, routing, alerts, escalation, letters, follow-ups and handover together."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from accounts.models import User
from core.extensions import db
from crisis.incidents.models import Incident, Letter, Supplier
from crisis.oncall import roster
from crisis.oncall.models import Handover
from notifications.models import Message
from tests.conftest import DEFAULT_PASSWORD, csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import make_people
from tests.crisis.incidents.test_routing_helpers import (
    BASE_URL,
    TEAM_EMAIL,
    TEAM_MOBILE,
    local,
    local_text,
    put_on_roster,
    run_tick,
    staff,
)

SATURDAY = date(2027, 1, 16)
MONDAY = date(2027, 1, 18)


@pytest.fixture
def world(make_app, make_user, make_token, clock):
    """The register (two providers of camera supervision, one of alarms only), Telia, two
    on-call officers on the roster, a manager, a team member and the alarm centre's token."""
    app = make_app(PUBLIC_BASE_URL=BASE_URL, TEAM_EMAIL=TEAM_EMAIL, TEAM_MOBILE=TEAM_MOBILE)
    policy = app.extensions["krisrutin.routine"]
    app.extensions["krisrutin.routine"] = replace(policy, crisis=replace(policy.crisis, manager_username="chefen"))
    clock.set(local(date(2027, 1, 4), 9))
    with app.app_context():
        contacts = make_people(clock)
        db.session.add(Supplier(name="Telia", email="drift@telia.example.se", created_at=clock.now()))
        db.session.commit()
    officers = staff(app, make_user, ["bo", "cia"])
    manager = staff(app, make_user, ["chefen"], role="team", first=9)
    put_on_roster(app, [officers["bo"], officers["cia"]])
    _, team_name, team_password = make_user(role="team", username="teamet")
    alarm_id, _, _ = make_user(role="alarm_operator", username="larmcentralen")
    return {
        "app": app,
        "contacts": contacts,
        "officers": officers,
        "manager": manager["chefen"],
        "team": (team_name, team_password),
        "alarm_token": make_token(alarm_id),
    }


def post_notice(app, token, **fields):
    body = {"title": "GSM-nätet ur funktion", "service": "camera_supervision", "supplier": "Telia", **fields}
    return app.test_client().post("/api/v1/notices", json=body, headers={"Authorization": f"Bearer {token}"})


def officer_on_duty(app, at) -> tuple[int, str, str]:
    with app.app_context():
        user = roster.on_call_at(db.session, at)
        result = (user.id, user.email, user.mobile)
        db.session.remove()
        return result


def sent_to(app, kind: str) -> list[tuple[str, str]]:
    """(local time queued, address) of the messages of ``kind``."""
    with app.app_context():
        rows = [
            (local_text(m.created_at), m.to_address)
            for m in db.session.scalars(select(Message).where(Message.kind == kind).order_by(Message.id))
        ]
        db.session.remove()
        return rows


def staff_client(app, username, password=DEFAULT_PASSWORD):
    client = app.test_client()
    log_in(client, username, password)
    return client


def form_post(client, page_url, post_url, data):
    token = csrf_token_from(client.get(page_url).get_data(as_text=True))
    return client.post(post_url, data={"csrf_token": token, **data})


def tick_every(app, clock, start, end, minutes):
    at = start
    while at <= end:
        run_tick(app, clock, at)
        at += timedelta(minutes=minutes)


def test_an_unplanned_gsm_outage_at_0210_on_saturday_is_handled_by_the_officer_and_handed_over_on_monday(world, clock):
    app = world["app"]
    clock.set(local(SATURDAY, 2, 10))
    response = post_notice(app, world["alarm_token"], starts_at="2027-01-16T02:00:00+01:00")
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["party"] == "on_call"
    incident_id = answer["incident_id"]

    # The officer on duty is alerted at once, by e-mail and SMS.
    officer_id, officer_email, officer_mobile = officer_on_duty(app, local(SATURDAY, 2, 10))
    assert sorted(sent_to(app, "crisis.alert")) == sorted(
        [("2027-01-16 02:10", officer_email), ("2027-01-16 02:10", officer_mobile)]
    )
    with app.app_context():
        officer = db.session.get(User, officer_id)
        officer_name = officer.username
        db.session.remove()

    # The officer acknowledges at 02:18: nobody else is alerted.
    clock.set(local(SATURDAY, 2, 18))
    desk = staff_client(app, officer_name)
    page = f"/incidents/{incident_id}"
    assert form_post(desk, page, f"/incidents/{incident_id}/acknowledge", {}).status_code in (302, 303)
    tick_every(app, clock, local(SATURDAY, 2, 20), local(SATURDAY, 2, 50), 5)
    assert len(sent_to(app, "crisis.alert")) == 2, "no backup or manager alerted"

    # The officer's simplified letter at 02:30: every active contact of the providers using
    # camera supervision, by e-mail and SMS; the team gets a copy.
    clock.set(local(SATURDAY, 2, 30))
    compose = f"/incidents/{incident_id}/letters/new?kind=first"
    response = form_post(
        desk,
        compose,
        compose,
        {
            "subject": "Driftstörning: kameratillsyn",
            "body": "Telias GSM-nät är ur funktion. Gör fysiska tillsyner.",
            "apply_local_routines": "yes",
            "action": "send",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    letters = sorted(address for _, address in sent_to(app, "crisis.letter"))
    assert letters == sorted(
        ["anna@norr.se", "+46701000001", "bo@norr.se", "+46701000002", "cia@soder.se", "+46701000003", TEAM_EMAIL]
    ), "Dan is inactive and Larmgruppen Väst has no camera supervision"

    # The weekend passes: the tick every quarter of an hour, and every minute around Monday 07:45.
    tick_every(app, clock, local(SATURDAY, 3, 0), local(MONDAY, 7, 30), 15)
    with app.app_context():
        assert db.session.scalars(select(Handover)).all() == [], "no handover before office hours"
        db.session.remove()
    tick_every(app, clock, local(MONDAY, 7, 40), local(MONDAY, 7, 55), 1)
    run_tick(app, clock, local(MONDAY, 7, 55))

    with app.app_context():
        handovers = db.session.scalars(select(Handover)).all()
        assert [(local_text(h.boundary_at), h.from_party, h.to_party) for h in handovers] == [
            ("2027-01-18 07:45", "on_call", "team")
        ], "handed over once, at Monday 07:45"
        incident = db.session.get(Incident, incident_id)
        assert (incident.party, incident.status) == ("team", "open")
        db.session.remove()
    # The team is alerted with a link to the handover; the officer is told the team has it.
    assert {address for _, address in sent_to(app, "crisis.handover")} == {TEAM_EMAIL, TEAM_MOBILE}
    assert {address for at, address in sent_to(app, "crisis.handover_given") if at == "2027-01-18 07:45"} >= {
        officer_email
    }
    # Over the weekend the officer was reminded to send updates, and unacknowledged providers
    # got the letter again, then went on the call list.
    reminders = sent_to(app, "crisis.followup.update_due")
    assert reminders and {address for _, address in reminders} <= {
        officer_email,
        officer_mobile,
        TEAM_EMAIL,
        TEAM_MOBILE,
    }
    with app.app_context():
        letter = db.session.scalars(select(Letter)).one()
        assert {(r.resent_at is not None, r.call_listed_at is not None) for r in letter.receipts} == {(True, True)}
        db.session.remove()


@pytest.mark.parametrize(
    ("at", "party"),
    [
        (local(date(2027, 6, 15), 16, 30), "on_call"),  # a Tuesday in June: summer hours end at 16:00
        (local(date(2027, 5, 18), 16, 30), "team"),  # a Tuesday in May: office hours until 17:00
        (local(date(2027, 6, 25), 10, 0), "on_call"),  # midsommarafton, a Friday
    ],
)
def test_a_notice_goes_to_whoever_the_calendar_names_and_that_party_is_alerted(world, clock, at, party):
    app = world["app"]
    clock.set(at)
    response = post_notice(app, world["alarm_token"])
    assert response.status_code == 201
    assert response.get_json()["party"] == party
    alerted = {address for _, address in sent_to(app, "crisis.alert")}
    if party == "team":
        assert alerted == {TEAM_EMAIL, TEAM_MOBILE}
    else:
        _, email, mobile = officer_on_duty(app, at)
        assert alerted == {email, mobile}


def test_an_officer_who_never_acknowledges_is_followed_by_the_backup_and_then_the_manager(world, clock):
    app = world["app"]
    start = local(SATURDAY, 2, 10)
    clock.set(start)
    assert post_notice(app, world["alarm_token"]).status_code == 201
    officer_id, officer_email, _ = officer_on_duty(app, start)
    backup_id = next(uid for uid in world["officers"].values() if uid != officer_id)
    with app.app_context():
        backup_email = db.session.get(User, backup_id).email
        manager_email = db.session.get(User, world["manager"]).email
        db.session.remove()

    tick_every(app, clock, start, start + timedelta(minutes=14), 1)
    assert {address for _, address in sent_to(app, "crisis.alert")} == {officer_email, officer_mobile(app, officer_id)}
    tick_every(app, clock, start + timedelta(minutes=15), start + timedelta(minutes=35), 1)
    emails = [(at, address) for at, address in sent_to(app, "crisis.alert") if "@" in address]
    assert emails == [
        ("2027-01-16 02:10", officer_email),
        ("2027-01-16 02:25", backup_email),  # 15 minutes without acknowledgement
        ("2027-01-16 02:40", manager_email),  # 15 more
    ]


def officer_mobile(app, user_id: int) -> str:
    with app.app_context():
        mobile = db.session.get(User, user_id).mobile
        db.session.remove()
        return mobile


def test_planned_work_announced_three_days_ahead_is_accepted_and_flagged(world, clock):
    app = world["app"]
    clock.set(local(date(2027, 3, 8), 9, 0))  # a Monday
    response = post_notice(
        app,
        world["alarm_token"],
        planned=True,
        starts_at="2027-03-11T10:30:00+01:00",  # Thursday, inside the preferred hours, but 3 days ahead
        expected_end="2027-03-11T12:00:00+01:00",
    )
    assert response.status_code == 201
    answer = response.get_json()
    assert answer["planned"] is True and answer["flag_reason"], "accepted, and flagged to the team"
    assert answer["party"] == "team"


def test_the_officer_posts_a_notice_with_an_immediate_letter_in_one_request(world, make_token, clock):
    app = world["app"]
    clock.set(local(SATURDAY, 2, 10))
    officer_id, _, _ = officer_on_duty(app, local(SATURDAY, 2, 10))
    token = make_token(officer_id)
    letter = {"subject": "Driftstörning: kameratillsyn", "body": "GSM-nätet är nere. Gör fysiska tillsyner."}
    response = post_notice(app, token, letter=letter)
    assert response.status_code == 201, response.get_data(as_text=True)
    incident_id = response.get_json()["incident_id"]
    assert len(sent_to(app, "crisis.letter")) == 7, "six contact addresses and the team's copy"
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert incident.acknowledged_by_id == officer_id and incident.last_letter_at is not None
        db.session.remove()

    # The alarm centre may not send letters; a refused letter leaves nothing behind.
    refused = post_notice(app, world["alarm_token"], title="Annan störning", letter=letter)
    assert refused.status_code == 403
    empty = post_notice(app, token, title="Tredje", letter={"subject": "", "body": "x"})
    assert empty.status_code == 422 and "letter.subject" in empty.get_json()["fields"]
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Incident)) == 1
        db.session.remove()
