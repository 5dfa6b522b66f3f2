"""The e-mail's bytes with a cached MIME body (notifications.channels.smtp_message): what arrives at
a real SMTP server (aiosmtpd) through both adapters; the message compared with what the ``email``
package flattens for the same message (aiosmtplib's ``flatten_message``, which the async adapter
used to send): headers byte for byte, the hand-built quoted-printable body parsed (its lines wrap
at 76, the package's at 78), for tricky texts and for texts hypothesis makes up."""

import asyncio
import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.channels import smtp_message
from notifications.channels.base import OutgoingEmail, PermanentFailure
from notifications.channels.smtp import SmtpEmail
from notifications.channels.smtp_async import AsyncSmtpEmail
from notifications.channels.smtp_message import encode_message
from tests.notifications.test_smtp_channel import MAIL_FROM, settings_for

LONG_LINE = "Trygghetslarmen i hemtjänstområde Norr har haft avbrott sedan kl. 06.40 och " * 3
TEXT = f"Hej!\n\nÄrendet gäller {LONG_LINE}\n\nÖversikt: https://krisrutin.example.se/k/3f9a2c\n"
HTML = f"<p>Hej!</p><p>Ärendet gäller {LONG_LINE}</p>"
SUBJECT = "Avbrott i trygghetslarmen – starta era lokala rutiner"
_BOUNDARY = re.compile(rb'boundary="([^"]+)"')


def letter(to, number, *, subject=SUBJECT, text=TEXT, html=HTML):
    return OutgoingEmail(to=to, subject=subject, text=text, html=html, message_id=f"<msg-{number}@krisrutin>")


def send(adapter, server, emails):
    """Send ``emails`` one after another through the sync or the async adapter."""
    if adapter == "sync":
        channel = SmtpEmail(settings_for(server))
        try:
            for email in emails:
                channel.send_email(email)
        finally:
            channel.close()
        return

    async def main():
        channel = AsyncSmtpEmail(settings_for(server), max_connections=2)
        try:
            for email in emails:
                await channel.send_email(email)
        finally:
            await channel.aclose()

    asyncio.run(main())


def body_of(raw: bytes) -> bytes:
    """Everything after the header block, as it travelled."""
    return raw.split(b"\r\n\r\n", 1)[1]


def reference(settings, email, date) -> EmailMessage:
    """The message as the ``email`` package builds it, header by header (the former build_message)."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    if settings.mail_reply_to:
        message["Reply-To"] = settings.mail_reply_to
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = date
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if email.html is not None:
        message.add_alternative(email.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def parse(data: bytes) -> EmailMessage:
    """Parsed as a mail store keeps it (LF line ends), as the tests' SMTP server parses."""
    return message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)


def headers(message):
    """Name and value of each header, in order, with a multipart boundary left out."""
    return [(name, re.sub(r'boundary="[^"]+"', "boundary", str(value))) for name, value in message.items()]


@pytest.fixture
def fixed_date(monkeypatch):
    date = "Sun, 06 Dec 2026 01:00:00 +0100"
    monkeypatch.setattr(smtp_message, "formatdate", lambda localtime: date)
    return date


# -- what arrives -----------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ["sync", "async"])
def test_one_letter_to_two_recipients_arrives_with_the_same_body_and_their_own_headers(smtp_server, adapter):
    send(adapter, smtp_server, [letter("asa@omsorg.example.se", 1), letter("bo@omsorg.example.se", 2)])

    first, second = smtp_server.wait_for(2)
    assert (first.rcpt_tos, second.rcpt_tos) == (("asa@omsorg.example.se",), ("bo@omsorg.example.se",))
    assert (first.message["To"], second.message["To"]) == ("asa@omsorg.example.se", "bo@omsorg.example.se")
    assert (first.message["Message-ID"], second.message["Message-ID"]) == ("<msg-1@krisrutin>", "<msg-2@krisrutin>")
    assert body_of(first.raw) == body_of(second.raw)
    for received in (first, second):
        message = received.message
        assert message["Subject"] == SUBJECT
        assert message["From"] == MAIL_FROM
        assert message["Auto-Submitted"] == "auto-generated"
        assert message.get_body(("plain",)).get_content() == TEXT
        assert message.get_body(("html",)).get_content().strip() == HTML
        assert received.raw.isascii()


