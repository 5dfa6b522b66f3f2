"""Routing an incident to the party on duty, alerting it, escalating when nobody acknowledges,
and acknowledging (through the page and the scheduler tick, with a fake clock)."""

from __future__ import annotations

from datetime import date

import pytest

from core.extensions import db
from crisis.incidents.models import Incident
from crisis.incidents.routing import notify_handler
from crisis.oncall.models import Alert
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_routing_helpers import (
    TEAM_EMAIL,
    TEAM_MOBILE,
    events,
    local,
    new_incident,
    outbox,
    put_on_roster,
    routing_app,
    run_tick,
    staff,
)

SATURDAY = date(2026, 11, 28)  # week 46 of the rotation: bo on call, cia the backup


@pytest.fixture
def app(make_app):
    return routing_app(make_app, manager="chef")


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    ids |= staff(app, make_user, ["chef"], role="team", first=9)
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    return ids


def test_a_notice_at_0210_on_saturday_alerts_the_officer_on_call_then_the_backup_then_the_manager(app, clock, people):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.party, incident.handler_user_id, incident.status) == ("on_call", people["bo"], "new")
    step0 = [
        ("2026-11-28 02:10", f"crisis-alert:{incident_id}:routed:0:email", "bo@kommun.example.se", "crisis.alert"),
        ("2026-11-28 02:10", f"crisis-alert:{incident_id}:routed:0:sms", "+46701000002", "crisis.alert"),
    ]
    assert outbox(app) == step0

    # Within the 15 minutes nothing more happens, however often the tick runs.
    for minute in range(11, 25):
        run_tick(app, clock, local(SATURDAY, 2, minute))
    assert outbox(app) == step0

    run_tick(app, clock, local(SATURDAY, 2, 25))
    step1 = [
        ("2026-11-28 02:25", f"crisis-alert:{incident_id}:routed:1:email", "cia@kommun.example.se", "crisis.alert"),
        ("2026-11-28 02:25", f"crisis-alert:{incident_id}:routed:1:sms", "+46701000003", "crisis.alert"),
    ]
    assert outbox(app) == sorted(step0 + step1, key=lambda row: row[1])

    run_tick(app, clock, local(SATURDAY, 2, 40))
    run_tick(app, clock, local(SATURDAY, 2, 41))
    step2 = [
        ("2026-11-28 02:40", f"crisis-alert:{incident_id}:routed:2:email", "chef@kommun.example.se", "crisis.alert"),
        ("2026-11-28 02:40", f"crisis-alert:{incident_id}:routed:2:sms", "+46701000009", "crisis.alert"),
    ]
    assert outbox(app) == sorted(step0 + step1 + step2, key=lambda row: row[1])
    # Nothing after the manager.
    run_tick(app, clock, local(SATURDAY, 3, 30))
    assert len(outbox(app)) == 6

    steps = [(at, kind, detail.get("step")) for at, kind, detail in events(app, incident_id)]
    # Each person is also called by the default paging rules (5 and 10 minutes after their alert).
    # The backup's two calls were both due by the 02:40 tick and the manager's by 03:30: a late
    # scheduler catches up with one call, not two at once.
    assert steps == [
        ("2026-11-28 02:10", "routed", None),
        ("2026-11-28 02:10", "alerted", 0),
        ("2026-11-28 02:15", "called", 0),
        ("2026-11-28 02:20", "called", 0),
        ("2026-11-28 02:25", "escalated", 1),
        ("2026-11-28 02:40", "called", 1),
        ("2026-11-28 02:40", "escalated", 2),
        ("2026-11-28 03:30", "called", 2),
    ]
    with app.app_context():
        from sqlalchemy import select

        from accounts.models import User
        from notifications.models import Message

        message = db.session.scalars(
            select(Message).where(Message.channel == "sms", Message.to_address == "+46701000002")
        ).one()
        assert message.priority == 0
        assert f"https://krisrutin.kommun.example.se/incidents/{incident_id}" in message.body_text
        assert message.ref_type == "alert"
        assert db.session.get(User, people["bo"]) is not None


def test_acknowledged_at_plus_10_minutes_nothing_is_escalated(app, clock, people):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    clock.set(local(SATURDAY, 2, 20))
    client = app.test_client()
    log_in(client, "bo")
    page = client.get(f"/incidents/{incident_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Kvittera störningen" in html
    response = client.post(f"/incidents/{incident_id}/acknowledge", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 302
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.status, incident.acknowledged_by_id) == ("open", people["bo"])
        assert incident.acknowledged_at == local(SATURDAY, 2, 20)
        assert all(a.acknowledged_at is not None for a in db.session.query(Alert).all())

    for minute in (25, 40, 55):
        run_tick(app, clock, local(SATURDAY, 2, minute))
    assert {row[2] for row in outbox(app)} == {"bo@kommun.example.se", "+46701000002"}
    assert [kind for _, kind, _ in events(app, incident_id)] == ["routed", "alerted", "acknowledged"]

    # Acknowledging again changes nothing and says so.
    page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert "Kvittera störningen" not in page
    clock.set(local(SATURDAY, 3, 0))
    response = client.post(
        f"/incidents/{incident_id}/acknowledge", data={"csrf_token": csrf_token_from(page)}, follow_redirects=True
    )
    assert "redan kvitterad" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Incident, incident_id).acknowledged_at == local(SATURDAY, 2, 20)
    assert [kind for _, kind, _ in events(app, incident_id)].count("acknowledged") == 1


