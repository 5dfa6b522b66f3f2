"""Sending letters: who gets them, what they say, and the rules on which letter may go when."""

from __future__ import annotations

from datetime import date

import pytest

from core.extensions import db
from crisis.incidents.letters import LetterError, send_letter
from crisis.incidents.models import Incident, LetterKind
from notifications.models import Priority
from notifications.segments import count_segments
from tests.crisis.incidents.test_letters_helpers import (
    BASE_URL,
    SETTINGS,
    TEAM_EMAIL,
    TEAM_MOBILE,
    addresses,
    events,
    letters,
    local,
    make_incident,
    make_people,
    messages,
    receipts,
)

# Tuesday 24 November 2026: 10:00 is office hours, 02:10 is not.
OFFICE = local(date(2026, 11, 24), 10)
NIGHT = local(date(2026, 11, 24), 2, 10)


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def _send(incident_id, clock, kind=LetterKind.FIRST, party="team", apply=True, subject="Kameratillsyn fungerar inte"):
    incident = db.session.get(Incident, incident_id)
    letter = send_letter(
        db.session,
        incident,
        kind=kind,
        subject=subject,
        body="Telia har ett fel i GSM-nätet.\n\nKameratillsynen kan inte utföras i natt.",
        apply_local_routines=apply,
        author_id=None,
        party=party,
        now=clock.now(),
    )
    db.session.commit()
    return letter.id


def test_a_letter_reaches_every_active_contact_of_the_affected_providers_by_email_and_sms(app, clock):
    clock.set(OFFICE)
    with app.app_context():
        people = make_people(clock)
        incident_id = make_incident(clock)
        letter_id = _send(incident_id, clock)

        assert addresses() == sorted(
            [
                ("email", "anna@norr.se"),
                ("sms", "+46701000001"),
                ("email", "bo@norr.se"),  # no services listed: the provider is affected, so is Bo
                ("sms", "+46701000002"),
                ("email", "cia@soder.se"),
                ("sms", "+46701000003"),
            ]
        )  # not Dan (inactive), not Eva (her provider only has alarms)
        sent = messages()
        assert {m.priority for m in sent} == {int(Priority.URGENT)}
        assert {m.ref_type for m in sent} == {"letter"} and {m.ref_id for m in sent} == {str(letter_id)}
        assert {m.idempotency_key for m in sent if m.to_address == "anna@norr.se"} == {
            f"letter:{letter_id}:contact:{people['anna']}:email"
        }
        letter = letters(incident_id)[0]
        assert (letter.number, letter.kind, letter.recipients, letter.urgent) == (1, "first", 3, True)
        assert len(receipts(letter_id)) == 2
        incident = db.session.get(Incident, incident_id)
        assert incident.last_letter_at == OFFICE
        sent_events = events(incident_id, "letter_sent")
        assert [(e.detail["number"], e.detail["recipients"]) for e in sent_events] == [(1, 3)]


def test_the_sms_links_to_the_providers_page_and_fits_in_two_segments(app, clock, client):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock)
        _send(incident_id, clock, subject="Kameratillsyn – " + "mycket lång rubrik " * 9)
        sms = [m for m in messages() if m.channel == "sms"]
        for message in sms:
            assert f"{BASE_URL}/d/" in message.body_text
            assert count_segments(message.body_text).segments <= 2
        links = {m.to_address: m.body_text.split()[-1] for m in sms}
    # Anna and Bo share their provider's page; Cia has her own provider's.
    assert links["+46701000001"] == links["+46701000002"] != links["+46701000003"]
    page = client.get(links["+46701000003"].removeprefix(BASE_URL))
    assert page.status_code == 200
    assert "Omsorg Söder AB" in page.get_data(as_text=True)


def test_the_email_holds_the_letter_the_local_measures_and_whom_to_contact_in_office_hours(app, clock):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock)
        _send(incident_id, clock)
        email = next(m for m in messages() if m.to_address == "anna@norr.se")
    assert email.subject == "Driftstörning: Kameratillsyn fungerar inte"
    text = email.body_text
    assert "Hej Anna Lind!" in text and "Kameratillsynen kan inte utföras i natt." in text
    assert "Informera dag-, kvälls- och nattpersonal och dokumentera i Treserva." in text
    assert "Rådgör med verksamhetschefen." in text
    assert "Kalla in extra resurser för fysiska nattbesök." in text
    assert "kontakta SOS 112" in text
    assert f"funktionsbrevlåda {TEAM_EMAIL} eller Lindesk" in text
    assert "tjänsteman i beredskap" not in text
    assert "Leverantör: Telia" in text and "Oplanerad störning" in text
    assert "Beräknas klart: 24 november 2026 kl. 14:00" in text
    assert "Lokala åtgärder" in email.body_html and "Treserva" in email.body_html


def test_outside_office_hours_the_letter_names_the_on_call_contact_and_goes_to_the_team(app, clock):
    clock.set(NIGHT)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, party="on_call")
        letter_id = _send(incident_id, clock, party="on_call")
        email = next(m for m in messages() if m.to_address == "anna@norr.se")
        team = [m for m in messages() if m.to_address == TEAM_EMAIL]
    assert "Utanför kontorstid och vid brådskande ärenden: tjänsteman i beredskap" in email.body_text
    assert TEAM_MOBILE in email.body_text  # no roster yet: the team's duty phone
    assert [(m.channel, m.idempotency_key) for m in team] == [("email", f"letter:{letter_id}:team:email")]
    assert team[0].subject.startswith("Kopia: ")
    assert f"{BASE_URL}/incidents/{incident_id}" in team[0].body_text


