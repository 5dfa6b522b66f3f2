"""The asynchronous SMTP channel (a pool of aiosmtplib connections) against a real SMTP server
(aiosmtpd on 127.0.0.1): the sync channel's behaviours, and the pool's own.

Each test runs its scenario in a fresh event loop with ``asyncio.run``; the adapter is built
inside it, as the lane builds it. Each runs twice: against a server that offers RFC 2920
PIPELINING (the adapter's pipelined transaction, ``notifications.channels.smtp_pipelining``) and
against one that does not (aiosmtplib's ``sendmail``), which must behave alike.
"""

import asyncio
import functools
import socket
import time

import pytest

from notifications.channels.base import PermanentFailure, TransientFailure
from notifications.channels.smtp_async import AsyncSmtpEmail
from tests.notifications.test_smtp_channel import MAIL_FROM, RECIPIENT, REPLY_TO, email, settings_for
from tests.support.smtp_server import SmtpTestServer


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def pipelining(request):
    return request.param


@pytest.fixture
def smtp_server(pipelining):
    server = SmtpTestServer(pipelining=pipelining).start()
    yield server
    server.stop()


@pytest.fixture
def make_smtp_server(make_smtp_server, pipelining):
    return functools.partial(make_smtp_server, pipelining=pipelining)


def run(settings, scenario, *, max_connections=4, **options):
    """Build the adapter in a new event loop, run ``scenario(channel)``, then aclose() it."""

    async def main():
        channel = AsyncSmtpEmail(settings, max_connections=max_connections, **options)
        try:
            return await scenario(channel)
        finally:
            await channel.aclose()

    return asyncio.run(main())


