"""The supplier mailbox: the service reads it over IMAP (``imapclient``), so that a supplier's
e-mail at 02:10 becomes an incident without anyone forwarding it.

One pass (:func:`poll_once`): connect (``IMAP_SECURITY`` ssl, starttls or none), make sure
``IMAP_DONE_FOLDER`` exists (created if missing), select ``IMAP_FOLDER``, search every message
not deleted and not flagged ``$Krisrutin``, and for each, oldest first:

1. Look for its row in ``inbound_emails`` by its mailbox key (folder, UIDVALIDITY, UID). None:
   fetch it (``BODY.PEEK[]``, which leaves it unread; only the headers when it is bigger than
   :data:`email_ingest.MAX_BYTES`), decide what becomes of it
   (:func:`crisis.incidents.mail_triage.store_message`: a notice, triage, a duplicate) and commit
   the row with its notice in ONE transaction.
2. Only then put it away on the server: ``MOVE`` to the done folder; a server without MOVE:
   ``COPY``, ``\\Deleted`` and ``UID EXPUNGE`` (UIDPLUS); without UIDPLUS, or when the done folder
   cannot be made: flags ``\\Seen`` and ``$Krisrutin`` (the search skips it). Then ``moved_at``.

Nothing lost, nothing twice: a crash before the commit leaves the message in the folder, unread
and without a row, and the next pass does it once. A crash between the commit and the move: the
next pass finds the row by its key and only moves it. Two processes at once: the unique key lets
one commit; the other's insert fails, it rolls back and only moves (PostgreSQL makes the second
insert wait for the first transaction). A message seen again under a new UID (UIDVALIDITY changed)
is found by its Message-ID and recorded as a duplicate.

Running it: the scheduler's planner ``incidents.mailbox`` runs a pass when ``IMAP_POLL_SECONDS``
have passed since the last one (safe with two schedulers, by the key above); ``flask mailbox run``
keeps a connection and waits with IMAP IDLE, running a pass whenever the server says something
arrived and at least every ``IMAP_POLL_SECONDS`` (the safety net); ``flask mailbox poll`` runs
one pass (cron, tests).

Health: a server that cannot be reached or refuses (connection refused, timeout, TLS error,
login refused, a folder that cannot be selected) is a failure of the channel ``imap`` in
``channel_states``; from the :data:`DEGRADED_AFTER`-th in a row the staff banner and ``/readyz``
warn, until the next successful pass. Logs name no sender, subject or address: only counts and
the kind of error.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import signal
import socket
import ssl
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import AppGroup
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.extensions import db
from crisis.incidents.email_ingest import MAX_BYTES
from crisis.incidents.mail_triage import store_message
from crisis.incidents.models import InboundEmail
from notifications.outbox import record_channel_failure, record_channel_success
from scheduling.registry import planner

log = logging.getLogger(__name__)

CHANNEL = "imap"
KEYWORD = "$Krisrutin"
DEGRADED_AFTER = 2  # failed passes in a row: one refused connection may be a blip, two are not
TIMEOUT_SECONDS = 30
BATCH = 100  # messages per pass at most; the next pass takes the rest
IDLE_MAX_SECONDS = 25 * 60  # servers end IDLE after 30 minutes (RFC 2177)

_CONNECTION_ERRORS = (OSError, ssl.SSLError, socket.timeout, imaplib.IMAP4.error, IMAPClientError)


class MailboxUnavailable(Exception):
    """The mail server cannot be reached or refuses; the message names the kind of error only."""


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    port: int
    security: str
    username: str
    password: str
    folder: str
    done_folder: str
    poll_seconds: int
    timeout: float = TIMEOUT_SECONDS

    @classmethod
    def from_settings(cls, settings) -> MailboxConfig | None:
        """The mailbox settings, or None when reading is off (``IMAP_HOST`` not set)."""
        if not settings.imap_host:
            return None
        return cls(
            host=settings.imap_host,
            port=settings.imap_port,
            security=settings.imap_security,
            username=settings.imap_username,
            password=settings.imap_password,
            folder=settings.imap_folder,
            done_folder=settings.imap_done_folder,
            poll_seconds=settings.imap_poll_seconds,
        )


@dataclass
class PassReport:
    read: int = 0  # new messages recorded
    notices: int = 0
    triage: int = 0
    duplicates: int = 0
    already: int = 0  # recorded before (a crash before the move, or another process)
    moved: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def configured() -> MailboxConfig | None:
    return MailboxConfig.from_settings(current_app.extensions["krisrutin.settings"])


def _describe(error: BaseException) -> str:
    """The kind of error, without the server's text (it may quote an address)."""
    if isinstance(error, ssl.SSLError):
        return "TLS error"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, OSError):
        return f"network error ({type(error).__name__})"
    return f"IMAP error ({type(error).__name__})"


