"""A big letter is queued in parts: the first contacts in the letter's own transaction (so the
first messages leave at its commit), the rest right after in transactions of their own, and
whatever happens to that request, by the scheduler's next tick — every contact once, each copy
what rendering it alone gives (the letter is rendered once for all, issue 18)."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.serving import make_server

from contacts.models import ContactPerson
from core.extensions import db
from crisis.incidents import letter_jobs, letters
from crisis.incidents.letter_jobs import queue_remaining
from crisis.incidents.letter_texts import MESSAGE_KIND, copy_context, letter_context, sms_title
from crisis.incidents.letters import link_url, send_letter
from crisis.incidents.models import Incident, Letter, LetterKind
from notifications import rendering
from notifications.models import Message, MessageEvent
from scheduling.models import ScheduledTask
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


def test_every_copy_is_what_rendering_that_copy_alone_gives(app, clock):
    """The letter is rendered once for all its contacts (issue 18); each stored copy is still the
    one its recipient would get rendered by itself: greeting, provider and link its own."""
    letter_id = first_letter(app, clock)
    with app.app_context():
        queue_remaining(db.session, letter_id, clock.now(), commit=True)
        letter = db.session.get(Letter, letter_id)
        common = letter_context(db.session, letter, db.session.get(Incident, letter.incident_id))
        links = {receipt.provider_id: link_url(receipt) for receipt in letter.receipts}
        common["sms_title"] = sms_title(common, max(links.values(), key=len))
        copies = db.session.scalars(
            select(Message).where(Message.idempotency_key.like(f"letter:{letter_id}:contact:%"))
        )
        checked = set()
        for message in copies:
            contact = db.session.get(ContactPerson, message.contact_id)
            link = links[contact.provider_id]
            context = copy_context(common, name=contact.name, provider=contact.provider.name, link=link)
            alone = rendering.render(MESSAGE_KIND, "sv", context)
            if message.channel == "email":
                assert (message.subject, message.body_text) == (alone.subject, alone.text)
                assert message.body_html == alone.html
                assert f"Hej {contact.name}!" in message.body_text
            else:
                assert (message.body_text, message.segments) == (alone.sms, alone.sms_length.segments)
            checked.add((contact.name, message.channel))
        assert len(checked) == ALL
        db.session.remove()


def notice_with_letter(app, clock, make_user, make_token) -> tuple[dict, dict]:
    clock.set(local(date(2027, 2, 9), 10))
    with app.app_context():
        make_people(clock)
        db.session.remove()
    user_id, _, _ = make_user("on_call")
    body = {
        "title": "GSM-nätet nere",
        "service": "camera_supervision",
        "providers": "all",
        "letter": {"subject": "GSM-nätet nere", "body": "Kameratillsynen fungerar inte."},
    }
    return body, {"Authorization": f"Bearer {make_token(user_id)}"}


def test_a_repeated_post_with_its_letter_queues_no_second_copy(app, client, clock, make_user, make_token):
    """The notice's Idempotency-Key: the same POST again answers with the notice already made and
    queues nothing; the fan-out task that follows finds nothing left to do either."""
    body, headers = notice_with_letter(app, clock, make_user, make_token)
    headers["Idempotency-Key"] = "tib-0210"
    first = client.post("/api/v1/notices", json=body, headers=headers)
    assert first.status_code == 201, first.get_json()
    copies = contact_copies(app)
    assert len(copies) == ALL and len(set(copies)) == ALL
    again = client.post("/api/v1/notices", json=body, headers=headers)
    assert (again.status_code, again.get_json()["id"]) == (200, first.get_json()["id"])
    run_tick(app, clock)
    assert contact_copies(app) == copies
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Letter)) == 1
        events = db.session.scalar(select(func.count()).select_from(MessageEvent))
        assert events == db.session.scalar(select(func.count()).select_from(Message)), "one 'queued' event each"
        db.session.remove()


def fanout_task_status(app) -> str:
    with app.app_context():
        status = db.session.scalar(select(ScheduledTask.status).where(ScheduledTask.kind == letters.FANOUT_TASK))
        db.session.remove()
        return status


def test_the_post_answers_before_the_rest_is_queued_and_the_rest_follows(
    app, clock, make_user, make_token, monkeypatch
):
    """Through a real WSGI server: the on-call officer has the whole answer (201, the notice) while
    the rest of the letter is still being queued; then every contact has the letter, and the
    fan-out task is done, so the scheduler's tick does not plan the letter again."""
    body, headers = notice_with_letter(app, clock, make_user, make_token)
    release, reached = threading.Event(), threading.Event()
    queue = letter_jobs.queue_planned

    def held_queue(*args, **kwargs):
        reached.set()
        assert release.wait(10), "the test did not release the rest"
        return queue(*args, **kwargs)

    monkeypatch.setattr(letter_jobs, "queue_planned", held_queue)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        answer = requests.post(
            f"http://127.0.0.1:{server.server_port}/api/v1/notices", json=body, headers=headers, timeout=10
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["incident_id"]
        assert reached.wait(10), "the rest was not queued after the answer"
        assert len(contact_copies(app)) == 4, "only the first two contacts while the answer is read"
        assert fanout_task_status(app) == "pending", "the task stands in for the rest until it is queued"
        release.set()
        deadline = time.monotonic() + 10
        while fanout_task_status(app) != "done" and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for the server thread, not for time to pass
    finally:
        release.set()
        server.shutdown()
        serving.join(5)
    copies = contact_copies(app)
    assert len(copies) == ALL and len(set(copies)) == ALL
    assert fanout_task_status(app) == "done"
    run_tick(app, clock)  # the task is done: the tick does not plan the letter again
    assert contact_copies(app) == copies


def test_if_the_work_after_the_answer_fails_the_answer_stands_and_the_tick_queues_the_rest(
    app, client, clock, make_user, make_token, monkeypatch, caplog
):
    body, headers = notice_with_letter(app, clock, make_user, make_token)
    queue = letter_jobs.queue_planned

    def broken(*args, **kwargs):
        # A database error's message carries its parameters: here a contact's name and address.
        raise IntegrityError("INSERT INTO messages …", {"to": "anna@norr.se", "name": "Anna"}, Exception("dup"))

    monkeypatch.setattr(letter_jobs, "queue_planned", broken)
    answer = client.post("/api/v1/notices", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_json()
    assert len(contact_copies(app)) == 4
    assert "work after the answer failed" in caplog.text
    assert "Anna" not in caplog.text and "@" not in caplog.text, "no personal data in the log"
    assert fanout_task_status(app) == "pending"
    monkeypatch.setattr(letter_jobs, "queue_planned", queue)
    run_tick(app, clock)
    copies = contact_copies(app)
    assert len(copies) == ALL and len(set(copies)) == ALL
