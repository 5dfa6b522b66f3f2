"""RFC 2920 PIPELINING for the asynchronous SMTP channel: one mail transaction in two round trips.

Without it, aiosmtplib's ``sendmail`` waits for the server's reply to each of MAIL FROM, RCPT TO,
DATA and the message's end: four round trips per message, each through the server's event loop
and ours. A server that offers PIPELINING in its EHLO reply (Postfix, Exchange and Microsoft
365, Gmail and the big relays do) takes MAIL FROM, RCPT TO and DATA in one write and answers
them in order; the message follows its 354 (RFC 2920 lets DATA end a group, and the client waits
for its reply before the message). So a message costs two round trips: against a relay that is
busy or far away, a connection of the pool sends more messages per second, and both ends wake up
fewer times per message.

aiosmtplib 5.1.3 has no pipelining: its protocol object parses one reply per command and drops
what comes while no reply is awaited. :func:`enable` gives an open connection's protocol the
subclass below (its class is swapped: aiosmtplib builds the protocol itself), which keeps the
replies of a pipelined group that come before they are asked for; every other command goes
through aiosmtplib as before.

:func:`send` performs the transaction and raises what ``sendmail`` raises for the same replies,
so :class:`~notifications.channels.smtp_async.AsyncSmtpEmail` handles both paths alike:
``SMTPSenderRefused`` (MAIL FROM), ``SMTPRecipientsRefused`` (RCPT TO), ``SMTPDataError`` (DATA
or the message's end), ``SMTPServerDisconnected`` and timeouts. As RFC 2920 asks, every reply of
the group is read; when DATA was accepted after a refusal (a server may say 354 even though the
recipient was refused), the message is not sent: a lone "." ends the empty one, and RSET clears
the envelope, as ``sendmail`` does after a refusal. A 421 closes the connection, as aiosmtplib
does; when the server closes it after a refusal in the group, the refusal is what is reported. A
malformed reply raises aiosmtplib's ``SMTPResponseException`` with code -1 in its turn, as
``sendmail`` does; the adapter closes any session that gave one, on either path.
"""

from __future__ import annotations

import collections
import contextlib

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    MAX_RESPONSE_LENGTH,
    PERIOD_REGEX,
    SMTPProtocol,
    normalize_message_line_endings,
)
from aiosmtplib.response import SMTPResponse


