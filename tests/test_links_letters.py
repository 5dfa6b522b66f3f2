"""Letter links (``/d/<token>``): bound to their purpose, expiring 30 days after the incident
was resolved, and renewable by the team (the old link then stops working)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from contacts import check_links
from core.extensions import db
from crisis.incidents import letters as letter_links
from crisis.incidents.letters import send_letter
from crisis.incidents.models import Incident, LetterKind, LetterReceipt
from crisis.visits import service as visit_links
from tests.conftest import TEST_SECRET, csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import (
    BASE_URL,
    SETTINGS,
    TEAM_EMAIL,
    local,
    make_incident,
    make_people,
    messages,
)

OFFICE = local(date(2026, 11, 24), 10)
CIA = "+46701000003"


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def _send(incident_id, clock, kind=LetterKind.FIRST):
    send_letter(
        db.session,
        db.session.get(Incident, incident_id),
        kind=kind,
        subject=f"Brev {kind}",
        body="Kameratillsynen kan inte utföras i natt.",
        apply_local_routines=kind != LetterKind.RESOLUTION,
        author_id=None,
        party="team",
        now=clock.now(),
    )
    db.session.commit()


@pytest.fixture
def sent(app, clock):
    """A first letter; returns the incident id, the receipt id and the path of Cia's provider page."""
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock)
        _send(incident_id, clock)
        sms = next(m for m in messages() if m.to_address == CIA and ":resend" not in m.idempotency_key)
        path = sms.body_text.split()[-1].removeprefix(BASE_URL)
        receipt_id = int(path.removeprefix("/d/").split("-")[0])
        db.session.remove()
    return incident_id, receipt_id, path


def test_a_token_of_another_kind_with_the_same_id_and_nonce_is_refused(app, client, sent):
    _, receipt_id, path = sent
    with app.app_context():
        receipt = db.session.get(LetterReceipt, receipt_id)
        rid, nonce = receipt.id, receipt.nonce
        db.session.remove()
    as_visit = f"{rid}-{nonce}-{visit_links._mac(TEST_SECRET, rid, nonce)}"
    as_check = f"{rid}-{nonce}-{check_links._mac(TEST_SECRET, rid, nonce)}"
    assert path == f"/d/{rid}-{nonce}-{letter_links._mac(TEST_SECRET, rid, nonce)}"
    assert client.get(path).status_code == 200
    assert client.get(f"/d/{as_visit}").status_code == 404
    assert client.get(f"/d/{as_check}").status_code == 404


def test_the_link_works_until_30_days_after_the_incident_was_resolved_then_410(app, client, clock, sent):
    incident_id, _, path = sent
    clock.advance(hours=3)
    with app.app_context():
        _send(incident_id, clock, kind=LetterKind.RESOLUTION)
        resolved_at = db.session.get(Incident, incident_id).resolved_at
        db.session.remove()
    assert resolved_at is not None
    clock.set(resolved_at + timedelta(days=30))
    page = client.get(path)
    assert page.status_code == 200 and "Brev" in page.get_data(as_text=True)
    clock.advance(minutes=1)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert "Länken har gått ut" in html and TEAM_EMAIL in html
    assert "Kameratillsynen" not in html


def test_an_open_incident_keeps_its_link_however_long_it_lasts(client, clock, sent):
    _, _, path = sent
    clock.advance(days=90)
    assert client.get(path).status_code == 200


def test_the_team_renews_a_link_the_old_one_fails_and_the_new_one_works(app, client, clock, make_user, sent):
    incident_id, receipt_id, old_path = sent
    _, username, _ = make_user(role="team")
    log_in(client, username)
    token = csrf_token_from(client.get(old_path).get_data(as_text=True))
    response = client.post(f"/links/letter-receipts/{receipt_id}/renew", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/incidents/{incident_id}")
    with app.app_context():
        receipt = db.session.get(LetterReceipt, receipt_id)
        new_path = f"/d/{letter_links.link_token(receipt, TEST_SECRET)}"
        db.session.remove()
    assert new_path != old_path
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 200


def test_only_team_and_admin_may_renew_and_only_by_post(app, client, clock, make_user, sent):
    _, receipt_id, path = sent
    _, username, _ = make_user(role="on_call")
    log_in(client, username)
    token = csrf_token_from(client.get(path).get_data(as_text=True))
    assert client.post(f"/links/letter-receipts/{receipt_id}/renew", data={"csrf_token": token}).status_code == 403
    assert client.get(path).status_code == 200
    _, admin, _ = make_user(role="admin")
    log_in(client, admin)
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    assert client.post(f"/links/letter-receipts/{receipt_id}/renew").status_code == 400  # no CSRF token
    assert client.post("/links/letter-receipts/99999/renew", data={"csrf_token": token}).status_code == 404


def test_the_incident_page_has_a_new_link_button_per_receipt_for_the_team_only(app, client, make_user, sent):
    incident_id, receipt_id, old_path = sent
    _, on_call, _ = make_user(role="on_call")
    log_in(client, on_call)
    button = f'href="/links/letter-receipts/{receipt_id}/renew?next=/incidents/{incident_id}"'
    assert button not in client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    _, team, _ = make_user(role="team")
    log_in(client, team)
    html = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert button in html and "Ny länk" in html
    # "Ny länk" asks first; the old link works until the question is answered
    question = client.get(f"/links/letter-receipts/{receipt_id}/renew?next=/incidents/{incident_id}")
    assert "Den gamla länken slutar fungera direkt." in question.get_data(as_text=True)
    assert client.get(old_path).status_code == 200
    response = client.post(
        f"/links/letter-receipts/{receipt_id}/renew",
        data={"csrf_token": csrf_token_from(question.get_data(as_text=True)), "next": f"/incidents/{incident_id}"},
    )
    assert response.headers["Location"].endswith(f"/incidents/{incident_id}")
    assert "En ny länk är skapad. Den gamla fungerar inte längre." in client.get(response.location).get_data(
        as_text=True
    )
    assert client.get(old_path).status_code == 404
