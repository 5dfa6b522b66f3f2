"""The supplier mailbox read over IMAP, against a real Dovecot (tests/support/imap_server.py):
a known supplier's mail becomes one notice and is moved to the done folder; anything else waits
in the triage list, where one click makes it a notice or dismisses it; nothing is lost or done
twice (a crash before the move, two processes at once); a server that refuses marks the channel
degraded until it answers again. On SQLite and PostgreSQL."""

from __future__ import annotations

import email.policy
import logging
import threading
import time
from datetime import datetime, timezone
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from core.extensions import db
from crisis.incidents import mailbox
from crisis.incidents.email_ingest import MAX_BYTES, original_bytes
from crisis.incidents.mailbox import MailboxConfig, MailboxUnavailable, poll_once
from crisis.incidents.models import InboundEmail, Incident, IncidentEvent, Notice, Supplier
from tests.conftest import build_app, csrf_token_from, log_in

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
DONE = "Krisrutin.Klart"  # IMAP_DONE_FOLDER "Krisrutin/Klart" in Dovecot's maildir naming


def message(
    sender="Telia Drift <drift@telia.se>",
    subject="Driftstörning GSM: trygghetskameror",
    body="Vi har en störning i mobilnätet. Beräknat klart 14:00.",
    message_id="<gsm-1@mail.telia.se>",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "leverantorer@kommun.example.se"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Mon, 23 Nov 2026 09:50:00 +0100"
    msg.set_content(body)
    return msg.as_bytes(policy=email.policy.SMTP)  # CRLF, as mail is stored and sent


@pytest.fixture
def app(make_app, imap_mailbox):
    application = make_app(**imap_mailbox.settings)
    with application.app_context():
        db.session.add(
            Supplier(
                name="Telia",
                email="info@telia.example.se",
                sender_addresses="drift@telia.se",
                is_active=True,
                created_at=application.extensions["krisrutin.clock"].now(),
            )
        )
        db.session.commit()
    return application


def poll(app):
    with app.app_context():
        config = MailboxConfig.from_settings(app.extensions["krisrutin.settings"])
        return poll_once(db.session, config, now=app.extensions["krisrutin.clock"].now())


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def rows(app) -> list[InboundEmail]:
    with app.app_context():
        found = list(db.session.scalars(select(InboundEmail).order_by(InboundEmail.id)))
        db.session.expunge_all()
        return found


def test_a_known_suppliers_mail_becomes_one_routed_notice_kept_byte_for_byte_and_moved(app, imap_mailbox, runner):
    raw = message()
    imap_mailbox.deliver(raw)
    result = app.test_cli_runner().invoke(args=["mailbox", "poll"])
    assert result.exit_code == 0, result.output
    assert "1 notice(s)" in result.output
    with app.app_context():
        notice = db.session.scalar(select(Notice))
        assert original_bytes(notice) == raw  # the original, byte for byte
        incident = db.session.get(Incident, notice.incident_id)
        assert incident.supplier_id is not None and incident.party is not None
        kinds = db.session.scalars(select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id)).all()
        assert kinds.count("routed") == 1
    assert imap_mailbox.messages("INBOX") == []
    assert imap_mailbox.messages(DONE) == [raw]
    # Reading again finds nothing new; the same Message-ID sent again is no second notice.
    imap_mailbox.deliver(raw)
    report = poll(app)
    assert (report.read, report.notices, report.duplicates) == (1, 0, 1)
    assert count(app, Notice) == 1 and count(app, Incident) == 1
    assert imap_mailbox.messages("INBOX") == []


def test_unknown_sender_too_big_and_unparsable_mail_wait_in_triage_with_the_reason(app, imap_mailbox, make_user):
    imap_mailbox.deliver(message(sender="Okänd <nagon@example.org>", message_id="<x-1@example.org>"))
    big = message(sender="drift@telia.se", message_id="<big@telia.se>", body="x" * (MAX_BYTES + 10))
    imap_mailbox.deliver(big)
    imap_mailbox.deliver(b"X-Nothing: here\r\n\r\nno from, no subject\r\n")
    report = poll(app)
    assert (report.read, report.triage, report.notices) == (3, 3, 0)
    found = {row.reason: row for row in rows(app)}
    assert set(found) == {"unknown_sender", "too_big", "unparsable"}
    assert found["too_big"].size > MAX_BYTES and found["too_big"].raw_is_headers
    assert b"big@telia.se" in found["too_big"].raw and len(found["too_big"].raw) < 2000
    assert count(app, Notice) == 0
    assert imap_mailbox.messages("INBOX") == []  # kept in the database, never dropped

    # The start page says there is mail to judge, and the list shows it.
    _, username, password = make_user("on_call")
    client = app.test_client()
    log_in(client, username, password)
    start = client.get("/").get_data(as_text=True)
    assert "Inkommande e-post att bedöma: 3 meddelanden" in start
    page = client.get("/incidents/mail").get_data(as_text=True)
    assert "nagon@example.org" in page and "Avsändaren är ingen känd leverantörsadress" in page
    assert "Meddelandet är större än 10 MB" in page and "Meddelandet kunde inte läsas" in page
    # The unreadable one cannot be made a notice: said beside the choice, nothing changed.
    unreadable = found["unparsable"].id
    refused = client.post(
        f"/incidents/mail/{unreadable}/notice", data={"supplier": "unknown", "csrf_token": csrf_token_from(page)}
    )
    assert refused.status_code == 400
    assert "Meddelandet kan inte bli en driftstörning" in refused.get_data(as_text=True)
    assert {row.id: row.reason for row in rows(app)}[unreadable] == "unparsable" and count(app, Notice) == 0


