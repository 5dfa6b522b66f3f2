"""Disruption demo data: two suppliers (Telia, with an address for notices and estimates, and
Careium) and one open incident — an unplanned GSM outage affecting every provider of camera
supervision — received as a forwarded e-mail, on its timeline and routed like any other (see
core/demo.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crisis.incidents import routing, timeline
from crisis.incidents.models import Incident, Notice, NoticeSource, Supplier
from crisis.oncall.models import Party

DEMO_SUPPLIERS = (("Telia", "driftinfo@telia.example.se"), ("Careium", None))
# Whose mail in the supplier mailbox becomes a notice at once (crisis.incidents.mail_triage).
DEMO_SENDERS = {
    "Telia": "driftinfo@telia.example.se\nnoreply-drift@telia.example.se",
    "Careium": "@careium.example.se",
}
DEMO_NOTICE_ID = "<demo-gsm-avbrott@telia.example.se>"
DEMO_INCIDENT_TITLE = "GSM-nätet nere: kameratillsynen når inte routrarna (demo)"
DEMO_NOTICE_BODY = (
    "Vi har ett oplanerat avbrott i mobilnätet (GSM) i kommunens norra delar. "
    "Routrar för kameratillsyn kan sakna kontakt. Felsökning pågår; beräknat klart om cirka tre timmar."
)


def load(db_session: Session, now: datetime) -> None:
    """The suppliers and the demo incident, each only if missing."""
    suppliers = {}
    for name, email in DEMO_SUPPLIERS:
        supplier = db_session.scalar(select(Supplier).where(Supplier.name == name))
        if supplier is None:
            supplier = Supplier(
                name=name, email=email, sender_addresses=DEMO_SENDERS[name], is_active=True, created_at=now
            )
            db_session.add(supplier)
        suppliers[name] = supplier
    db_session.flush()

    if db_session.scalar(select(Notice.id).where(Notice.external_id == DEMO_NOTICE_ID)) is not None:
        return
    telia = suppliers["Telia"]
    subject = "Driftstörning: GSM-avbrott, kameratillsyn påverkas (demo)"
    original = (
        "From: Telia driftinformation <driftinfo@telia.example.se>\r\n"
        "To: valfardsteknik@kommun.example.se\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {DEMO_NOTICE_ID}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{DEMO_NOTICE_BODY}\r\n"
    )
    incident = Incident(
        title=DEMO_INCIDENT_TITLE,
        service="camera_supervision",
        supplier_id=telia.id,
        planned=False,
        starts_at=now - timedelta(minutes=15),
        expected_end_at=now + timedelta(hours=3),
        all_providers=True,
        party=Party.TEAM.value,  # route_incident decides by the calendar below
        party_since=now,
        created_at=now,
    )
    db_session.add(incident)
    db_session.flush()
    notice = Notice(
        incident_id=incident.id,
        source=NoticeSource.EMAIL.value,
        supplier_id=telia.id,
        external_id=DEMO_NOTICE_ID,
        subject=subject,
        body=DEMO_NOTICE_BODY,
        original=original,
        original_type="message/rfc822",
        received_at=now,
    )
    db_session.add(notice)
    db_session.flush()
    timeline.record(db_session, incident.id, "notice_received", now, notice_id=notice.id, source=notice.source)
    routing.route_incident(db_session, incident, now)
