"""The officer acknowledges an alert by replying to its SMS, like with a pager: "1" takes the newest
open alert, "1 <code>" the one named; the incident is taken, the escalation stops, the timeline
says "via sms" and the reply names what was acknowledged. Handovers and the visits' alerts the
same way; the team's duty phone for the team's alerts; help texts for everything else, and the
contact persons' answers untouched."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.extensions import db
from crisis.incidents.models import Incident
from crisis.oncall.models import Alert
from crisis.oncall.sms_replies import HELP, UNKNOWN_HELP, parse_command
from notifications.dispatcher import Dispatcher
from notifications.inbound import UNMONITORED_REPLY
from tests.crisis.incidents.test_routing_helpers import (
    TEAM_EMAIL,
    TEAM_MOBILE,
    events,
    local,
    new_incident,
    outbox,
    put_on_roster,
    run_tick,
    staff,
)
from tests.support.twilio_server import signature

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
BASE_URL = "https://krisrutin.kommun.example.se"
INBOUND_PATH = "/webhooks/twilio/inbound"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
SATURDAY = date(2026, 11, 28)  # week 46 of the rotation: bo on call, cia the backup
MONDAY = date(2026, 11, 30)
BO, CIA = "+46701000002", "+46701000003"


@pytest.mark.parametrize(
    "body, code",
    [
        ("1", None),
        (" 1 ", None),
        ("1.", None),
        ("OK", None),
        ("Kvitterar!", None),
        ("1 4711", 4711),
        ("1,4711", 4711),
        ("ok 4711", 4711),
        ("1. 4711", 4711),
    ],
)
def test_what_counts_as_an_acknowledging_reply(body, code):
    assert parse_command(body).code == code


@pytest.mark.parametrize("body", ["14711", "11", "2", "ja", "1 tack", "Vi är på väg", ""])
def test_what_does_not(body):
    assert parse_command(body) is None


@pytest.fixture
def app(make_app):
    return make_app(
        PUBLIC_BASE_URL=BASE_URL, TEAM_EMAIL=TEAM_EMAIL, TEAM_MOBILE=TEAM_MOBILE, TWILIO_AUTH_TOKEN=AUTH_TOKEN
    )


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    return ids


class Phone:
    """Texts the service's number as Twilio would post them, each with its own MessageSid."""

    def __init__(self, client, token=AUTH_TOKEN, url=BASE_URL + INBOUND_PATH):
        self.client, self.token, self.url, self.count = client, token, url, 0

    def text(self, sender: str, body: str, sid: str | None = None) -> str:
        if sid is None:
            self.count += 1
            sid = f"SM{self.count:032d}"
        params = {"MessageSid": sid, "From": sender, "To": "+46766861004", "Body": body, "AccountSid": "AC" + "0" * 32}
        headers = {"X-Twilio-Signature": signature(self.token, self.url, params)}
        response = self.client.post(INBOUND_PATH, data=params, headers=headers)
        assert response.status_code == 200
        return response.get_data(as_text=True)


def reply_text(twiml: str) -> str:
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Message>'), twiml
    return twiml.split("<Message>")[1].split("</Message>")[0].replace("&quot;", '"')


def alert_ids(app, incident_id: int) -> list[int]:
    with app.app_context():
        ids = list(db.session.scalars(select(Alert.id).where(Alert.incident_id == incident_id).order_by(Alert.id)))
        db.session.remove()
        return ids


def sms_body(app, alert_id: int) -> str:
    from notifications.models import Message

    with app.app_context():
        body = db.session.scalars(
            select(Message.body_text).where(
                Message.ref_type == "alert", Message.ref_id == str(alert_id), Message.channel == "sms"
            )
        ).one()
        db.session.remove()
        return body


def incident_state(app, incident_id: int) -> tuple:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        state = (incident.status, incident.acknowledged_by_id)
        db.session.remove()
        return state


@pytest.fixture
def peer_app(make_app, peer_settings):
    return make_app(**peer_settings, TEAM_EMAIL=TEAM_EMAIL, TEAM_MOBILE=TEAM_MOBILE)


