"""The provider's page of an incident: reached by the signed link in the letter, made for a phone,
acknowledged with a form post; forged links get 404, resolved incidents stay readable."""

from __future__ import annotations

import re
from datetime import date

import pytest

from core.extensions import db
from crisis.incidents.letters import link_url, send_letter
from crisis.incidents.models import Incident, LetterKind
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import (
    BASE_URL,
    SETTINGS,
    events,
    letters,
    local,
    make_incident,
    make_people,
    messages,
    receipts,
)

OFFICE = local(date(2026, 11, 24), 10)


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def _send(incident_id, clock, kind=LetterKind.FIRST, body="Kameratillsynen kan inte utföras i natt."):
    letter = send_letter(
        db.session,
        db.session.get(Incident, incident_id),
        kind=kind,
        subject=f"Brev {kind}",
        body=body,
        apply_local_routines=kind != LetterKind.RESOLUTION,
        author_id=None,
        party="team",
        now=clock.now(),
    )
    db.session.commit()
    return letter.id


@pytest.fixture
def sent(app, clock):
    """A first letter and an update; returns the incident id and the path of Cia's provider's page."""
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock)
        _send(incident_id, clock)
        clock.advance(minutes=20)
        _send(incident_id, clock, kind=LetterKind.UPDATE, body="Telia räknar med att felet är åtgärdat 14:00.")
        sms = next(m for m in messages() if m.to_address == "+46701000003" and ":resend" not in m.idempotency_key)
        path = sms.body_text.split()[-1].removeprefix(BASE_URL)
        db.session.remove()
    return incident_id, path


def test_the_page_shows_the_letters_newest_first_the_measures_and_whom_to_contact(client, sent):
    _, path = sent
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Omsorg Söder AB" in html and "GSM-nätet nere" in html
    assert html.index("Telia räknar med") < html.index("Kameratillsynen kan inte utföras")
    assert "Uppdatering 1 ·" in html and "Informationsbrev ·" in html  # the first update is number 1
    assert "Treserva" in html and "SOS 112" in html
    assert "Lindesk" in html
    assert 'name="viewport"' in html and "Skicka kvittens" in html
    assert 'name="robots" content="noindex' in html


def test_acknowledging_records_who_and_is_idempotent(app, client, clock, sent):
    incident_id, path = sent
    token = csrf_token_from(client.get(path).get_data(as_text=True))
    clock.advance(minutes=5)
    response = client.post(path, data={"csrf_token": token, "name": "Cia Berg", "local_routines": "yes"})
    assert response.status_code == 303
    assert "Kvitterat av Cia Berg" in client.get(path).get_data(as_text=True)
    again = client.post(path, data={"csrf_token": token, "name": "Någon annan", "local_routines": "yes"})
    assert again.status_code == 303
    with app.app_context():
        first, update = letters(incident_id)
        soder = [r for r in receipts(first.id) + receipts(update.id) if r.acknowledged_at is not None]
        assert {(r.acknowledged_by, r.local_routines) for r in soder} == {("Cia Berg", "yes")}
        assert len(soder) == 2  # both letters: the page showed both
        assert len([r for r in receipts(first.id) if r.acknowledged_at is None]) == 1  # Hemtjänst Norr
        assert len(events(incident_id, "letter_acknowledged")) == 2


def test_a_name_is_required(client, sent):
    _, path = sent
    token = csrf_token_from(client.get(path).get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, "name": "  "})
    assert response.status_code == 400
    assert "Skriv ditt namn." in response.get_data(as_text=True)


def test_a_post_without_the_csrf_token_changes_nothing(app, client, sent):
    incident_id, path = sent
    response = client.post(path, data={"name": "Cia Berg"})
    assert response.status_code == 400
    with app.app_context():
        assert events(incident_id, "letter_acknowledged") == []


@pytest.mark.parametrize("change", ["mac", "id", "nonce", "garbage"])
def test_a_forged_or_altered_link_gets_404(client, sent, change):
    _, path = sent
    token = path.removeprefix("/d/")
    # The nonce and the signature may contain "-": split by the layout (id, "-", nonce, "-", 22-character MAC).
    receipt_id, rest = token.split("-", 1)
    nonce, mac = rest[:-23], rest[-22:]
    forged = {
        "mac": f"{receipt_id}-{nonce}-{'A' * 22}",
        "id": f"{int(receipt_id) + 1}-{nonce}-{mac}",
        "nonce": f"{receipt_id}-{'x' * len(nonce)}-{mac}",
        "garbage": "not-a-token",
    }[change]
    response = client.get(f"/d/{forged}")
    assert response.status_code == 404
    assert "Länken fungerar inte" in response.get_data(as_text=True)
    assert client.post(f"/d/{forged}", data={"name": "x"}).status_code in (400, 404)


def test_a_resolved_incident_still_shows_its_letters_read_only(app, client, clock, sent):
    incident_id, path = sent
    with app.app_context():
        _send(incident_id, clock, kind=LetterKind.RESOLUTION, body="Felet är åtgärdat.")
        resolution = letters(incident_id)[-1]
        new_link = link_url(receipts(resolution.id)[1])
    for link in (path, new_link.removeprefix(BASE_URL)):
        html = client.get(link).get_data(as_text=True)
        assert "Störningen är åtgärdad och avslutad." in html
        assert "Felet är åtgärdat." in html and "Kameratillsynen kan inte utföras" in html
        assert 'name="local_routines"' not in html