async def until(condition, timeout=5.0):
    """Wait (letting the loop run) until ``condition()`` holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- the sync channel's behaviours ------------------------------------------------------------


def test_email_with_swedish_characters_arrives_with_plain_and_html_parts(smtp_server):
    async def scenario(channel):
        return await channel.send_email(email())

    gateway_id = run(settings_for(smtp_server), scenario)

    (received,) = smtp_server.wait_for(1)
    message = received.message
    assert gateway_id == "<msg-1@krisrutin>"
    assert received.mail_from == MAIL_FROM
    assert received.rcpt_tos == (RECIPIENT,)
    assert message["From"] == MAIL_FROM
    assert message["Reply-To"] == REPLY_TO
    assert message["To"] == RECIPIENT
    assert message["Subject"] == "Avbrott i larmtjänsten – åtgärdat (1)"
    assert message["Message-ID"] == "<msg-1@krisrutin>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content() == "Hej Åsa!\n\nÄrendet är löst. Översikt: https://krisrutin.example.se/\n"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hej Åsa! Ärendet är löst.</p>"
    assert received.raw.isascii()  # 7-bit clean on the wire, as the sync adapter sends it


def test_text_only_email_is_a_single_plain_part_without_reply_to_when_unset(smtp_server):
    async def scenario(channel):
        await channel.send_email(email(html=None))

    run(settings_for(smtp_server, MAIL_REPLY_TO=None), scenario)

    (received,) = smtp_server.wait_for(1)
    assert received.message.get_content_type() == "text/plain"
    assert received.message["Reply-To"] is None
    assert "Ärendet är löst" in received.message.get_content()


def test_messages_one_after_another_travel_over_one_connection(smtp_server):
    async def scenario(channel):
        for number in range(1, 6):
            await channel.send_email(email(number))
        return channel.open_connections

    assert run(settings_for(smtp_server), scenario) == 1

    received = smtp_server.wait_for(5)
    assert [r.message["Message-ID"] for r in received] == [f"<msg-{n}@krisrutin>" for n in range(1, 6)]
    assert smtp_server.connections == 1


def test_reconnects_once_when_the_server_dropped_the_idle_connection(smtp_server):
    async def scenario(channel):
        await channel.send_email(email(1))
        smtp_server.restart()  # closes every open connection; the loop has not seen it yet
        return await channel.send_email(email(2))

    assert run(settings_for(smtp_server), scenario) == "<msg-2@krisrutin>"

    received = smtp_server.wait_for(2)
    assert [r.message["Message-ID"] for r in received] == ["<msg-1@krisrutin>", "<msg-2@krisrutin>"]
    assert smtp_server.connections == 2


def test_reconnects_once_when_the_server_ended_the_idle_session_with_421(smtp_server):
    async def scenario(channel):
        await channel.send_email(email(1))
        smtp_server.time_out_next_session()
        await channel.send_email(email(2))

    run(settings_for(smtp_server), scenario)

    assert [r.message["Message-ID"] for r in smtp_server.wait_for(2)] == ["<msg-1@krisrutin>", "<msg-2@krisrutin>"]
    assert smtp_server.connections == 2


def test_421_again_after_the_reconnect_is_rate_limited(smtp_server):
    async def scenario(channel):
        await channel.send_email(email(1))
        smtp_server.time_out_next_session(2)
        with pytest.raises(TransientFailure, match="421") as caught:
            await channel.send_email(email(2))
        return caught.value

    failure = run(settings_for(smtp_server), scenario)
    assert failure.rate_limited is True


def test_recipient_refused_with_550_is_permanent_and_rejects_the_address(smtp_server):
    smtp_server.reject_recipient("unknown@omsorg.example.se")

    async def scenario(channel):
        with pytest.raises(PermanentFailure) as caught:
            await channel.send_email(email(to="unknown@omsorg.example.se"))
        await channel.send_email(email(2))  # the connection is still good for the next message
        return caught.value

    failure = run(settings_for(smtp_server), scenario)
    assert failure.address_rejected is True
    assert "550" in str(failure)
    assert "unknown@omsorg.example.se" not in str(failure)  # it gets logged
    assert len(smtp_server.wait_for(1)) == 1
    assert smtp_server.connections == 1


def test_relaying_denied_at_rcpt_is_permanent_but_says_nothing_about_the_address(smtp_server):
    smtp_server.reject_recipient(RECIPIENT, reply="554 5.7.1 <{address}>: Relay access denied")

    async def scenario(channel):
        with pytest.raises(PermanentFailure) as caught:
            await channel.send_email(email())
        return caught.value

    failure = run(settings_for(smtp_server), scenario)
    assert failure.address_rejected is False
    assert RECIPIENT not in str(failure)


def test_a_450_at_rcpt_is_transient_and_not_rate_limited(smtp_server):
    smtp_server.reject_recipient(RECIPIENT, reply="450 4.2.0 <{address}>: Recipient address rejected: Greylisted")

    async def scenario(channel):
        with pytest.raises(TransientFailure) as caught:
            await channel.send_email(email())
        return caught.value

    failure = run(settings_for(smtp_server), scenario)
    assert "450" in str(failure)
    assert RECIPIENT not in str(failure)
    assert failure.rate_limited is False


def test_a_432_at_rcpt_is_rate_limited_and_closes_that_connection(smtp_server):
    """The sender thread limit may also be answered at RCPT: the same as at DATA."""
    smtp_server.reject_recipient(RECIPIENT, reply="432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded")

    async def scenario(channel):
        with pytest.raises(TransientFailure) as caught:
            await channel.send_email(email())
        return caught.value, channel.open_connections

    failure, open_connections = run(settings_for(smtp_server), scenario)
    assert failure.rate_limited is True and "432" in str(failure)
    assert open_connections == 0


def test_sender_with_a_swedish_display_name(smtp_server):
    async def scenario(channel):
        await channel.send_email(email())

    run(settings_for(smtp_server, MAIL_FROM=f'"Välfärdsteknik, Exempelby kommun" <{MAIL_FROM}>'), scenario)

    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == MAIL_FROM
    assert received.message["From"].addresses[0].display_name == "Välfärdsteknik, Exempelby kommun"
    assert received.message["From"].addresses[0].addr_spec == MAIL_FROM


def test_451_at_data_is_transient_and_the_next_try_goes_through(smtp_server):
    smtp_server.defer_next_data(1)

    async def scenario(channel):
        with pytest.raises(TransientFailure, match="451"):
            await channel.send_email(email())
        await channel.send_email(email())

    run(settings_for(smtp_server), scenario)
    assert len(smtp_server.wait_for(1)) == 1
    assert smtp_server.connections == 1


def test_451_is_not_taken_for_the_server_limiting_us(smtp_server):
    smtp_server.defer_next_data(1)

    async def scenario(channel):
        with pytest.raises(TransientFailure) as caught:
            await channel.send_email(email())
        return caught.value

    assert run(settings_for(smtp_server), scenario).rate_limited is False


@pytest.mark.parametrize(
    "reply",
    [
        "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",  # Microsoft 365
        "452 4.3.2 System not accepting network messages",
    ],
)
def test_a_concurrency_limit_at_data_is_rate_limited_and_closes_that_connection(smtp_server, reply):
    """Microsoft 365 allows three connections per mailbox and answers 432 4.3.2 above them: the
    lane slows down (the failure is rate-limited, not a failed attempt) and the pool closes the
    connection the server refused, so that it holds fewer; the next message goes through."""
    smtp_server.defer_next_data(1, reply=reply)

    async def scenario(channel):
        with pytest.raises(TransientFailure, match=reply.split()[0]) as caught:
            await channel.send_email(email(1))
        after_refusal = channel.open_connections
        await channel.send_email(email(2))
        return caught.value, after_refusal

    failure, after_refusal = run(settings_for(smtp_server), scenario)
    assert failure.rate_limited is True
    assert after_refusal == 0, "the refused connection is closed, not pooled"
    assert [r.message["Message-ID"] for r in smtp_server.wait_for(1)] == ["<msg-2@krisrutin>"]
    assert smtp_server.connections == 2


def test_address_that_needs_smtputf8_on_a_server_without_it_is_permanent(make_smtp_server):
    server = make_smtp_server(smtputf8=False)

    async def scenario(channel):
        with pytest.raises(PermanentFailure) as caught:
            await channel.send_email(email(to="åsa@omsorg.example.se"))
        await channel.send_email(email(2))
        return caught.value

    failure = run(settings_for(server), scenario)
    assert failure.address_rejected is True
    assert "åsa" not in str(failure)
    assert [r.rcpt_tos for r in server.wait_for(1)] == [(RECIPIENT,)]


def test_server_down_is_transient(smtp_server):
    smtp_server.stop()

    async def scenario(channel):
        with pytest.raises(TransientFailure, match="could not connect") as caught:
            await channel.send_email(email())
        return caught.value, channel.open_connections

    failure, still_open = run(settings_for(smtp_server), scenario)
    assert failure.rate_limited is False
    assert still_open == 0


def test_server_gone_after_a_send_is_transient_once_the_reconnect_fails(smtp_server):
    async def scenario(channel):
        await channel.send_email(email())
        smtp_server.stop()
        with pytest.raises(TransientFailure):
            await channel.send_email(email(2))
        return channel.open_connections

    assert run(settings_for(smtp_server), scenario) == 0  # and aclose() has nothing to QUIT


def test_a_server_that_never_answers_times_out_as_transient():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts at the kernel level, never says hello

        async def scenario(channel):
            with pytest.raises(TransientFailure):
                await channel.send_email(email())

        run(settings_for(SMTP_PORT=str(silent.getsockname()[1])), scenario, timeout=0.2)


def test_aclose_quits_and_a_later_send_opens_a_new_connection(smtp_server):
    async def scenario(channel):
        await channel.send_email(email(1))
        await channel.aclose()
        await channel.aclose()
        closed = channel.open_connections
        await channel.send_email(email(2))
        return closed

    assert run(settings_for(smtp_server), scenario) == 0
    smtp_server.wait_for(2)
    assert smtp_server.connections == 2
    assert smtp_server.quits == 2  # one by the explicit aclose(), one by run()'s


def test_starttls_and_login_with_a_swedish_password(make_smtp_server):
    server = make_smtp_server(security="starttls", auth=("krisrutin", "hemligt-lösen"))
    settings = settings_for(server, SMTP_SECURITY="starttls", SMTP_USERNAME="krisrutin", SMTP_PASSWORD="hemligt-lösen")

    async def scenario(channel):
        await channel.send_email(email(1))
        await channel.send_email(email(2))

    run(settings, scenario, tls_context=server.client_tls_context())
    received = server.wait_for(2)
    assert all(r.tls and r.login == "krisrutin" for r in received)
    assert server.connections == 1


def test_implicit_tls_and_login(make_smtp_server):
    server = make_smtp_server(security="ssl", auth=("krisrutin", "hemligt"))
    settings = settings_for(server, SMTP_SECURITY="ssl", SMTP_USERNAME="krisrutin", SMTP_PASSWORD="hemligt")

    async def scenario(channel):
        await channel.send_email(email())

    run(settings, scenario, tls_context=server.client_tls_context())
    (received,) = server.wait_for(1)
    assert received.tls and received.login == "krisrutin"


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_untrusted_certificate_is_transient(make_smtp_server, security):
    server = make_smtp_server(security=security)

    async def scenario(channel):  # the system's CAs only
        with pytest.raises(TransientFailure) as caught:
            await channel.send_email(email())
        return caught.value

    assert "SSLCertVerificationError" in str(run(settings_for(server, SMTP_SECURITY=security), scenario))
    assert server.messages == []


@pytest.mark.parametrize("password", ["wrong-password", "fel-lösen"])
def test_wrong_password_is_transient_and_names_the_settings_not_the_password(make_smtp_server, password):
    server = make_smtp_server(security="starttls", auth=("krisrutin", "rätt-lösen"))
    settings = settings_for(server, SMTP_SECURITY="starttls", SMTP_USERNAME="krisrutin", SMTP_PASSWORD=password)

    async def scenario(channel):
        with pytest.raises(TransientFailure) as caught:
            await channel.send_email(email())
        return caught.value

    failure = run(settings, scenario, tls_context=server.client_tls_context())
    assert "535" in str(failure)
    assert "SMTP_PASSWORD" in str(failure)
    assert password not in str(failure)
    assert server.messages == []


def test_starttls_required_but_not_offered_is_transient(smtp_server):
    async def scenario(channel):
        with pytest.raises(TransientFailure, match="does not offer STARTTLS"):
            await channel.send_email(email())

    run(settings_for(smtp_server, SMTP_SECURITY="starttls"), scenario)
    assert smtp_server.messages == []


def test_login_required_but_not_given_is_refused_before_any_address_is_sent(make_smtp_server):
    server = make_smtp_server(auth=("krisrutin", "hemligt"))  # no TLS: AUTH in the clear (tests only)

    async def scenario(channel):
        with pytest.raises(TransientFailure, match="530"):
            await channel.send_email(email())

    run(settings_for(server), scenario)
    assert server.messages == []


# -- the pool ---------------------------------------------------------------------------------


def test_forty_concurrent_sends_share_a_pool_of_eight_connections(smtp_server):
    async def scenario(channel):
        ids = await asyncio.gather(*(channel.send_email(email(n)) for n in range(1, 41)))
        return ids, channel.open_connections

    ids, still_open = run(settings_for(smtp_server), scenario, max_connections=8)

    assert ids == [f"<msg-{n}@krisrutin>" for n in range(1, 41)]
    received = smtp_server.wait_for(40)
    assert sorted(r.message["Message-ID"] for r in received) == sorted(ids)  # each once
    # 40 sends at once fill every slot: eight connections, never a ninth, all QUIT by aclose().
    assert smtp_server.connections == 8
    assert still_open == 8
    assert smtp_server.quits == 8


def test_a_server_that_closes_idle_connections_gets_the_next_message_once(make_smtp_server):
    server = make_smtp_server(idle_timeout=0.5)

    async def scenario(channel):
        await channel.send_email(email(1))
        await until(lambda: server.open_connections == 0)  # the server's idle timeout struck
        return await channel.send_email(email(2))

    assert run(settings_for(server), scenario) == "<msg-2@krisrutin>"
    assert [r.message["Message-ID"] for r in server.wait_for(2)] == ["<msg-1@krisrutin>", "<msg-2@krisrutin>"]
    assert server.connections == 2


def test_421_at_the_greeting_is_rate_limited_and_the_next_send_goes_through(smtp_server):
    smtp_server.refuse_next_connections(1)

    async def scenario(channel):
        with pytest.raises(TransientFailure) as caught:
            await channel.send_email(email(1))
        await channel.send_email(email(2))
        return caught.value

    failure = run(settings_for(smtp_server), scenario)
    assert failure.rate_limited is True
    assert "421" in str(failure)
    assert [r.message["Message-ID"] for r in smtp_server.wait_for(1)] == ["<msg-2@krisrutin>"]


def test_421_on_a_fresh_connection_is_rate_limited_without_a_reconnect(smtp_server):
    smtp_server.time_out_next_session(1)

    async def scenario(channel):
        with pytest.raises(TransientFailure, match="421") as caught:
            await channel.send_email(email(1))
        return caught.value

    assert run(settings_for(smtp_server), scenario).rate_limited is True
    assert smtp_server.connections == 1
    assert smtp_server.messages == []


def test_a_cancelled_send_does_not_return_its_connection_to_the_pool(smtp_server):
    async def scenario(channel):
        await channel.send_email(email(1))
        sending = asyncio.create_task(channel.send_email(email(2)))
        await asyncio.sleep(0)  # the send has written MAIL FROM and waits for the reply
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        closed = channel.open_connections
        await channel.send_email(email(3))
        return closed

    assert run(settings_for(smtp_server), scenario) == 0
    assert smtp_server.wait_for(2)[-1].message["Message-ID"] == "<msg-3@krisrutin>"
    assert smtp_server.connections == 2


def test_a_connection_in_use_during_aclose_is_closed_when_its_send_ends(smtp_server):
    async def scenario(channel):
        sending = asyncio.create_task(channel.send_email(email(1)))
        await asyncio.sleep(0)  # the send is connecting
        await channel.aclose()
        gateway_id = await sending
        return gateway_id, channel.open_connections

    assert run(settings_for(smtp_server), scenario) == ("<msg-1@krisrutin>", 0)
    assert len(smtp_server.wait_for(1)) == 1