def test_the_officer_replies_1_and_the_incident_is_taken_without_logging_in(
    peer_app, clock, make_user, twilio_server, smtp_server
):
    """Saturday 02:10: the alert SMS reaches the officer through Twilio (the local server) and
    ends with the instruction; "1" at 02:13 takes the incident, the reply names it, the backup is
    never alerted at 02:25, and the timeline says it was acknowledged via sms."""
    app = peer_app
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10), title="GSM-nätet nere i Västerort")
    Dispatcher(app, name="ack-test", jitter=lambda: 1.0).run_until_idle(timeout=30)
    [sms] = [request for request in twilio_server.messages if request.params["To"] == BO]
    assert sms.params["Body"].endswith(
        '"GSM-nätet nere i Västerort". Kvittera: ' + f"{BASE_URL}/incidents/{incident_id} Svara 1 för att kvittera."
    )

    clock.set(local(SATURDAY, 2, 13))
    phone = Phone(app.test_client(), token=twilio_server.auth_token)
    answer = phone.text(BO, "1")
    assert reply_text(answer) == 'Kvitterat: driftstörning "GSM-nätet nere i Västerort". Tack.'
    assert incident_state(app, incident_id) == ("open", ids["bo"])

    run_tick(app, clock, local(SATURDAY, 2, 25))
    run_tick(app, clock, local(SATURDAY, 2, 45))
    assert {row[2] for row in outbox(app)} == {"bo@kommun.example.se", BO}  # no backup, no manager
    acknowledged = [(at, detail) for at, kind, detail in events(app, incident_id) if kind == "acknowledged"]
    assert acknowledged == [("2026-11-28 02:13", {"via": "sms"})]
    page = _incident_page(app, incident_id, "bo")
    assert "Kvitterad via sms av den som hanterar störningen" in page


def _incident_page(app, incident_id: int, username: str) -> str:
    from tests.conftest import log_in

    client = app.test_client()
    log_in(client, username)
    return client.get(f"/incidents/{incident_id}", query_string={"lang": "sv"}).get_data(as_text=True)


def test_with_two_open_alerts_1_takes_the_newest_and_1_code_the_one_named(app, client, clock, people):
    first = new_incident(app, clock, local(SATURDAY, 2, 10), title="Larmcentralen nere")
    second = new_incident(app, clock, local(SATURDAY, 2, 12), title="Routrar i Norr")
    [first_alert], [second_alert] = alert_ids(app, first), alert_ids(app, second)
    assert sms_body(app, first_alert).endswith("Svara 1 för att kvittera.")
    # The second SMS came while the first was open: it names its own code.
    assert sms_body(app, second_alert).endswith(f"Svara 1 {second_alert} för att kvittera.")

    clock.set(local(SATURDAY, 2, 14))
    phone = Phone(client)
    assert reply_text(phone.text(BO, f"1 {first_alert}")) == (
        'Kvitterat: driftstörning "Larmcentralen nere". Tack. Fler larm är öppna: svara 1 igen för nästa.'
    )
    assert incident_state(app, first) == ("open", people["bo"])
    assert incident_state(app, second) == ("new", None)
    assert reply_text(phone.text(BO, "1")) == 'Kvitterat: driftstörning "Routrar i Norr". Tack.'
    assert incident_state(app, second) == ("open", people["bo"])
    assert reply_text(phone.text(BO, "1")).startswith("Inget öppet larm att kvittera.")


def test_someone_elses_code_is_refused_and_nothing_is_acknowledged(app, client, clock, people):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    [alert_id] = alert_ids(app, incident_id)
    clock.set(local(SATURDAY, 2, 12))
    answer = reply_text(Phone(client).text(CIA, f"1 {alert_id}"))
    assert answer == f"Larm {alert_id} är inte ditt, så det kvitterades inte. Svara 1 för ditt senaste larm."
    assert incident_state(app, incident_id) == ("new", None)
    # cia has nothing open: told so, with whom to call now (the officer on duty).
    assert reply_text(Phone(client).text(CIA, "1", sid="SM" + "c" * 32)) == (
        "Inget öppet larm att kvittera. Frågor: ring Test bo 070-100 00 02."
    )


def test_a_retry_of_the_same_reply_acknowledges_once_and_answers_once(app, client, clock, people):
    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    clock.set(local(SATURDAY, 2, 13))
    phone = Phone(client)
    first = phone.text(BO, "1", sid="SM" + "7" * 32)
    retry = phone.text(BO, "1", sid="SM" + "7" * 32)
    assert reply_text(first).startswith("Kvitterat: driftstörning")
    assert retry == EMPTY_TWIML
    assert [kind for _, kind, _ in events(app, incident_id)].count("acknowledged") == 1


