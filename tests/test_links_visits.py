"""Visit links (``/v/<token>``): bound to their purpose, expiring 7 days after the alert's last
visit was due once none of its visits is open, and renewable by the team."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contacts import check_links
from core.extensions import db
from crisis.incidents import letters as letter_links
from crisis.visits import service as visit_links
from crisis.visits.models import Visit, VisitAlert
from tests.conftest import TEST_SECRET, csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import TEAM_EMAIL
from tests.crisis.visits.test_visit_helpers import NORR, SETTINGS, TUESDAY, link_of, local, make_people, new_visits

NIGHT = local(TUESDAY, 22, 50)
ANNA = "+46701000001"


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def alerted(app, clock):
    """Two visits of Norr in one alert; returns the visit ids, the alert id and the link's path."""
    clock.set(NIGHT)
    with app.app_context():
        make_people(clock)
        visit_ids = new_visits(clock, NORR, [local(TUESDAY, 23, 0), local(TUESDAY, 23, 30)])
        path = link_of(ANNA)
        alert_id = int(path.removeprefix("/v/").split("-")[0])
        db.session.remove()
    return visit_ids, alert_id, path


def _close(app, clock, visit_ids):
    with app.app_context():
        for visit_id in visit_ids:
            visit = db.session.get(Visit, visit_id)
            visit.status, visit.done_at, visit.marked_at = "done", clock.now(), clock.now()
        db.session.commit()
        db.session.remove()


def test_a_token_of_another_kind_with_the_same_id_and_nonce_is_refused(app, client, alerted):
    _, alert_id, path = alerted
    with app.app_context():
        nonce = db.session.get(VisitAlert, alert_id).nonce
        db.session.remove()
    assert path == f"/v/{alert_id}-{nonce}-{visit_links._mac(TEST_SECRET, alert_id, nonce)}"
    assert client.get(path).status_code == 200
    for other in (letter_links._mac, check_links._mac):
        assert client.get(f"/v/{alert_id}-{nonce}-{other(TEST_SECRET, alert_id, nonce)}").status_code == 404


def test_the_link_works_while_a_visit_is_open_and_7_days_after_the_last_was_due(app, client, clock, alerted):
    visit_ids, _, path = alerted
    clock.advance(days=20)  # nobody marked the visits: the link must keep working
    assert client.get(path).status_code == 200
    _close(app, clock, visit_ids[:1])
    assert client.get(path).status_code == 200
    _close(app, clock, visit_ids[1:])
    assert client.get(path).status_code == 410  # the last was due 20 days ago
    clock.set(local(TUESDAY, 23, 30) + timedelta(days=7))
    assert client.get(path).status_code == 200
    clock.advance(minutes=1)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert "Länken har gått ut" in html and TEAM_EMAIL in html
    assert client.post(f"{path}/mark", data={}).status_code in (400, 410)  # never a change


def test_the_team_renews_a_visit_link_the_old_one_fails_and_the_new_one_works(app, client, make_user, alerted):
    _, alert_id, old_path = alerted
    _, username, _ = make_user(role="team")
    log_in(client, username)
    token = csrf_token_from(client.get(old_path).get_data(as_text=True))
    response = client.post(f"/links/visit-alerts/{alert_id}/renew", data={"csrf_token": token, "next": "/visits/calls"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/visits/calls")
    with app.app_context():
        new_path = f"/v/{visit_links.link_token(db.session.get(VisitAlert, alert_id), TEST_SECRET)}"
        db.session.remove()
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 200
    outside = client.post(f"/links/visit-alerts/{alert_id}/renew", data={"csrf_token": token, "next": "//evil.example"})
    assert outside.status_code == 303 and "evil" not in outside.headers["Location"]