def test_one_click_makes_a_triaged_mail_a_notice_and_dismissing_needs_a_reason(app, imap_mailbox, make_user):
    imap_mailbox.deliver(message(sender="vidarebefordrat@kommun.example.se", message_id="<fwd-1@kommun>"))
    imap_mailbox.deliver(message(sender="reklam@example.org", subject="Erbjudande", message_id="<ad@example.org>"))
    poll(app)
    forwarded, advert = rows(app)
    _, username, password = make_user("team")
    client = app.test_client()
    log_in(client, username, password)
    token = csrf_token_from(client.get("/incidents/mail").get_data(as_text=True))
    with app.app_context():
        telia = db.session.scalar(select(Supplier.id))

    made = client.post(f"/incidents/mail/{forwarded.id}/notice", data={"supplier": str(telia), "csrf_token": token})
    assert made.status_code == 302
    with app.app_context():
        notice = db.session.scalar(select(Notice))
        assert db.session.get(Incident, notice.incident_id).supplier_id == telia
        assert made.headers["Location"].endswith(f"/incidents/{notice.incident_id}")
    again = client.post(f"/incidents/mail/{forwarded.id}/notice", data={"supplier": str(telia), "csrf_token": token})
    assert again.status_code == 409 and count(app, Notice) == 1

    # A supplier that does not exist is refused with a message beside the choice, not a 500.
    bad = client.post(f"/incidents/mail/{advert.id}/notice", data={"supplier": "999", "csrf_token": token})
    assert bad.status_code == 400 and "Välj leverantör, eller okänd" in bad.get_data(as_text=True)
    refused = client.post(f"/incidents/mail/{advert.id}/dismiss", data={"reason": "  ", "csrf_token": token})
    assert refused.status_code == 400
    assert "Skriv varför meddelandet inte är en driftstörning" in refused.get_data(as_text=True)
    dismissed = client.post(f"/incidents/mail/{advert.id}/dismiss", data={"reason": "Reklam", "csrf_token": token})
    assert dismissed.status_code == 302
    done = {row.id: row for row in rows(app)}
    assert done[advert.id].status == "dismissed" and done[advert.id].dismiss_reason == "Reklam"
    assert done[advert.id].decided_by_id is not None
    assert "Ingen e-post väntar på att bedömas." in client.get("/incidents/mail").get_data(as_text=True)
    # A message judged once cannot be judged again.
    again = client.post(f"/incidents/mail/{advert.id}/notice", data={"supplier": "unknown", "csrf_token": token})
    assert again.status_code == 409 and count(app, Notice) == 1


def test_a_crash_after_the_commit_before_the_move_is_processed_once(app, imap_mailbox, monkeypatch):
    imap_mailbox.deliver(message())
    real = mailbox.put_away

    def broken(client, uid, folder):
        raise OSError("the connection dropped")

    monkeypatch.setattr(mailbox, "put_away", broken)
    with pytest.raises(MailboxUnavailable):
        poll(app)
    assert count(app, Notice) == 1
    assert len(imap_mailbox.messages("INBOX")) == 1  # committed, not yet moved

    monkeypatch.setattr(mailbox, "put_away", real)
    report = poll(app)
    assert (report.read, report.already, report.moved) == (0, 1, 1)
    assert count(app, Notice) == 1 and count(app, InboundEmail) == 1
    assert imap_mailbox.messages("INBOX") == [] and len(imap_mailbox.messages(DONE)) == 1


def test_two_polls_at_once_make_one_notice(postgres_url, clock, imap_mailbox):
    first = build_app(postgres_url, clock, **imap_mailbox.settings)
    from tests.conftest import create_schema

    create_schema(first)
    second = build_app(postgres_url, clock, **imap_mailbox.settings)
    with first.app_context():
        db.session.add(Supplier(name="Telia", sender_addresses="@telia.se", is_active=True, created_at=clock.now()))
        db.session.commit()
    for n in range(3):
        imap_mailbox.deliver(message(message_id=f"<gsm-{n}@telia.se>", subject=f"Störning {n}"))
    barrier = threading.Barrier(2)
    errors = []

    def run(application):
        try:
            barrier.wait()
            poll(application)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(application,)) for application in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert count(first, Notice) == 3 and count(first, InboundEmail) == 3
    assert imap_mailbox.messages("INBOX") == []
    for application in (first, second):
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_refusing_server_shows_the_degraded_banner_and_readyz_warning_until_it_answers(
    app, make_app, imap_mailbox, make_user
):
    from tests.support.imap_server import _free_port

    # (A refused login is the same failure; Dovecot then slows every login from 127.0.0.1 for
    # seconds, so this test uses a server that is down.)
    down = make_app(**{**imap_mailbox.settings, "IMAP_PORT": str(_free_port()), "IMAP_PASSWORD": "fel-losenord"})
    for _ in range(mailbox.DEGRADED_AFTER):
        with pytest.raises(MailboxUnavailable, match="connection refused"):
            poll(down)
    _, username, password = make_user("on_call")
    client = app.test_client()
    log_in(client, username, password)
    assert "leverantörernas e-post kan inte läsas" in client.get("/").get_data(as_text=True)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["channels"]["imap"] == "degraded" and any("imap" in warning for warning in body["warnings"])
    assert "fel-losenord" not in str(body) and imap_mailbox.username not in str(body)

    poll(app)
    assert "leverantörernas e-post kan inte läsas" not in client.get("/").get_data(as_text=True)
    assert "imap" not in client.get("/readyz").get_json()["channels"]


