"""The night chain, end to end, on a fake clock and real parts (README: "The night chain").

Saturday 28 November 2026, 02:10: Telia's e-mail is delivered to the supplier mailbox (Dovecot,
read over IMAP) → one scheduler tick later an incident exists, routed to the on-call officer, who
is alerted by SMS (Twilio's API, the local server) and e-mail (SMTP, aiosmtpd) → nobody answers →
at 02:15 the officer's phone rings (Twilio's Calls API) and a key pressed on the call (Twilio
posting to our signed webhook) acknowledges: the escalation stops and the timeline holds every
step. The second run answers the SMS with "1" instead; the third is an unknown sender's e-mail,
which waits in triage until the team makes it a notice. No step of the officer's needs a login.

The service is served on 127.0.0.1 so that the local Twilio server can call its webhooks, on
SQLite: what crosses the processes here is HTTP, SMTP and IMAP, not the database (each link's
own tests run on PostgreSQL too).
"""

from __future__ import annotations

import email.policy
from datetime import date
from email.message import EmailMessage
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from core.extensions import db
from crisis.incidents.models import InboundEmail, Incident, Supplier
from notifications.dispatcher import Dispatcher
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_routing_helpers import (
    TEAM_EMAIL,
    TEAM_MOBILE,
    events,
    local,
    put_on_roster,
    run_tick,
    staff,
)
from tests.notifications.test_calls import LiveApp
from tests.support.twilio_server import post_status_callback

SATURDAY = date(2026, 11, 28)  # week 46 of the rotation: bo on call, cia the backup
BO = "+46701000002"
CIA = "+46701000003"
TELIA = "Telia Driftinformation <driftinfo@telia.example.se>"
TITLE = "Driftstörning: GSM-nätet ur funktion i Västerort"