# --- "Har ni startat era lokala rutiner?" ---------------------------------------------------------


def _radios(html: str) -> list[str]:
    return re.findall(r'<input type="radio"[^>]*name="local_routines"[^>]*>', html)


def test_the_question_is_asked_with_three_radios_nothing_chosen_and_a_neutral_button(client, sent):
    _, path = sent
    html = client.get(path).get_data(as_text=True)
    assert "<legend>Har ni startat era lokala rutiner?</legend>" in html
    radios = _radios(html)
    assert [re.search(r'value="([^"]+)"', r).group(1) for r in radios] == ["yes", "not_yet", "not_needed"]
    assert not any("checked" in r for r in radios)
    for label in ("Ja", "Nej, inte än", "Behövs inte"):
        assert f">{label}</label>" in html
    assert "Skicka kvittens" in html and "lokala rutiner startade" not in html
    assert 'type="checkbox"' not in html


@pytest.mark.parametrize(
    ("answer", "words"), [("yes", "Ja"), ("not_yet", "Nej, inte än"), ("not_needed", "Behövs inte")]
)
def test_the_receipt_records_and_shows_exactly_the_answer_given(app, client, clock, make_user, sent, answer, words):
    incident_id, path = sent
    token = csrf_token_from(client.get(path).get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, "name": "Cia Berg", "local_routines": answer})
    assert response.status_code == 303 and response.headers["Location"].endswith(path)
    confirmation = client.get(path).get_data(as_text=True)
    assert "Tack! Ni har kvitterat breven." in confirmation
    assert f"Har ni startat era lokala rutiner? <strong>{words}</strong>" in confirmation
    with app.app_context():
        acknowledged = [r for letter in letters(incident_id) for r in receipts(letter.id) if r.acknowledged_at]
        assert {r.local_routines for r in acknowledged} == {answer}
        assert {e.detail["local_routines"] for e in events(incident_id, "letter_acknowledged")} == {answer}
    _, username, password = make_user("team")
    log_in(client, username, password)
    incident_page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert f"Har ni startat era lokala rutiner? {words}" in incident_page
    assert f"En utförare kvitterade brevet: Har ni startat era lokala rutiner? {words}" in incident_page
    export = client.get(f"/incidents/{incident_id}/export.json").get_json()
    exported = [r for letter in export["letters"] for r in letter["receipts"] if r["acknowledged_at"]]
    assert {(r["local_routines"], r["local_routines_answer"]) for r in exported} == {(answer, words)}
    printed = client.get(f"/incidents/{incident_id}/print").get_data(as_text=True)
    assert f"Har ni startat era lokala rutiner? {words}" in printed


def test_an_unanswered_question_shows_the_page_again_with_the_error_and_records_nothing(app, client, sent):
    incident_id, path = sent
    token = csrf_token_from(client.get(path).get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, "name": "Cia Berg"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    message = "Svara på om ni har startat era lokala rutiner."
    assert f'<a href="#local_routines">{message}</a>' in html  # the error summary leads to the first radio
    assert f'<span class="error-message" id="local_routines-error">{message}</span>' in html
    assert 'id="local_routines" name="local_routines"' in html
    assert 'value="Cia Berg"' in html  # what was typed is kept
    assert not any("checked" in r for r in _radios(html))
    with app.app_context():
        assert events(incident_id, "letter_acknowledged") == []


def test_a_made_up_answer_is_refused_like_no_answer(app, client, sent):
    incident_id, path = sent
    token = csrf_token_from(client.get(path).get_data(as_text=True))
    response = client.post(path, data={"csrf_token": token, "name": "Cia Berg", "local_routines": "maybe"})
    assert response.status_code == 400
    with app.app_context():
        assert events(incident_id, "letter_acknowledged") == []


def test_the_receipt_is_answered_with_a_redirect_so_a_reload_sends_nothing(app, client, clock, sent):
    incident_id, path = sent
    token = csrf_token_from(client.get(path).get_data(as_text=True))
    response = client.post(
        path, data={"csrf_token": token, "name": "Cia Berg", "local_routines": "not_yet"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [303] and response.request.method == "GET"
    clock.advance(minutes=1)
    reloaded = client.get(path)  # the browser's reload repeats the GET the redirect led to
    assert "Kvitterat av Cia Berg" in reloaded.get_data(as_text=True)
    assert "Tack! Ni har kvitterat breven." not in reloaded.get_data(as_text=True)  # said once
    with app.app_context():
        assert len(events(incident_id, "letter_acknowledged")) == 2  # two letters, acknowledged once


def test_a_receipt_taken_on_the_phone_records_no_answer_and_says_so(app, clock, sent):
    from crisis.incidents.letters import record_call
    from crisis.incidents.receipt_answers import answer_label

    incident_id, _ = sent
    with app.app_context():
        receipt = receipts(letters(incident_id)[0].id)[0]
        record_call(db.session, receipt, outcome="reached", note="", user_id=None, now=clock.now())
        db.session.commit()
        assert receipt.acknowledged_at is not None and receipt.local_routines is None
    with app.test_request_context():
        assert answer_label(None) == "Inte tillfrågad (kvitterat per telefon)"