def test_in_office_hours_the_team_mailbox_and_phone_are_alerted_and_nothing_escalates(app, clock, people):
    incident_id = new_incident(app, clock, local(date(2026, 11, 24), 10))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.party, incident.handler_user_id) == ("team", None)
        alert = db.session.query(Alert).one()
        assert (alert.user_id, alert.step, alert.party) == (None, 0, "team")
    assert {row[2] for row in outbox(app)} == {TEAM_EMAIL, TEAM_MOBILE}
    run_tick(app, clock, local(date(2026, 11, 24), 10, 30))
    assert len(outbox(app)) == 2


def test_provider_and_alarm_operator_may_not_acknowledge(app, clock, people, make_user):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    make_user(role="alarm_operator", username="larm")
    client = app.test_client()
    log_in(client, "larm")
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    assert client.post(f"/incidents/{incident_id}/acknowledge", data={"csrf_token": token}).status_code == 403
    with app.app_context():
        assert db.session.get(Incident, incident_id).acknowledged_at is None


def test_notify_handler_alerts_the_handling_party_once_per_reason(app, clock, people):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    clock.set(local(SATURDAY, 4, 10))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        first = notify_handler(
            db.session,
            incident,
            reason="update_due:1",
            kind="crisis.alert",
            context={"escalation": False},
            now=clock.now(),
        )
        again = notify_handler(
            db.session,
            incident,
            reason="update_due:1",
            kind="crisis.alert",
            context={"escalation": False},
            now=clock.now(),
        )
        db.session.commit()
        assert [(a.user_id, a.reason) for a in first] == [(people["bo"], "update_due:1")]
        assert again == []
    keys = [row[1] for row in outbox(app) if "update_due" in row[1]]
    assert keys == [
        f"crisis-alert:{incident_id}:update_due:1:0:email",
        f"crisis-alert:{incident_id}:update_due:1:0:sms",
    ]


def test_with_one_officer_on_the_roster_the_escalation_goes_straight_to_the_manager(app, clock, make_user):
    ids = staff(app, make_user, ["ensam"])
    ids |= staff(app, make_user, ["chef"], role="team", first=9)
    put_on_roster(app, [ids["ensam"]])
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    run_tick(app, clock, local(SATURDAY, 2, 25))
    run_tick(app, clock, local(SATURDAY, 2, 40))
    assert [(row[0], row[2]) for row in outbox(app)] == [
        ("2026-11-28 02:10", "ensam@kommun.example.se"),
        ("2026-11-28 02:10", "+46701000001"),
        ("2026-11-28 02:25", "chef@kommun.example.se"),
        ("2026-11-28 02:25", "+46701000009"),
    ]
    escalations = [detail.get("step") for _, kind, detail in events(app, incident_id) if kind == "escalated"]
    assert escalations == [2], "no backup to alert: straight to the manager"


def test_the_alert_answered_by_sms_takes_the_incident_and_stops_the_escalation(app, clock, people):
    """The officer's answer that is no click on the page (an SMS reply, a key on a call) goes through
    the one acknowledgement of crisis.oncall, which hands it to the incidents' acknowledger."""
    from crisis.oncall.acknowledge import acknowledge_alert

    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    with app.app_context():
        from accounts.models import User

        alert = db.session.query(Alert).filter_by(incident_id=incident_id, step=0).one()
        bo = db.session.get(User, people["bo"])
        words = acknowledge_alert(db.session, alert, user=bo, via="sms", now=local(SATURDAY, 2, 13))
        db.session.commit()
        assert words == f'driftstörning "{db.session.get(Incident, incident_id).title}"'
        incident = db.session.get(Incident, incident_id)
        assert (incident.status, incident.acknowledged_by_id) == ("open", people["bo"])
        db.session.refresh(alert)
        assert alert.acknowledged_at == local(SATURDAY, 2, 13)
        # Answered once: a second answer acknowledges nothing more.
        assert acknowledge_alert(db.session, alert, user=bo, via="sms", now=local(SATURDAY, 2, 14)) is None

    run_tick(app, clock, local(SATURDAY, 2, 25))
    assert {row[2] for row in outbox(app)} == {"bo@kommun.example.se", "+46701000002"}
    acknowledged = [detail for _, kind, detail in events(app, incident_id) if kind == "acknowledged"]
    assert [detail.get("via") for detail in acknowledged] == ["sms"]
