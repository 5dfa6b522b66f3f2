"""The team's and the on-call officer's pages: assessment, writing a letter in a few clicks with a
preview, errors, and the letters panel on the incident page."""

from __future__ import annotations

import re
from datetime import date

import pytest

from core.extensions import db
from crisis.incidents.models import Incident
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import (
    SETTINGS,
    TEAM_EMAIL,
    addresses,
    events,
    letters,
    local,
    make_incident,
    make_people,
    messages,
)

OFFICE = local(date(2026, 11, 24), 10)
NIGHT = local(date(2026, 11, 24), 2, 10)


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def _incident(app, clock, at, **fields):
    clock.set(at)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, **fields)
        db.session.remove()
    return incident_id


def _first_letter(incident_id, clock):
    """The incident's first letter, sent by the team (in an app context; not committed)."""
    from crisis.incidents.letters import send_letter

    return send_letter(
        db.session,
        db.session.get(Incident, incident_id),
        kind="first",
        subject="GSM-nätet nere",
        body="Kameratillsynen fungerar inte.",
        apply_local_routines=True,
        author_id=None,
        party="team",
        now=clock.now(),
    )


def _logged_in(client, make_user, role):
    _, username, password = make_user(role)
    log_in(client, username, password)


def test_not_relevant_needs_a_reason_and_closes_the_incident_without_sending(app, client, clock, make_user):
    incident_id = _incident(app, clock, OFFICE)
    _logged_in(client, make_user, "team")
    page = client.get(f"/incidents/{incident_id}/assess")
    assert page.status_code == 200
    token = csrf_token_from(page.get_data(as_text=True))
    missing = client.post(f"/incidents/{incident_id}/assess", data={"csrf_token": token, "relevant": "no"})
    assert missing.status_code == 400
    assert "Skriv varför störningen inte är relevant." in missing.get_data(as_text=True)
    done = client.post(
        f"/incidents/{incident_id}/assess",
        data={"csrf_token": token, "relevant": "no", "reason": "Gäller bara Stockholms stad."},
    )
    assert done.status_code == 303
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.status, incident.relevant, incident.assessment_reason) == (
            "not_relevant",
            False,
            "Gäller bara Stockholms stad.",
        )
        assert [e.detail["relevant"] for e in events(incident_id, "assessed")] == [False]
        assert messages(None) == []


