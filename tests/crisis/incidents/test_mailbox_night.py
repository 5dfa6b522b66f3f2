"""The night chain's first link (issue 17, "Done when"): Saturday 02:10 Telia's e-mail is
delivered to the supplier mailbox (a real Dovecot) → within one tick of the scheduler an
incident exists, routed to the officer on call, who is alerted by SMS and e-mail; an unknown
sender's e-mail at the same time lands in triage and alerts nobody."""

from __future__ import annotations

import email.policy
from dataclasses import replace
from datetime import date
from email.message import EmailMessage

from sqlalchemy import select

from core.extensions import db
from crisis.incidents.models import InboundEmail, Incident, Notice, Supplier
from tests.crisis.incidents.test_routing_helpers import (
    BASE_URL,
    TEAM_EMAIL,
    TEAM_MOBILE,
    local,
    outbox,
    put_on_roster,
    run_tick,
    staff,
)

SATURDAY = date(2026, 11, 28)  # week 46 of the rotation: bo on call


def mail(sender: str, subject: str, message_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "leverantorer@kommun.example.se"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Sat, 28 Nov 2026 02:09:00 +0100"
    msg.set_content("Oplanerat avbrott i mobilnätet. Kameratillsynens routrar saknar kontakt.")
    return msg.as_bytes(policy=email.policy.SMTP)


def test_telias_mail_at_0210_on_saturday_alerts_the_officer_within_one_tick(make_app, make_user, clock, imap_mailbox):
    app = make_app(PUBLIC_BASE_URL=BASE_URL, TEAM_EMAIL=TEAM_EMAIL, TEAM_MOBILE=TEAM_MOBILE, **imap_mailbox.settings)
    policy = app.extensions["krisrutin.routine"]
    app.extensions["krisrutin.routine"] = replace(policy, crisis=replace(policy.crisis, manager_username=""))
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

    imap_mailbox.deliver(mail("Telia <driftinfo@telia.example.se>", "Driftstörning GSM", "<gsm@telia.example.se>"))
    imap_mailbox.deliver(mail("Någon <nagon@example.org>", "Fråga", "<fraga@example.org>"))
    run_tick(app, clock, local(SATURDAY, 2, 10))

    with app.app_context():
        incident = db.session.scalar(select(Incident))
        assert (incident.party, incident.handler_user_id, incident.status) == ("on_call", ids["bo"], "new")
        assert db.session.scalar(select(Notice)).incident_id == incident.id
        triage = db.session.scalars(select(InboundEmail).where(InboundEmail.status == "triage")).all()
        assert [row.sender for row in triage] == ["nagon@example.org"]
        incident_id = incident.id
    assert outbox(app, "crisis.alert") == [
        ("2026-11-28 02:10", f"crisis-alert:{incident_id}:routed:0:email", "bo@kommun.example.se", "crisis.alert"),
        ("2026-11-28 02:10", f"crisis-alert:{incident_id}:routed:0:sms", "+46701000002", "crisis.alert"),
    ]
    assert imap_mailbox.messages("INBOX") == []
