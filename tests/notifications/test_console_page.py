"""The console outbox page: what the demo 'sent', readable, with links a person can click."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.service import create_user
from contacts.models import Provider
from core.extensions import db
from notifications.models import Message
from tests.conftest import DEFAULT_PASSWORD, build_app, create_schema, log_in

CONSOLE = "/notifications/console"


@pytest.fixture
def add_message(app, clock):
    counter = {"n": 0}

    def add(body="Hej", *, channel="sms", gateway="console", status="sent", subject=None, at=None, **fields) -> int:
        counter["n"] += 1
        when = at or clock.now()
        with app.app_context():
            message = Message(
                idempotency_key=f"console-test:{counter['n']}",
                kind="test.kind",
                channel=channel,
                priority=5,
                to_address="+46701740605" if channel == "sms" else "karin@example.se",
                subject=subject,
                body_text=body,
                status=status,
                attempts=0 if status == "queued" else 1,
                next_attempt_at=when,
                gateway=gateway,
                created_at=when,
                updated_at=when,
                sent_at=when if status != "queued" else None,
                **fields,
            )
            db.session.add(message)
            db.session.commit()
            return message.id

    return add


@pytest.fixture
def staff_client(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    return client


def test_console_lists_a_message_with_its_link_clickable(staff_client, add_message):
    add_message("Stämmer uppgifterna? Svara här: https://krisrutin.example.se/c/abc123?m=2026-12&x=1.", segments=2)
    html = staff_client.get(CONSOLE).get_data(as_text=True)
    link = "https://krisrutin.example.se/c/abc123?m=2026-12&amp;x=1"
    assert f'<a href="{link}" rel="noopener noreferrer">{link}</a>.' in html
    assert "070-174 06 05" in html
    assert '<time datetime="2026-11-23T09:00:00+00:00">2026-11-23 10:00</time>' in html  # Stockholm time
    assert "<dt>SMS-delar</dt><dd>2</dd>" in html
    assert "Skickat" in html


def test_console_escapes_html_in_bodies_and_subjects(staff_client, add_message):
    add_message(
        '<script>alert(1)</script> <a href="javascript:alert(2)">klicka</a> javascript:alert(3)',
        channel="email",
        subject="<b>Driftstörning</b>",
    )
    html = staff_client.get(CONSOLE).get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert "&lt;b&gt;Driftstörning&lt;/b&gt;" in html


def test_console_shows_the_newest_fifty_first_and_only_console_messages(staff_client, add_message, clock):
    start = clock.now()
    for n in range(51):
        add_message(f"Meddelande nummer {n:02d}", at=start + timedelta(minutes=n))
    add_message("Skickat via Twilio", gateway="twilio", at=start + timedelta(hours=2))
    html = staff_client.get(CONSOLE).get_data(as_text=True)
    assert "Skickat via Twilio" not in html
    assert "Meddelande nummer 00" not in html  # the 51st newest
    assert html.index("Meddelande nummer 50") < html.index("Meddelande nummer 49") < html.index("nummer 01")


def test_console_shows_messages_still_queued_for_a_console_channel(staff_client, add_message):
    add_message("Väntar i kön", gateway=None, status="queued")
    html = staff_client.get(CONSOLE).get_data(as_text=True)
    assert "Väntar i kön" in html and "I kö" in html


def test_console_page_speaks_english_when_asked(staff_client, add_message):
    add_message("Hej")
    html = staff_client.get(CONSOLE, query_string={"lang": "en"}).get_data(as_text=True)
    assert '<html lang="en">' in html and "Console outbox" in html


@pytest.mark.parametrize("role", ["admin", "team", "on_call"])
def test_staff_roles_reach_the_console(client, make_user, role):
    _, username, password = make_user(role)
    log_in(client, username, password)
    assert client.get(CONSOLE).status_code == 200


def test_alarm_operators_and_provider_contacts_may_not_see_the_console(app, client, clock, make_user):
    _, operator, password = make_user("alarm_operator")
    log_in(client, operator, password)
    assert client.get(CONSOLE).status_code == 403
    with app.app_context():
        provider = Provider(name="Hemtjänst Norr", kind="municipal", created_at=clock.now())
        db.session.add(provider)
        db.session.flush()
        create_user(
            db_session=db.session,
            username="kontakt1",
            display_name="Kontakt",
            role="provider",
            now=clock.now(),
            password=DEFAULT_PASSWORD,
            provider_id=provider.id,
        )
        db.session.commit()
    other = app.test_client()
    log_in(other, "kontakt1")
    assert other.get(CONSOLE).status_code == 403


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(CONSOLE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fnotifications%2Fconsole"


def test_queued_messages_of_a_live_channel_are_not_console_messages(sqlite_url, clock):
    app = build_app(
        sqlite_url,
        clock,
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="0123456789abcdef0123456789abcdef",
        TWILIO_FROM="+46766861004",
    )
    create_schema(app)
    now = clock.now()
    with app.app_context():
        for n, channel in enumerate(("sms", "email")):
            db.session.add(
                Message(
                    idempotency_key=f"queued:{n}",
                    kind="test.kind",
                    channel=channel,
                    priority=5,
                    to_address="x",
                    body_text=f"Köat för {channel}",
                    status="queued",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        db.session.commit()
        from accounts.service import create_user as create

        create(
            db_session=db.session, username="team9", display_name="T", role="team", now=now, password=DEFAULT_PASSWORD
        )
        db.session.commit()
    client = app.test_client()
    log_in(client, "team9")
    html = client.get(CONSOLE).get_data(as_text=True)
    assert "Köat för email" in html and "Köat för sms" not in html
