"""The SMTP channel against a real SMTP server (aiosmtpd on 127.0.0.1)."""

import socket

import pytest

from config.settings import load_settings
from notifications.channels.base import OutgoingEmail, PermanentFailure, TransientFailure
from notifications.channels.smtp import SmtpEmail

MAIL_FROM = "valfardsteknik@kommun.example.se"
REPLY_TO = "krisrutin-svar@kommun.example.se"
RECIPIENT = "asa.lindqvist@omsorg.example.se"


def settings_for(server=None, **overrides):
    values = {
        "KRISRUTIN_ENV": "testing",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(server.port) if server else "25",
        "SMTP_SECURITY": "none",
        "MAIL_FROM": MAIL_FROM,
        "MAIL_REPLY_TO": REPLY_TO,
        **overrides,
    }
    return load_settings(values, environ={})


def email(number=1, to=RECIPIENT, html="<p>Hej Åsa! Ärendet är löst.</p>"):
    return OutgoingEmail(
        to=to,
        subject=f"Avbrott i larmtjänsten – åtgärdat ({number})",
        text="Hej Åsa!\n\nÄrendet är löst. Översikt: https://krisrutin.example.se/\n",
        html=html,
        message_id=f"<msg-{number}@krisrutin>",
    )


@pytest.fixture
def channel(smtp_server):
    sender = SmtpEmail(settings_for(smtp_server))
    yield sender
    sender.close()


def test_email_with_swedish_characters_arrives_with_plain_and_html_parts(channel, smtp_server):
    gateway_id = channel.send_email(email())

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
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain.get_content_charset() == "utf-8"
    assert plain.get_content() == "Hej Åsa!\n\nÄrendet är löst. Översikt: https://krisrutin.example.se/\n"
    assert html.get_content().strip() == "<p>Hej Åsa! Ärendet är löst.</p>"
    # 7-bit clean on the wire: the letters travel encoded, not as raw UTF-8 bytes.
    assert received.raw.isascii()


def test_text_only_email_is_a_single_plain_part_without_reply_to_when_unset(smtp_server):
    sender = SmtpEmail(settings_for(smtp_server, MAIL_REPLY_TO=None))
    try:
        sender.send_email(email(html=None))
    finally:
        sender.close()
    (received,) = smtp_server.wait_for(1)
    assert received.message.get_content_type() == "text/plain"
    assert received.message["Reply-To"] is None
    assert "Ärendet är löst" in received.message.get_content()


def test_many_messages_travel_over_one_connection(channel, smtp_server):
    for number in range(1, 6):
        channel.send_email(email(number))

    received = smtp_server.wait_for(5)
    assert [r.message["Message-ID"] for r in received] == [f"<msg-{n}@krisrutin>" for n in range(1, 6)]
    assert smtp_server.connections == 1


def test_reconnects_once_when_the_server_dropped_the_idle_connection(channel, smtp_server):
    channel.send_email(email(1))
    smtp_server.restart()  # closes every open connection, as a server's idle timeout does

    assert channel.send_email(email(2)) == "<msg-2@krisrutin>"

    received = smtp_server.wait_for(2)
    assert [r.message["Message-ID"] for r in received] == ["<msg-1@krisrutin>", "<msg-2@krisrutin>"]
    assert smtp_server.connections == 2


def test_reconnects_once_when_the_server_ended_the_idle_session_with_421(channel, smtp_server):
    channel.send_email(email(1))
    smtp_server.time_out_next_session()

    channel.send_email(email(2))

    assert len(smtp_server.wait_for(2)) == 2
    assert smtp_server.connections == 2


def test_421_twice_is_transient(channel, smtp_server):
    channel.send_email(email(1))
    smtp_server.time_out_next_session(2)

    with pytest.raises(TransientFailure, match="421"):
        channel.send_email(email(2))


def test_recipient_refused_with_550_is_permanent_and_rejects_the_address(channel, smtp_server):
    smtp_server.reject_recipient("unknown@omsorg.example.se")

    with pytest.raises(PermanentFailure) as caught:
        channel.send_email(email(to="unknown@omsorg.example.se"))

    assert caught.value.address_rejected is True
    assert "550" in str(caught.value)
    assert "unknown@omsorg.example.se" not in str(caught.value)  # it gets logged
    # The connection is still good for the next message.
    channel.send_email(email(2))
    assert len(smtp_server.wait_for(1)) == 1
    assert smtp_server.connections == 1


def test_relaying_denied_at_rcpt_is_permanent_but_says_nothing_about_the_address(channel, smtp_server):
    smtp_server.reject_recipient(RECIPIENT, reply="554 5.7.1 <{address}>: Relay access denied")

    with pytest.raises(PermanentFailure) as caught:
        channel.send_email(email())
    assert caught.value.address_rejected is False
    assert RECIPIENT not in str(caught.value)


def test_a_450_at_rcpt_is_transient(channel, smtp_server):
    smtp_server.reject_recipient(RECIPIENT, reply="450 4.2.0 <{address}>: Recipient address rejected: Greylisted")

    with pytest.raises(TransientFailure) as caught:
        channel.send_email(email())
    assert RECIPIENT not in str(caught.value)