def connect(config: MailboxConfig) -> IMAPClient:
    """A logged-in client, or :class:`MailboxUnavailable`."""
    context = ssl.create_default_context()
    try:
        client = IMAPClient(
            config.host,
            port=config.port,
            ssl=config.security == "ssl",
            ssl_context=context if config.security == "ssl" else None,
            timeout=config.timeout,
        )
        if config.security == "starttls":
            client.starttls(context)
        client.login(config.username, config.password)
    except _CONNECTION_ERRORS as error:
        raise MailboxUnavailable(_describe(error)) from None
    return client


def _server_name(client: IMAPClient, folder: str) -> str:
    """``folder`` with ``/`` as the hierarchy separator, in the server's own (Dovecot's maildir: ``.``)."""
    try:
        namespaces = client.namespace().personal or ()
        delimiter = namespaces[0][1] if namespaces and namespaces[0][1] else "/"
    except IMAPClientError:
        delimiter = "/"
    if isinstance(delimiter, bytes):
        delimiter = delimiter.decode("ascii", "replace")
    return folder.replace("/", delimiter)


def _ensure_folder(client: IMAPClient, name: str) -> bool:
    """Whether the done folder exists (made if missing)."""
    try:
        if not client.folder_exists(name):
            client.create_folder(name)
            client.subscribe_folder(name)
        return True
    except IMAPClientError:
        log.warning("the done folder cannot be made: processed messages are flagged instead")
        return False


def put_away(client: IMAPClient, uid: int, done_folder: str | None) -> str:
    """Move a processed message out of the read folder; returns how: moved, copied, flagged, or
    gone (another process put it away first)."""
    if done_folder and client.has_capability("MOVE"):
        try:
            client.move([uid], done_folder)
        except IMAPClientError as error:
            if any(code in str(error) for code in ("EXPUNGEISSUED", "NONEXISTENT")):
                return "gone"
            raise
        return "moved"
    if done_folder and client.has_capability("UIDPLUS"):
        client.copy([uid], done_folder)
        client.add_flags([uid], [b"\\Deleted"])
        client.uid_expunge([uid])
        return "copied"
    client.add_flags([uid], [b"\\Seen", KEYWORD.encode()])
    return "flagged"


def _server_date(value) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _fetch(client: IMAPClient, uid: int, size: int) -> tuple[bytes | None, bool]:
    """(the message, False), or (its headers, True) when it is too big to take whole; (None, _)
    when it is gone (another process put it away meanwhile)."""
    part = b"BODY[HEADER]" if size > MAX_BYTES else b"BODY[]"
    data = client.fetch([uid], ["BODY.PEEK[HEADER]" if size > MAX_BYTES else "BODY.PEEK[]"]).get(uid)
    if data is None or data.get(part) is None:
        return None, size > MAX_BYTES
    return data[part], size > MAX_BYTES


def _read(db_session: Session, client: IMAPClient, config: MailboxConfig, now: datetime) -> PassReport:
    report = PassReport()
    done = _server_name(client, config.done_folder)
    if not _ensure_folder(client, done):
        done = None
    selected = client.select_folder(config.folder)
    validity = selected.get(b"UIDVALIDITY", 0)
    uids = sorted(client.search(["NOT", "DELETED", "NOT", "KEYWORD", KEYWORD]))[:BATCH]
    facts = client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE"]) if uids else {}
    for uid in uids:
        key = f"{config.folder}:{validity}:{uid}"
        row = db_session.scalar(select(InboundEmail).where(InboundEmail.mailbox_key == key))
        if row is None:
            fact = facts.get(uid)
            if fact is None:
                continue  # gone since the search: another process put it away
            size = int(fact.get(b"RFC822.SIZE") or 0)
            raw, headers_only = _fetch(client, uid, size)
            if raw is None:
                continue
            try:
                row = store_message(
                    db_session,
                    mailbox_key=key,
                    raw=raw,
                    size=size or len(raw),
                    headers_only=headers_only,
                    server_date=_server_date(fact.get(b"INTERNALDATE")),
                    now=now,
                )
                status = row.status
                db_session.commit()
            except IntegrityError:  # another process recorded it first: it only needs moving
                db_session.rollback()
                row = db_session.scalar(select(InboundEmail).where(InboundEmail.mailbox_key == key))
                if row is None:
                    raise
                report.already += 1
            else:
                report.read += 1
                report.notices += status == "notice"
                report.triage += status == "triage"
                report.duplicates += status == "duplicate"
        else:
            report.already += 1
        put_away(client, uid, done)
        row.moved_at = now
        db_session.commit()
        report.moved += 1
    return report


def poll_once(db_session: Session, config: MailboxConfig, *, now: datetime, client: IMAPClient | None = None):
    """One pass over the mailbox (see the module docstring): the :class:`PassReport`, or
    :class:`MailboxUnavailable` after recording the channel's failure. ``client``: an open
    connection to use (``mailbox run``'s), else one is opened and closed."""
    own = client is None
    try:
        if own:
            client = connect(config)
        try:
            report = _read(db_session, client, config, now)
        finally:
            if own:
                _logout(client)
    except (MailboxUnavailable, *_CONNECTION_ERRORS) as error:
        db_session.rollback()
        kind = str(error) if isinstance(error, MailboxUnavailable) else _describe(error)
        record_channel_failure(
            db_session, channel=CHANNEL, gateway=CHANNEL, error=kind, now=now, degraded_after=DEGRADED_AFTER
        )
        db_session.commit()
        log.warning("mailbox pass failed", extra={"error": kind})
        raise MailboxUnavailable(kind) from None
    record_channel_success(db_session, channel=CHANNEL, gateway=CHANNEL, now=now)
    db_session.commit()
    if report.read or report.already:
        log.info("mailbox pass", extra=report.as_dict())
    return report


