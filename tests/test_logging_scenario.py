"""A whole day of the routine with JSON logs captured at DEBUG: a provider and its contact made
through the register pages, the monthly check through the tick and the dispatcher, the contact's
answer through the link, a supplier notice and a letter acknowledged through the provider's
link, a visit acknowledged through the visit link. No log line carries a name, a phone number,
an e-mail address or a message's text."""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contacts.check_models import CheckRecipient
from contacts.models import ContactPerson, Provider
from core.extensions import db
from core.logging import JsonFormatter
from crisis.incidents.intake import create_notice
from crisis.incidents.letters import send_letter
from crisis.incidents.models import Incident, LetterKind, LetterReceipt, NoticeSource
from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitAlert
from crisis.visits.service import visits_created
from notifications.dispatcher import Dispatcher
from notifications.models import Message
from scheduling.service import tick
from tests.conftest import csrf_token_from, log_in

STOCKHOLM = ZoneInfo("Europe/Stockholm")
BASE_URL = "https://krisrutin.kommun.example.se"
SETTINGS = {"PUBLIC_BASE_URL": BASE_URL, "TEAM_EMAIL": "team@kommun.example.se", "TEAM_MOBILE": "+46701999999"}

NAME = "Greta Personsson"
ROLE = "Enhetschef Solrosen"
MOBILE = "+46701234599"
EMAIL = "greta.personsson@solrosen.example.se"
LETTER_BODY = "Kameratillsynen i Ryd ligger nere sedan morgonen"
NOTICE_BODY = "Basstationen vid Ryds centrum har tappat strömmen"
LETTER_ACK = "Ida Kvittosdotter"
VISIT_ACK = "Hugo Besöksson"
PERSONAL = (NAME, "Personsson", ROLE, MOBILE, MOBILE[1:], "701234599", EMAIL, "solrosen.example.se")
TEXTS = (LETTER_BODY, NOTICE_BODY, LETTER_ACK, "Kvittosdotter", VISIT_ACK, "Besöksson")


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured():
    root = logging.getLogger()
    handler = _Capture()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=STOCKHOLM)


def _tick(app, clock, at):
    clock.set(at)
    with app.app_context():
        tick(db_session=db.session, now=clock.now())
        db.session.remove()


def _dispatch(app):
    Dispatcher(app, name="scenario", listen=False).run_until_idle(timeout=30)


def _link(app, kind: str, prefix: str) -> str:
    with app.app_context():
        bodies = db.session.scalars(select(Message.body_text).where(Message.kind.like(kind + "%"))).all()
        db.session.remove()
    for body in bodies:
        match = re.search(re.escape(BASE_URL) + "(" + prefix + r"[A-Za-z0-9_.~-]+)", body)
        if match:
            return match.group(1)
    raise AssertionError(f"no {prefix} link in the {kind} messages: {bodies[:1]}")


