"""A channel that keeps failing: a banner on every staff page, a warning in /readyz (still 200)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text

from core.extensions import db
from notifications.health import degraded_channels
from notifications.models import ChannelState
from tests.conftest import log_in


@pytest.fixture
def set_state(app, clock):
    def set_state(channel, *, failures=0, degraded_since=None):
        with app.app_context():
            db.session.merge(
                ChannelState(
                    channel=channel,
                    gateway="smtp" if channel == "email" else "twilio",
                    consecutive_failures=failures,
                    last_failure_at=clock.now() if failures else None,
                    last_error="TransientFailure: connection refused" if failures else None,
                    degraded_since=degraded_since,
                )
            )
            db.session.commit()

    return set_state


def banner(html: str) -> str | None:
    match = re.search(r'<div class="channel-warning".*?</div>\s*</div>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(0))).strip() if match else None


@pytest.fixture
def staff_client(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    return client


def test_degraded_email_shows_the_banner_on_staff_pages(staff_client, set_state, clock):
    set_state("email", failures=5, degraded_since=clock.now() - timedelta(minutes=12))  # 09:48 local
    set_state("sms", failures=0)
    for page in ("/", "/notifications/console"):
        assert banner(staff_client.get(page).get_data(as_text=True)) == (
            "Varning: e-post kan inte skickas sedan 09:48 (5 misslyckade försök i rad). "
            "Andra kanaler fungerar. Meddelandena ligger kvar i kön och skickas när kanalen fungerar igen."
        ), page


def test_banner_names_the_day_when_the_channel_failed_before_today(staff_client, set_state, clock):
    set_state("sms", failures=40, degraded_since=clock.now() - timedelta(days=2))
    assert "SMS kan inte skickas sedan lördag 21 november kl. 10:00 (40 misslyckade försök i rad)" in banner(
        staff_client.get("/").get_data(as_text=True)
    )


def test_banner_says_nothing_works_when_every_channel_is_degraded(staff_client, set_state, clock):
    set_state("email", failures=5, degraded_since=clock.now())
    set_state("sms", failures=1, degraded_since=clock.now())
    set_state("call", failures=5, degraded_since=clock.now())
    text_ = banner(staff_client.get("/").get_data(as_text=True))
    assert "SMS kan inte skickas sedan 10:00 (1 misslyckat försök)" in text_
    assert "Andra kanaler fungerar" not in text_
    assert "skickas när kanalerna fungerar igen" in text_


def test_no_banner_while_every_channel_works(staff_client, set_state):
    assert banner(staff_client.get("/").get_data(as_text=True)) is None
    set_state("email", failures=2)  # failing, not yet degraded
    assert banner(staff_client.get("/").get_data(as_text=True)) is None


def test_banner_is_for_staff_only(app, client, make_user, set_state, clock):
    set_state("email", failures=5, degraded_since=clock.now())
    assert banner(client.get("/login").get_data(as_text=True)) is None
    _, username, password = make_user("alarm_operator")
    log_in(client, username, password)
    assert banner(client.get("/").get_data(as_text=True)) is None


def test_banner_is_in_english_when_asked(staff_client, set_state, clock):
    set_state("email", failures=5, degraded_since=clock.now())
    assert banner(staff_client.get("/?lang=en").get_data(as_text=True)) == (
        "Warning: e-mail cannot be sent since 10:00 (5 failed attempts in a row). "
        "Other channels work. Messages stay in the queue and are sent when the channel works again."
    )


def test_staff_pages_still_render_when_the_channel_states_cannot_be_read(app, staff_client):
    with app.app_context():
        db.session.execute(text("DROP TABLE channel_states"))
        db.session.commit()
    response = staff_client.get("/")
    assert response.status_code == 200
    assert banner(response.get_data(as_text=True)) is None


def test_readyz_reports_a_degraded_channel_as_a_warning_and_stays_ready(client, set_state, clock):
    set_state("sms", failures=7, degraded_since=clock.now())
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["channels"] == {"email": "ok", "sms": "degraded", "call": "ok"}
    assert body["warnings"] == ["sms channel degraded since 2026-11-23T09:00:00+00:00 (7 consecutive failures)"]


def test_readyz_reports_every_channel_ok_without_warnings(client):
    body = client.get("/readyz").get_json()
    assert body["channels"] == {"email": "ok", "sms": "ok", "call": "ok"} and body["warnings"] == []


def test_degraded_channels_lists_only_channels_with_degraded_since(app, set_state, clock):
    set_state("email", failures=3)
    set_state("sms", failures=9, degraded_since=clock.now() - timedelta(hours=1))
    with app.app_context():
        assert [s.channel for s in degraded_channels(db.session, clock.now())] == ["sms"]