def _logout(client: IMAPClient) -> None:
    with contextlib.suppress(*_CONNECTION_ERRORS):  # the connection is gone either way
        client.logout()


def poll_due(db_session: Session, config: MailboxConfig, now: datetime) -> bool:
    """Whether ``IMAP_POLL_SECONDS`` have passed since the last pass (succeeded or failed)."""
    from notifications.models import ChannelState

    state = db_session.get(ChannelState, CHANNEL)
    if state is None:
        return True
    last = max((at for at in (state.last_success_at, state.last_failure_at) if at is not None), default=None)
    return last is None or (now - last).total_seconds() >= config.poll_seconds


@planner("incidents.mailbox")
def plan_mailbox(db_session: Session, now: datetime) -> None:
    """The scheduler's pass over the supplier mailbox, every ``IMAP_POLL_SECONDS`` (off without
    ``IMAP_HOST``). A refusing server is recorded, not raised: the other planners go on."""
    config = configured()
    if config is None or not poll_due(db_session, config, now):
        return
    with contextlib.suppress(MailboxUnavailable):  # recorded as the channel's failure; the next pass tries again
        poll_once(db_session, config, now=now)


def run_forever(app, config: MailboxConfig, stop: threading.Event) -> None:
    """Read the mailbox until ``stop`` is set: a pass, then IMAP IDLE until the server reports
    news or ``IMAP_POLL_SECONDS`` pass, then the next pass; reconnects after a failure."""
    while not stop.is_set():
        with app.app_context():
            try:
                client = connect(config)
            except MailboxUnavailable:
                with contextlib.suppress(MailboxUnavailable):
                    poll_once(db.session, config, now=current_clock().now())  # records the failure
                db.session.remove()
                stop.wait(config.poll_seconds)
                continue
            try:
                while not stop.is_set():
                    poll_once(db.session, config, now=current_clock().now(), client=client)
                    if not client.has_capability("IDLE"):
                        stop.wait(config.poll_seconds)
                        continue
                    _idle(client, min(config.poll_seconds, IDLE_MAX_SECONDS), stop)
            except (MailboxUnavailable, *_CONNECTION_ERRORS):  # recorded by the pass, or lost while idle
                stop.wait(config.poll_seconds)
            finally:
                db.session.remove()
                _logout(client)


def _idle(client: IMAPClient, seconds: int, stop: threading.Event) -> None:
    """IMAP IDLE until the server reports news, ``seconds`` pass or ``stop`` is set (checked
    every second, so that a stop request ends the reader at once)."""
    client.idle()
    try:
        for _ in range(seconds):
            if stop.is_set() or client.idle_check(timeout=1):
                return
    finally:
        client.idle_done()


# --- flask mailbox poll | run -------------------------------------------------------------------

mailbox_cli = AppGroup("mailbox", help="The supplier mailbox (IMAP).")


def _config_or_exit() -> MailboxConfig:
    config = configured()
    if config is None:
        raise click.ClickException("mailbox reading is off: set IMAP_HOST (see the README)")
    return config


@mailbox_cli.command("poll")
def poll_command() -> None:
    """Read the mailbox once: new messages become notices or wait for triage."""
    config = _config_or_exit()
    try:
        report = poll_once(db.session, config, now=current_clock().now())
    except MailboxUnavailable as error:
        raise click.ClickException(f"the mail server cannot be read: {error}") from None
    click.echo(
        f"Read {report.read} new message(s): {report.notices} notice(s), {report.triage} to triage, "
        f"{report.duplicates} duplicate(s); {report.moved} put away."
    )


@mailbox_cli.command("run")
def run_command() -> None:
    """Keep reading the mailbox (IMAP IDLE, a pass at least every IMAP_POLL_SECONDS) until stopped."""
    config = _config_or_exit()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("mailbox reader started", extra={"poll_seconds": config.poll_seconds})
    try:
        run_forever(current_app._get_current_object(), config, stop)
    except KeyboardInterrupt:
        stop.set()
    log.info("mailbox reader stopped")


def init_app(app) -> None:
    """The CLI, and the start-up line that says whether the mailbox is read."""
    app.cli.add_command(mailbox_cli)
    settings = app.extensions["krisrutin.settings"]
    if settings.imap_host and settings.imap_security == "none" and settings.is_production:
        log.warning("IMAP_SECURITY=none: the mailbox password and the suppliers' mail travel unencrypted")
    if settings.imap_host:
        log.info(
            "mailbox reading is on",
            extra={"security": settings.imap_security, "poll_seconds": settings.imap_poll_seconds},
        )
    else:
        log.info("mailbox reading is off (IMAP_HOST is not set)")
