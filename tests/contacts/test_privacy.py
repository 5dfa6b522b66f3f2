"""Registerutdrag and radering: a contact person's extract holds their data and nobody else's;
erasure removes their personal values everywhere and keeps the routine's record."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contacts import register
from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck
from contacts.models import ContactPerson, RegisterChange
from core.extensions import db
from core.labels import phone
from crisis.incidents.models import Incident, Letter, LetterReceipt
from crisis.visits.models import VisitAlert, VisitEvent
from notifications.models import InboundSms, Message
from tests.conftest import csrf_token_from, log_in
from tests.contacts.test_checks_helpers import TEAM, make_register

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ANNA = ("Anna Lind", "+46701000001", "anna@norr.se", "Samordnare")
BO = ("Bo Ek", "+46701000002", "bo@norr.se", "Chef")


def _message(key, contact_id, address, text, created, status="delivered"):
    return Message(
        idempotency_key=key,
        kind="contacts.check_link",
        channel="sms",
        priority=1,
        contact_id=contact_id,
        to_address=address,
        subject="Test av rutin",
        body_text=text,
        body_html=None,
        status=status,
        attempts=1,
        next_attempt_at=created,
        created_at=created,
        updated_at=created,
    )


@pytest.fixture
def people(app, clock):
    clock.set(datetime(2026, 9, 1, 9, 0, tzinfo=STOCKHOLM))
    with app.app_context():
        ids = make_register(
            clock,
            {
                "anna": {"provider": "Hemtjänst Norr", "name": ANNA[0], "mobile": ANNA[1], "email": ANNA[2]},
                "bo": {
                    "provider": "Hemtjänst Norr",
                    "name": BO[0],
                    "mobile": BO[1],
                    "email": BO[2],
                    "role_title": BO[3],
                },
            },
        )
        anna = db.session.get(ContactPerson, ids["anna"])
        register.update_contact(db.session, anna, {"role_title": ANNA[3]}, actor=TEAM, now=clock.now())
        now = clock.now()
        check = MonthlyCheck(
            month="2026-09",
            send_on=date(2026, 9, 1),
            first_reminder_on=date(2026, 9, 4),
            second_reminder_on=date(2026, 9, 5),
            call_on=date(2026, 9, 7),
            opened_at=now,
            closes_at=now + timedelta(days=30),
            created_at=now,
        )
        db.session.add(check)
        db.session.flush()
        for short, person in (("anna", ANNA), ("bo", BO)):
            recipient = CheckRecipient(
                check_id=check.id,
                contact_id=ids[short],
                provider_id=anna.provider_id,
                added_at=now,
                added_reason="start",
                nonce=short,
                answer="no",
                answered_at=now,
                answered_via="call",
                call_note=f"{person[0]} bad om nytt nummer",
                call_outcome="corrections",
                call_attempts=[
                    {"at": "2026-09-06T08:00:00+00:00", "by": None, "outcome": "not_reached"},
                    {"at": "2026-09-07T08:00:00+00:00", "by": None, "outcome": "corrections"},
                ],
            )
            db.session.add(recipient)
            db.session.flush()
            db.session.add(
                CheckCorrection(
                    recipient_id=recipient.id,
                    kind="correction",
                    contact_id=ids[short],
                    provider_id=anna.provider_id,
                    proposed={"email": person[2].replace("norr", "nya")},
                    comment=f"Hälsningar {person[0]}",
                    status="pending",
                    submitted_at=now,
                    submitted_via="link",
                )
            )
            db.session.add(_message(f"m-{short}", ids[short], person[1], f"Hej {person[0]}, svara JA", now))
            db.session.add(InboundSms(gateway_id=f"g-{short}", from_address=person[1], body="JA", received_at=now))
        db.session.add(_message("m-anna-queued", ids["anna"], ANNA[2], "Påminnelse", now, status="queued"))
        incident = Incident(
            title="Larmstörning",
            service="trygghetslarm",
            party="team",
            party_since=now,
            status="resolved",
            created_at=now,
            resolved_at=now,
        )
        db.session.add(incident)
        db.session.flush()
        letter = Letter(
            incident_id=incident.id, number=1, kind="first", party="team", subject="S", body="B", sent_at=now
        )
        db.session.add(letter)
        db.session.flush()
        db.session.add(
            LetterReceipt(
                letter_id=letter.id,
                provider_id=anna.provider_id,
                nonce="x",
                acknowledged_at=now,
                acknowledged_by=ANNA[0],
            )
        )
        db.session.add(
            VisitAlert(provider_id=anna.provider_id, nonce="v", visit_ids=[], created_at=now, acknowledged_by=ANNA[0])
        )
        db.session.add(VisitEvent(at=now, kind="acknowledged", provider_id=anna.provider_id, actor=ANNA[0], detail={}))
        db.session.commit()
        db.session.remove()
        return ids


def _log_in(client, make_user, role="team"):
    _, name, password = make_user(role=role)
    log_in(client, name, password)


def test_the_extract_holds_the_persons_data_and_nobody_elses(app, client, make_user, people):
    _log_in(client, make_user)
    response = client.get(f"/register/contacts/{people['anna']}/extract.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["contact"]["name"] == ANNA[0]
    assert (data["contact"]["mobile"], data["contact"]["email"], data["contact"]["role_title"]) == ANNA[1:]
    assert {(row["field"], row["new_value"]) for row in data["history"]} >= {("name", ANNA[0]), ("role_title", ANNA[3])}
    assert [row["month"] for row in data["monthly_checks"]] == ["2026-09"]
    # Every call attempt is in the extract, not only the last.
    assert [a["outcome"] for a in data["monthly_checks"][0]["call_attempts"]] == ["not_reached", "corrections"]
    assert data["corrections"][0]["comment"] == f"Hälsningar {ANNA[0]}"
    assert sorted(row["status"] for row in data["messages"]) == ["delivered", "queued"]
    assert data["sms_replies"] == [{"received_at": data["sms_replies"][0]["received_at"], "text": "JA"}]
    text = response.get_data(as_text=True)
    for value in BO:
        assert value not in text

    page = client.get(f"/register/contacts/{people['anna']}/extract")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # the page shows numbers as people read them (core.labels.phone)
    assert "Registerutdrag" in html and ANNA[0] in html and phone(ANNA[1]) in html
    assert BO[0] not in html and phone(BO[1]) not in html


@pytest.mark.parametrize("role", ["on_call", "alarm_operator"])
def test_only_the_team_and_admins_get_extracts_or_erase(app, client, make_user, people, role):
    _log_in(client, make_user, role)
    assert client.get(f"/register/contacts/{people['anna']}/extract.json").status_code == 403
    assert client.get(f"/register/contacts/{people['anna']}/erase").status_code == 403


def test_an_unknown_contact_is_404(app, client, make_user, people):
    _log_in(client, make_user)
    assert client.get("/register/contacts/999999/extract").status_code == 404
    assert client.get("/register/contacts/abc/erase").status_code == 404


def _personal_values_stored(app) -> str:
    """Every stored value the erasure is about, as one text to search."""
    with app.app_context():
        parts = []
        for model in (
            ContactPerson,
            RegisterChange,
            CheckRecipient,
            CheckCorrection,
            Message,
            InboundSms,
            LetterReceipt,
        ):
            for row in db.session.scalars(select(model)):
                parts.append(repr({c.key: getattr(row, c.key) for c in model.__mapper__.column_attrs}))
        db.session.remove()
        return "\n".join(parts)


def test_erasure_needs_confirmation_then_removes_the_personal_values_and_keeps_the_record(
    app, client, make_user, people
):
    _log_in(client, make_user, "admin")
    page = client.get(f"/register/contacts/{people['anna']}/erase")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Det här sparas, och varför" in html
    token = csrf_token_from(html)

    before = _personal_values_stored(app)
    refused = client.post(f"/register/contacts/{people['anna']}/erase", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "Bekräfta att begäran om radering är kontrollerad." in refused.get_data(as_text=True)
    assert _personal_values_stored(app) == before

    done = client.post(
        f"/register/contacts/{people['anna']}/erase", data={"csrf_token": token, "confirm": "ja"}, follow_redirects=True
    )
    assert done.status_code == 200
    assert "Kontaktpersonens personuppgifter är raderade." in done.get_data(as_text=True)

    stored = _personal_values_stored(app)
    for value in (*ANNA, "Anna"):
        assert value not in stored, value
    for value in BO:  # the other person's data is untouched
        assert value in stored, value

    with app.app_context():
        anna = db.session.get(ContactPerson, people["anna"])
        assert (anna.name, anna.mobile, anna.email, anna.role_title, anna.is_active) == (
            "Raderad kontaktperson",
            None,
            None,
            "",
            False,
        )
        # the record: she was sent messages at given times, with their status; her answer stays
        messages = db.session.scalars(select(Message).where(Message.contact_id == anna.id)).all()
        assert sorted(m.status for m in messages) == ["cancelled", "delivered"]
        assert all(m.created_at is not None and m.body_text == "" and m.to_address == "" for m in messages)
        recipient = db.session.scalars(select(CheckRecipient).where(CheckRecipient.contact_id == anna.id)).one()
        assert (recipient.answer, recipient.answered_via, recipient.call_note) == ("no", "call", None)
        history = db.session.scalars(
            select(RegisterChange).where(RegisterChange.entity == "contact", RegisterChange.entity_id == anna.id)
        ).all()
        assert len(history) >= 3 and history[-1].field == "is_active"
        receipt = db.session.scalars(select(LetterReceipt)).one()
        assert receipt.acknowledged_by is None and receipt.acknowledged_at is not None
        db.session.remove()

    again = client.get(f"/register/contacts/{people['anna']}/erase")
    assert again.status_code == 200 and 'name="confirm"' not in again.get_data(as_text=True)


def test_the_erasure_takes_the_incidents_and_visits_parts_too(app, clock, people):
    """Incidents and visits add their part (contacts.privacy.register_erasure): the name typed on
    the provider's letter and visit pages is cleared, and each part is counted after the register's."""
    from contacts.privacy import erase

    with app.app_context():
        anna = db.session.get(ContactPerson, people["anna"])
        counts = erase(db.session, anna, user_id=None, now=clock.now())
        db.session.commit()
        assert list(counts) == [
            "history",
            "messages_cancelled",
            "messages",
            "sms_replies",
            "check_answers",
            "corrections",
            "letter_receipts",
            "visits",
            "visit_alerts",
            "visit_events",
            "contact",
        ]
        # the fixture has Anna's name on a receipt, a visit alert and a visit event, on no visit
        assert [counts[kind] for kind in ("letter_receipts", "visits", "visit_alerts", "visit_events")] == [1, 0, 1, 1]
        assert db.session.scalars(select(VisitAlert.acknowledged_by)).one() is None
        assert db.session.scalars(select(VisitEvent.actor)).one() is None
        assert db.session.scalars(select(LetterReceipt.acknowledged_by)).one() is None
        db.session.remove()
