"""The team's check pages: the month at a glance, the call list and its outcomes, each contact's
history, the CSV report, and who may see what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contacts import register
from contacts.check_models import CheckCorrection, CheckRecipient
from contacts.check_queries import REF_TYPE
from contacts.models import ContactPerson
from core.extensions import db
from notifications.models import Message
from tests.conftest import csrf_token_from
from tests.contacts.test_check_public import OPENED, correction_form, log_in_as, make_month, text_of

MONTH = "2026-11"


@pytest.fixture
def month(app, clock):
    return make_month(app, clock)


@pytest.fixture
def team_member(app, client, clock):
    return log_in_as(app, client, clock, "team")


def _answer_no(app, token, **changes):
    browser = app.test_client()
    response = browser.post(f"/k/{token}/korrigera", data=correction_form(browser, token, **changes))
    assert response.status_code == 303  # the thanks, by GET


def _call(client, recipient_id, outcome, note="", **fields):
    page = client.get(f"/checks/{MONTH}/calls")
    data = {"csrf_token": csrf_token_from(page.get_data(as_text=True)), "outcome": outcome, "note": note}
    data.update(fields)
    return client.post(f"/checks/{MONTH}/calls/{recipient_id}", data=data)


def _recipient(app, recipient_id):
    with app.app_context():
        recipient = db.session.get(CheckRecipient, recipient_id)
        contact = recipient.contact
        db.session.expunge_all()
        return recipient, contact


def _add_messages(app, month):
    """Invitations by e-mail and SMS to both, in several states, and a later reminder to Bo."""
    anna, bo = month.people
    with app.app_context():

        def message(person, channel, status, key="invitation"):
            return Message(
                idempotency_key=f"test:{key}:{person.contact_id}:{channel}",
                kind=f"contacts.check_{key}",
                channel=channel,
                priority=5,
                contact_id=person.contact_id,
                to_address="+46701740605" if channel == "sms" else "x@example.se",
                body_text="Stämmer uppgifterna?",
                ref_type=REF_TYPE,
                ref_id=str(month.check_id),
                status=status,
                attempts=1,
                next_attempt_at=OPENED,
                created_at=OPENED,
                updated_at=OPENED,
            )

        db.session.add_all(
            [
                message(anna, "email", "delivered"),
                message(anna, "sms", "sent"),
                message(bo, "email", "failed"),
                message(bo, "sms", "delivered"),
            ]
        )
        db.session.flush()
        db.session.add(message(bo, "email", "queued", key="reminder"))
        db.session.get(CheckRecipient, bo.recipient_id).reminders_sent = 2
        db.session.commit()


# --- the month at a glance ----------------------------------------------------------------------


def test_the_month_shows_its_figures_and_recipients_with_filters(app, client, clock, month, team_member):
    anna = month.people[0]
    _add_messages(app, month)
    _answer_no(app, anna.token, mobile="070-111 22 33")
    page = client.get(f"/checks/{MONTH}")
    assert page.status_code == 200
    text = text_of(page)
    for figure in (
        "Mottagare 2",
        "Skickade (e-post och SMS) 3",
        "Levererade SMS 2",
        "Misslyckade 1",
        "Svar ja 0",
        "Svar nej 1",
        "Obesvarade 1",
        "Rättelser väntar 1",
        "Samtal att göra 1",  # the call day (9 November) has passed
    ):
        assert figure in text, figure
    assert "E-post får ingen leveransrapport, så ett e-brev räknas som skickat men aldrig som levererat." in text
    assert "Nej via länken 2026-11-23 10:00" in text
    assert f'href="/notifications/deliveries/monthly_check/{month.check_id}"' in page.get_data(as_text=True)
    outstanding = text_of(client.get(f"/checks/{MONTH}", query_string={"visa": "outstanding"}))
    assert "Bo Åkesson" in outstanding and "Anna Lind" not in outstanding
    answered_no = text_of(client.get(f"/checks/{MONTH}", query_string={"visa": "no"}))
    assert "Anna Lind" in answered_no and "Bo Åkesson" not in answered_no
    months = text_of(client.get("/checks"))
    assert "november 2026 2 0 1 1 1 Pågår" in months


def test_a_month_without_a_check_is_a_clear_404(client, team_member):
    response = client.get("/checks/2031-02")
    assert response.status_code == 404
    assert "Det finns ingen månadskontroll för 2031-02." in text_of(response)
    assert client.get("/checks/not-a-month").status_code == 404


# --- the call list ------------------------------------------------------------------------------


def test_the_call_list_shows_each_silent_contact_with_a_phone_link(app, client, month, team_member):
    anna = month.people[0]
    _answer_no(app, anna.token, mobile="070-111 22 33")
    page = client.get(f"/checks/{MONTH}/calls")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<a class="tel" href="tel:+46701740606">070-174 06 06</a>' in html
    assert "Omsorgsbolaget AB" in text_of(page)
    assert "Anna Lind" not in text_of(page)


def test_reached_and_confirmed_counts_as_a_yes_by_call(app, client, clock, month, team_member):
    bo = month.people[1]
    response = _call(client, bo.recipient_id, "confirmed", note="Allt stämmer")
    assert response.status_code == 303
    recipient, _ = _recipient(app, bo.recipient_id)
    assert (recipient.answer, recipient.answered_via, recipient.answered_at) == ("yes", "call", clock.now())
    assert (recipient.call_outcome, recipient.call_note, recipient.called_by_id, recipient.called_at) == (
        "confirmed",
        "Allt stämmer",
        team_member,
        clock.now(),
    )
    page = text_of(client.get(response.headers["Location"]))
    assert "Samtalet med Bo Åkesson är registrerat." in page
    assert "Nådd och bekräftade – kl. 10:00 Test team" in page  # still on the list, changeable


def test_reached_with_corrections_applies_them_to_the_register_as_a_call(app, client, clock, month, team_member):
    bo = month.people[1]
    fields = {"name": "Bo Åkesson", "role_title": "Enhetschef", "mobile": "0701740606", "email": "bo@ny.example.se"}
    response = _call(client, bo.recipient_id, "corrections", services=["camera_supervision", "alarms"], **fields)
    assert response.status_code == 303
    recipient, contact = _recipient(app, bo.recipient_id)
    assert (recipient.answer, recipient.answered_via, recipient.call_outcome) == ("no", "call", "corrections")
    assert (contact.role_title, contact.email, contact.services) == (
        "Enhetschef",
        "bo@ny.example.se",
        ["camera_supervision", "alarms"],
    )
    with app.app_context():
        changes = register.history(db.session, entity="contact", entity_id=bo.contact_id)
        updated = {c.field: (c.new_value, c.source, c.changed_by_id) for c in changes if c.action == "updated"}
        assert updated == {
            "role_title": ("Enhetschef", "call", team_member),
            "email": ("bo@ny.example.se", "call", team_member),
            "services": ("camera_supervision, alarms", "call", team_member),
        }
        (correction,) = db.session.query(CheckCorrection).filter_by(recipient_id=bo.recipient_id)
        assert (correction.status, correction.submitted_via, correction.reviewed_by_id) == (
            "accepted",
            "call",
            team_member,
        )


def test_corrections_by_call_with_a_bad_email_are_refused_and_nothing_is_stored(app, client, month, team_member):
    bo = month.people[1]
    fields = {"name": "Bo Åkesson", "role_title": "", "mobile": "0701740606", "email": "bo.at.example"}
    response = _call(client, bo.recipient_id, "corrections", **fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'href="#r{bo.recipient_id}-email"' in html
    assert f'aria-describedby="r{bo.recipient_id}-email-error"' in html
    recipient, contact = _recipient(app, bo.recipient_id)
    assert (recipient.answer, recipient.call_outcome, contact.email) == (None, None, "bo@omsorg.example.se")


def test_not_reached_records_the_call_and_no_answer(app, client, month, team_member):
    bo = month.people[1]
    assert _call(client, bo.recipient_id, "not_reached", note="Röstbrevlåda").status_code == 303
    recipient, _ = _recipient(app, bo.recipient_id)
    assert (recipient.answer, recipient.call_outcome, recipient.call_note) == (None, "not_reached", "Röstbrevlåda")


def test_a_contact_not_reached_stays_to_be_called_again_with_the_attempts_shown(app, client, clock, month, team_member):
    anna, bo = month.people
    _answer_no(app, anna.token, mobile="070-111 22 33")  # Anna answered: only Bo is to be called
    assert "Samtal att göra 1" in text_of(client.get(f"/checks/{MONTH}"))
    assert _call(client, bo.recipient_id, "not_reached", note="Röstbrevlåda").status_code == 303
    called_first = clock.now()
    clock.advance(hours=2)
    assert _call(client, bo.recipient_id, "not_reached").status_code == 303
    # "Inte nådd" is not done: Bo is still among the calls to make, and counted.
    assert "Samtal att göra 1" in text_of(client.get(f"/checks/{MONTH}"))
    page = text_of(client.get(f"/checks/{MONTH}/calls"))
    to_call = page[page.index("Att ringa (1)") :]
    assert "Bo Åkesson" in to_call and "Klara samtal" not in page
    assert "Inte nådd" in to_call and "Ring igen" in to_call
    # Both attempts: when, by whom, the outcome in words (the earlier one carries its date when not today).
    attempts = to_call[to_call.index("2 samtal") :]
    assert attempts.count("Test team · Inte nådd") == 2, attempts[:300]
    with app.app_context():
        from core.local_time import when_text

        assert when_text(called_first, clock.now()) in attempts
    # Reached at the third try: done, no call left to make.
    clock.advance(hours=1)
    assert _call(client, bo.recipient_id, "confirmed").status_code == 303
    page = text_of(client.get(f"/checks/{MONTH}/calls"))
    assert "Att ringa (0)" in page and "Klara samtal (1)" in page and "3 samtal" in page
    assert "Samtal att göra 0" in text_of(client.get(f"/checks/{MONTH}"))


def test_a_wrong_number_marks_the_mobile_as_failing_until_the_outcome_changes(app, client, clock, month, team_member):
    bo = month.people[1]
    assert _call(client, bo.recipient_id, "wrong_number").status_code == 303
    _, contact = _recipient(app, bo.recipient_id)
    assert contact.mobile_failing_since == clock.now()
    assert "Mobilnumret går inte att nå" in register.contact_problems(contact)
    assert "Numret är markerat som felaktigt." in text_of(client.get(f"/checks/{MONTH}/calls"))

    clock.advance(minutes=10)  # wrong button: he answered after all
    assert _call(client, bo.recipient_id, "confirmed").status_code == 303
    recipient, contact = _recipient(app, bo.recipient_id)
    assert (recipient.call_outcome, recipient.answer, contact.mobile_failing_since) == ("confirmed", "yes", None)

    assert _call(client, bo.recipient_id, "not_reached").status_code == 303  # and back: the call's yes is withdrawn
    recipient, _ = _recipient(app, bo.recipient_id)
    assert (recipient.call_outcome, recipient.answer, recipient.answered_via) == ("not_reached", None, None)


def test_a_call_needs_an_outcome(app, client, month, team_member):
    bo = month.people[1]
    response = _call(client, bo.recipient_id, "")
    assert response.status_code == 400
    assert "Välj hur samtalet gick" in text_of(response)


def test_a_recipient_of_another_month_cannot_be_called_from_this_one(app, client, clock, month, team_member):
    other = make_month(
        app,
        clock,
        month="2026-10",
        people=(("Hemtjänst Syd", None, "Dan Ek", "", "070-174 06 09", ""),),
        opened=OPENED - timedelta(days=31),
        closes=OPENED,
    )
    assert _call(client, other.people[0].recipient_id, "confirmed").status_code == 404


# --- a contact's history ------------------------------------------------------------------------


def test_a_contacts_history_shows_each_month_its_corrections_and_register_changes(
    app, client, clock, month, team_member
):
    anna = month.people[0]
    _answer_no(app, anna.token, role_title="Områdeschef", comment="Ny roll")
    page = client.get(f"/checks/contacts/{anna.contact_id}")
    assert page.status_code == 200
    text = text_of(page)
    assert "november 2026" in text and "Nej via länken" in text
    assert "Rättelse 2026-11-23 10:00 via länken – Väntar på granskning" in text
    assert "Roll: Områdeschef" in text and "Kommentar: Ny roll" in text
    assert "Ändringar i registret" in text and "Mobilnummer – 070-174 06 05 Registersidan" in text
    assert client.get("/checks/contacts/99999").status_code == 404


# --- the report ---------------------------------------------------------------------------------


def test_the_report_is_the_months_record_in_excels_csv(app, client, clock, month, team_member):
    anna, bo = month.people
    _add_messages(app, month)
    _answer_no(app, anna.token, mobile="070-111 22 33")
    with app.app_context():
        (correction_id,) = [c.id for c in db.session.query(CheckCorrection)]
    page = client.get("/checks/review")
    client.post(
        f"/checks/review/{correction_id}",
        data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "action": "accept"},
    )
    _call(client, bo.recipient_id, "not_reached")

    response = client.get(f"/checks/{MONTH}/report.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="manadskontroll-2026-11.csv"'
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    assert body.decode("utf-8-sig").split("\r\n") == [
        "Utförare;Organisationsnummer;Kontaktperson;Roll;Mobil;E-post;Tillagd;Inbjudan e-post;Inbjudan sms;"
        "Svar;Svar via;Svarade;Påminnelser;Samtal;Ringd;Ringd av;Rättelser godkända;Rättelser avvisade;"
        "Rättelser väntar",
        "Hemtjänst Norr;212000-0142;Anna Lind;Enhetschef;'+46701112233;anna@norr.example.se;2026-11-02 08:00;"
        "levererat;skickat;nej;länk;2026-11-23 10:00;0;;;;1;0;0",
        "Omsorgsbolaget AB;;Bo Åkesson;Verksamhetschef;'+46701740606;bo@omsorg.example.se;2026-11-02 08:00;"
        "misslyckades;levererat;;;;2;inte nådd;2026-11-23 10:00;Test team;0;0;0",
        "",
        "Månadskontroll;2026-11",
        "Utskick;2026-11-02",
        "Påminnelser;2026-11-05, 2026-11-06",
        "Samtalsdag;2026-11-09",
        "Mottagare;2",
        "Meddelanden skickade (e-post och SMS);3",
        "SMS levererade (e-post har ingen leveransrapport);2",
        "Meddelanden misslyckade;1",
        "Svar ja;0",
        "Svar nej;1",
        "Obesvarade;1",
        "Rättelser väntar;0",
        "Samtal gjorda;1",
        "Samtal kvar att göra;1",  # Bo was not reached: still to be called
        "Rapporten skapad;2026-11-23 10:00",
        "",
    ]


# --- who may see what ---------------------------------------------------------------------------


def _pages(month) -> dict[str, str]:
    anna = month.people[0]
    return {
        "months": "/checks",
        "month": f"/checks/{MONTH}",
        "contact": f"/checks/contacts/{anna.contact_id}",
        "report": f"/checks/{MONTH}/report.csv",
        "review": "/checks/review",
        "calls": f"/checks/{MONTH}/calls",
    }


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("team", {"months", "month", "contact", "report", "review", "calls"}),
        ("admin", {"months", "month", "contact", "report", "review", "calls"}),
        ("on_call", {"months", "month", "contact", "report"}),
        ("provider", set()),
        ("alarm_operator", set()),
    ],
)
def test_who_may_see_the_check_pages(app, client, clock, month, role, allowed):
    log_in_as(app, client, clock, role, provider_id=month.people[0].provider_id if role == "provider" else None)
    for name, path in _pages(month).items():
        expected = 200 if name in allowed else 403
        assert client.get(path).status_code == expected, (role, path)
    nav = client.get("/").get_data(as_text=True)
    assert ('href="/checks">Månadskontroll</a>' in nav) is bool(allowed)


def test_anonymous_visitors_are_sent_to_log_in(client, month):
    for path in _pages(month).values():
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    assert client.post(
        f"/checks/{MONTH}/calls/{month.people[1].recipient_id}", data={"outcome": "confirmed"}
    ).status_code in (400, 302)
    with client.application.app_context():
        assert db.session.get(CheckRecipient, month.people[1].recipient_id).call_outcome is None


def test_every_check_page_sets_its_language(app, client, clock, month, team_member):
    _answer_no(app, month.people[0].token, mobile="070-111 22 33")
    for name, path in _pages(month).items():
        if name == "report":
            continue
        for lang in ("sv", "en"):
            html = client.get(path, query_string={"lang": lang}).get_data(as_text=True)
            assert f'<html lang="{lang}">' in html, (path, lang)
    english = text_of(client.get(f"/checks/{MONTH}", query_string={"lang": "en"}))
    assert "The month at a glance" in english and "Call list" in english
    with app.app_context():
        assert db.session.get(ContactPerson, month.people[0].contact_id).mobile == "+46701740605"
