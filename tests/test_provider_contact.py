"""Every page a provider can reach ends with whom to contact now, as tappable links: the team's
mailbox and phone in office hours, the on-call officer's number outside them. The check's,
letter's and visits' link pages (/k/, /d/, /v/), their forms, and their answers when the link is
unknown (404), expired or closed (410), the form too old (400) or the client limited (429)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.clock import FixedClock
from core.extensions import db
from tests.conftest import build_app, create_schema
from tests.crisis.incidents.test_letters_helpers import local
from tests.support.sweep_world import SETTINGS, build_world

TEAM_MAIL = 'href="mailto:valfardsteknik@kommun.example.se"'
TEAM_TEL = 'href="tel:+46701999999"'
OFFICER_MOBILE = "+46701740650"
MONDAY_10 = local(date(2026, 11, 23), 10)  # office hours
SATURDAY_02 = local(date(2026, 11, 28), 2)  # the on-call officer's


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from accounts.models import User

    clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    app = build_app(f"sqlite:///{tmp_path_factory.mktemp('contact') / 'contact.sqlite3'}", clock, **SETTINGS)
    create_schema(app)
    built = build_world(app, clock)
    with app.app_context():
        officer = db.session.scalars(select(User).where(User.username == "sweep-on-call")).one()
        officer.mobile = OFFICER_MOBILE
        db.session.commit()
        db.session.remove()
    built.clock = clock
    yield built
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _get(world, path, **kwargs):
    return world.app.test_client().get(path, environ_base={"REMOTE_ADDR": world.next_address()}, **kwargs)


def _assert_team(html: str):
    assert TEAM_MAIL in html and TEAM_TEL in html
    assert "070-199 99 99" in html and "+46701999999<" not in html  # shown as people read it


def _pages(world):
    k, d, v = world.links["k"], world.links["d"], world.links["v"]
    return {
        f"/k/{k}": 200,
        f"/k/{k}/korrigera": 200,
        "/k/1-forged": 404,
        f"/d/{d}": 200,
        "/d/1-forged": 404,
        f"/v/{v}": 200,
        "/v/1-forged": 404,
    }


def test_every_link_page_names_the_team_in_office_hours(world):
    world.clock.set(MONDAY_10)
    for path, status in _pages(world).items():
        response = _get(world, path)
        assert response.status_code == status, path
        _assert_team(response.get_data(as_text=True))


def test_every_link_page_names_the_on_call_officer_outside_office_hours(world):
    world.clock.set(SATURDAY_02)
    for path, status in _pages(world).items():
        response = _get(world, path)
        assert response.status_code == status, path
        html = response.get_data(as_text=True)
        assert f'href="tel:{OFFICER_MOBILE}"' in html and "070-174 06 50" in html, path
        assert "tjänsteman i beredskap" in html, path


def test_a_form_sent_too_late_names_whom_to_contact(world):
    """The CSRF answer (400) of each link page's form."""
    world.clock.set(MONDAY_10)
    for path in (f"/k/{world.links['k']}", f"/d/{world.links['d']}", f"/v/{world.links['v']}/mark"):
        response = world.app.test_client().post(path, data={"answer": "yes"})
        assert response.status_code == 400, path
        _assert_team(response.get_data(as_text=True))


def test_a_limited_client_is_told_whom_to_contact(world):
    from core.link_pages import FAILURE_LIMIT, LinkFailure

    world.clock.set(MONDAY_10)
    with world.app.app_context():
        db.session.add_all(LinkFailure(ip="10.250.0.1", at=MONDAY_10) for _ in range(FAILURE_LIMIT))
        db.session.commit()
        db.session.remove()
    for path in (f"/k/{world.links['k']}", f"/d/{world.links['d']}", f"/v/{world.links['v']}"):
        response = world.app.test_client().get(path, environ_base={"REMOTE_ADDR": "10.250.0.1"})
        assert response.status_code == 429, path
        _assert_team(response.get_data(as_text=True))


def test_closed_and_expired_links_name_the_team_with_its_address_and_phone(world):
    """The closed check (410) names TEAM_EMAIL and TEAM_MOBILE, not MAIL_REPLY_TO; so do the
    expired letter and visit links."""
    from crisis.incidents.models import Incident
    from crisis.visits.models import Visit

    december = local(date(2026, 12, 1), 10)
    world.clock.set(december)
    response = _get(world, f"/k/{world.links['k']}")
    assert response.status_code == 410
    html = response.get_data(as_text=True)
    assert "Månadskontrollen är avslutad" in html
    _assert_team(html)
    change_details = html.split("Behöver du ändra dina uppgifter?")[1].split("Behöver du hjälp nu?")[0]
    assert TEAM_MAIL in change_details and TEAM_TEL in change_details
    with world.app.app_context():
        for incident in db.session.scalars(select(Incident)):
            incident.resolved_at = december - timedelta(days=31)
        for visit in db.session.scalars(select(Visit)):
            visit.status, visit.due_at = "done", december - timedelta(days=8)
        db.session.commit()
        db.session.remove()
    for path in (f"/d/{world.links['d']}", f"/v/{world.links['v']}"):
        response = _get(world, path)
        assert response.status_code == 410, path
        _assert_team(response.get_data(as_text=True))
