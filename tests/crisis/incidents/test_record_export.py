"""The incident's record for the follow-up with the supplier: the JSON export and the print page."""

from __future__ import annotations

import re

from core.extensions import db
from crisis.incidents import timeline
from crisis.incidents.models import Incident, LetterReceipt
from crisis.oncall.models import Alert, Handover
from tests.crisis.incidents.test_record import (
    add_letter,
    make_incident,
    make_provider,
    make_supplier,
    queue_letter_message,
    staff_client,
    utc,
)


def _seed(app, make_user):
    """A GSM outage on the night summer time began: notice 00:40 UTC (01:40 local, UTC+1), first
    letter 01:30 UTC (03:30 local, UTC+2), handed over Monday 05:45 UTC, resolved 09:00 UTC."""
    officer, _, _ = make_user("on_call", username="tor")
    with app.app_context():
        telia = make_supplier("Telia", "drift@telia.example.se")
        provider, (karin,) = make_provider("Hemtjänst Norr", [("Karin Exempel", "karin@example.se", "+46701740605")])
        incident_id = make_incident(
            "GSM-avbrott",
            notice_at=utc(2027, 3, 28, 0, 40),
            starts_at=utc(2027, 3, 28, 0, 20),
            supplier_id=telia,
            party="team",
            handler_id=officer,
            status="resolved",
            resolved_at=utc(2027, 3, 29, 9, 0),
            original="From: drift@telia.example.se\r\nSubject: GSM\r\n\r\nAvbrott i GSM-nätet.",
        )
        incident = db.session.get(Incident, incident_id)
        incident.acknowledged_at, incident.acknowledged_by_id = utc(2027, 3, 28, 0, 50), officer
        timeline.record(
            db.session, incident_id, "acknowledged", utc(2027, 3, 28, 0, 50), actor_id=officer, party="on_call"
        )
        letter = add_letter(incident_id, utc(2027, 3, 28, 1, 30), party="on_call", author_id=officer)
        queue_letter_message(
            letter, karin, "sms", utc(2027, 3, 28, 1, 30), status="delivered", delivered_at=utc(2027, 3, 28, 1, 31)
        )
        db.session.add(
            LetterReceipt(
                letter_id=letter,
                provider_id=provider,
                nonce="n" * 32,
                acknowledged_at=utc(2027, 3, 28, 1, 45),
                acknowledged_by="Karin",
                local_routines="yes",
            )
        )
        db.session.add(
            Handover(
                incident_id=incident_id,
                boundary_at=utc(2027, 3, 29, 5, 45),
                from_party="on_call",
                to_party="team",
                from_user_id=officer,
                summary={"letters": 1},
                created_at=utc(2027, 3, 29, 5, 45),
            )
        )
        db.session.add(
            Alert(
                incident_id=incident_id,
                reason="routed",
                step=0,
                party="on_call",
                user_id=officer,
                sent_at=utc(2027, 3, 28, 0, 40),
                acknowledged_at=utc(2027, 3, 28, 0, 50),
                acknowledged_by_id=officer,
            )
        )
        timeline.record(db.session, incident_id, "resolved", utc(2027, 3, 29, 9, 0), party="team")
        db.session.commit()
    return incident_id, officer


