"""Brute force on signed links: more than 30 refused links within 10 minutes from one address,
and every link page of every kind answers 429 to it (valid links too) until the count falls."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.link_pages import LinkFailure
from crisis.incidents.models import Incident, LetterKind
from tests.crisis.test_letters_helpers import BASE_URL, SETTINGS, local, make_incident, make_people, messages

OFFICE = local(date(2026, 11, 24), 10)
ME = {"REMOTE_ADDR": "198.51.100.7"}
OTHER = {"REMOTE_ADDR": "198.51.100.8"}


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def path(app, clock):
    from crisis.incidents.letters import send_letter

    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock)
        send_letter(
            db.session,
            db.session.get(Incident, incident_id),
            kind=LetterKind.FIRST,
            subject="Brev",
            body="Kameratillsynen kan inte utföras i natt.",
            apply_local_routines=True,
            author_id=None,
            party="team",
            now=clock.now(),
        )
        db.session.commit()
        sms = next(m for m in messages() if m.channel == "sms" and ":resend" not in m.idempotency_key)
        link = sms.body_text.split()[-1].removeprefix(BASE_URL)
        db.session.remove()
    return link


def _bad(client, n, clock):
    kinds = ["/d/1-AAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA", "/v/nonsense", "/k/99-AAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA"]
    for i in range(n):
        response = client.get(kinds[i % 3], environ_base=ME)
        assert response.status_code == 404
        clock.advance(seconds=5)


def test_the_31st_bad_attempt_gets_429_for_every_kind_then_ok_after_10_minutes(app, client, clock, path):
    _bad(client, 30, clock)
    limited = client.get("/d/garbage", environ_base=ME)
    assert limited.status_code == 429
    assert "För många försök" in limited.get_data(as_text=True)
    assert client.get(path, environ_base=ME).status_code == 429  # the valid link too, while limited
    assert client.get("/v/x", environ_base=ME).status_code == 429
    assert client.get("/k/x", environ_base=ME).status_code == 429
    assert client.get(path, environ_base=OTHER).status_code == 200  # other addresses are not affected
    assert client.get("/login", environ_base=ME).status_code == 200  # only link pages are limited
    clock.advance(minutes=10)
    assert client.get(path, environ_base=ME).status_code == 200
    with app.app_context():
        _bad(client, 1, clock)  # a new failure prunes the rows older than the window
        assert db.session.scalar(select(func.count()).select_from(LinkFailure)) == 1
        db.session.remove()


def test_30_bad_attempts_are_not_yet_limited_and_valid_links_do_not_count(client, clock, path):
    for _ in range(40):
        assert client.get(path, environ_base=ME).status_code == 200
    _bad(client, 29, clock)
    assert client.get(path, environ_base=ME).status_code == 200
    clock.advance(minutes=10, seconds=-140)  # the first failures leave the window
    _bad(client, 1, clock)
    assert client.get(path, environ_base=ME).status_code == 200
