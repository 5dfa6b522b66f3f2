"""Transport adapters behind one small interface (see base.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlsplit

from config.settings import Settings
from notifications.channels.base import AsyncEmailSender, AsyncSmsSender, CallSender, EmailSender, SmsSender
from notifications.channels.console import ConsoleCall, ConsoleEmail, ConsoleSms

_TWILIO_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")


@dataclass(frozen=True)
class ChannelSetup:
    """Which gateway each channel uses, and how a dispatcher builds its own adapter (one per worker)."""

    email_factory: Callable[[], EmailSender]
    sms_factory: Callable[[], SmsSender]
    email_gateway: str  # "smtp" or "console"
    sms_gateway: str  # "twilio" or "console"
    email_detail: str = ""  # where it goes, without secrets
    sms_detail: str = ""
    problems: tuple[str, ...] = field(default=())  # half-done configuration, worth a warning
    call_factory: Callable[[], CallSender] = ConsoleCall
    call_gateway: str = "console"  # "twilio" or "console"
    call_detail: str = ""
    # The asynchronous lanes' adapters (issue 18): called with the lane's maximum of requests in
    # flight, inside the lane's event loop. None: the lane runs ``*_factory``'s synchronous
    # adapters on a pool of threads (notifications.channels.threaded).
    email_async_factory: Callable[[int], AsyncEmailSender] | None = None
    sms_async_factory: Callable[[int], AsyncSmsSender] | None = None

    def describe(self) -> dict[str, str]:
        """E.g. {"email": "smtp (smtp.example.se:587, starttls)", "sms": "console", "call": ...}; no secrets."""
        return {
            "email": f"{self.email_gateway} ({self.email_detail})" if self.email_detail else self.email_gateway,
            "sms": f"{self.sms_gateway} ({self.sms_detail})" if self.sms_detail else self.sms_gateway,
            "call": f"{self.call_gateway} ({self.call_detail})" if self.call_detail else self.call_gateway,
        }


def build_channels(settings: Settings) -> ChannelSetup:
    """SMTP when SMTP_HOST is set, Twilio when its SID, token and sender are all set; else the console.

    Raises ValueError when TWILIO_FROM is set but is neither a number nor a sender ID, so that a
    wrong sender stops start-up instead of failing every SMS.
    """
    problems: list[str] = []

    if settings.smtp_host:
        from notifications.channels.smtp import SmtpEmail

        email_factory: Callable[[], EmailSender] = partial(SmtpEmail, settings)
        email_gateway = "smtp"
        email_async_factory = _async_smtp(settings)
        login = ", login" if settings.smtp_username else ""
        email_detail = f"{settings.smtp_host}:{settings.smtp_port}, {settings.smtp_security}{login}"
    else:
        email_factory, email_gateway, email_detail = ConsoleEmail, "console", ""
        email_async_factory = None

    twilio_values = (settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from)
    if all(twilio_values):
        from notifications.channels.twilio_sms import TWILIO_API_BASE_URL, TwilioSms, check_sender_id

        sender = check_sender_id(settings.twilio_from)
        sms_factory: Callable[[], SmsSender] = partial(TwilioSms, settings)
        sms_gateway = "twilio"
        sms_detail = f"from {sender}"
        if settings.twilio_api_base_url != TWILIO_API_BASE_URL:
            parts = urlsplit(settings.twilio_api_base_url)
            # Host and port only: a URL may carry a user name and password.
            sms_detail += f", API at {parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        call_factory, call_gateway, call_detail = _calls(settings, sms_detail.partition(", ")[2], problems)
        sms_async_factory = _async_twilio(settings)
    else:
        sms_factory, sms_gateway, sms_detail = ConsoleSms, "console", ""
        sms_async_factory = None
        call_factory, call_gateway, call_detail = ConsoleCall, "console", ""
        if any(twilio_values):
            missing = [name for name, value in zip(_TWILIO_SETTINGS, twilio_values, strict=True) if not value]
            problems.append(f"SMS goes to the console: Twilio is partly configured, {', '.join(missing)} not set")

    return ChannelSetup(
        email_factory=email_factory,
        sms_factory=sms_factory,
        email_gateway=email_gateway,
        sms_gateway=sms_gateway,
        email_detail=email_detail,
        sms_detail=sms_detail,
        problems=tuple(problems),
        call_factory=call_factory,
        call_gateway=call_gateway,
        call_detail=call_detail,
        sms_async_factory=sms_async_factory,
        email_async_factory=email_async_factory,
    )


def _async_smtp(settings: Settings) -> Callable[[int], AsyncEmailSender]:
    from notifications.channels.smtp_async import AsyncSmtpEmail

    def build(max_in_flight: int) -> AsyncEmailSender:
        return AsyncSmtpEmail(settings, max_connections=max_in_flight)

    return build


def _async_twilio(settings: Settings) -> Callable[[int], AsyncSmsSender]:
    from notifications.channels.twilio_sms_async import AsyncTwilioSms

    def build(max_in_flight: int) -> AsyncSmsSender:
        return AsyncTwilioSms(settings, max_in_flight=max_in_flight)

    return build


def _calls(settings: Settings, api_detail: str, problems: list[str]) -> tuple[Callable[[], CallSender], str, str]:
    """Twilio calls when Twilio is configured and there is a number to call from; else the console
    (with a warning: an alphanumeric TWILIO_FROM cannot call, TWILIO_CALL_FROM is needed)."""
    from notifications.channels.twilio_call import TwilioCall, call_sender

    caller = call_sender(settings)
    if caller is None:
        problems.append(
            "calls go to the console: TWILIO_FROM is an alphanumeric sender ID, which cannot call; "
            "set TWILIO_CALL_FROM to a Twilio phone number"
        )
        return ConsoleCall, "console", ""
    return partial(TwilioCall, settings), "twilio", f"from {caller}" + (f", {api_detail}" if api_detail else "")


def log_live_channels(setup: ChannelSetup, logger: logging.Logger) -> None:
    """One INFO line naming the gateway of each channel (and a warning per half-done configuration)."""
    description = setup.describe()
    gateways = (("e-mail", setup.email_gateway), ("SMS", setup.sms_gateway), ("calls", setup.call_gateway))
    live = [name for name, gateway in gateways if gateway != "console"]
    logger.info(
        "channels: e-mail via %s; SMS via %s; calls via %s; live: %s",
        description["email"],
        description["sms"],
        description["call"],
        ", ".join(live) or "none (messages go to the console outbox)",
        extra={
            "email_gateway": setup.email_gateway,
            "sms_gateway": setup.sms_gateway,
            "call_gateway": setup.call_gateway,
        },
    )
    for problem in setup.problems:
        logger.warning(problem)