@pytest.mark.parametrize("adapter", ["sync", "async"])
def test_letters_with_other_content_arrive_each_with_its_own_body(smtp_server, adapter):
    # Nine letters (one more than the cache holds), then the first again: never another's body.
    letters = [letter(f"kontakt{n}@omsorg.example.se", n, text=f"Brev {n}: {TEXT}", html=None) for n in range(9)]
    letters += [
        letter("asa@omsorg.example.se", 10),
        letter("asa@omsorg.example.se", 11, html=HTML.replace("Hej", "Hallå")),
        letter("asa@omsorg.example.se", 12, subject="Avbrottet är åtgärdat"),
        letter("asa@omsorg.example.se", 13, text=f"Brev 0: {TEXT}", html=None),
    ]
    send(adapter, smtp_server, letters)

    received = smtp_server.wait_for(len(letters))
    for sent, arrived in zip(letters, received, strict=True):
        assert arrived.message["Message-ID"] == sent.message_id
        assert arrived.message["Subject"] == sent.subject
        assert arrived.message.get_body(("plain",)).get_content() == sent.text
        html = arrived.message.get_body(("html",))
        assert (html.get_content().strip() if html is not None else None) == sent.html
    assert body_of(received[0].raw) == body_of(received[-1].raw)  # the same content, cached or built anew
    assert body_of(received[9].raw) != body_of(received[10].raw)


@pytest.mark.parametrize("adapter", ["sync", "async"])
def test_a_body_line_beginning_with_from_arrives_as_written(smtp_server, adapter):
    # smtplib's send_message wrote it as ">From" (an mbox habit); both adapters now send the text.
    text = "Hej!\nFrom now on, ring larmcentralen direkt.\n.\nSlut\n"
    send(adapter, smtp_server, [letter("asa@omsorg.example.se", 1, text=text, html=None)])

    (received,) = smtp_server.wait_for(1)
    assert received.message.get_content() == text


# -- non-ASCII addresses (SMTPUTF8) ----------------------------------------------------------


@pytest.mark.parametrize("adapter", ["sync", "async"])
def test_a_non_ascii_address_is_sent_with_smtputf8_and_the_next_ascii_one_stays_7bit(smtp_server, adapter):
    send(adapter, smtp_server, [letter("åsa@omsorg.example.se", 1), letter("asa@omsorg.example.se", 2)])

    international, plain = smtp_server.wait_for(2)
    assert international.rcpt_tos == ("åsa@omsorg.example.se",)
    assert "SMTPUTF8" in international.mail_options
    assert international.message["To"] == "åsa@omsorg.example.se"
    # As send_message did: headers in raw UTF-8 under SMTPUTF8, the body the same 7-bit one.
    assert "Subject: Avbrott i trygghetslarmen – starta".encode() in international.raw
    assert international.message["Subject"] == SUBJECT
    assert body_of(international.raw) == body_of(plain.raw)
    assert "SMTPUTF8" not in plain.mail_options
    assert plain.raw.isascii()
    assert plain.message["Subject"] == SUBJECT


def test_sync_a_non_ascii_address_on_a_server_without_smtputf8_is_permanent(make_smtp_server):
    server = make_smtp_server(smtputf8=False)
    channel = SmtpEmail(settings_for(server))
    try:
        with pytest.raises(PermanentFailure) as caught:
            channel.send_email(letter("åsa@omsorg.example.se", 1))
        channel.send_email(letter("asa@omsorg.example.se", 2))
    finally:
        channel.close()

    assert caught.value.address_rejected is True
    assert "åsa" not in str(caught.value)
    assert [r.rcpt_tos for r in server.wait_for(1)] == [("asa@omsorg.example.se",)]
    assert server.connections == 1


# -- refused before anything is sent ---------------------------------------------------------


@pytest.mark.parametrize("adapter", ["sync", "async"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Avbrott\nBcc: alla@example.se"),
        ("to", "asa@omsorg.example.se\r\nBcc: alla@example.se"),
        ("message_id", "<msg-1@krisrutin>\nX-Injected: yes"),
    ],
)
def test_a_header_with_a_line_break_is_permanent_and_nothing_is_sent(smtp_server, adapter, field, value):
    good = letter("asa@omsorg.example.se", 1)
    bad = OutgoingEmail(**{**good.__dict__, field: value})

    with pytest.raises(PermanentFailure, match="could not be built"):
        send(adapter, smtp_server, [bad])
    with pytest.raises(PermanentFailure, match="could not be built"):  # a failure is never cached
        send(adapter, smtp_server, [bad])
    send(adapter, smtp_server, [good])
    assert [r.message["Message-ID"] for r in smtp_server.wait_for(1)] == ["<msg-1@krisrutin>"]


def test_a_mail_from_with_a_line_break_is_permanent():
    settings = settings_for(MAIL_FROM=f"Krisrutin <{MAIL_FROM}>\nBcc: alla@example.se")

    with pytest.raises(PermanentFailure, match="could not be built"):
        encode_message(settings, letter("asa@omsorg.example.se", 1))


