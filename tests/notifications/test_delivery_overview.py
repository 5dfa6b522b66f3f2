"""Who has received what, per letter or check: one row per contact person, counts at the top."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from contacts.models import ContactPerson, Provider
from core.extensions import db
from notifications.models import Message
from notifications.recipients import HOOKS_EXTENSION, NO_HOOKS
from tests.conftest import log_in

PAGE = "/notifications/deliveries/letter/12"


@pytest.fixture
def letter(app, clock):
    """Letter 12 to two contacts of two providers: e-mail and SMS each, in several states."""
    now = clock.now()
    later = now + timedelta(minutes=2)
    with app.app_context():
        north = Provider(name="Hemtjänst Norr", kind="municipal", created_at=now)
        care = Provider(name="Omsorgsbolaget AB", kind="private", created_at=now)
        karin = ContactPerson(provider=north, name="Karin Exempelsson", services=[], created_at=now)
        lena = ContactPerson(provider=care, name="Lena Påhittad", services=[], created_at=now)
        db.session.add_all([north, care, karin, lena])
        db.session.flush()

        def message(contact, channel, status, ref_id="12", **fields):
            return Message(
                idempotency_key=f"letter:{ref_id}:contact:{contact.id}:{channel}",
                kind="crisis.letter",
                channel=channel,
                priority=0,
                contact_id=contact.id,
                to_address="+46701740605" if channel == "sms" else "x@example.se",
                body_text="Driftstörning",
                ref_type="letter",
                ref_id=ref_id,
                status=status,
                attempts=1,
                next_attempt_at=now,
                created_at=now,
                updated_at=later,
                **fields,
            )

        db.session.add_all(
            [
                message(karin, "email", "sent", sent_at=later),
                message(karin, "sms", "delivered", sent_at=now, delivered_at=later),
                message(lena, "email", "queued"),
                message(
                    lena,
                    "sms",
                    "undelivered",
                    sent_at=now,
                    failed_at=later,
                    last_error="gateway reported undelivered (code 30005)",
                ),
                message(lena, "sms", "delivered", ref_id="13"),  # another letter
            ]
        )
        db.session.commit()


@pytest.fixture
def staff_client(client, make_user):
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    return client


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_overview_counts_the_letters_messages_at_the_top(staff_client, letter):
    text = _text(staff_client.get(PAGE).get_data(as_text=True))
    assert "Kontaktpersoner 2" in text
    assert "Meddelanden 4" in text  # letter 13 is not counted
    assert "Levererat 1" in text
    assert "Skickat, ingen leveransrapport 1" in text
    assert "Väntar på att skickas 1" in text
    assert "Misslyckades eller kom inte fram 1" in text


def test_overview_has_one_row_per_contact_with_each_channels_status_and_error(staff_client, letter):
    html = staff_client.get(PAGE).get_data(as_text=True)
    rows = html.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 2
    karin, lena = (_text(row) for row in rows)
    assert "Karin Exempelsson Hemtjänst Norr" in karin
    assert "Skickat" in karin and "Levererat 2026-11-23 10:02" in karin
    assert "Lena Påhittad Omsorgsbolaget AB" in lena
    assert "I kö" in lena and "Kom inte fram 2026-11-23 10:02" in lena
    assert "Fel: gateway reported undelivered (code 30005)" in lena


def test_without_the_registers_hook_the_overview_shows_addresses_without_names(app, staff_client, letter):
    app.extensions[HOOKS_EXTENSION] = NO_HOOKS  # notifications on its own: nobody to name recipients
    html = staff_client.get(PAGE).get_data(as_text=True)
    rows = [_text(row) for row in html.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]]
    assert len(rows) == 2, "still one row per recipient"
    assert all(row.strip().startswith("x@example.se Ingen utförare") for row in rows)
    assert "Karin" not in html and "Hemtjänst Norr" not in html
    assert "Meddelanden 4" in _text(html)


def test_overview_of_a_reference_without_messages_says_so(staff_client, letter):
    response = staff_client.get("/notifications/deliveries/check/2026-12")
    assert response.status_code == 200
    assert "Inga meddelanden har köats för det här utskicket ännu." in response.get_data(as_text=True)


@pytest.mark.parametrize("role, status", [("admin", 200), ("team", 200), ("alarm_operator", 403)])
def test_only_staff_see_who_received_what(client, make_user, letter, role, status):
    _, username, password = make_user(role)
    log_in(client, username, password)
    assert client.get(PAGE).status_code == status


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