def test_the_team_acknowledges_a_handover_from_its_duty_phone(app, client, clock, people):
    """Monday 07:45 the night's incident passes to the team, alerted on its mailbox and duty phone;
    "1" from the duty phone acknowledges the handover: no re-alert at 08:00."""
    from crisis.incidents.routing import acknowledge_incident
    from crisis.oncall.models import Handover

    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10), title="Larmcentralen nere")
    with app.app_context():
        from accounts.models import User

        acknowledge_incident(
            db.session, db.session.get(Incident, incident_id), db.session.get(User, people["bo"]), clock.now()
        )
        db.session.commit()
    run_tick(app, clock, local(MONDAY, 7, 46))
    handover_alerts = [row for row in outbox(app) if row[1].startswith("crisis-alert:") and row[2] == TEAM_MOBILE]
    assert len(handover_alerts) == 1

    clock.set(local(MONDAY, 7, 50))
    answer = reply_text(Phone(client).text("070-199 99 99", "ok"))  # the duty phone, however written
    assert answer == 'Kvitterat: överlämning av driftstörning "Larmcentralen nere". Tack.'
    with app.app_context():
        handover = db.session.scalars(select(Handover)).one()
        assert (handover.acknowledged_at, handover.acknowledged_by_id) == (clock.now(), None)
        db.session.remove()
    run_tick(app, clock, local(MONDAY, 8, 5))
    assert len([row for row in outbox(app) if row[2] == TEAM_MOBILE]) == 1  # no re-alert
    steps = [detail for _, kind, detail in events(app, incident_id) if kind == "handover_acknowledged"]
    assert [detail.get("via") for detail in steps] == ["sms"]


def test_a_visit_call_list_alert_is_acknowledged_by_sms(app, client, clock, people):
    """The party told that a provider is on the call list answers "1": the alert is seen and the
    visits record the step."""
    from contacts.models import Provider
    from crisis.oncall.responsible import responsible_party
    from crisis.visits.jobs import _tell_party
    from crisis.visits.models import VisitAlert, VisitEvent

    clock.set(local(SATURDAY, 3, 0))
    with app.app_context():
        provider = Provider(name="Hemtjänst Norr", kind="municipal", created_at=clock.now())
        db.session.add(provider)
        db.session.flush()
        visit_alert = VisitAlert(provider_id=provider.id, nonce="n" * 32, visit_ids=[], created_at=clock.now())
        db.session.add(visit_alert)
        db.session.flush()
        party = responsible_party(db.session, clock.now())
        assert _tell_party(
            db.session,
            party,
            kind="crisis.visit.escalation",
            context={"provider": provider.name, "count": 2, "first_due": "03:30", "alerted": "02:40"},
            subject=("visit_alert", visit_alert.id),
            reason="visit_call_list",
            key=f"visit_alert:{visit_alert.id}:escalation",
            ref=("visit_alert", visit_alert.id),
            now=clock.now(),
        )
        db.session.commit()
        visit_alert_id = visit_alert.id
        staff_alert = db.session.scalars(select(Alert).where(Alert.subject_type == "visit_alert")).one()
        assert (staff_alert.incident_id, staff_alert.user_id) == (None, people["bo"])
        db.session.remove()

    clock.set(local(SATURDAY, 3, 5))
    assert reply_text(Phone(client).text(BO, "1")) == 'Kvitterat: "Hemtjänst Norr" på ringlistan. Tack.'
    with app.app_context():
        staff_alert = db.session.scalars(select(Alert).where(Alert.subject_type == "visit_alert")).one()
        assert (staff_alert.acknowledged_at, staff_alert.acknowledged_by_id) == (clock.now(), people["bo"])
        [step] = db.session.scalars(select(VisitEvent).where(VisitEvent.kind == "staff_acknowledged")).all()
        assert (step.alert_id, step.detail["via"]) == (visit_alert_id, "sms")
        # The paging's calls about it are the visits' steps too.
        from crisis.oncall.acknowledge import alert_event

        alert_event(db.session, staff_alert, "call_status", clock.now(), status="busy")
        db.session.commit()
        [call] = db.session.scalars(select(VisitEvent).where(VisitEvent.kind == "staff_call_status")).all()
        assert (call.alert_id, call.detail["status"]) == (visit_alert_id, "busy")
        db.session.remove()