def test_relevant_leads_to_the_first_letter_and_the_team_sends_it_after_a_preview(app, client, clock, make_user):
    incident_id = _incident(app, clock, OFFICE)
    _logged_in(client, make_user, "team")
    token = csrf_token_from(client.get(f"/incidents/{incident_id}/assess").get_data(as_text=True))
    response = client.post(
        f"/incidents/{incident_id}/assess",
        data={"csrf_token": token, "relevant": "yes", "apply_local_routines": "yes"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/incidents/{incident_id}/letters/new?kind=first")
    form = client.get(response.headers["Location"]).get_data(as_text=True)
    subject = re.search(r'id="subject" name="subject" value="([^"]*)"', form).group(1)
    body = re.search(r'<textarea id="body" name="body"[^>]*>([^<]*)</textarea>', form).group(1)
    data = {"csrf_token": token, "subject": subject, "body": body, "apply_local_routines": "yes"}
    preview = client.post(f"/incidents/{incident_id}/letters/new?kind=first", data={**data, "action": "preview"})
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "Brevet går till 3 kontaktpersoner" in html and "hos 2 utförare" in html
    with app.app_context():
        assert messages(None) == []  # a preview sends nothing
    sent = client.post(f"/incidents/{incident_id}/letters/new?kind=first", data={**data, "action": "send"})
    assert sent.status_code == 303
    with app.app_context():
        assert len(addresses()) == 6 and TEAM_EMAIL not in {a for _, a in addresses()}
        assert [x.party for x in letters(incident_id)] == ["team"]
    page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert "Informationsbrev: " in page and "Hemtjänst Norr" in page and "Omsorg Söder AB" in page
    assert "Skriv uppdatering" in page


def test_the_on_call_officer_writes_a_simplified_letter_in_a_few_clicks(app, client, clock, make_user):
    incident_id = _incident(app, clock, NIGHT, party="on_call")
    _logged_in(client, make_user, "on_call")
    form = client.get(f"/incidents/{incident_id}/letters/new?kind=first").get_data(as_text=True)
    # Pre-filled from the incident: service, supplier, unplanned, start and expected end.
    assert "Telia meddelar en oplanerad driftstörning som påverkar kameratillsyn" in form
    assert "Start: 24 november 2026 kl. 02:10" in form and "Beräknas klart: 24 november 2026 kl. 06:10" in form
    token = csrf_token_from(form)
    subject = re.search(r'id="subject" name="subject" value="([^"]*)"', form).group(1)
    body = re.search(r'<textarea id="body" name="body"[^>]*>([^<]*)</textarea>', form).group(1)
    data = {"csrf_token": token, "subject": subject, "body": body, "apply_local_routines": "yes"}
    assert client.post(f"/incidents/{incident_id}/letters/new?kind=first", data=data).status_code == 200
    assert (
        client.post(f"/incidents/{incident_id}/letters/new?kind=first", data={**data, "action": "send"}).status_code
        == 303
    )
    with app.app_context():
        assert [x.party for x in letters(incident_id)] == ["on_call"]
        assert ("email", TEAM_EMAIL) in addresses()


def test_bad_letters_are_refused_with_400_and_nothing_is_sent(app, client, clock, make_user):
    incident_id = _incident(app, clock, OFFICE)
    _logged_in(client, make_user, "team")
    form = client.get(f"/incidents/{incident_id}/letters/new?kind=first").get_data(as_text=True)
    token = csrf_token_from(form)
    empty = client.post(
        f"/incidents/{incident_id}/letters/new?kind=first",
        data={"csrf_token": token, "subject": "", "body": "", "action": "send"},
    )
    assert empty.status_code == 400
    assert "Skriv en rubrik." in empty.get_data(as_text=True)
    update_first = client.get(f"/incidents/{incident_id}/letters/new?kind=update")
    assert update_first.status_code == 400
    assert "Skicka informationsbrevet först." in update_first.get_data(as_text=True)
    assert 'name="subject"' not in update_first.get_data(as_text=True)
    assert client.get(f"/incidents/{incident_id}/letters/new?kind=bogus").status_code == 400
    with app.app_context():
        assert messages(None) == [] and letters(incident_id) == []


def test_providers_and_alarm_operators_may_not_write_letters(app, client, clock, make_user):
    incident_id = _incident(app, clock, OFFICE)
    _logged_in(client, make_user, "alarm_operator")
    assert client.get(f"/incidents/{incident_id}/letters/new?kind=first").status_code == 403
    assert client.get("/incidents/calls").status_code == 403


def test_the_on_call_officer_may_not_assess(app, client, clock, make_user):
    incident_id = _incident(app, clock, OFFICE)
    _logged_in(client, make_user, "on_call")
    assert client.get(f"/incidents/{incident_id}/assess").status_code == 403


def test_a_letter_to_many_providers_shows_the_unacknowledged_first_and_the_rest_on_request(
    app, client, clock, make_user
):
    """Sixty providers: the incident page lists fifty receipts, those not yet acknowledged first,
    says how many have acknowledged, and shows all of them (and all providers) on request."""
    from contacts import register
    from tests.crisis.incidents.test_letters_helpers import TEAM

    clock.set(OFFICE)
    with app.app_context():
        for number in range(60):
            provider = register.create_provider(
                db.session, {"name": f"Utförare {number:02d}", "kind": "private"}, actor=TEAM, now=clock.now()
            ).record
            register.create_contact(
                db.session,
                provider,
                {"name": f"Kontakt {number}", "email": f"k{number}@example.se", "services": ["camera_supervision"]},
                actor=TEAM,
                now=clock.now(),
            )
        db.session.commit()
        incident_id = make_incident(clock)
        letter = _first_letter(incident_id, clock)
        # Utförare 00 to 54 have acknowledged; 55 to 59 have not.
        for receipt in letter.receipts:
            name = db.session.get(register.Provider, receipt.provider_id).name
            if name < "Utförare 55":
                receipt.acknowledged_at, receipt.acknowledged_by = clock.now(), "Kontakt"
        db.session.commit()
        db.session.remove()
    _logged_in(client, make_user, "team")

    page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    table = page.split("Kvittenser för brev 1")[1].split("</table>")[0]
    shown = re.findall(r"<td>(Utförare \d\d)", table)
    assert len(shown) == 50
    assert shown[:5] == [f"Utförare {n}" for n in range(55, 60)]  # not acknowledged: first
    assert "55 av 60 utförare har kvitterat." in page
    assert "Visa alla 60 kvittenser" in page and "Visa alla 60 utförare" in page
    listed = re.findall(r"<li>(Utförare \d\d)</li>", page)
    assert len(listed) == 50

    everything = client.get(f"/incidents/{incident_id}?receipts=all&providers=all").get_data(as_text=True)
    table = everything.split("Kvittenser för brev 1")[1].split("</table>")[0]
    assert len(re.findall(r"<td>(Utförare \d\d)", table)) == 60
    assert len(re.findall(r"<li>(Utförare \d\d)</li>", everything)) == 60
    assert "Visa alla 60" not in everything


@pytest.mark.parametrize("subject", ["Uppdatering\x00 kameror", "Uppdatering \u202earomak"])
def test_an_update_letter_whose_subject_holds_a_refused_character_is_refused_and_nothing_is_sent(
    app, client, clock, make_user, subject
):
    incident_id = _incident(app, clock, OFFICE)
    with app.app_context():
        _first_letter(incident_id, clock)
        db.session.commit()
        sent = len(messages(None))
    _logged_in(client, make_user, "team")
    url = f"/incidents/{incident_id}/letters/new?kind=update"
    token = csrf_token_from(client.get(url).get_data(as_text=True))
    data = {"csrf_token": token, "subject": subject, "body": "Fortfarande nere.", "action": "send"}
    response = client.post(url, data=data)
    assert response.status_code == 400 and "<strong>Rubrik:</strong>" in response.get_data(as_text=True)
    with app.app_context():
        assert len(letters(incident_id)) == 1 and len(messages(None)) == sent
