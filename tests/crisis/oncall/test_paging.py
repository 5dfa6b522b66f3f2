"""Paging: the officer alerted at 02:10 and not acknowledging is reached by the steps of their rules
(the routine's default: a call at 02:15 and again at 02:20), until they acknowledge in any way;
then the escalation to the backup at 02:25 as before. With a fixed clock and the scheduler's tick.

The calls themselves are placed by the call transport (notifications, Channel.CALL)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from accounts.models import User
from core.extensions import db
from crisis.incidents.models import Incident
from crisis.oncall import paging
from crisis.oncall.models import Alert, PagingStep
from notifications.models import Message
from scheduling.models import ScheduledTask
from tests.crisis.incidents.test_routing_helpers import (
    events,
    local,
    new_incident,
    outbox,
    put_on_roster,
    routing_app,
    run_tick,
    staff,
)

SATURDAY = date(2026, 11, 28)  # bo on call, cia the backup


@pytest.fixture
def app(make_app):
    return routing_app(make_app, manager="chef")


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    ids |= staff(app, make_user, ["chef"], role="team", first=9)
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    return ids


def set_rules(app, user_id: int, steps: list[tuple[int, tuple[str, ...]]]) -> None:
    with app.app_context():
        paging.save_steps(db.session, user_id, [paging.Step(m, c) for m, c in steps])
        db.session.commit()


def page_tasks(app) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(ScheduledTask).where(ScheduledTask.kind == paging.PAGE_TASK))
        found = sorted((t.key, t.status) for t in rows)
        db.session.remove()
        return found


def message(app, key: str) -> Message:
    with app.app_context():
        row = db.session.scalars(select(Message).where(Message.idempotency_key == key)).one()
        db.session.expunge(row)
        db.session.remove()
        return row


def test_by_the_default_rules_the_officer_is_called_at_0215_and_0220_then_the_backup_is_alerted(app, clock, people):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10), title="Larmcentralen nere")
    with app.app_context():
        alert_id = db.session.scalars(select(Alert.id).where(Alert.step == 0)).one()
    assert [row[1] for row in outbox(app, calls=True)] == [
        f"crisis-alert:{incident_id}:routed:0:email",
        f"crisis-alert:{incident_id}:routed:0:sms",
    ]
    run_tick(app, clock, local(SATURDAY, 2, 14))
    assert len(outbox(app, calls=True)) == 2

    run_tick(app, clock, local(SATURDAY, 2, 15))
    call = message(app, f"page:{alert_id}:1:call")
    assert (call.channel, call.to_address, call.ref_type, call.ref_id) == (
        "call",
        "+46701000002",
        "alert",
        str(alert_id),
    )
    assert "Larmcentralen nere" in call.body_text
    assert "http" not in call.body_text  # spoken: no links

    run_tick(app, clock, local(SATURDAY, 2, 20))
    assert message(app, f"page:{alert_id}:2:call").to_address == "+46701000002"

    run_tick(app, clock, local(SATURDAY, 2, 25))
    bo_and_cia = [(row[0], row[2]) for row in outbox(app, calls=True)]
    assert bo_and_cia == [
        ("2026-11-28 02:10", "bo@kommun.example.se"),
        ("2026-11-28 02:10", "+46701000002"),
        ("2026-11-28 02:25", "cia@kommun.example.se"),
        ("2026-11-28 02:25", "+46701000003"),
        ("2026-11-28 02:15", "+46701000002"),
        ("2026-11-28 02:20", "+46701000002"),
    ]
    called = [detail.get("step") for _, kind, detail in events(app, incident_id) if kind == "escalated"]
    assert called == [1]


def test_acknowledged_at_0212_nobody_is_called_and_the_steps_are_cancelled(app, clock, people):
    from crisis.oncall.acknowledge import acknowledge_alert

    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    with app.app_context():
        alert = db.session.scalars(select(Alert).where(Alert.step == 0)).one()
        alert_id = alert.id
        acknowledge_alert(
            db.session, alert, user=db.session.get(User, people["bo"]), via="sms", now=local(SATURDAY, 2, 12)
        )
        db.session.commit()
    assert page_tasks(app) == [(f"alert:{alert_id}:1", "cancelled"), (f"alert:{alert_id}:2", "cancelled")]
    for minute in (15, 20, 25, 40):
        run_tick(app, clock, local(SATURDAY, 2, minute))
    assert [row[1] for row in outbox(app, calls=True)] == [
        f"crisis-alert:{incident_id}:routed:0:email",
        f"crisis-alert:{incident_id}:routed:0:sms",
    ]


def test_a_step_whose_alert_was_acknowledged_meanwhile_sends_nothing(app, clock, people):
    """The handler checks again: a task that was not cancelled (claimed at that instant elsewhere)
    pages no one once the alert is acknowledged."""
    new_incident(app, clock, local(SATURDAY, 2, 10))
    with app.app_context():
        alert = db.session.scalars(select(Alert).where(Alert.step == 0)).one()
        alert.acknowledged_at = local(SATURDAY, 2, 12)
        db.session.commit()
    run_tick(app, clock, local(SATURDAY, 2, 20))
    assert len(outbox(app, calls=True)) == 2
    assert {status for _, status in page_tasks(app)} == {"done"}


def test_own_rules_sms_at_once_and_a_reminder_by_sms_and_email_at_3_minutes(app, clock, people):
    set_rules(app, people["bo"], [(0, ("sms",)), (3, ("sms", "email"))])
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10), title="Trygghetslarm ur funktion")
    with app.app_context():
        alert_id = db.session.scalars(select(Alert.id).where(Alert.step == 0)).one()
    assert [row[1] for row in outbox(app, calls=True)] == [f"crisis-alert:{incident_id}:routed:0:sms"]
    run_tick(app, clock, local(SATURDAY, 2, 13))
    sms = message(app, f"page:{alert_id}:1:sms")
    assert sms.kind == "oncall.reminder"
    assert "EJ KVITTERAD" in sms.body_text and "Trygghetslarm ur funktion" in sms.body_text
    assert f"/incidents/{incident_id}" in sms.body_text
    email = message(app, f"page:{alert_id}:1:email")
    assert email.subject.startswith("EJ KVITTERAD") and email.to_address == "bo@kommun.example.se"
    assert page_tasks(app) == [(f"alert:{alert_id}:1", "done")]  # no calls: bo's rules have none


def test_own_rules_a_call_at_once_and_an_sms_at_3_minutes(app, clock, people):
    set_rules(app, people["bo"], [(0, ("call",)), (3, ("sms",))])
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    with app.app_context():
        alert_id = db.session.scalars(select(Alert.id).where(Alert.step == 0)).one()
    assert [row[1] for row in outbox(app, calls=True)] == [f"page:{alert_id}:0:call"]
    run_tick(app, clock, local(SATURDAY, 2, 13))
    assert [row[1] for row in outbox(app, calls=True)] == [f"page:{alert_id}:0:call", f"page:{alert_id}:1:sms"]
    assert incident_id


def test_without_a_mobile_the_email_still_goes_and_no_sms_or_call(app, clock, people):
    with app.app_context():
        db.session.get(User, people["bo"]).mobile = None
        db.session.commit()
    set_rules(app, people["bo"], [(0, ("sms",)), (3, ("sms", "call"))])
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    run_tick(app, clock, local(SATURDAY, 2, 13))
    assert [row[1:3] for row in outbox(app, calls=True)] == [
        (f"crisis-alert:{incident_id}:routed:0:email", "bo@kommun.example.se")
    ]


def test_the_team_in_office_hours_gets_sms_and_email_only(app, clock, people):
    new_incident(app, clock, local(date(2026, 11, 24), 10))
    run_tick(app, clock, local(date(2026, 11, 24), 10, 30))
    assert page_tasks(app) == []
    assert len(outbox(app, calls=True)) == 2


def test_key_1_on_the_call_acknowledges_via_call_and_stops_the_escalation(app, clock, people):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10), title="Larmcentralen nere")
    with app.app_context():
        alert = db.session.scalars(select(Alert).where(Alert.step == 0)).one()
        # the message the call answers: any message of the alert (the call's own, after the merge)
        sent = db.session.scalars(select(Message).where(Message.ref_type == "alert")).first()
        assert paging.on_keypress(db.session, sent, "2", local(SATURDAY, 2, 16)) is None
        spoken = paging.on_keypress(db.session, sent, "1", local(SATURDAY, 2, 16))
        db.session.commit()
        assert spoken == 'Kvitterat. Driftstörning "Larmcentralen nere". Tack.'
        incident = db.session.get(Incident, incident_id)
        assert (incident.status, incident.acknowledged_by_id) == ("open", people["bo"])
        db.session.refresh(alert)
        assert alert.acknowledged_at == local(SATURDAY, 2, 16)
        assert paging.on_keypress(db.session, sent, "1", local(SATURDAY, 2, 17)) == "Larmet är redan kvitterat. Tack."
    acknowledged = [detail for _, kind, detail in events(app, incident_id) if kind == "acknowledged"]
    assert [detail.get("via") for detail in acknowledged] == ["call"]
    for minute in (20, 25, 40):
        run_tick(app, clock, local(SATURDAY, 2, minute))
    assert {row[2] for row in outbox(app, calls=True)} == {"bo@kommun.example.se", "+46701000002"}
    with app.app_context():
        tasks = db.session.scalars(select(ScheduledTask).where(ScheduledTask.kind == "crisis.escalate")).all()
        assert {t.status for t in tasks} == {"cancelled"}


def test_a_call_status_is_told_to_the_alerts_listeners(app, clock, people):
    from crisis.oncall.acknowledge import register_alert_listener

    heard = []
    register_alert_listener(app, lambda s, alert, event, now, detail: heard.append((alert.step, event, detail)))
    new_incident(app, clock, local(SATURDAY, 2, 10))
    with app.app_context():
        sent = db.session.scalars(select(Message).where(Message.ref_type == "alert")).first()
        paging.on_call_status(db.session, sent, "no-answer", local(SATURDAY, 2, 16))
    assert heard == [(0, "call_status", {"status": "no-answer"})]


def test_two_schedulers_place_one_call(app, make_app, clock, people):
    other = make_app(PUBLIC_BASE_URL=app.extensions["krisrutin.settings"].public_base_url)
    other.extensions["krisrutin.routine"] = app.extensions["krisrutin.routine"]
    new_incident(app, clock, local(SATURDAY, 2, 10))
    run_tick(app, clock, local(SATURDAY, 2, 15))
    run_tick(other, clock, local(SATURDAY, 2, 15))
    assert [row[1].endswith(":call") for row in outbox(app, calls=True)].count(True) == 1


def test_the_handover_to_the_officer_is_paged_too(app, clock, people):
    with app.app_context():
        db.session.add(PagingStep(user_id=people["bo"], position=0, minute=0, sms=True, email=False, call=False))
        db.session.add(PagingStep(user_id=people["bo"], position=1, minute=4, sms=True, email=False, call=False))
        db.session.commit()
    new_incident(app, clock, local(date(2026, 11, 27), 16))  # Friday, the team's
    run_tick(app, clock, local(date(2026, 11, 27), 17))  # handed over to bo
    run_tick(app, clock, local(date(2026, 11, 27), 17, 4))
    reminders = [row for row in outbox(app, "oncall.reminder", calls=True)]
    assert [(row[0], row[2]) for row in reminders] == [("2026-11-27 17:04", "+46701000002")]
    with app.app_context():
        body = db.session.scalars(select(Message.body_text).where(Message.kind == "oncall.reminder")).one()
    assert "överlämning" in body and "/handovers/" in body