class _PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol, keeping every reply of a pipelined group (see :func:`enable`)."""

    _expected: int  # replies of the group still to come; 0 outside a group
    _ready: collections.deque[SMTPResponse | Exception]  # replies (or a malformed one's error) not yet asked for

    def data_received(self, data: bytes) -> None:
        if not self._expected:
            super().data_received(data)
            return
        waiter = self._response_waiter
        if waiter is None:
            return
        self._buffer.extend(data)
        while self._expected:
            try:
                if len(self._buffer) > MAX_RESPONSE_LENGTH:  # as aiosmtplib: a server streaming endless lines
                    raise aiosmtplib.SMTPResponseException(-1, "Response too long")
                response = self._read_response_from_buffer()
            except Exception as error:  # a malformed reply: the group's reader gets it, in its turn
                del self._buffer[:]
                self._expected = 0
                if waiter.done():
                    self._ready.append(error)
                else:
                    self._set_response_exception(waiter, error)
                return
            if response is None:
                return
            self._expected -= 1
            if waiter.done():
                self._ready.append(response)
            else:
                waiter.set_result(response)

    async def _next_reply(self, timeout: float | None) -> SMTPResponse:
        if self._ready:
            reply = self._ready.popleft()
            if isinstance(reply, Exception):
                raise reply
            return reply
        return await self.read_response(timeout=timeout)

    async def transaction(self, commands: list[bytes], message: bytes, timeout: float | None) -> list[SMTPResponse]:
        """Write ``commands`` (the last being DATA) at once and read their replies; on a 354 to
        DATA after every other command was accepted, send ``message`` and add its reply. On a
        refusal, end an accepted DATA with a lone "." and add that reply too. Returns the replies
        read; stops early (without raising) when the connection is lost after a refusal."""
        if self._command_lock is None:
            raise aiosmtplib.SMTPServerDisconnected("Server not connected")
        async with self._command_lock:
            self._ready.clear()
            self._expected = len(commands)
            self._response_pending = True
            replies: list[SMTPResponse] = []
            try:
                self.write(b"".join(commands))
                for _ in commands:
                    replies.append(await self._next_reply(timeout))
            except aiosmtplib.SMTPServerDisconnected:
                if any(not _accepted(reply) for reply in replies):
                    return replies  # e.g. 421 to MAIL FROM, then the server closed the connection
                raise
            finally:
                self._expected = 0
                self._ready.clear()
            *envelope, data_reply = replies
            if data_reply.code != 354:
                return replies
            self._response_pending = True
            self.write(message if all(_accepted(reply) for reply in envelope) else b".\r\n")
            replies.append(await self.read_response(timeout=timeout))
            return replies


def _accepted(reply: SMTPResponse) -> bool:
    return reply.code in (250, 251, 354)


def enable(smtp: aiosmtplib.SMTP) -> bool:
    """Prepare an open connection for :func:`send` if its server offers PIPELINING (ask after
    the last EHLO); returns whether it does."""
    if not smtp.supports_extension("pipelining") or smtp.protocol is None:
        return False
    protocol = smtp.protocol
    protocol.__class__ = _PipeliningProtocol
    protocol._expected = 0
    protocol._ready = collections.deque()
    return True


def pipelined(smtp: aiosmtplib.SMTP) -> bool:
    """Whether :func:`enable` prepared this connection."""
    return isinstance(smtp.protocol, _PipeliningProtocol)


async def send(
    smtp: aiosmtplib.SMTP, sender: str, recipient: str, data: bytes, *, mail_options: list[str], timeout: float
) -> None:
    """One message to one recipient in a pipelined transaction; raises as ``sendmail`` would."""
    encoding = "utf-8" if any(option.upper() == "SMTPUTF8" for option in mail_options) else "ascii"
    # quote_address raises ValueError for an address that cannot go on a command line, as sendmail.
    mail_from, rcpt_to = (quote_address(address).encode(encoding) for address in (sender, recipient))
    normalized = normalize_message_line_endings(data)
    message = PERIOD_REGEX.sub(b"..", normalized) + b".\r\n"
    options = list(mail_options)
    if smtp.supports_extension("size"):
        options.insert(0, f"SIZE={len(normalized)}")  # RFC 1870, as sendmail counts it
    arguments = [b"FROM:" + mail_from, *(option.encode("ascii") for option in options), b"TO:" + rcpt_to]
    if any(COMMAND_INJECTION_REGEX.search(argument) for argument in arguments):
        raise ValueError("Command arg contains a prohibited control character")
    commands = [
        b"MAIL " + b" ".join(arguments[:-1]) + b"\r\n",
        b"RCPT " + arguments[-1] + b"\r\n",
        b"DATA\r\n",
    ]
    protocol = smtp.protocol
    assert isinstance(protocol, _PipeliningProtocol)
    try:
        replies = await protocol.transaction(commands, message, timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        smtp.close()  # as aiosmtplib: a lost reply leaves the session's state unknown
        raise
    if any(reply.code == 421 for reply in replies):
        smtp.close()  # the server is closing the session (RFC 5321 4.2.2), as aiosmtplib does
    mail_reply, *rest = replies
    if not _accepted(mail_reply):
        error: Exception = aiosmtplib.SMTPSenderRefused(mail_reply.code, mail_reply.message, sender)
    elif rest and not _accepted(rest[0]):
        error = aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(rest[0].code, rest[0].message, recipient)]
        )
    elif len(rest) > 1 and rest[1].code != 354:
        error = aiosmtplib.SMTPDataError(rest[1].code, rest[1].message)
    elif len(rest) > 2 and rest[2].code != 250:
        error = aiosmtplib.SMTPDataError(rest[2].code, rest[2].message)
    elif len(rest) > 2:
        return
    else:  # pragma: no cover - transaction() returns fewer replies only after a refusal
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    if smtp.is_connected:
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPException):
            await smtp.rset(timeout=timeout)  # as sendmail after a refusal; its failure is not ours
    raise error
