"""RFC 2920 PIPELINING in the asynchronous SMTP channel, seen on the wire.

A relay (an asyncio TCP proxy in the test's loop) between the adapter and the tests' SMTP server
records what the adapter writes, chunk by chunk; a scripted server plays a relay that accepts
DATA after refusing the recipient. The adapter's other behaviours run against servers with and
without PIPELINING in ``test_smtp_async_channel.py``.
"""

import asyncio

import pytest

from notifications.channels.base import OutgoingEmail, PermanentFailure, TransientFailure
from notifications.channels.smtp_async import AsyncSmtpEmail
from notifications.channels.smtp_message import encode_message
from tests.notifications.test_smtp_channel import RECIPIENT, email, settings_for
from tests.support.smtp_server import SmtpTestServer


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def server(request):
    server = SmtpTestServer(pipelining=request.param).start()
    yield server
    server.stop()


async def relay(host, port, chunks):
    """A TCP proxy to ``host:port``; appends each chunk the client writes to ``chunks``."""

    async def pump(reader, writer, record):
        try:
            while data := await reader.read(65536):
                if record:
                    chunks.append(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def serve(client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(pump(client_reader, server_writer, True), pump(server_reader, client_writer, False))

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def send_through_relay(server, emails):
    """Send ``emails`` one after another through a relay to ``server``; returns the chunks."""
    chunks: list[bytes] = []

    async def main():
        proxy = await relay(server.host, server.port, chunks)
        port = proxy.sockets[0].getsockname()[1]
        channel = AsyncSmtpEmail(settings_for(server, SMTP_PORT=str(port)), max_connections=1)
        try:
            for message in emails:
                await channel.send_email(message)
        finally:
            await channel.aclose()
            proxy.close()

    asyncio.run(main())
    return chunks


def test_a_server_offering_pipelining_gets_the_envelope_and_data_in_one_write(server):
    chunks = send_through_relay(server, [email(1), email(2)])

    assert len(server.wait_for(2)) == 2
    envelopes = [chunk for chunk in chunks if b"MAIL FROM:" in chunk]
    assert len(envelopes) == 2
    pipelined = server.handler.pipelining
    for chunk in envelopes:
        # Pipelined: one write carries MAIL FROM, RCPT TO and DATA; otherwise each waits for its reply.
        assert (b"RCPT TO:<" + RECIPIENT.encode() + b">\r\nDATA\r\n" in chunk) is pipelined
        assert (b"RCPT TO:" in chunk) is pipelined
        # The message itself follows DATA's 354 in either case, never in the envelope's write.
        assert b"Message-ID:" not in chunk


def test_both_ways_deliver_the_same_bytes_with_a_line_that_starts_with_a_dot(server):
    # A line that starts with "." must be doubled on the wire and arrive as written.
    message = OutgoingEmail(
        to=RECIPIENT,
        subject="Avbrott i larmtjänsten",
        text="Hej!\n.\n..två punkter\n.sista raden\n",
        html=None,
        message_id="<msg-dots@krisrutin>",
    )
    expected = encode_message(settings_for(server), message).data

    send_through_relay(server, [message])

    (received,) = server.wait_for(1)
    assert received.raw == expected
    assert f"SIZE={len(expected)}" in received.mail_options
    assert "BODY=8BITMIME" in received.mail_options


class ScriptedRelay:
    """An SMTP server that offers PIPELINING, refuses the recipient and still says 354 to DATA
    (RFC 2920 allows it); records the lines it gets after the 354 and the commands."""

    def __init__(self, *, silent_after_mail=False, rcpt_reply=b"550 5.1.1 No such user here\r\n", pipelining=True):
        self.extensions = b"250-PIPELINING\r\n" if pipelining else b""
        self.silent_after_mail = silent_after_mail  # answer MAIL FROM, then nothing more
        self.rcpt_reply = rcpt_reply
        self.commands: list[bytes] = []
        self.data_lines: list[bytes] = []

    async def serve(self, reader, writer):
        writer.write(b"220 relay.test.invalid ESMTP\r\n")
        while line := await reader.readline():
            command = line.split(b" ", 1)[0].strip().upper()
            self.commands.append(command)
            if command == b"EHLO":
                writer.write(b"250-relay.test.invalid\r\n" + self.extensions + b"250 8BITMIME\r\n")
            elif command == b"MAIL":
                writer.write(b"250 2.1.0 OK\r\n")
                if self.silent_after_mail:
                    await writer.drain()
                    await reader.read()  # until the client gives up and closes
                    break
            elif command == b"RCPT":
                writer.write(self.rcpt_reply)
            elif command == b"DATA":
                writer.write(b"354 Go ahead\r\n")
                await writer.drain()
                while (data_line := await reader.readline()) and data_line != b".\r\n":
                    self.data_lines.append(data_line)
                self.data_lines.append(data_line)
                writer.write(b"554 5.5.1 No valid recipients\r\n")
            elif command == b"RSET":
                writer.write(b"250 2.0.0 OK\r\n")
            elif command == b"QUIT":
                writer.write(b"221 Bye\r\n")
                await writer.drain()
                break
            await writer.drain()
        writer.close()


def send_to_scripted(scripted, expected, **options):
    """Send one e-mail to ``scripted``; returns the failure it raises (of type ``expected``) and
    the connections left open."""

    async def main():
        listener = await asyncio.start_server(scripted.serve, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        channel = AsyncSmtpEmail(settings_for(None, SMTP_PORT=str(port)), max_connections=1, **options)
        try:
            with pytest.raises(expected) as caught:
                await channel.send_email(email())
            return caught.value, channel.open_connections
        finally:
            await channel.aclose()
            listener.close()

    return asyncio.run(main())


def test_a_relay_that_accepts_data_after_refusing_the_recipient_gets_no_message():
    scripted = ScriptedRelay()

    failure, _ = send_to_scripted(scripted, PermanentFailure)

    assert failure.address_rejected is True
    assert "550" in str(failure)
    # The empty message is ended at once, and the envelope reset, before the session ends.
    assert scripted.data_lines == [b".\r\n"]
    assert scripted.commands == [b"EHLO", b"MAIL", b"RCPT", b"DATA", b"RSET", b"QUIT"]


def test_a_relay_that_goes_silent_within_the_group_times_out_as_transient_and_is_not_reused():
    scripted = ScriptedRelay(silent_after_mail=True)

    failure, open_connections = send_to_scripted(scripted, TransientFailure, timeout=0.3)

    assert failure.rate_limited is False
    assert open_connections == 0  # a reply may still come: that session is never used again
    assert scripted.commands == [b"EHLO", b"MAIL"]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_a_malformed_reply_is_transient_and_that_session_is_not_reused(pipelining):
    scripted = ScriptedRelay(rcpt_reply=b"2.1.5 recipient ok, but no reply code\r\n", pipelining=pipelining)

    failure, open_connections = send_to_scripted(scripted, TransientFailure, timeout=5)

    assert "Malformed" in str(failure), str(failure)  # at once, not after waiting for more replies
    assert failure.rate_limited is False
    assert open_connections == 0  # a reply may still be on its way: never mistaken for another's