# -- the bytes --------------------------------------------------------------------------------


@pytest.mark.parametrize("html", [HTML, None], ids=["plain-and-html", "plain-only"])
@pytest.mark.parametrize(
    ("mail_from", "to"),
    [
        (MAIL_FROM, "asa@omsorg.example.se"),
        (f'"Välfärdsteknik, Exempelby kommun" <{MAIL_FROM}>', "asa@omsorg.example.se"),
        (MAIL_FROM, "åsa@omsorg.example.se"),
        (MAIL_FROM, "asa@bücher.example"),
    ],
)
def test_the_message_is_what_the_email_package_flattens_apart_from_boundary_and_line_wrapping(
    fixed_date, mail_from, to, html
):
    # The header block byte for byte; the body parsed, since the hand-built quoted-printable
    # wraps its lines at 76 characters where the email package wrapped at 78.
    settings = settings_for(MAIL_FROM=mail_from)
    email = letter(to, 1, subject=SUBJECT * 2, html=html)

    encoded = encode_message(settings, email)

    assert encoded.smtputf8 is not to.isascii()
    expected = flatten_message(reference(settings, email, fixed_date), utf8=encoded.smtputf8)
    if html is not None:
        (boundary,) = _BOUNDARY.findall(encoded.data)
        (expected_boundary,) = _BOUNDARY.findall(expected)
        expected = expected.replace(expected_boundary, boundary)
    assert encoded.data.split(b"\r\n\r\n", 1)[0] == expected.split(b"\r\n\r\n", 1)[0]
    parsed, reference_parsed = parse(encoded.data), parse(expected)
    parts, reference_parts = list(parsed.walk()), list(reference_parsed.walk())
    assert [headers(part) for part in parts] == [headers(part) for part in reference_parts]
    for part, reference_part in zip(parts, reference_parts, strict=True):
        if not part.is_multipart():
            assert part.get_content() == reference_part.get_content()
    assert max(len(line) for line in body_of(encoded.data).split(b"\r\n")) <= 76  # RFC 2045


@pytest.mark.parametrize("html", [HTML, None], ids=["plain-and-html", "plain-only"])
def test_a_cached_body_parses_like_a_freshly_built_message(fixed_date, html):
    settings = settings_for()
    first = encode_message(settings, letter("asa@omsorg.example.se", 1, html=html))  # builds or reuses
    cached = encode_message(settings, letter("bo@omsorg.example.se", 2, html=html))
    fresh = flatten_message(reference(settings, letter("bo@omsorg.example.se", 2, html=html), fixed_date))

    assert body_of(first.data) == body_of(cached.data)
    parsed, expected = parse(cached.data), parse(fresh)
    assert parsed.get_content_type() == expected.get_content_type()
    assert headers(parsed) == headers(expected)
    for subtype, content in (("plain", TEXT), ("html", html)):
        got, want = parsed.get_body((subtype,)), expected.get_body((subtype,))
        if content is None:
            assert got is None and want is None
            continue
        assert got.get_content_charset() == want.get_content_charset() == "utf-8"
        assert got["Content-Transfer-Encoding"] == want["Content-Transfer-Encoding"] == "quoted-printable"
        assert got.get_content() == want.get_content()
        assert got.get_content().strip() == content.strip()
    assert max(len(line) for line in cached.data.split(b"\r\n")) <= 78  # long lines wrapped
    assert "å".encode() not in cached.data


def test_the_same_text_with_and_without_html_never_shares_a_body():
    settings = settings_for()
    with_html = encode_message(settings, letter("asa@omsorg.example.se", 1))
    without = encode_message(settings, letter("asa@omsorg.example.se", 2, html=None))

    assert parse(with_html.data).get_content_type() == "multipart/alternative"
    assert parse(without.data).get_content_type() == "text/plain"


# -- the hand-built quoted-printable body ------------------------------------------------------

TRICKY_TEXTS = {
    "empty": "",
    "76 characters": "x" * 76,
    "77 characters": "x" * 77,
    "76 and 77 on lines": f"{'a' * 76}\n{'b' * 77}\n{'c' * 152}",
    "trailing spaces": "Hej  \nrad två \t\nslut ",
    "trailing space at the wrap": "x" * 75 + " \n" + "y" * 74 + "\t\n" + "z" * 73 + "  \n",
    "equals signs": "a=b\n=\n==3D\n" + "=" * 80,
    "å ä ö and emoji": "Hälsningar från Åsa 😀 " * 9 + "\nöö" * 40,
    "non-ASCII at the wrap": "y" * 74 + "å" + "y" * 10,
    "a line starting with a dot": ".\n.Hej\n..\n" + "x" * 75 + "\n.",
    "From at a line start": "From now on\nFrom: x\n>From",
    "CR, LF and CRLF": "a\rb\r\nc\n\rd\r\r\ne\n\n",
    "only line breaks": "\n\r\n\r",
    "control characters": "\x00\x01\x0b\x0c\x1c\x7f\x85\u2028 slut",
}


