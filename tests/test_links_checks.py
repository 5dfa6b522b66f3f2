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


def test_the_month_page_has_a_new_link_button_per_recipient(client, make_user, invited):
    rid, _, old_path = invited
    _, team, _ = make_user(role="team")
    log_in(client, team)
    html = client.get(f"/checks/{MONTH}").get_data(as_text=True)
    assert f'action="/links/check-recipients/{rid}/renew"' in html
    response = client.post(
        f"/links/check-recipients/{rid}/renew", data={"csrf_token": csrf_token_from(html), "next": f"/checks/{MONTH}"}
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/checks/{MONTH}")
    assert client.get(old_path).status_code == 404
