"""Choosing the channels from the settings: live gateways when configured, the console otherwise."""

import asyncio
import logging

import pytest

from config.settings import load_settings
from notifications.channels import build_channels, log_live_channels
from notifications.channels.base import OutgoingEmail, OutgoingSms
from notifications.channels.console import ConsoleCall, ConsoleEmail, ConsoleSms
from notifications.channels.smtp import SmtpEmail
from notifications.channels.twilio_call import TwilioCall
from notifications.channels.twilio_sms import TwilioSms

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "secret-auth-token-0123456789"
SMTP_PASSWORD = "smtp-password-hemligt"


def settings(**values):
    return load_settings({"KRISRUTIN_ENV": "testing", **values}, environ={})


def test_console_for_both_when_nothing_is_configured():
    setup = build_channels(settings())
    assert (setup.email_gateway, setup.sms_gateway) == ("console", "console")
    assert isinstance(setup.email_factory(), ConsoleEmail)
    assert isinstance(setup.sms_factory(), ConsoleSms)
    assert setup.describe() == {"email": "console", "sms": "console", "call": "console"}
    assert isinstance(setup.call_factory(), ConsoleCall)


def test_smtp_and_twilio_when_configured():
    setup = build_channels(
        settings(
            SMTP_HOST="smtp.example.se",
            SMTP_PORT="587",
            SMTP_USERNAME="krisrutin",
            SMTP_PASSWORD=SMTP_PASSWORD,
            TWILIO_ACCOUNT_SID=SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM="Krisrutin",
        )
    )
    assert (setup.email_gateway, setup.sms_gateway) == ("smtp", "twilio")
    email, sms = setup.email_factory(), setup.sms_factory()
    assert isinstance(email, SmtpEmail) and email.gateway == "smtp"
    assert isinstance(sms, TwilioSms) and sms.gateway == "twilio"
    assert setup.email_factory() is not email  # one adapter per dispatcher worker

    async def lane_adapters():
        # The asynchronous lanes build one adapter each, inside their event loop.
        from notifications.channels.smtp_async import AsyncSmtpEmail
        from notifications.channels.twilio_sms_async import AsyncTwilioSms

        sms_lane, email_lane = setup.sms_async_factory(100), setup.email_async_factory(32)
        try:
            assert isinstance(sms_lane, AsyncTwilioSms) and sms_lane.gateway == "twilio"
            assert isinstance(email_lane, AsyncSmtpEmail) and email_lane.gateway == "smtp"
        finally:
            await sms_lane.aclose()
            await email_lane.aclose()

    asyncio.run(lane_adapters())
    assert setup.describe() == {
        "email": "smtp (smtp.example.se:587, starttls, login)",
        "sms": "twilio (from Krisrutin)",
        "call": "console",  # a sender ID cannot call
    }


def test_each_channel_is_chosen_on_its_own():
    setup = build_channels(settings(SMTP_HOST="smtp.example.se"))
    assert (setup.email_gateway, setup.sms_gateway) == ("smtp", "console")


@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"])
def test_partly_configured_twilio_falls_back_to_the_console_and_says_what_is_missing(missing):
    values = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": "Krisrutin"}
    del values[missing]
    setup = build_channels(settings(**values))
    assert setup.sms_gateway == "console"
    assert len(setup.problems) == 1 and missing in setup.problems[0]


def test_an_invalid_sender_stops_start_up():
    with pytest.raises(ValueError, match="TWILIO_FROM"):
        build_channels(settings(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM="Välfärdsteknik"))


def test_describe_and_the_log_line_contain_no_secrets(caplog):
    setup = build_channels(
        settings(
            SMTP_HOST="smtp.example.se",
            SMTP_SECURITY="ssl",
            SMTP_PORT="465",
            SMTP_USERNAME="krisrutin",
            SMTP_PASSWORD=SMTP_PASSWORD,
            TWILIO_ACCOUNT_SID=SID,
            TWILIO_AUTH_TOKEN=TOKEN,
            TWILIO_FROM="+46766860001",
            TWILIO_API_BASE_URL="http://user:pass@twilio-mock.local:4010",
        )
    )
    logger = logging.getLogger("krisrutin.test_channels")
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_live_channels(setup, logger)

    described = str(setup.describe())
    assert setup.describe()["sms"] == "twilio (from +46766860001, API at http://twilio-mock.local:4010)"
    assert setup.describe()["email"] == "smtp (smtp.example.se:465, ssl, login)"
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    for secret in (SMTP_PASSWORD, TOKEN, SID, "pass"):
        assert secret not in described
        assert secret not in record.getMessage()
    assert "live: e-mail, SMS" in record.getMessage()


def test_log_says_when_nothing_is_live_and_warns_about_half_done_configuration(caplog):
    setup = build_channels(settings(TWILIO_ACCOUNT_SID=SID))
    logger = logging.getLogger("krisrutin.test_channels")
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_live_channels(setup, logger)
    info, warning = caplog.records
    assert "live: none" in info.getMessage()
    assert warning.levelno == logging.WARNING and "TWILIO_AUTH_TOKEN" in warning.getMessage()


def test_channels_built_from_peer_settings_reach_the_local_peers(peer_settings, smtp_server, twilio_server):
    setup = build_channels(settings(**peer_settings))
    email, sms = setup.email_factory(), setup.sms_factory()
    try:
        email.send_email(OutgoingEmail("a@omsorg.example.se", "Test", "Hej", None, "<t-1@krisrutin>"))
        sms.send_sms(OutgoingSms("+46701740605", "Hej", None))
    finally:
        email.close()
        sms.close()
    assert smtp_server.wait_for(1)[0].message["Reply-To"] == peer_settings["MAIL_REPLY_TO"]
    assert twilio_server.wait_for(1)[0].params["From"] == peer_settings["TWILIO_FROM"]


def test_calls_need_a_number_to_call_from_a_sender_id_cannot_call(caplog):
    twilio = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": "Krisrutin"}
    setup = build_channels(settings(**twilio))
    assert (setup.sms_gateway, setup.call_gateway) == ("twilio", "console")
    logger = logging.getLogger("krisrutin.test_channels")
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_live_channels(setup, logger)
    info, warning = caplog.records
    assert "calls via console" in info.getMessage()
    assert warning.levelno == logging.WARNING and "TWILIO_CALL_FROM" in warning.getMessage()

    setup = build_channels(settings(**twilio, TWILIO_CALL_FROM="+46101234567"))
    assert isinstance(setup.call_factory(), TwilioCall)
    assert setup.describe()["call"] == "twilio (from +46101234567)" and setup.problems == ()

    setup = build_channels(settings(**{**twilio, "TWILIO_FROM": "+46766860001"}))
    assert setup.describe()["call"] == "twilio (from +46766860001)"


def test_a_call_sender_that_is_no_number_stops_start_up():
    with pytest.raises(ValueError, match="TWILIO_CALL_FROM"):
        build_channels(
            settings(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM="Krisrutin", TWILIO_CALL_FROM="Jour")
        )