def test_an_unknown_number_saying_1_gets_help_once_a_day(app, client, clock, people):
    clock.set(local(SATURDAY, 2, 10))
    phone = Phone(client)
    assert reply_text(phone.text("+46709999999", "1")) == UNKNOWN_HELP
    assert phone.text("+46709999999", "1") == EMPTY_TWIML  # no loop with an auto-responder
    assert phone.text("+46709999999", "Hej") == EMPTY_TWIML  # anything else: stored, no reply
    clock.set(local(SATURDAY + (MONDAY - SATURDAY), 2, 11))
    assert reply_text(phone.text("+46709999999", "1")) == UNKNOWN_HELP


def test_other_texts_from_staff_get_how_to_acknowledge_once_an_hour(app, client, clock, people):
    clock.set(local(SATURDAY, 2, 10))
    phone = Phone(client)
    assert reply_text(phone.text(BO, "Vem ringer jag?")) == HELP
    assert phone.text(BO, "Hallå?") == EMPTY_TWIML


def test_a_contact_persons_texts_are_the_contact_handlers_as_before(app, client, clock, people):
    """A provider's contact person who replies "1" is no staff member: their text goes the
    contacts' way (here: nothing takes it, so the "not read" reply), never the help for strangers."""
    from contacts.models import ContactPerson, Provider

    clock.set(local(SATURDAY, 2, 10))
    with app.app_context():
        provider = Provider(name="Hemtjänst Norr", kind="municipal", created_at=clock.now())
        db.session.add(
            ContactPerson(
                provider=provider,
                name="Karin",
                mobile="+46701740605",
                is_active=True,
                services=[],
                created_at=clock.now(),
            )
        )
        db.session.commit()
    assert reply_text(Phone(client).text("+46701740605", "1")) == UNMONITORED_REPLY


def test_a_reminder_acknowledged_by_sms_is_seen_and_on_the_timeline(app, client, clock, people):
    """After the incident is taken, an update reminder is its own alert: "1" marks it seen (nothing
    else stops) and the timeline says so in words."""
    from accounts.models import User
    from crisis.incidents.routing import acknowledge_incident, notify_handler

    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10), title="Larmcentralen nere")
    clock.set(local(SATURDAY, 4, 10))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        acknowledge_incident(db.session, incident, db.session.get(User, people["bo"]), clock.now())
        [reminder] = notify_handler(
            db.session,
            incident,
            reason="update_due:1.1",
            kind="crisis.followup.update_due",
            context={"since": "kl. 02:20"},
            now=clock.now(),
        )
        reminder_id = reminder.id
        db.session.commit()
    clock.set(local(SATURDAY, 4, 12))
    assert reply_text(Phone(client).text(BO, "1")) == (
        'Kvitterat: påminnelse om uppdatering, driftstörning "Larmcentralen nere". Tack.'
    )
    with app.app_context():
        assert db.session.get(Alert, reminder_id).acknowledged_by_id == people["bo"]
        db.session.remove()
    [step] = [detail for _, kind, detail in events(app, incident_id) if kind == "alert_acknowledged"]
    assert (step["alert_id"], step["reason"], step["via"]) == (reminder_id, "update_due:1.1", "sms")
    assert "Påminnelse kvitterad via sms: Dags för en uppdatering" in _incident_page(app, incident_id, "bo")


def test_the_pagings_calls_go_on_the_timeline_in_words(app, clock, people):
    """The paging tells an alert's listeners that it called and how the call went: the incident's
    timeline shows both in Swedish."""
    from crisis.oncall.acknowledge import alert_event

    incident_id = new_incident(app, clock, local(SATURDAY, 2, 10))
    [alert_id] = alert_ids(app, incident_id)
    clock.set(local(SATURDAY, 2, 15))
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        alert_event(db.session, alert, "called", clock.now())
        alert_event(db.session, alert, "call_status", clock.now(), status="no-answer")
        db.session.commit()
    kinds = [(kind, detail.get("status")) for _, kind, detail in events(app, incident_id)][-2:]
    assert kinds == [("called", None), ("call_status", "no-answer")]
    page = _incident_page(app, incident_id, "bo")
    assert "Uppringd om larmet: Tjänsteman i beredskap, Test bo" in page
    assert "Samtalet om larmet: inget svar" in page
