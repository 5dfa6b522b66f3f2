"""The SMTP e-mail channel: one connection reused for many messages.

The connection is opened on the first send and kept. Mail servers close idle connections
(typically after a few minutes, some with a "421 timeout" reply), so when a reused connection
turns out to be closed, the adapter reconnects once and sends that message again; a fresh
connection that fails is reported.

Errors are mapped to the channel's two failures:

- 5xx at RCPT (e.g. 550 5.1.1 mailbox unknown): :class:`PermanentFailure` with
  ``address_rejected``, except 5.7.x policy replies (relaying denied), which say nothing about
  the address;
- any other 5xx reply to a message (sender refused, 554 at DATA): :class:`PermanentFailure`;
- 4xx replies, refused connections, timeouts, TLS and socket errors, a connection that drops
  twice: :class:`TransientFailure`;
- a refused login, a server that requires one (530) or lacks STARTTLS: :class:`TransientFailure` as well. It is the
  channel's configuration, not the message, that is wrong; every message would fail the same
  way, and they should go out once an operator has fixed SMTP_USERNAME/SMTP_PASSWORD.

The bytes sent come from :func:`~notifications.channels.smtp_message.encode_message` (a cached
MIME body, see there), with ``sendmail`` and the MAIL FROM options ``send_message`` chose:
SMTPUTF8 and BODY=8BITMIME when an address is not ASCII (a server without SMTPUTF8 cannot take
such a message). Unlike ``send_message``, a body line beginning with "From " goes out as written,
not as ">From " (the mbox habit of the ``email`` generator's default arguments, which changed the
text; the async adapter never had it).

Failure messages never contain the recipient's address: server replies are quoted with every
address in them replaced, since the messages are logged and stored.
"""

from __future__ import annotations

import base64
import logging
import re
import smtplib
import ssl

from config.settings import Settings
from notifications.channels.base import OutgoingEmail, PermanentFailure, TransientFailure
from notifications.channels.smtp_message import EncodedEmail, encode_message

log = logging.getLogger("krisrutin.smtp_channel")

DEFAULT_TIMEOUT = 30.0
_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


def _quote_reply(reply: bytes | str | None, limit: int = 200) -> str:
    """A server reply fit for a log: decoded, one line, addresses replaced."""
    if reply is None:
        return ""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = _ADDRESS.sub("<address>", " ".join(text.split()))
    return text[:limit]


