"""A big letter is queued in parts: the first contacts in the letter's own transaction (so the
first messages leave at its commit), the rest right after in transactions of their own, and
whatever happens to that request, by the scheduler's next tick — every contact once."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from core.extensions import db
from crisis.incidents import letters
from crisis.incidents.letter_jobs import queue_remaining
from crisis.incidents.letters import send_letter
from crisis.incidents.models import Incident, Letter, LetterKind
from notifications.models import Message
from tests.crisis.incidents.test_letters_helpers import SETTINGS, local, make_incident, make_people, run_tick


@pytest.fixture
def app(make_app, monkeypatch):
    # Three active contacts: two with the letter, then one per transaction.
    monkeypatch.setattr(letters, "FIRST_CHUNK", 2)
    monkeypatch.setattr(letters, "FANOUT_CHUNK", 1)
    return make_app(**SETTINGS)


def contact_copies(app) -> list[tuple[str, str]]:
    with app.app_context():
        rows = sorted(
            (m.idempotency_key, m.to_address)
            for m in db.session.scalars(select(Message).where(Message.kind == "crisis.letter"))
            if ":contact:" in m.idempotency_key
        )
        db.session.remove()
        return rows


def first_letter(app, clock) -> int:
    clock.set(local(date(2027, 2, 9), 10))
    with app.app_context():
        make_people(clock)
        incident = db.session.get(Incident, make_incident(clock))
        letter = send_letter(
            db.session,
            incident,
            kind=LetterKind.FIRST,
            subject="Kameratillsyn fungerar inte",
            body="Gör fysiska tillsyner.",
            apply_local_routines=True,
            author_id=None,
            party="team",
            now=clock.now(),
        )
        db.session.commit()
        assert letter.recipients == 3
        letter_id = letter.id
        db.session.remove()
        return letter_id


ALL = 6  # three active contacts (Anna, Bo, Cia), e-mail and SMS each


def test_the_first_part_goes_with_the_letter_and_the_request_queues_the_rest(app, clock):
    letter_id = first_letter(app, clock)
    assert len(contact_copies(app)) == 4, "the first two contacts, in the letter's transaction"
    with app.app_context():
        queue_remaining(db.session, letter_id, clock.now(), commit=True)
        db.session.remove()
    assert len(contact_copies(app)) == ALL
    run_tick(app, clock)  # the task finds nothing left to do
    copies = contact_copies(app)
    assert len(copies) == ALL and len(set(copies)) == ALL


def test_if_the_request_stops_after_the_first_part_the_tick_queues_the_rest(app, clock):
    first_letter(app, clock)
    assert len(contact_copies(app)) == 4
    run_tick(app, clock)
    run_tick(app, clock)
    assert len(contact_copies(app)) == ALL
    with app.app_context():
        assert db.session.scalars(select(Letter)).one().recipients == 3
        db.session.remove()