def test_sender_with_a_swedish_display_name(smtp_server):
    # A display name with a comma must be quoted, as RFC 5322 says.
    sender = SmtpEmail(settings_for(smtp_server, MAIL_FROM=f'"Välfärdsteknik, Exempelby kommun" <{MAIL_FROM}>'))
    try:
        sender.send_email(email())
    finally:
        sender.close()
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == MAIL_FROM
    assert received.message["From"].addresses[0].display_name == "Välfärdsteknik, Exempelby kommun"
    assert received.message["From"].addresses[0].addr_spec == MAIL_FROM


def test_451_at_data_is_transient_and_the_next_try_goes_through(channel, smtp_server):
    smtp_server.defer_next_data(1)

    with pytest.raises(TransientFailure) as caught:
        channel.send_email(email())
    assert "451" in str(caught.value)

    channel.send_email(email())
    assert len(smtp_server.wait_for(1)) == 1


def test_server_down_is_transient(smtp_server):
    smtp_server.stop()
    sender = SmtpEmail(settings_for(smtp_server))

    with pytest.raises(TransientFailure, match="could not connect"):
        sender.send_email(email())
    sender.close()


def test_server_gone_after_a_send_is_transient_once_the_reconnect_fails(channel, smtp_server):
    channel.send_email(email())
    smtp_server.stop()

    with pytest.raises(TransientFailure):
        channel.send_email(email(2))
    channel.close()  # nothing left to close, and no error


def test_a_server_that_never_answers_times_out_as_transient():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts at the kernel level, never says hello
        settings = settings_for(SMTP_PORT=str(silent.getsockname()[1]))
        sender = SmtpEmail(settings, timeout=0.2)
        with pytest.raises(TransientFailure):
            sender.send_email(email())


def test_close_quits_and_a_later_send_opens_a_new_connection(channel, smtp_server):
    channel.send_email(email(1))
    channel.close()
    channel.close()
    channel.send_email(email(2))
    smtp_server.wait_for(2)
    assert smtp_server.connections == 2


def test_starttls_and_login(make_smtp_server):
    server = make_smtp_server(security="starttls", auth=("krisrutin", "hemligt-lösen"))
    settings = settings_for(server, SMTP_SECURITY="starttls", SMTP_USERNAME="krisrutin", SMTP_PASSWORD="hemligt-lösen")
    sender = SmtpEmail(settings, tls_context=server.client_tls_context())
    try:
        sender.send_email(email(1))
        sender.send_email(email(2))
    finally:
        sender.close()
    received = server.wait_for(2)
    assert all(r.tls and r.login == "krisrutin" for r in received)
    assert server.connections == 1


def test_implicit_tls_and_login(make_smtp_server):
    server = make_smtp_server(security="ssl", auth=("krisrutin", "hemligt"))
    settings = settings_for(server, SMTP_SECURITY="ssl", SMTP_USERNAME="krisrutin", SMTP_PASSWORD="hemligt")
    sender = SmtpEmail(settings, tls_context=server.client_tls_context())
    try:
        sender.send_email(email())
    finally:
        sender.close()
    (received,) = server.wait_for(1)
    assert received.tls and received.login == "krisrutin"


def test_untrusted_certificate_is_transient(make_smtp_server):
    server = make_smtp_server(security="starttls")
    sender = SmtpEmail(settings_for(server, SMTP_SECURITY="starttls"))  # the system's CAs only

    with pytest.raises(TransientFailure) as caught:
        sender.send_email(email())
    assert "SSLCertVerificationError" in str(caught.value)


@pytest.mark.parametrize("password", ["wrong-password", "fel-lösen"])
def test_wrong_password_is_transient_and_names_the_settings_not_the_password(make_smtp_server, password):
    server = make_smtp_server(security="starttls", auth=("krisrutin", "rätt-lösen"))
    settings = settings_for(server, SMTP_SECURITY="starttls", SMTP_USERNAME="krisrutin", SMTP_PASSWORD=password)
    sender = SmtpEmail(settings, tls_context=server.client_tls_context())

    with pytest.raises(TransientFailure) as caught:
        sender.send_email(email())
    assert "535" in str(caught.value)
    assert "SMTP_PASSWORD" in str(caught.value)
    assert password not in str(caught.value)
    assert server.messages == []


def test_starttls_required_but_not_offered_is_transient(smtp_server):
    sender = SmtpEmail(settings_for(smtp_server, SMTP_SECURITY="starttls"))

    with pytest.raises(TransientFailure, match="does not offer STARTTLS"):
        sender.send_email(email())
    assert smtp_server.messages == []


def test_login_required_but_not_given_is_refused_before_any_address_is_sent(make_smtp_server):
    server = make_smtp_server(auth=("krisrutin", "hemligt"))  # no TLS: AUTH in the clear (tests only)
    sender = SmtpEmail(settings_for(server))

    with pytest.raises(TransientFailure) as caught:
        sender.send_email(email())
    assert "530" in str(caught.value)
    sender.close()