def test_the_json_export_holds_the_whole_record_with_utc_and_local_times(app, make_user):
    incident_id, officer = _seed(app, make_user)
    response = staff_client(app, make_user).get(f"/incidents/{incident_id}/export.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert f"storning-{incident_id}.json" in response.headers["Content-Disposition"]
    record = response.get_json()
    assert record["format"] == "krisrutin.incident/1" and record["timezone"] == "Europe/Stockholm"

    incident = record["incident"]
    assert incident["title"] == "GSM-avbrott" and incident["service_label"] == "Kameratillsyn"
    assert incident["supplier"]["name"] == "Telia" and incident["planned"] is False
    assert incident["handler"] == {"id": officer, "name": "Test tor"}
    assert incident["starts_at"] == {"utc": "2027-03-28T00:20:00Z", "local": "2027-03-28T01:20:00+01:00"}
    assert incident["resolved_at"] == {"utc": "2027-03-29T09:00:00Z", "local": "2027-03-29T11:00:00+02:00"}

    (notice,) = record["notices"]
    assert notice["original"].startswith("From: drift@telia.example.se") and notice["original_type"] == "message/rfc822"
    assert notice["received_at"]["local"] == "2027-03-28T01:40:00+01:00"

    kinds = [(step["kind"], step["at"]["local"]) for step in record["timeline"]]
    assert kinds == [
        ("notice_received", "2027-03-28T01:40:00+01:00"),
        ("acknowledged", "2027-03-28T01:50:00+01:00"),
        ("letter_sent", "2027-03-28T03:30:00+02:00"),
        ("resolved", "2027-03-29T11:00:00+02:00"),
    ]
    assert record["timeline"][1]["actor"]["name"] == "Test tor"
    assert record["timeline"][2]["description"].startswith("Brev skickat: nr 1")

    (letter,) = record["letters"]
    (delivery,) = letter["deliveries"]
    assert delivery["contact"]["name"] == "Karin Exempel" and delivery["provider"] == "Hemtjänst Norr"
    assert delivery["channel"] == "sms" and delivery["status"] == "delivered"
    assert delivery["delivered_at"] == {"utc": "2027-03-28T01:31:00Z", "local": "2027-03-28T03:31:00+02:00"}
    assert delivery["to_address"] is None  # a register contact is named, not addressed
    (receipt,) = letter["receipts"]
    assert (
        receipt["provider"]["name"] == "Hemtjänst Norr"
        and receipt["local_routines"] == "yes"
        and receipt["local_routines_answer"] == "Ja"
    )
    assert receipt["acknowledged_at"]["utc"] == "2027-03-28T01:45:00Z"

    (handover,) = record["handovers"]
    assert (handover["from_party"], handover["to_party"]) == ("on_call", "team")
    assert handover["boundary_at"]["local"] == "2027-03-29T07:45:00+02:00"
    (alert,) = record["alerts"]
    assert alert["user"]["name"] == "Test tor" and alert["acknowledged_at"]["utc"] == "2027-03-28T00:50:00Z"

    figures = record["figures"]
    assert figures["notice_to_first_letter_seconds"] == 50 * 60  # 00:40 → 01:30 UTC, across the DST change
    assert figures["start_to_resolution_seconds"] == (24 * 60 + 8 * 60 + 40) * 60  # 00:20 → next day 09:00
    assert [p["name"] for p in record["affected_providers"]] == ["Hemtjänst Norr"]


def test_the_print_page_shows_the_record_in_local_time_with_print_styles(app, make_user):
    incident_id, _ = _seed(app, make_user)
    response = staff_client(app, make_user).get(f"/incidents/{incident_id}/print")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    # No inline style or script (the CSP): the only script is the menu's own file, as on every staff page.
    assert "css/print.css" in html and "<style" not in html and "style=" not in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/nav.js">']
    assert "Störningsrapport: GSM-avbrott" in html
    assert "2027-03-28 03:30" in html  # the letter, summer time
    assert "2027-03-28 01:40" in html  # the notice, winter time
    assert "Avbrott i GSM-nätet." in html  # the original as received
    assert "Karin Exempel (Hemtjänst Norr)" in html and "Levererat" in html
    assert "50 min" in html and "1 d 8 h 40 min" in html
    assert "Tjänsteman i beredskap → Välfärdsteknikteamet" in html


def test_the_print_stylesheet_hides_the_site_chrome_on_paper(app):
    css = app.test_client().get("/static/css/print.css").get_data(as_text=True)
    assert "@media print" in css and ".site-header" in css
