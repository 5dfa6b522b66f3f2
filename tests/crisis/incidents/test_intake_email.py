"""Forwarded e-mail: an RFC 822 message becomes one notice (de-duplicated by Message-ID), kept
byte for byte; through the API endpoint and ``flask notices ingest``. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent, Notice, Supplier
from tests.conftest import log_in
from tests.support.openapi import DOCUMENT_URL, assert_documented

STOCKHOLM = ZoneInfo("Europe/Stockholm")
EMAIL = "/api/v1/notices/email"


def message(
    subject="Driftstörning GSM: trygghetskameror",
    body="Hej, vi har en störning i mobilnätet. Beräknat klart 14:00.",
    sender="Telia Drift <drift@telia.se>",
    message_id="<abc123@mail.telia.se>",
    date="Mon, 23 Nov 2026 09:50:00 +0100",
    html=None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "valfardsteknik@kommun.example.se"
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    if date:
        msg["Date"] = date
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return bytes(msg)


@pytest.fixture
def telia(app, clock):
    with app.app_context():
        supplier = Supplier(name="Telia", email="drift@telia.se", is_active=True, created_at=clock.now())
        db.session.add(supplier)
        db.session.commit()
        return supplier.id


@pytest.fixture
def post_email(client, make_user, make_token):
    user_id, _, _ = make_user("team")
    headers = {"Authorization": f"Bearer {make_token(user_id)}"}
    document = client.get(DOCUMENT_URL).get_json()

    def post(raw: bytes, content_type="message/rfc822"):
        response = client.post(EMAIL, data=raw, content_type=content_type, headers=headers)
        assert_documented(document, response, "POST", EMAIL)
        return response

    return post


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_a_forwarded_email_becomes_a_notice_kept_as_received(app, client, post_email, telia, make_user):
    raw = message()
    response = post_email(raw)
    assert response.status_code == 201
    notice = response.get_json()
    assert notice["title"] == "Driftstörning GSM: trygghetskameror"
    assert notice["supplier_id"] == telia and notice["service"] == "camera_supervision"
    assert notice["planned"] is False and notice["source"] == "email"
    assert notice["starts_at"] == "2026-11-23T08:50:00+00:00"  # the Date header
    assert "störning i mobilnätet" in notice["body"]
    with app.app_context():
        stored = db.session.get(Notice, notice["id"])
        assert stored.external_id == "<abc123@mail.telia.se>" and stored.original_type == "message/rfc822"
    # Staff download the original, byte for byte.
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    original = client.get(f"/incidents/{notice['incident_id']}/notices/{notice['id']}/original")
    assert original.status_code == 200 and original.mimetype == "message/rfc822"
    assert original.headers["Content-Disposition"].startswith("attachment;")
    assert original.data == raw


def test_the_same_message_id_twice_gives_one_notice(app, post_email, telia):
    first = post_email(message())
    again = post_email(message(subject="Fwd: Driftstörning GSM: trygghetskameror"))
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert count(app, Notice) == 1 and count(app, Incident) == 1


def test_a_message_in_latin_1_is_kept_byte_for_byte(app, client, post_email, make_user):
    raw = (
        b"From: noc@careium.com\r\nSubject: Larmst\xf6rning\r\nMessage-ID: <l1@careium.com>\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"Trygghetslarm n\xe5r inte larmcentralen.\r\n"
    )
    response = post_email(raw)
    assert response.status_code == 201
    notice = response.get_json()
    assert notice["service"] == "alarms" and "når inte" in notice["body"]
    _, username, password = make_user("team")
    log_in(client, username, password)
    assert client.get(f"/incidents/{notice['incident_id']}/notices/{notice['id']}/original").data == raw


@pytest.mark.parametrize(
    ("subject", "body", "service", "planned"),
    [
        ("Planerat arbete i nätet", "Routern byts tisdag.", "camera_supervision", True),
        ("Oplanerad störning", "Larm når inte fram.", "alarms", False),
        ("Störning nyckelfria lås", "Låsen svarar inte.", "keyless_locks", False),
        ("Planned maintenance", "We will restart the Careium platform.", "camera_supervision", True),
    ],
)
def test_service_and_planned_are_read_from_the_words(post_email, subject, body, service, planned):
    notice = post_email(message(subject=subject, body=body, message_id=None, date=None)).get_json()
    assert (notice["service"], notice["planned"]) == (service, planned)


def test_without_a_known_word_the_service_is_guessed_and_the_team_asked_to_check(app, post_email):
    notice = post_email(message(subject="Information", body="Vi meddelar en störning.")).get_json()
    assert notice["service"] == "camera_supervision"
    with app.app_context():
        notes = db.session.scalars(
            select(IncidentEvent).where(
                IncidentEvent.incident_id == notice["incident_id"], IncidentEvent.kind == "note"
            )
        ).all()
        assert len(notes) == 1 and "kontrollera" in notes[0].detail["text"]


def test_html_only_mail_is_read_as_text_and_a_forward_finds_the_supplier_in_the_text(post_email, telia):
    msg = EmailMessage()
    msg["From"] = "Anna <anna@kommun.example.se>"
    msg["Subject"] = "VB: Störning kamera"
    msg.set_content(
        "<html><body><p>---------- Vidarebefordrat ----------</p><p>Från: drift@telia.se</p>"
        "<script>x()</script><p>Kameratillsyn påverkas.</p></body></html>",
        subtype="html",
    )
    notice = post_email(bytes(msg)).get_json()
    assert notice["title"] == "Störning kamera"
    assert notice["supplier_id"] == telia
    assert "Kameratillsyn påverkas." in notice["body"] and "x()" not in notice["body"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"", "message/rfc822", 422),
        (b"just some words without headers", "message/rfc822", 422),
        (b"From: a@b.se\r\n\r\n\x00\x00", "message/rfc822", 422),
        (message(), "text/plain", 400),
    ],
)
def test_a_bad_message_is_refused_and_nothing_saved(app, post_email, raw, content_type, status):
    assert post_email(raw, content_type=content_type).status_code == status
    assert count(app, Notice) == 0


def test_a_supplier_posting_mail_gets_its_own_supplier(app, client, clock, make_user, make_token):
    user_id, _, _ = make_user("supplier")
    with app.app_context():
        db.session.add(Supplier(name="Careium", email="noc@careium.com", user_id=user_id, created_at=clock.now()))
        db.session.add(Supplier(name="Telia", email="drift@telia.se", created_at=clock.now()))
        db.session.commit()
        careium = db.session.scalar(select(Supplier.id).where(Supplier.name == "Careium"))
    response = client.post(
        EMAIL, data=message(), content_type="message/rfc822", headers={"Authorization": f"Bearer {make_token(user_id)}"}
    )
    assert response.status_code == 201 and response.get_json()["supplier_id"] == careium


def test_the_cli_ingests_a_file_and_prints_the_incident(app, runner, tmp_path, telia):
    path = tmp_path / "notis.eml"
    path.write_bytes(message())
    result = runner.invoke(args=["notices", "ingest", str(path)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        incident_id = db.session.scalar(select(Notice.incident_id))
    assert f"Incident {incident_id}" in result.output
    again = runner.invoke(args=["notices", "ingest", str(path)])
    assert again.exit_code == 0 and "Already received" in again.output
    assert count(app, Notice) == 1


def test_the_cli_refuses_a_bad_file_with_exit_code_1(app, runner, tmp_path):
    empty = tmp_path / "tom.eml"
    empty.write_bytes(b"")
    result = runner.invoke(args=["notices", "ingest", str(empty)])
    assert result.exit_code == 1 and "tom" in result.output
    missing = runner.invoke(args=["notices", "ingest", str(tmp_path / "finns-inte.eml")])
    assert missing.exit_code == 1 and "cannot read" in missing.output
    assert count(app, Notice) == 0


def test_a_date_without_a_zone_means_now(app, clock, post_email):
    clock.set(datetime(2026, 11, 23, 10, 5, tzinfo=STOCKHOLM))
    notice = post_email(message(date="Mon, 23 Nov 2026 09:50:00 -0000", message_id="<naive@x>")).get_json()
    assert notice["starts_at"] == "2026-11-23T09:05:00+00:00"


# A mail with odd characters: the original is kept byte for byte, but everything taken from it
# (title, text, Message-ID) is cleaned by the text boundary's scrub, not refused: a supplier's
# notice must not be lost for an invisible character.
RAW = (
    b"From: Telia Drift <drift@telia.se>\r\n"
    b"To: valfardsteknik@kommun.example.se\r\n"
    b"Subject: St\xf6rning \x1b[31m\xe2\x80\xae kameror\x07 norr\r\n"
    b"Message-ID: <x\x1b1@mail.telia.se>\r\n"
    b"Date: Mon, 23 Nov 2026 09:50:00 +0100\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Kameratillsyn p\xc3\xa5verkas \xe2\x80\xae\x07i norr.\r\n"
)


def test_a_supplier_mail_with_control_and_override_characters_becomes_a_clean_notice(
    app, client, post_email, telia, make_user
):
    response = post_email(RAW)
    assert response.status_code == 201, response.get_json()
    notice = response.get_json()
    assert notice["title"] == "St\ufffdrning [31m kameror norr"
    assert notice["body"] == "Kameratillsyn påverkas i norr."
    with app.app_context():
        stored = db.session.scalars(select(Notice)).one()
        assert stored.external_id == "<x1@mail.telia.se>"
    _, username, password = make_user("team")
    log_in(client, username, password)
    assert client.get(f"/incidents/{notice['incident_id']}").status_code == 200
    original = client.get(f"/incidents/{notice['incident_id']}/notices/{notice['id']}/original")
    assert original.data == RAW  # kept as received, every byte
