"""Check links (``/k/<token>``): bound to their purpose, closed with their month (410), and
renewable by the team."""

from __future__ import annotations

from datetime import date

import pytest

from contacts.check_links import _mac, link_token
from contacts.check_models import CheckRecipient
from core.extensions import db
from crisis.incidents import letters as letter_links
from crisis.visits import service as visit_links
from tests.conftest import TEST_SECRET, csrf_token_from, log_in
from tests.contacts.test_checks_helpers import invite_anna_to_june, local

MONTH = "2026-06"
BASE_URL = "https://krisrutin.kommun.example.se"


@pytest.fixture
def app(make_app):
    return make_app(PUBLIC_BASE_URL=BASE_URL)


@pytest.fixture
def invited(app, clock):
    """A contact invited to June 2026's check: its recipient id, nonce and link path."""
    _, recipient_id, nonce = invite_anna_to_june(app, clock)
    with app.app_context():
        path = f"/k/{link_token(db.session.get(CheckRecipient, recipient_id), TEST_SECRET)}"
        db.session.remove()
    return recipient_id, nonce, path


def test_a_token_of_another_kind_with_the_same_id_and_nonce_is_refused(client, invited):
    rid, nonce, path = invited
    assert path == f"/k/{rid}-{nonce}-{_mac(TEST_SECRET, rid, nonce)}"
    assert client.get(path).status_code == 200
    for other in (letter_links._mac, visit_links._mac):
        assert client.get(f"/k/{rid}-{nonce}-{other(TEST_SECRET, rid, nonce)}").status_code == 404


def test_the_link_closes_with_the_month_410(client, clock, invited):
    _, _, path = invited
    clock.set(local(date(2026, 7, 1), 8))
    page = client.get(path)
    assert page.status_code == 410


def test_the_team_renews_a_check_link_the_old_one_fails_and_the_new_one_works(app, client, make_user, invited):
    rid, _, old_path = invited
    _, username, _ = make_user(role="team")
    log_in(client, username)
    token = csrf_token_from(client.get(old_path).get_data(as_text=True))
    response = client.post(f"/links/check-recipients/{rid}/renew", data={"csrf_token": token})
    assert response.status_code == 303
    with app.app_context():
        from contacts.check_models import CheckRecipient

        new_path = f"/k/{link_token(db.session.get(CheckRecipient, rid), TEST_SECRET)}"
        db.session.remove()
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 200


def _messages(app, recipient_id: int) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from notifications.models import Message

    with app.app_context():
        rows = db.session.scalars(select(Message).where(Message.idempotency_key.like("%:link:%"))).all()
        found = sorted((m.channel, m.to_address) for m in rows)
        bodies = [m.body_text for m in rows]
        db.session.remove()
    return found, bodies


def test_new_link_asks_first_then_shows_the_link_and_sends_it_by_sms_and_e_mail(app, client, make_user, invited):
    rid, _, old_path = invited
    with app.app_context():  # Anna has a mobile number; give her an e-mail address too
        db.session.get(CheckRecipient, rid).contact.email = "anna@norr.example.se"
        db.session.commit()
        db.session.remove()
    _, team, _ = make_user(role="team")
    log_in(client, team)
    html = client.get(f"/checks/{MONTH}").get_data(as_text=True)
    assert f'href="/links/check-recipients/{rid}/renew?next=/checks/{MONTH}"' in html  # a link: it only asks

    # The question: nothing is voided by opening it (or by a mail scanner, or a slip of the finger).
    question = client.get(f"/links/check-recipients/{rid}/renew", query_string={"next": f"/checks/{MONTH}"})
    assert question.status_code == 200
    text = question.get_data(as_text=True)
    assert "Den gamla länken slutar fungera direkt." in text and "Ja, skapa en ny länk" in text
    assert f'href="/checks/{MONTH}">Avbryt</a>' in text
    assert client.get(old_path).status_code == 200

    # Confirmed: the old link stops working, and the page shows the new one, to copy or to send.
    response = client.post(f"/links/check-recipients/{rid}/renew", data={"csrf_token": csrf_token_from(text)})
    assert (response.status_code, response.location) == (303, f"/links/check-recipients/{rid}")
    assert client.get(old_path).status_code == 404
    with app.app_context():
        new_link = BASE_URL + f"/k/{link_token(db.session.get(CheckRecipient, rid), TEST_SECRET)}"
        db.session.remove()
    page = client.get(response.location)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'<code id="the-link">{new_link}</code>' in html  # selectable text without the script
    assert 'data-copy="the-link"' in html and "Kopiera länken" in html
    assert "/static/js/copy-link.js" in html
    assert client.get(new_link.removeprefix(BASE_URL)).status_code == 200
    assert _messages(app, rid)[0] == []

    # Sent: the invitation with the new link, one SMS and one e-mail, once however often it is pressed.
    for _ in range(2):
        sent = client.post(f"/links/check-recipients/{rid}/send", data={"csrf_token": csrf_token_from(html)})
        assert (sent.status_code, sent.location) == (303, f"/links/check-recipients/{rid}")
    found, bodies = _messages(app, rid)
    assert [channel for channel, _ in found] == ["email", "sms"]
    assert all(new_link in body for body in bodies)
    assert "Länken ligger i kön och skickas till kontaktpersonen med SMS och e-post." in client.get(
        sent.location
    ).get_data(as_text=True)


def test_the_on_call_officer_may_not_renew_or_send(client, make_user, invited):
    rid, _, _ = invited
    _, officer, _ = make_user(role="on_call")
    log_in(client, officer)
    assert client.get(f"/links/check-recipients/{rid}/renew").status_code == 403
    assert client.get(f"/links/check-recipients/{rid}").status_code == 403


def test_the_question_leads_back_only_to_this_site(client, make_user, invited):
    rid, _, _ = invited
    _, team, _ = make_user(role="team")
    log_in(client, team)
    for elsewhere in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        html = client.get(f"/links/check-recipients/{rid}/renew", query_string={"next": elsewhere}).get_data(
            as_text=True
        )
        assert f'href="/checks/{MONTH}">Avbryt</a>' in html and "evil.example" not in html