def test_the_logs_of_a_whole_scenario_hold_no_personal_data_or_message_text(make_app, clock, make_user, captured):
    app = make_app(**SETTINGS)
    monday = date(2026, 11, 30)
    clock.set(local(monday, 9))
    _, username, password = make_user(role="team")
    client = app.test_client()
    log_in(client, username, password)

    # the register: a provider and its contact person, through the pages
    form = client.get("/register/providers/new").get_data(as_text=True)
    response = client.post(
        "/register/providers/new",
        data={"csrf_token": csrf_token_from(form), "name": "Solrosens hemtjänst", "kind": "municipal"},
    )
    assert response.status_code == 302
    with app.app_context():
        provider_id = db.session.scalars(select(Provider.id)).one()
        db.session.remove()
    response = client.post(
        f"/register/providers/{provider_id}/contacts/new",
        data={
            "csrf_token": csrf_token_from(form),
            "name": NAME,
            "role_title": ROLE,
            "mobile": "070-123 45 99",
            "email": EMAIL,
            "services": ["camera_supervision", "alarms"],
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    client.get(f"/register/providers/{provider_id}")
    client.get("/register/?q=" + NAME)

    # the monthly check: opened by the tick on 1 December 08:00, sent, answered through the link
    _tick(app, clock, local(date(2026, 12, 1), 8))
    _tick(app, clock, local(date(2026, 12, 1), 8, 1))
    _dispatch(app)
    path = _link(app, "check.invite", "/k/")
    page = client.get(path)
    assert page.status_code == 200
    client.post(path, data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "answer": "yes"})

    # a supplier notice and a letter, acknowledged through the provider's link
    clock.set(local(date(2026, 12, 1), 10))
    with app.app_context():
        notice, _ = create_notice(
            db.session,
            {
                "title": "GSM-störning",
                "body": NOTICE_BODY,
                "service": "camera_supervision",
                "providers": "all",
            },
            source=NoticeSource.FORM,
            now=clock.now(),
        )
        send_letter(
            db.session,
            db.session.get(Incident, notice.incident_id),
            kind=LetterKind.FIRST,
            subject="Störning i kameratillsynen",
            body=LETTER_BODY,
            apply_local_routines=True,
            author_id=None,
            party="team",
            now=clock.now(),
        )
        db.session.commit()
        db.session.remove()
    _dispatch(app)
    path = _link(app, "crisis.letter", "/d/")
    page = client.get(path)
    assert page.status_code == 200
    response = client.post(
        path,
        data={
            "csrf_token": csrf_token_from(page.get_data(as_text=True)),
            "name": LETTER_ACK,
            "local_routines": "yes",
        },
    )
    assert response.status_code in (200, 302, 303)

    # a visit, acknowledged through the visit link
    clock.set(local(date(2026, 12, 1), 22))
    with app.app_context():
        client_row = SupervisedClient(reference="SOL-0001", provider_id=provider_id, area="Ryd", created_at=clock.now())
        db.session.add(client_row)
        db.session.flush()
        failure = SupervisionFailure(
            client_id=client_row.id,
            provider_id=provider_id,
            scheduled_at=local(date(2026, 12, 1), 23),
            reason="GSM nere",
            source="operator",
            created_at=clock.now(),
        )
        db.session.add(failure)
        db.session.flush()
        visit = Visit(
            failure_id=failure.id,
            client_id=client_row.id,
            provider_id=provider_id,
            due_at=failure.scheduled_at,
            status="open",
            created_at=clock.now(),
        )
        db.session.add(visit)
        db.session.flush()
        visits_created(db.session, [visit], clock.now())
        db.session.commit()
        db.session.remove()
    _dispatch(app)
    path = _link(app, "crisis.visit", "/v/")
    page = client.get(path)
    assert page.status_code == 200
    client.post(path, data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "name": VISIT_ACK})
    _tick(app, clock, local(date(2026, 12, 2), 9))

    # the scenario did happen ...
    with app.app_context():
        contact = db.session.scalars(select(ContactPerson)).one()
        assert (contact.name, contact.mobile, contact.email) == (NAME, MOBILE, EMAIL)
        assert db.session.scalars(select(LetterReceipt.acknowledged_by)).all() == [LETTER_ACK]
        assert db.session.scalars(select(VisitAlert.acknowledged_by)).all() == [VISIT_ACK]
        assert db.session.scalars(select(CheckRecipient.answer)).all() == ["yes"]
        texts = [m.body_text for m in db.session.scalars(select(Message).where(Message.contact_id == contact.id))]
        db.session.remove()
    assert any(LETTER_BODY in text for text in texts)
    kinds = {json.loads(line)["msg"] for line in captured.lines}
    assert {"request", "check answered"} <= kinds, sorted(kinds)

    # ... and its logs hold none of it
    assert captured.lines
    message_lines = {line.strip() for text in texts for line in text.splitlines() if len(line.strip()) > 25}
    for line in captured.lines:
        json.loads(line)
        for needle in (*PERSONAL, *TEXTS, *message_lines):
            assert needle not in line, (needle, line)