def delivered_before(text: str, html: str | None) -> EmailMessage:
    """The message the ``email`` package built for this content (the code before the hand-built body)."""
    message = EmailMessage()
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return parse(flatten_message(message))


def assert_delivers_as_before(text: str, html: str | None):
    data = encode_message(settings_for(), letter("asa@omsorg.example.se", 1, text=text, html=html)).data
    parsed, before = parse(data), delivered_before(text, html)
    parts, parts_before = list(parsed.walk()), list(before.walk())
    assert [part.get_content_type() for part in parts] == [part.get_content_type() for part in parts_before]
    leaves = [
        (part, part_before) for part, part_before in zip(parts, parts_before, strict=True) if not part.is_multipart()
    ]
    assert len(leaves) == (1 if html is None else 2)
    for part, part_before in leaves:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content() == part_before.get_content()
    body = body_of(data)
    assert body.isascii()
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # RFC 2045
    assert b"\r" not in body.replace(b"\r\n", b"") and b"\n" not in body.replace(b"\r\n", b"")  # CRLF only


@pytest.mark.parametrize("html", [None, "<p>{}</p>"], ids=["plain-only", "plain-and-html"])
@pytest.mark.parametrize("text", TRICKY_TEXTS.values(), ids=TRICKY_TEXTS.keys())
def test_a_tricky_text_decodes_to_what_the_email_package_delivered(text, html):
    assert_delivers_as_before(text, html.format(text) if html else None)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.sampled_from(" \t\r\n=.Fromå😀x") | st.characters(exclude_categories=("Cs",)), max_size=400),
    with_html=st.booleans(),
)
def test_any_text_decodes_to_what_the_email_package_delivered(text, with_html):
    assert_delivers_as_before(text, f"<p>{text}</p>" if with_html else None)


def test_a_text_with_a_lone_surrogate_is_permanent():
    with pytest.raises(PermanentFailure, match="could not be built"):
        encode_message(settings_for(), letter("asa@omsorg.example.se", 1, text="Hej \udc00", html=None))


@pytest.mark.parametrize(
    "name, value, direct",
    [
        ("To", "kontakt1@example.se", True),
        ("To", "asa.lindqvist@omsorg.example.se", True),
        ("To", "o'brien+krisrutin@sub-domain.kommun.example.se", True),
        ("To", "a" * 60 + "@example.se", True),  # 75 characters with the name: one line still
        ("To", "a" * 70 + "@example.se", False),  # longer than a line: left to the package
        ("To", "Åsa <asa@example.se>", False),
        ("To", '"Lindqvist, Åsa" <asa@example.se>', False),
        ("To", "åsa@exempel.se", False),
        ("To", "asa@example.se, bo@example.se", False),
        ("To", "asa..x@example.se", False),
        ("Message-ID", "<krisrutin-42@kommun.example.se>", True),
        ("Message-ID", "<msg-1@krisrutin>", True),
        ("Message-ID", "<krisrutin-42@kommun.example.se> extra", False),
        ("Date", "Sun, 06 Dec 2026 02:50:00 +0100", True),
        ("Date", "Sun, 06 Dec 2026 02:50:00 -0000", True),
        ("Date", "6 Dec 2026 02:50", False),
    ],
)
def test_a_header_written_directly_is_what_the_email_package_writes(name, value, direct):
    """To, Date and Message-ID are written directly when the email package would write them
    unchanged (anything else goes through the package); what is written directly is byte for
    byte what the package writes."""
    pattern = {"To": smtp_message._PLAIN_ADDRESS, "Message-ID": smtp_message._PLAIN_MESSAGE_ID}.get(
        name, smtp_message._DATE
    )
    written = smtp_message._plain_header(name, value, pattern)
    assert (written is not None) == direct
    if direct:
        assert written == smtp_message._header(name, value, False)


@pytest.mark.parametrize("to", ["asa@example.se\r\nBcc: x@example.se", "asa@example.se\nX: y"])
def test_an_address_with_a_line_break_is_still_refused(to):
    with pytest.raises(PermanentFailure, match="could not be built"):
        smtp_message.encode_message(
            settings_for(), OutgoingEmail(to=to, subject="S", text="T", html=None, message_id="<m-1@k>")
        )
