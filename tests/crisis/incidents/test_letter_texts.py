"""What letters say, on the queued texts themselves: the team's preview is what is sent (e-mail and
SMS, with the segment count), every copy says once what it is ("Driftstörning", "Uppdatering 1",
"Åtgärdat" calmly, "Påminnelse: …" when re-sent), and every SMS names the organisation."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest

from core.extensions import db
from crisis.incidents import letter_texts
from crisis.incidents.models import Incident
from notifications.segments import count_segments
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import (
    BASE_URL,
    SETTINGS,
    local,
    make_incident,
    make_people,
    messages,
    run_tick,
)

OFFICE = local(date(2026, 11, 24), 10)
ORGANISATION = "Lindesbergs kommun"
ANNA_SMS, ANNA_EMAIL = "+46701000001", "anna@norr.se"  # Hemtjänst Norr: the first recipient
LINK = re.compile(re.escape(BASE_URL) + r"/d/[\w-]+")


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS, ORGANISATION_NAME=ORGANISATION)


@pytest.fixture
def incident_id(app, clock):
    clock.set(OFFICE)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock)
        db.session.remove()
    return incident_id


@pytest.fixture
def team(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    return client


def _same_link(text: str) -> str:
    return LINK.sub("<länk>", text)


def _queued(app, key: str, channel: str, address: str):
    with app.app_context():
        found = [m for m in messages() if m.channel == channel and m.to_address == address and key in m.idempotency_key]
        db.session.remove()
    assert len(found) == 1, [m.idempotency_key for m in found]
    return found[0]


def _preview_and_send(team, incident_id, kind, subject, body, apply=True):
    url = f"/incidents/{incident_id}/letters/new?kind={kind}"
    data = {"csrf_token": csrf_token_from(team.get(url).get_data(as_text=True)), "subject": subject, "body": body}
    if apply:
        data["apply_local_routines"] = "yes"
    page = team.post(url, data={**data, "action": "preview"}).get_data(as_text=True)
    shown = {
        "subject": html.unescape(re.search(r"<strong>Ämne:</strong> ([^<]*)</p>", page).group(1)),
        "email": html.unescape(re.search(r'<div class="message-body">(.*?)</div>', page, re.S).group(1)),
        "sms": html.unescape(re.search(r'<p class="review-item message-body">(.*?)</p>', page, re.S).group(1)),
        "segments": int(re.search(r"(\d+) sms-del", page).group(1)),
    }
    assert team.post(url, data={**data, "action": "send"}).status_code == 303
    return shown


@pytest.mark.parametrize(
    ("kinds", "subject"),
    [
        (["first"], "Driftstörning: GSM-nätet nere"),
        (["first", "update"], "Uppdatering: GSM-nätet nere"),
        (["first", "resolution"], "Åtgärdat: GSM-nätet nere"),
    ],
)
def test_the_preview_is_the_message_that_is_queued(app, team, incident_id, kinds, subject):
    for kind in kinds[:-1]:
        _preview_and_send(team, incident_id, kind, "GSM-nätet nere", "Kameratillsynen fungerar inte.")
    body = "Telia arbetar med felet.\n\nNästa besked kl. 12:00."
    shown = _preview_and_send(team, incident_id, kinds[-1], subject, body, apply=kinds[-1] != "resolution")
    with app.app_context():
        letter_id = max(m.ref_id for m in messages() if m.ref_type == "letter")
        db.session.remove()
    sms = _queued(app, f"letter:{letter_id}:contact:", "sms", ANNA_SMS)
    email = _queued(app, f"letter:{letter_id}:contact:", "email", ANNA_EMAIL)
    assert _same_link(shown["sms"]) == _same_link(sms.body_text)
    assert shown["segments"] == sms.segments == count_segments(sms.body_text).segments
    assert shown["subject"] == email.subject
    assert _same_link(shown["email"]).strip() == _same_link(email.body_text).strip()


def test_a_re_sent_letter_is_the_preview_of_a_reminder(app, clock, team, incident_id):
    _preview_and_send(team, incident_id, "first", "GSM-nätet nere", "Kameratillsynen fungerar inte.")
    sent_at = clock.now()
    run_tick(app, clock, sent_at + timedelta(minutes=31))
    sms = _queued(app, ":resend", "sms", ANNA_SMS)
    email = _queued(app, ":resend", "email", ANNA_EMAIL)
    with app.app_context():
        expected = letter_texts.preview(
            db.session,
            db.session.get(Incident, incident_id),
            kind="first",
            subject="GSM-nätet nere",
            body="Kameratillsynen fungerar inte.",
            apply_local_routines=True,
            now=sent_at,
            name="Anna Lind",
            provider="Hemtjänst Norr",
            link=LINK.search(sms.body_text).group(0),
            reminder=True,
        )
        db.session.remove()
    assert expected.sms == sms.body_text and expected.subject == email.subject
    assert sms.body_text.startswith(f"{ORGANISATION}: Påminnelse: Driftstörning (Kameratillsyn): GSM-nätet nere.")
    assert "Vi har inte fått er kvittens." in sms.body_text
    assert email.subject == "Påminnelse: Driftstörning: GSM-nätet nere"
    assert "Påminnelse: vi har inte fått er kvittens av brevet nedan." in email.body_text


def test_each_letter_says_once_what_it_is_and_updates_count_from_one(app, team, incident_id):
    _preview_and_send(team, incident_id, "first", "Driftstörning: GSM-nätet nere", "Kameratillsynen fungerar inte.")
    _preview_and_send(team, incident_id, "update", "Uppdatering: GSM-nätet nere", "Felet är hittat.")
    _preview_and_send(team, incident_id, "update", "GSM-nätet nere", "Felet lagas.")
    _preview_and_send(team, incident_id, "resolution", "Åtgärdat: GSM-nätet nere", "Allt fungerar.", apply=False)
    with app.app_context():
        sms = [m.body_text for m in messages() if m.to_address == ANNA_SMS]
        subjects = [m.subject for m in messages() if m.to_address == ANNA_EMAIL]
        db.session.remove()
    act = "Starta lokala rutiner. Läs och kvittera: <länk>"
    assert [LINK.sub("<länk>", text) for text in sms] == [
        f"{ORGANISATION}: Driftstörning (Kameratillsyn): GSM-nätet nere. {act}",
        f"{ORGANISATION}: Uppdatering 1 (Kameratillsyn): GSM-nätet nere. {act}",
        f"{ORGANISATION}: Uppdatering 2 (Kameratillsyn): GSM-nätet nere. {act}",
        f"{ORGANISATION}: Åtgärdat (Kameratillsyn): GSM-nätet nere. Läs mer: <länk>",
    ]
    assert subjects == [
        "Driftstörning: GSM-nätet nere",
        "Uppdatering 1: GSM-nätet nere",
        "Uppdatering 2: GSM-nätet nere",
        "Åtgärdat: GSM-nätet nere",
    ]
    for text in sms:  # no word of ours in capitals, good news or bad (the title is the writer's)
        ours = LINK.sub("", text).replace("GSM-nätet nere", "")
        assert not re.search(r"\b[A-ZÅÄÖ]{3,}\b", ours), text


@pytest.mark.parametrize(
    ("subject", "title"),
    [
        ("Driftstörning: GSM-nätet nere", "GSM-nätet nere"),
        ("Uppdatering 2: Uppdatering: GSM", "GSM"),
        ("Påminnelse: Planerat arbete: Byte av routrar", "Byte av routrar"),
        ("Åtgärdat – kamerorna fungerar", "kamerorna fungerar"),
        ("Driftstörning:", "Driftstörning:"),  # nothing else to say: kept as written
        ("Uppdateringar av GSM-nätet", "Uppdateringar av GSM-nätet"),
    ],
)
def test_a_subject_loses_the_labels_the_heading_says(subject, title):
    assert letter_texts.plain_title(subject) == title