def supplier_mail(sender: str, subject: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "krisrutin-leverantorer@kommun.example.se"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = "Sat, 28 Nov 2026 02:09:00 +0100"
    message.set_content("Oplanerat avbrott i mobilnätet. Kameratillsynens routrar saknar kontakt. Felsökning pågår.")
    return message.as_bytes(policy=email.policy.SMTP)


@pytest.fixture
def live(sqlite_url, clock, twilio_server, smtp_server, imap_mailbox):
    served = LiveApp(
        sqlite_url,
        clock,
        twilio_server,
        TEAM_EMAIL=TEAM_EMAIL,
        TEAM_MOBILE=TEAM_MOBILE,
        SMTP_HOST=smtp_server.host,
        SMTP_PORT=str(smtp_server.port),
        SMTP_SECURITY="none",
        SMTP_FROM="krisrutin@kommun.example.se",
        **imap_mailbox.settings,
    )
    yield served
    served.stop()


@pytest.fixture
def app(live):
    return live.app


@pytest.fixture
def officers(app, make_user, clock):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    with app.app_context():
        db.session.add(
            Supplier(
                name="Telia",
                sender_addresses="driftinfo@telia.example.se",
                is_active=True,
                created_at=local(SATURDAY, 0, 0),
            )
        )
        db.session.commit()
    return ids


def dispatch(app) -> None:
    report = Dispatcher(app, name="night-chain", listen=False, jitter=lambda: 1.0).run_until_idle(timeout=30)
    assert not report.errors


def the_incident(app) -> tuple[int, str, int | None, str]:
    with app.app_context():
        incident = db.session.scalars(select(Incident)).one()
        result = (incident.id, incident.party, incident.handler_user_id, incident.status)
        db.session.remove()
        return result


def acknowledged_by(app, incident_id: int) -> int | None:
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        result = incident.acknowledged_by_id
        db.session.remove()
        return result


def the_mail_arrives_and_the_officer_is_alerted(live, clock, twilio_server, smtp_server, imap_mailbox, officers):
    """02:10: the e-mail in the mailbox → within one tick an incident routed to bo, alerted by SMS
    and e-mail, which leave through the gateways."""
    imap_mailbox.deliver(supplier_mail(TELIA, TITLE, "<gsm-20261128-0209@telia.example.se>"))
    run_tick(live.app, clock, local(SATURDAY, 2, 10))
    incident_id, party, handler, status = the_incident(live.app)
    assert (party, handler, status) == ("on_call", officers["bo"], "new")
    assert imap_mailbox.messages("INBOX") == [], "the mail was put away in the done folder"

    dispatch(live.app)
    [sms] = [request for request in twilio_server.messages if request.params["To"] == BO]
    assert "GSM-nätet ur funktion i Västerort" in sms.params["Body"]
    assert sms.params["Body"].endswith("Svara 1 för att kvittera.")
    [mail] = [received for received in smtp_server.messages if "bo@kommun.example.se" in received.rcpt_tos]
    assert "GSM-nätet ur funktion i Västerort" in mail.message["Subject"]
    return incident_id


def test_telias_mail_at_0210_rings_the_officer_at_0215_who_presses_1(
    live, clock, twilio_server, smtp_server, imap_mailbox, officers
):
    incident_id = the_mail_arrives_and_the_officer_is_alerted(
        live, clock, twilio_server, smtp_server, imap_mailbox, officers
    )

    # Nobody answers: nothing more until 02:15, then the officer's phone rings.
    run_tick(live.app, clock, local(SATURDAY, 2, 14))
    dispatch(live.app)
    assert twilio_server.calls == []
    run_tick(live.app, clock, local(SATURDAY, 2, 15))
    dispatch(live.app)
    [call] = twilio_server.calls
    assert call.params["To"] == BO
    spoken = " ".join(say.text for say in ElementTree.fromstring(call.params["Twiml"]).iter("Say"))
    assert "GSM-nätet ur funktion i Västerort" in spoken and "Tryck 1 för att kvittera" in spoken
    for status in ("initiated", "ringing", "in-progress"):
        assert twilio_server.post_call_status(call, status)[0] == 204

    clock.set(local(SATURDAY, 2, 16))
    status, answer = twilio_server.press_key(call, "1")
    assert status == 200
    said = [say.text for say in ElementTree.fromstring(answer).iter("Say")]
    assert said == ['Kvitterat. Driftstörning "GSM-nätet ur funktion i Västerort". Tack.']
    assert twilio_server.post_call_status(call, "completed")[0] == 204
    assert acknowledged_by(live.app, incident_id) == officers["bo"]

    # Acknowledged: no second call at 02:20, no backup at 02:25, no manager later.
    for minute in (20, 25, 40, 55):
        run_tick(live.app, clock, local(SATURDAY, 2, minute))
    dispatch(live.app)
    assert len(twilio_server.calls) == 1
    assert [request.params["To"] for request in twilio_server.messages] == [BO]
    assert not [received for received in smtp_server.messages if "cia@kommun.example.se" in received.rcpt_tos]

    steps = [
        (at[11:], kind, detail.get("via") or detail.get("status")) for at, kind, detail in events(live.app, incident_id)
    ]
    assert steps[:3] == [("02:10", "notice_received", None), ("02:10", "routed", None), ("02:10", "alerted", None)]
    assert ("02:15", "called", None) in steps
    assert ("02:16", "acknowledged", "call") in steps
    assert ("02:16", "call_status", "completed") in steps
    assert not [kind for _, kind, _ in steps if kind == "escalated"]

    # The timeline in words, as the officer reads it in the morning.
    client = live.app.test_client()
    log_in(client, "bo")
    page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert "via samtal" in page


def test_the_officer_answers_the_sms_with_1_and_is_never_called(
    live, clock, twilio_server, smtp_server, imap_mailbox, officers
):
    incident_id = the_mail_arrives_and_the_officer_is_alerted(
        live, clock, twilio_server, smtp_server, imap_mailbox, officers
    )

    clock.set(local(SATURDAY, 2, 13))
    params = {
        "MessageSid": "SM" + "4" * 32,
        "From": BO,
        "To": "+46766861004",
        "Body": "1 ",
        "AccountSid": "AC" + "0" * 32,
    }
    status, answer = post_status_callback(
        f"{live.base_url}/webhooks/twilio/inbound", params, auth_token=twilio_server.auth_token
    )
    assert status == 200
    assert 'Kvitterat: driftstörning "GSM-nätet ur funktion i Västerort". Tack.' in answer.replace("&quot;", '"')
    assert acknowledged_by(live.app, incident_id) == officers["bo"]

    for minute in (15, 20, 25, 40):
        run_tick(live.app, clock, local(SATURDAY, 2, minute))
    dispatch(live.app)
    assert twilio_server.calls == [], "acknowledged before 02:15: never called"
    assert [request.params["To"] for request in twilio_server.messages] == [BO], "no backup, no manager"
    acknowledged = [(at[11:], detail) for at, kind, detail in events(live.app, incident_id) if kind == "acknowledged"]
    assert acknowledged == [("02:13", {"via": "sms"})]


def test_an_unknown_senders_mail_waits_in_triage_and_one_click_makes_it_a_notice(
    live, clock, twilio_server, imap_mailbox, officers
):
    imap_mailbox.deliver(
        supplier_mail(
            "Driftcentralen <noc@okand-leverantor.example.org>", "Larmet ur funktion", "<x1@okand.example.org>"
        )
    )
    run_tick(live.app, clock, local(SATURDAY, 2, 10))
    dispatch(live.app)
    with live.app.app_context():
        assert db.session.scalars(select(Incident)).all() == []
        [waiting] = db.session.scalars(select(InboundEmail)).all()
        assert (waiting.status, waiting.sender) == ("triage", "noc@okand-leverantor.example.org")
        waiting_id = waiting.id
        db.session.remove()
    assert twilio_server.messages == [] and twilio_server.calls == [], "an unknown sender alerts nobody"

    # The officer on duty sees it on the start page and makes it a notice in one click.
    clock.set(local(SATURDAY, 2, 30))
    client = live.app.test_client()
    log_in(client, "bo")
    start = client.get("/").get_data(as_text=True)
    assert "Inkommande e-post att bedöma" in start
    page = client.get("/incidents/mail").get_data(as_text=True)
    assert "Larmet ur funktion" in page
    response = client.post(
        f"/incidents/mail/{waiting_id}/notice",
        data={"csrf_token": csrf_token_from(page), "supplier": "unknown"},
    )
    assert response.status_code in (302, 303)
    incident_id, party, handler, _ = the_incident(live.app)
    assert (party, handler) == ("on_call", officers["bo"])
    with live.app.app_context():
        assert db.session.get(InboundEmail, waiting_id).status == "notice"
        assert db.session.get(Incident, incident_id).title == "Larmet ur funktion"
        db.session.remove()