def test_the_scheduler_reads_the_mailbox_every_poll_interval(app, clock, imap_mailbox):
    from scheduling.service import tick

    imap_mailbox.deliver(message())
    with app.app_context():
        tick(db_session=db.session, now=clock.now())
    assert count(app, Notice) == 1
    imap_mailbox.deliver(message(message_id="<gsm-2@telia.se>", subject="Ny störning"))
    with app.app_context():
        tick(db_session=db.session, now=clock.now())  # within IMAP_POLL_SECONDS: not read yet
    assert count(app, Notice) == 1
    clock.advance(seconds=60)
    with app.app_context():
        tick(db_session=db.session, now=clock.now())
    assert count(app, Notice) == 2


def test_mailbox_reading_is_off_without_imap_host(sqlite_url, clock, caplog):
    with caplog.at_level(logging.INFO, logger="crisis.incidents.mailbox"):
        application = build_app(sqlite_url, clock)
    assert "mailbox reading is off (IMAP_HOST is not set)" in caplog.text
    result = application.test_cli_runner().invoke(args=["mailbox", "poll"])
    assert result.exit_code != 0 and "mailbox reading is off" in result.output


def test_the_mailbox_reader_takes_new_mail_as_it_arrives_with_idle(app, imap_mailbox):
    """``mailbox run``: a pass at start, then IMAP IDLE wakes it when mail arrives (no waiting
    for the poll interval, 60 s here)."""
    config = MailboxConfig.from_settings(app.extensions["krisrutin.settings"])
    stop = threading.Event()
    reader = threading.Thread(target=mailbox.run_forever, args=(app, config, stop))
    reader.start()
    try:
        imap_mailbox.deliver(message())
        deadline = time.monotonic() + 10
        while count(app, Notice) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the other thread, not for time to pass
        assert count(app, Notice) == 1
    finally:
        stop.set()
        reader.join(15)
    assert not reader.is_alive()
    assert len(imap_mailbox.messages(DONE)) >= 1


@pytest.mark.parametrize(
    ("missing", "inbox_after", "done_after"),
    [({"MOVE"}, 0, 1), ({"MOVE", "UIDPLUS"}, 1, 0)],
    ids=["copy-and-expunge", "flag"],
)
def test_a_server_without_move_gets_copy_and_expunge_or_else_a_flag(
    app, imap_mailbox, monkeypatch, missing, inbox_after, done_after
):
    from imapclient import IMAPClient

    real = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, name: name not in missing and real(self, name))
    imap_mailbox.deliver(message())
    assert poll(app).notices == 1
    assert (len(imap_mailbox.messages("INBOX")), len(imap_mailbox.messages(DONE))) == (inbox_after, done_after)
    again = poll(app)  # a flagged message is skipped, not read again
    assert (again.read, again.already) == (0, 0)
    assert count(app, Notice) == 1


def test_tls_and_starttls_are_verified_and_an_untrusted_certificate_is_a_tls_failure(
    make_app, imap_tls_server, smtp_certificate, monkeypatch
):
    from tests.support.imap_server import ImapMailbox

    mailbox_ = ImapMailbox(server=imap_tls_server, username=imap_tls_server.take_user())
    settings = {**mailbox_.settings, "IMAP_SECURITY": "ssl", "IMAP_PORT": str(imap_tls_server.tls_port)}
    over_tls = make_app(**settings)
    with over_tls.app_context():
        db.session.add(Supplier(name="Telia", sender_addresses="@telia.se", is_active=True, created_at=NOW))
        db.session.commit()
    mailbox_.deliver(message())
    with pytest.raises(MailboxUnavailable, match="TLS error"):  # self-signed: not trusted
        poll(over_tls)
    assert count(over_tls, Notice) == 0

    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_certificate[0]))  # now it is
    assert poll(over_tls).notices == 1
    with_starttls = make_app(**{**mailbox_.settings, "IMAP_SECURITY": "starttls"})
    mailbox_.deliver(message(message_id="<gsm-2@telia.se>", subject="Ny störning"))
    assert poll(with_starttls).notices == 1
