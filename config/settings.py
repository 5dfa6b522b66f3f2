"""Process settings, read from environment variables (see the README for the full list).

Layering: built-in defaults, then the environment, then the mapping passed to
``create_app(config=...)`` (tests use that). Values are typed and checked here, so that a bad
setting stops start-up with a message naming the variable.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_DIR = ROOT / "instance"
DEFAULT_ROUTINE_FILE = ROOT / "config" / "routine.toml"
ENVIRONMENTS = ("development", "production", "testing")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    secret_key: str
    secret_key_generated: bool
    timezone: str
    routine_file: Path
    log_format: str
    log_level: str
    public_base_url: str
    scheduler_interval_seconds: int
    smtp_host: str | None
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_security: str
    mail_from: str
    mail_reply_to: str | None
    # The team's functional mailbox and duty phone: alerts and handovers to the team go here.
    team_email: str | None
    team_mobile: str | None
    # The organisation's name as people know it ("Lindesbergs kommun"): every SMS names its sender
    # with it, and the provider pages show it.
    organisation_name: str
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_from: str | None
    twilio_api_base_url: str
    # The number calls come from (TWILIO_CALL_FROM; default TWILIO_FROM when that is a number:
    # an alphanumeric sender ID cannot call) and how long a call rings before "no answer".
    twilio_call_from: str | None
    call_ring_seconds: int
    email_rate_per_second: float
    email_concurrency: int
    sms_rate_per_second: float
    sms_concurrency: int
    call_rate_per_second: float
    call_concurrency: int
    dispatch_poll_seconds: float
    dispatch_lease_seconds: int
    dispatch_batch_size: int
    message_max_attempts: int
    # PostgreSQL: whether the dispatcher's own bookkeeping (claims, "sent", retries) waits for
    # its WAL flush; see notifications/dispatcher.py "Durability of the bookkeeping".
    dispatch_synchronous_commit: bool
    # Requests larger than this are refused with 413 (CSV imports and forwarded e-mails included).
    max_request_bytes: int
    # Reverse proxies in front of the service whose X-Forwarded-For/-Proto are trusted (0: none).
    trusted_proxies: int
    # TEAM_EMAIL and TEAM_MOBILE when not set (the providers' pages then name a fallback or no
    # phone); production warns at start-up and /readyz reports it (core.contact_now).
    team_contact_missing: tuple[str, ...] = ()
    # The supplier mailbox (crisis.incidents.mailbox); no IMAP_HOST: mailbox reading is off.
    imap_host: str | None = None
    imap_port: int = 993
    imap_security: str = "ssl"
    imap_username: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    imap_done_folder: str = "Krisrutin/Klart"
    imap_poll_seconds: int = 60

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _int(name: str, value: str, minimum: int = 0, maximum: int = 65535) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if not minimum <= number <= maximum:
        raise ConfigError(f"{name}: expected a number from {minimum} to {maximum}, got {number}")
    return number


def _development_secret_key() -> str:
    """A random key kept in instance/ so that `make run` sessions survive a restart and the web
    process and the scheduler agree; never used in production (SECRET_KEY is required there)."""
    path = DEFAULT_INSTANCE_DIR / "dev-secret-key"
    try:
        key = path.read_text(encoding="ascii").strip()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(key, encoding="ascii")
    except OSError:
        log.warning("could not keep the development secret key in %s", path)
    return key


def _float(name: str, value: str, minimum: float = 0.0) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if number < minimum or number != number:  # NaN
        raise ConfigError(f"{name}: expected a number of at least {minimum}, got {value!r}")
    return number


def load_settings(overrides: Mapping[str, object] | None = None, environ=None) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) with ``overrides`` on top."""
    source: dict[str, str] = dict(os.environ if environ is None else environ)
    for key, value in (overrides or {}).items():
        if value is not None:
            source[key] = str(value)

    def get(name: str, default: str | None = None) -> str | None:
        value = source.get(name)
        if value is None or value.strip() == "":
            return default
        return value.strip()

    env = _choice("KRISRUTIN_ENV", get("KRISRUTIN_ENV", "development"), ENVIRONMENTS)

    secret_key = get("SECRET_KEY")
    generated = secret_key is None
    if generated:
        if env == "production":
            raise ConfigError("SECRET_KEY: must be set when KRISRUTIN_ENV=production")
        secret_key = _development_secret_key() if env == "development" else secrets.token_hex(32)
    elif env == "production" and len(secret_key) < 32:
        raise ConfigError("SECRET_KEY: expected at least 32 characters in production")

    timezone = get("TIMEZONE", "Europe/Stockholm")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"TIMEZONE: expected an IANA time zone such as Europe/Stockholm, got {timezone!r}") from None

    database_url = get("DATABASE_URL") or f"sqlite:///{DEFAULT_INSTANCE_DIR / 'krisrutin.sqlite3'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://") :]
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the driver we ship.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    if not database_url.startswith(("sqlite", "postgresql+psycopg")):
        raise ConfigError(
            f"DATABASE_URL: expected a sqlite:/// or postgresql:// URL, got {database_url.split(':')[0]}://…"
        )

    imap_host = get("IMAP_HOST")
    imap_security = _choice("IMAP_SECURITY", get("IMAP_SECURITY", "ssl").lower(), ("ssl", "starttls", "none"))
    imap_username, imap_password = get("IMAP_USERNAME"), get("IMAP_PASSWORD")
    if imap_host and not (imap_username and imap_password):
        raise ConfigError("IMAP_USERNAME and IMAP_PASSWORD: must be set when IMAP_HOST is set")
    imap_folder = get("IMAP_FOLDER", "INBOX")
    imap_done_folder = get("IMAP_DONE_FOLDER", "Krisrutin/Klart")
    if imap_done_folder.strip("/") == imap_folder.strip("/"):
        raise ConfigError("IMAP_DONE_FOLDER: must differ from IMAP_FOLDER (read messages are moved there)")

    return Settings(
        env=env,
        database_url=database_url,
        secret_key=secret_key,
        secret_key_generated=generated,
        timezone=timezone,
        routine_file=Path(get("ROUTINE_FILE", str(DEFAULT_ROUTINE_FILE))),
        log_format=_choice("LOG_FORMAT", get("LOG_FORMAT", "text"), ("text", "json")),
        log_level=_choice("LOG_LEVEL", get("LOG_LEVEL", "INFO").upper(), ("DEBUG", "INFO", "WARNING", "ERROR")),
        public_base_url=get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        scheduler_interval_seconds=_int("SCHEDULER_INTERVAL_SECONDS", get("SCHEDULER_INTERVAL_SECONDS", "30"), 1, 3600),
        smtp_host=get("SMTP_HOST"),
        smtp_port=_int("SMTP_PORT", get("SMTP_PORT", "587"), 1),
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=get("SMTP_PASSWORD"),
        smtp_security=_choice("SMTP_SECURITY", get("SMTP_SECURITY", "starttls"), ("none", "starttls", "ssl")),
        mail_from=get("MAIL_FROM", "valfardsteknik@example.se"),
        mail_reply_to=get("MAIL_REPLY_TO"),
        team_email=get("TEAM_EMAIL") or get("MAIL_REPLY_TO") or get("MAIL_FROM", "valfardsteknik@example.se"),
        team_mobile=get("TEAM_MOBILE"),
        organisation_name=get("ORGANISATION_NAME", "Välfärdsteknik"),
        twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
        twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
        twilio_from=get("TWILIO_FROM"),
        twilio_api_base_url=get("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/"),
        twilio_call_from=get("TWILIO_CALL_FROM"),
        call_ring_seconds=_int("CALL_RING_SECONDS", get("CALL_RING_SECONDS", "30"), 5, 600),
        email_rate_per_second=_float("EMAIL_RATE_PER_SECOND", get("EMAIL_RATE_PER_SECOND", "0")),
        email_concurrency=_int("EMAIL_CONCURRENCY", get("EMAIL_CONCURRENCY", "100"), 1, 500),
        sms_rate_per_second=_float("SMS_RATE_PER_SECOND", get("SMS_RATE_PER_SECOND", "0")),
        sms_concurrency=_int("SMS_CONCURRENCY", get("SMS_CONCURRENCY", "100"), 1, 1000),
        call_rate_per_second=_float("CALL_RATE_PER_SECOND", get("CALL_RATE_PER_SECOND", "1")),
        call_concurrency=_int("CALL_CONCURRENCY", get("CALL_CONCURRENCY", "2"), 1, 16),
        dispatch_poll_seconds=_float("DISPATCH_POLL_SECONDS", get("DISPATCH_POLL_SECONDS", "0.5"), 0.05),
        dispatch_lease_seconds=_int("DISPATCH_LEASE_SECONDS", get("DISPATCH_LEASE_SECONDS", "120"), 5, 3600),
        dispatch_batch_size=_int("DISPATCH_BATCH_SIZE", get("DISPATCH_BATCH_SIZE", "10"), 1, 100),
        message_max_attempts=_int("MESSAGE_MAX_ATTEMPTS", get("MESSAGE_MAX_ATTEMPTS", "10"), 1, 100),
        dispatch_synchronous_commit=_choice(
            "DISPATCH_SYNCHRONOUS_COMMIT", get("DISPATCH_SYNCHRONOUS_COMMIT", "off").lower(), ("on", "off")
        )
        == "on",
        max_request_bytes=_int("MAX_REQUEST_BYTES", get("MAX_REQUEST_BYTES", str(10 * 1024 * 1024)), 1024, 1 << 30),
        trusted_proxies=_int("TRUSTED_PROXIES", get("TRUSTED_PROXIES", "0"), 0, 5),
        team_contact_missing=tuple(name for name in ("TEAM_EMAIL", "TEAM_MOBILE") if not get(name)),
        imap_host=imap_host,
        # 993 is IMAP over TLS; STARTTLS and plain IMAP use 143.
        imap_port=_int("IMAP_PORT", get("IMAP_PORT", "993" if imap_security == "ssl" else "143"), 1),
        imap_security=imap_security,
        imap_username=imap_username,
        imap_password=imap_password,
        imap_folder=imap_folder,
        imap_done_folder=imap_done_folder,
        imap_poll_seconds=_int("IMAP_POLL_SECONDS", get("IMAP_POLL_SECONDS", "60"), 10, 3600),
    )