def test_a_team_letter_does_not_go_to_the_team_and_planned_work_is_normal_priority(app, clock):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, planned=True)
        _send(incident_id, clock, apply=False)
        sent = messages()
    assert TEAM_EMAIL not in {m.to_address for m in sent}
    assert {m.priority for m in sent} == {int(Priority.NORMAL)}
    email = next(m for m in sent if m.to_address == "anna@norr.se")
    assert "Planerat arbete" in email.body_text and "Lokala åtgärder" not in email.body_text


def test_a_chosen_subset_of_providers_gets_the_letter(app, clock):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        from contacts.register import find_provider_by_name

        soder = find_provider_by_name(db.session, "Omsorg Söder AB")
        incident_id = make_incident(clock, providers=[soder.id])
        _send(incident_id, clock)
        assert addresses() == [("email", "cia@soder.se"), ("sms", "+46701000003")]


def test_letters_are_numbered_and_refused_out_of_order(app, clock):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock)
        with pytest.raises(LetterError, match="informationsbrevet först"):
            _send(incident_id, clock, kind=LetterKind.UPDATE)
        db.session.rollback()
        _send(incident_id, clock)
        with pytest.raises(LetterError, match="redan skickat"):
            _send(incident_id, clock)
        db.session.rollback()
        _send(incident_id, clock, kind=LetterKind.UPDATE)
        _send(incident_id, clock, kind=LetterKind.RESOLUTION, apply=False)
        assert [(x.number, x.kind) for x in letters(incident_id)] == [(1, "first"), (2, "update"), (3, "resolution")]
        incident = db.session.get(Incident, incident_id)
        assert (incident.status, incident.resolved_at) == ("resolved", OFFICE)
        assert len(events(incident_id, "resolved")) == 1
        with pytest.raises(LetterError, match="avslutad"):
            _send(incident_id, clock, kind=LetterKind.UPDATE)
        db.session.rollback()
        assert len(letters(incident_id)) == 3


def test_outside_office_hours_the_letter_gives_the_on_call_officer_on_duty(app, clock, monkeypatch):
    from types import SimpleNamespace

    officer = SimpleNamespace(display_name="Olle Beredskap", mobile="+46709876543", email="olle@kommun.example.se")
    on_call_at = lambda db_session, instant: officer if instant == NIGHT else None  # noqa: E731
    monkeypatch.setattr("crisis.oncall.responsible.on_call_at", on_call_at)
    clock.set(NIGHT)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, party="on_call")
        _send(incident_id, clock, party="on_call")
        email = next(m for m in messages() if m.to_address == "cia@soder.se")
    expected = "tjänsteman i beredskap Olle Beredskap, telefon +46709876543, e-post olle@kommun.example.se"
    assert expected in email.body_text
    assert TEAM_MOBILE not in email.body_text


@pytest.mark.parametrize("language", ["sv", "en"])
@pytest.mark.parametrize("kind", ["first", "update", "resolution", "planned_reminder"])
@pytest.mark.parametrize("office_hours", [True, False])
def test_every_letter_template_renders_in_both_languages(language, kind, office_hours):
    from notifications import rendering

    context = {
        "letter": {
            "number": 2,
            "update_number": 1,
            "title": "Rubrik",
            "kind": kind,
            "kind_label": "Uppdatering",
            "subject": "Rubrik",
            "body": "Text.\n\nMer text.",
            "sent": "24 november 2026 kl. 02:10",
            "urgent": kind != "planned_reminder",
        },
        "incident": {
            "title": "GSM",
            "service": "Kameratillsyn",
            "supplier": "Telia",
            "planned": False,
            "starts": "",
            "expected_end": "",
        },
        "measures": ["inform_staff", "operations_manager", "extra_resources", "sos_112"],
        "contact": {
            "office_hours": office_hours,
            "team_email": "team@example.se",
            "urgent_name": "",
            "urgent_phone": "+46701999999",
            "urgent_email": "",
        },
        "sms_title": "Rubrik",
        "name": "Anna",
        "provider": "Norr",
        "link": "https://example.se/d/1-abcdefghij-abcdefghijklmnopqrstuv",
        "team_copy": False,
        "reminder": False,
    }
    rendered = rendering.render("crisis.letter", language, context)
    assert rendered.language == language
    assert "Rubrik" in rendered.subject and "Mer text." in rendered.text and "Mer text." in rendered.html
    assert context["link"] in rendered.sms
    for followup, extra in (
        ("crisis.followup.update_due", {"since": "kl. 02:10"}),
        ("crisis.followup.expected_end", {"expected_end": "kl. 06:10", "asked": True}),
        ("crisis.followup.call_list", {"providers": 2, "letter_number": 1, "calls_link": "https://x.se/c"}),
    ):
        message = rendering.render(followup, language, {**extra, "incident": {"title": "GSM"}, "link": "https://x.se"})
        assert message.subject and message.sms and "GSM" in message.text
    estimate = rendering.render(
        "crisis.estimate.request",
        language,
        {"supplier": "Telia", "title": "GSM", "service": "Kameratillsyn", "expected_end": "kl. 06:10"},
    )
    assert "Telia" in estimate.text and estimate.sms is None
