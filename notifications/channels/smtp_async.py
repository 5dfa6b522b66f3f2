"""The asynchronous SMTP e-mail channel (issue 18): a pool of connections in one event loop.

The e-mail lane runs one event loop with up to ``max_connections`` messages in flight; this
adapter is built inside that loop, one per lane, and is safe for that many concurrent
:meth:`AsyncSmtpEmail.send_email` calls. Each send takes a slot (an ``asyncio.Semaphore`` of
``max_connections``) and then a connection: the idle one used most recently, or a new one when
none is idle. A connection serves one send at a time and many sends one after another, and
returns to the pool afterwards. Since each slot holds at most one connection and a connection is
only opened when none is idle, no more than ``max_connections`` are ever open, and only as many
as the load needed. aiosmtplib 5.1.3 does the protocol (its ``SMTP`` object per connection).

It behaves as the synchronous :class:`~notifications.channels.smtp.SmtpEmail` does, by design:

- the same bytes (:func:`~notifications.channels.smtp_message.encode_message`, with its cached
  MIME body), envelope sender, SMTP_SECURITY modes (``none``, ``starttls``, ``ssl`` with ``tls_context``, by default the
  system's CAs) and login. aiosmtplib encodes the user name and password as UTF-8 itself
  (``aiosmtplib.auth._ensure_bytes``, for PLAIN, LOGIN and CRAM-MD5), so a password with å, ä
  or ö needs no hand-made AUTH here, unlike smtplib. MAIL FROM's options are chosen as
  aiosmtplib's ``send_message`` chose them: SMTPUTF8 for a non-ASCII address, BODY=8BITMIME
  whenever the server offers 8BITMIME (harmless: the message is 7-bit);
- the same failures (see the sync module): 5xx at RCPT is permanent and rejects the address,
  except 5.7.x policy replies; any other 5xx is permanent; 4xx, timeouts, refused connections,
  TLS and socket errors are transient; a refused login, a 530 or a missing STARTTLS/AUTH is
  transient with the same messages naming the settings; an address that needs SMTPUTF8 on a
  server without it is permanent and rejects the address. Failure messages never contain an
  address (server replies go through ``_quote_reply``);
- a reused connection that turns out closed (a disconnect, a reset, a 421 such as Postfix's
  "421 timeout" for an idle session) is dropped, and the message is sent again once on a fresh
  connection. An idle connection that the event loop already knows to be closed is skipped
  without costing that one retry.

New here: **a 421 that is not the idle-close case** (on a fresh connection: at the greeting,
"421 4.7.0 too many connections", or at any later step; or any 421 after the one reconnect) is a
:class:`TransientFailure` with ``rate_limited=True``. A server that says 421 to a session it has
just opened is overloaded or limiting us, and tells nothing about the message: the lane slows
down and retries without counting a failed attempt. The connection is closed (aiosmtplib closes
on 421, as RFC 5321 says the server does). So is a reply of **432 or with the enhanced status
4.3.2** at any step (Microsoft 365's "432 4.3.2 … sender thread limit exceeded" above three
connections per mailbox): rate-limited, and that connection is closed, so the pool holds one
fewer while the window shrinks.

**RFC 2920 PIPELINING** when the server offers it (``notifications.channels.smtp_pipelining``):
MAIL FROM, RCPT TO and DATA go in one write and the message after the 354, two round trips per
message instead of four, with the same replies mapped to the same failures; a server without it
gets aiosmtplib's ``sendmail``. Measured with the bench's SMTP peer answering each message after
100 ms (``bench.service_fanout``, 3,000 e-mails over 100 connections, 2026-12-06): 392-443 e-mails
per second against 340-355 without pipelining.

A send that is cancelled mid-transaction closes its connection (the session's state is unknown).
:meth:`AsyncSmtpEmail.aclose` QUITs and closes every idle connection; one still in use when it
is called is closed, without QUIT, when its send ends. A send after ``aclose`` opens a new
connection, as the sync adapter does after ``close``.

Measured before the cached MIME body (2026-12-06, ``python -m bench.smtp_client``, this 2-CPU
machine shared with other jobs, load average 1–4; the tests' SMTP server in a child process, so
its CPU is counted apart, from ``/proc``; client CPU = ``time.process_time()`` of the sending
process over the sends, building each message included; 2,000 messages of 2.9 KB, plain and
HTML; medians of 3 rounds):

- no latency at the server: SmtpEmail, one connection: **2.8 ms CPU per message** (2.77–2.84);
  AsyncSmtpEmail, pool of 32: **3.2 ms** (3.11–3.31), about 0.45 ms (16 %) more. Both ~190
  msg/s, set by the two processes' CPU (the server's ~2 ms per message) on two shared cores.
- the server waiting 100 ms per message: SmtpEmail 3.3–3.6 ms CPU per message (200 messages),
  9.3 msg/s; AsyncSmtpEmail 3.0–3.3 ms, 115–160 msg/s with 32 DATA in flight at the server
  (not 320/s: the rest of each send is CPU, queued behind 31 others in one loop and the server).

With it (:mod:`notifications.channels.smtp_message`, where the numbers are): AsyncSmtpEmail
0.74 ms CPU per message, SmtpEmail 0.6 ms; with 100 ms at the server 0.79 ms and 178 msg/s.

Profiled then, about half of the client's CPU in both adapters was building the ``EmailMessage``
(the ``email`` package's header parsing under its default policy) and ~40 % flattening it, which
``smtp_message.encode_message`` now does once per letter; aiosmtplib's commands and the event
loop cost about 0.2 ms per message more than smtplib's. One lane's loop thus tops out near
1,300 messages per second of CPU for a letter to many, before the server.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

import aiosmtplib

from config.settings import Settings
from notifications.channels import smtp_pipelining
from notifications.channels.base import OutgoingEmail, PermanentFailure, TransientFailure
from notifications.channels.smtp import (
    DEFAULT_TIMEOUT,
    _quote_reply,
    connection_failed,
    connection_refused,
    login_refused,
    not_offered,
    recipient_failure,
    reply_failure,
    session_failed,
    session_refused,
)
from notifications.channels.smtp_message import EncodedEmail, encode_message

log = logging.getLogger("krisrutin.smtp_channel")

_STEPS = {aiosmtplib.SMTPSenderRefused: "MAIL FROM", aiosmtplib.SMTPDataError: "DATA"}


class _Connection:
    """One pooled aiosmtplib connection and the pool generation it was opened in."""

    __slots__ = ("closed", "generation", "smtp")

    def __init__(self, smtp: aiosmtplib.SMTP, generation: int):
        self.smtp = smtp
        self.generation = generation
        self.closed = False


class AsyncSmtpEmail:
    """Sends e-mail through the SMTP server in the settings over a pool of up to
    ``max_connections`` connections; build it inside the lane's running event loop."""

    gateway = "smtp"

    def __init__(
        self,
        settings: Settings,
        *,
        max_connections: int,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        if not settings.smtp_host:
            raise ValueError("AsyncSmtpEmail needs SMTP_HOST")
        if max_connections < 1:
            raise ValueError("AsyncSmtpEmail needs max_connections >= 1")
        self.settings = settings
        self.max_connections = max_connections
        self.timeout = timeout
        # The system's trusted CAs by default (loaded once, off the loop); tests pass their own.
        self._tls_context = tls_context
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Connection] = []  # a stack: the most recently used connection on top
        self._open = 0
        self._generation = 0  # aclose() starts a new one; older connections are not pooled again
        self._local_hostname: str | None = None
        self._where = f"{settings.smtp_host}:{settings.smtp_port}"

    @property
    def open_connections(self) -> int:
        """Connections open now, idle or in use (never more than ``max_connections``)."""
        return self._open

    # -- the channel interface ---------------------------------------------------------------

    async def send_email(self, email: OutgoingEmail) -> str:
        """Send one message; returns its Message-ID, which is the gateway's id for it."""
        encoded = encode_message(self.settings, email)
        async with self._slots:
            for attempt in (1, 2):
                connection = self._take_idle()
                reused = connection is not None
                if connection is None:
                    connection = await self._connect()
                retry = reused and attempt == 1
                try:
                    smtp = connection.smtp
                    options = _mail_options(smtp, encoded)
                    if smtp_pipelining.pipelined(smtp):
                        await smtp_pipelining.send(
                            smtp,
                            encoded.sender,
                            encoded.recipient,
                            encoded.data,
                            mail_options=options,
                            timeout=self.timeout,
                        )
                    else:
                        await smtp.sendmail(encoded.sender, [encoded.recipient], encoded.data, mail_options=options)
                except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException) as error:
                    at_rcpt = isinstance(error, aiosmtplib.SMTPRecipientsRefused)
                    refusal = error.recipients[0] if at_rcpt else error
                    step = "RCPT TO" if at_rcpt else _STEPS.get(type(error), "the send")
                    if _limits_us(refusal.code, refusal.message):
                        self._discard(connection)  # closed by the server on 421; one fewer on 432
                        if refusal.code == 421 and retry:
                            log.info("SMTP server ended the idle session (421); reconnecting")
                            continue
                        raise _rate_limited(refusal.code, refusal.message, step) from error
                    if refusal.code < 0:
                        # A malformed reply (aiosmtplib's -1): whatever the server says next may
                        # be mistaken for the next command's reply, so that session is not reused.
                        self._discard(connection)
                    else:
                        self._release(connection)
                    if at_rcpt:
                        raise recipient_failure(refusal.code, refusal.message) from error
                    raise reply_failure(refusal.code, refusal.message, step=step) from error
                except aiosmtplib.SMTPNotSupported as error:
                    # Raised before MAIL FROM when an address needs SMTPUTF8 and the server lacks it.
                    self._release(connection)
                    raise PermanentFailure(
                        "the SMTP server cannot deliver to an address with non-ASCII characters (no SMTPUTF8)",
                        address_rejected=True,
                    ) from error
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as error:
                    self._discard(connection)
                    if retry:
                        log.info("SMTP server had closed the idle connection; reconnecting")
                        continue
                    raise TransientFailure(f"SMTP connection lost during the send ({_cause_name(error)})") from error
                except ValueError as error:
                    # aiosmtplib checks each address before MAIL FROM; one it cannot send safely.
                    self._release(connection)
                    raise PermanentFailure(f"the SMTP client refused an address ({type(error).__name__})") from None
                except (aiosmtplib.SMTPException, OSError) as error:
                    # Timeouts (aiosmtplib closes the connection: the reply may still come) and the rest.
                    self._discard(connection)
                    raise TransientFailure(f"SMTP send failed ({_cause_name(error)})") from error
                except BaseException:
                    # Cancelled mid-transaction: the session's state is unknown; never reuse it.
                    self._discard(connection)
                    raise
                self._release(connection)
                return email.message_id
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """QUIT and close every idle connection (errors on the way out are ignored); connections
        still in use are closed when their send ends."""
        self._generation += 1
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(connection) for connection in idle))

    # -- the pool -------------------------------------------------------------------------------

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if connection.smtp.is_connected:
                return connection
            # The server closed it while idle and the loop has already seen the EOF.
            self._discard(connection)
        return None

    def _release(self, connection: _Connection) -> None:
        if connection.closed:
            return
        if connection.smtp.is_connected and connection.generation == self._generation:
            self._idle.append(connection)
        else:
            self._discard(connection)

    def _discard(self, connection: _Connection) -> None:
        """Forget a connection without a QUIT."""
        if not connection.closed:
            connection.closed = True
            self._open -= 1
            connection.smtp.close()

    async def _quit(self, connection: _Connection) -> None:
        try:
            await connection.smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            self._discard(connection)

    # -- opening a connection -------------------------------------------------------------------

    async def _context(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = await asyncio.to_thread(ssl.create_default_context)
        return self._tls_context

    async def _hostname(self) -> str:
        # What EHLO says, as smtplib's default; asked once per adapter (it may query DNS).
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def _connect(self) -> _Connection:
        settings, where = self.settings, self._where
        security = settings.smtp_security
        generation = self._generation  # an aclose() while we connect: this one is not pooled then
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            local_hostname=await self._hostname(),
            timeout=self.timeout,
            use_tls=security == "ssl",
            start_tls=False,  # STARTTLS below, where a missing one is reported as such
            tls_context=await self._context() if security != "none" else None,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPConnectResponseError as error:
            if _limits_us(error.code, error.message):
                raise _rate_limited(error.code, error.message, "the greeting") from error
            raise connection_refused(where, error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise connection_failed(where, _cause_name(error)) from error
        try:
            await smtp.ehlo()
            if security == "starttls":
                if not smtp.supports_extension("starttls"):
                    raise _NotOffered("STARTTLS")
                await smtp.starttls(tls_context=await self._context())
                await smtp.ehlo()
            if settings.smtp_username:
                if not smtp.supports_extension("auth"):
                    raise _NotOffered("AUTH")
                await smtp.login(settings.smtp_username, settings.smtp_password or "")
        except _NotOffered as missing:
            smtp.close()
            raise not_offered(where, str(missing)) from None
        except aiosmtplib.SMTPResponseException as error:
            smtp.close()
            if _limits_us(error.code, error.message):
                raise _rate_limited(error.code, error.message, "the session's start") from error
            if isinstance(error, aiosmtplib.SMTPAuthenticationError):
                raise login_refused(where, error.code) from error
            raise session_refused(where, error.code, error.message) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            smtp.close()
            raise session_failed(where, _cause_name(error)) from error
        except BaseException:
            smtp.close()
            raise
        smtp_pipelining.enable(smtp)
        self._open += 1
        log.debug("SMTP connection opened", extra={"smtp_server": where, "smtp_open": self._open})
        return _Connection(smtp, generation)


class _NotOffered(Exception):
    """The server lacks an extension the settings need (STARTTLS, AUTH)."""


def _mail_options(smtp: aiosmtplib.SMTP, encoded: EncodedEmail) -> list[str]:
    """MAIL FROM's options, as ``aiosmtplib.SMTP.send_message`` chose them: SMTPUTF8 for a
    non-ASCII address (a server without it cannot take the message), BODY=8BITMIME whenever the
    server offers 8BITMIME."""
    options = []
    if encoded.smtputf8:
        if not smtp.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("an address needs SMTPUTF8, which the server does not offer")
        options.append("SMTPUTF8")
    if smtp.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    return options


def _limits_us(code: int, reply: str | None) -> bool:
    """A reply that says the server takes no more from us right now, at any step: ``421``
    (overloaded, too many connections), ``432`` or the enhanced status code 4.3.2, "system not
    accepting network messages" (RFC 3463). Microsoft 365's SMTP submission answers ``432 4.3.2
    STOREDRV.ClientSubmit; sender thread limit exceeded`` above its three connections per mailbox."""
    return code in (421, 432) or (400 <= code < 500 and (reply or "").lstrip().startswith("4.3.2"))


def _rate_limited(code: int, reply: str, step: str) -> TransientFailure:
    return TransientFailure(
        f"SMTP server is limiting us ({code} at {step}): {_quote_reply(reply)}".strip(), rate_limited=True
    )


def _cause_name(error: BaseException) -> str:
    """The name of what went wrong underneath: aiosmtplib wraps socket and TLS errors (an
    ``SMTPConnectError`` caused by an ``SSLCertVerificationError``), and the cause says more."""
    cause = error.__cause__
    return type(cause if isinstance(cause, OSError) else error).__name__