class SmtpEmail:
    """Sends e-mail through the SMTP server in the settings (SMTP_HOST, SMTP_PORT, SMTP_SECURITY)."""

    gateway = "smtp"

    def __init__(
        self, settings: Settings, *, tls_context: ssl.SSLContext | None = None, timeout: float = DEFAULT_TIMEOUT
    ):
        if not settings.smtp_host:
            raise ValueError("SmtpEmail needs SMTP_HOST")
        self.settings = settings
        self.timeout = timeout
        # The system's trusted CAs by default; tests pass a context that trusts their own certificate.
        self._tls_context = tls_context
        self._smtp: smtplib.SMTP | None = None

    # -- the channel interface ---------------------------------------------------------------

    def send_email(self, email: OutgoingEmail) -> str:
        """Send one message; returns its Message-ID, which is the gateway's id for it."""
        encoded = encode_message(self.settings, email)
        for attempt in (1, 2):
            reused = self._smtp is not None
            smtp = self._connection()
            try:
                smtp.sendmail(encoded.sender, [encoded.recipient], encoded.data, _mail_options(smtp, encoded))
            except smtplib.SMTPServerDisconnected as error:
                self._drop()
                if reused and attempt == 1:
                    log.info("SMTP server had closed the idle connection; reconnecting")
                    continue
                raise TransientFailure("SMTP connection closed by the server during the send") from error
            except (ConnectionResetError, BrokenPipeError) as error:
                self._drop()
                if reused and attempt == 1:
                    log.info("SMTP connection was reset while idle; reconnecting")
                    continue
                raise TransientFailure(f"SMTP connection lost during the send ({type(error).__name__})") from error
            except smtplib.SMTPRecipientsRefused as error:
                self._keep_if_open()
                code, reply = next(iter(error.recipients.values()), (0, b""))
                raise recipient_failure(code, reply) from error
            except smtplib.SMTPResponseException as error:
                self._keep_if_open()
                if error.smtp_code == 421 and reused and attempt == 1:
                    # Some servers (Postfix) say "421 timeout" when they end an idle session.
                    log.info("SMTP server ended the idle session (421); reconnecting")
                    self._drop()
                    continue
                step = {smtplib.SMTPSenderRefused: "MAIL FROM", smtplib.SMTPDataError: "DATA"}.get(type(error))
                raise reply_failure(error.smtp_code, error.smtp_error, step=step or "the send") from error
            except smtplib.SMTPNotSupportedError as error:
                # Raised when an address needs SMTPUTF8 and the server does not offer it.
                raise PermanentFailure(
                    "the SMTP server cannot deliver to an address with non-ASCII characters (no SMTPUTF8)",
                    address_rejected=True,
                ) from error
            except (smtplib.SMTPException, OSError) as error:
                self._drop()
                raise TransientFailure(f"SMTP send failed ({type(error).__name__})") from error
            return email.message_id
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Say goodbye to the server (QUIT) and close the connection; errors on the way out are ignored."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    # -- the connection -------------------------------------------------------------------------

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._open()
        return self._smtp

    def _context(self) -> ssl.SSLContext:
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context()
        return self._tls_context

    def _open(self) -> smtplib.SMTP:
        settings = self.settings
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        try:
            if settings.smtp_security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.smtp_host, settings.smtp_port, timeout=self.timeout, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=self.timeout)
        except smtplib.SMTPResponseException as error:
            raise connection_refused(where, error.smtp_code, error.smtp_error) from error
        except (smtplib.SMTPException, OSError) as error:
            raise connection_failed(where, type(error).__name__) from error
        try:
            smtp.ehlo()
            if settings.smtp_security == "starttls":
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if settings.smtp_username:
                _login(smtp, settings.smtp_username, settings.smtp_password or "")
        except smtplib.SMTPAuthenticationError as error:
            smtp.close()
            raise login_refused(where, error.smtp_code) from error
        except smtplib.SMTPNotSupportedError as error:
            smtp.close()
            need = "STARTTLS" if settings.smtp_security == "starttls" and not smtp.has_extn("starttls") else "AUTH"
            raise not_offered(where, need) from error
        except smtplib.SMTPResponseException as error:
            smtp.close()
            raise session_refused(where, error.smtp_code, error.smtp_error) from error
        except (smtplib.SMTPException, OSError) as error:
            smtp.close()
            raise session_failed(where, type(error).__name__) from error
        log.debug("SMTP connection opened", extra={"smtp_server": where})
        return smtp

    def _drop(self) -> None:
        """Forget a connection that is no longer usable, without a QUIT."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _keep_if_open(self) -> None:
        # smtplib has already sent RSET after a refusal; it closes the socket itself on a 421.
        if self._smtp is not None and self._smtp.sock is None:
            self._drop()


def _mail_options(smtp: smtplib.SMTP, encoded: EncodedEmail) -> tuple[str, ...]:
    """MAIL FROM's options, as ``smtplib.SMTP.send_message`` chose them: SMTPUTF8 (and
    BODY=8BITMIME) for a non-ASCII address, which a server without SMTPUTF8 cannot take."""
    if not encoded.smtputf8:
        return ()
    if not smtp.has_extn("smtputf8"):
        raise smtplib.SMTPNotSupportedError("an address needs SMTPUTF8, which the server does not offer")
    return ("SMTPUTF8", "BODY=8BITMIME")


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """Log in; smtplib encodes credentials as ASCII, so a password with å, ä or ö is sent by hand in
    UTF-8 (RFC 4616 for PLAIN; LOGIN servers expect the same bytes)."""
    if username.isascii() and password.isascii():
        smtp.login(username, password)
        return
    mechanisms = (smtp.esmtp_features.get("auth") or "").upper().split()
    if "PLAIN" in mechanisms:
        token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode()).decode()
        code, reply = smtp.docmd("AUTH", f"PLAIN {token}")
    elif "LOGIN" in mechanisms:
        code, reply = smtp.docmd("AUTH", "LOGIN")
        if code == 334:
            code, reply = smtp.docmd(base64.b64encode(username.encode()).decode())
        if code == 334:
            code, reply = smtp.docmd(base64.b64encode(password.encode()).decode())
    else:
        raise smtplib.SMTPNotSupportedError("no AUTH PLAIN or LOGIN for a non-ASCII password")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


# The failures of opening a session, the same words from the sync and the async adapter; ``where``
# is "host:port", ``cause`` the name of what went wrong underneath (never an address or a reply's
# personal data: replies go through _quote_reply).


def connection_refused(where: str, code: int, reply: bytes | str | None) -> TransientFailure:
    return TransientFailure(f"SMTP server {where} refused the connection: {code} {_quote_reply(reply)}")


def connection_failed(where: str, cause: str) -> TransientFailure:
    return TransientFailure(f"could not connect to the SMTP server {where} ({cause})")


def login_refused(where: str, code: int) -> TransientFailure:
    return TransientFailure(f"SMTP server {where} refused the login ({code}); check SMTP_USERNAME and SMTP_PASSWORD")


def not_offered(where: str, extension: str) -> TransientFailure:
    return TransientFailure(f"SMTP server {where} does not offer {extension}; check SMTP_SECURITY")


def session_refused(where: str, code: int, reply: bytes | str | None) -> TransientFailure:
    return TransientFailure(f"SMTP server {where} refused the session: {code} {_quote_reply(reply)}")


def session_failed(where: str, cause: str) -> TransientFailure:
    return TransientFailure(f"SMTP session with {where} failed ({cause})")


def recipient_failure(code: int, reply: bytes | str | None) -> TransientFailure | PermanentFailure:
    """The failure for a recipient refused at RCPT with ``code`` (the sync and the async adapter)."""
    detail = f"{code} {_quote_reply(reply)}".strip()
    if 500 <= code < 600:
        # 5.7.x is policy (relaying denied, our sender not allowed): the contact's address may be fine.
        policy = _quote_reply(reply).startswith("5.7.")
        return PermanentFailure(f"recipient refused by the SMTP server: {detail}", address_rejected=not policy)
    return TransientFailure(f"recipient deferred by the SMTP server: {detail}")


def reply_failure(code: int, reply: bytes | str | None, *, step: str) -> TransientFailure | PermanentFailure:
    """The failure for a refusal at ``step`` ("MAIL FROM", "DATA", "the send") other than at RCPT."""
    detail = f"{code} {_quote_reply(reply)}".strip()
    if code == 530:
        # RFC 4954 "authentication required": the channel's configuration, not this message.
        return TransientFailure(f"SMTP server requires a login ({detail}); set SMTP_USERNAME and SMTP_PASSWORD")
    if 500 <= code < 600:
        return PermanentFailure(f"SMTP server refused the message at {step}: {detail}")
    return TransientFailure(f"SMTP server deferred the message at {step}: {detail}")
