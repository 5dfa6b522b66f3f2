"""The bytes both SMTP adapters send for one e-mail, built cheaply when the content repeats (issue 18).

A letter to 3,000 contacts is 3,000 e-mails with the same subject, text and HTML; only To,
Message-ID and Date differ. Building each one as an ``EmailMessage`` and flattening it cost about
3 ms of CPU per e-mail, which bounded the whole fan-out on two cores. :func:`encode_message`
gives the headers aiosmtplib's ``send_message`` sent for that message (tested byte for byte) and a
body that parses to the same parts, headers and text (only the boundary and the quoted-printable
line wrapping differ), built from three kinds of pieces:

- **the MIME body**, cached by ``(text, html)`` in a small LRU (:data:`BODY_CACHE_SIZE` entries,
  so that a few letters going out at once, interleaved, each keep theirs; a few KB each): the ``MIME-Version``,
  ``Content-Type`` (and, for a single part, ``Content-Transfer-Encoding``) headers and the encoded
  body (UTF-8, quoted-printable, so the message stays 7-bit clean). Since a personalised letter
  ("Hej Anna Lind!") misses the cache for every recipient, a miss is cheap too: the body is
  written by hand in the fixed shape and header order the ``email`` package gave it (text/plain,
  or multipart/alternative of text/plain and text/html) and encoded by ``binascii.b2a_qp`` (C),
  not built as an ``EmailMessage`` and flattened. The text is split into lines as ``set_content``
  split it, so it decodes to the same text; lines are wrapped at 76 characters (RFC 2045) where
  the ``email`` package wrapped at 78. The multipart boundary has the ``email`` package's form
  ("=" * 15, 19 random digits, "=="), chosen once per entry, so every e-mail built from one entry
  has the same body. Different content is a different key: it never shares a body;
- **headers that repeat** (From and Reply-To from the settings, Subject, Auto-Submitted), folded
  by the ``email`` package once per value and policy and cached (:data:`HEADER_CACHE_SIZE`).
  Folding a From with an encoded display name alone cost ~0.9 ms;
- **the per-message headers** (To, Date, Message-ID), parsed and folded by the ``email`` package
  for every e-mail.

Every header goes through the calls ``EmailMessage.__setitem__`` and ``BytesGenerator`` make
(``policy.header_store_parse``, then ``policy.fold_binary``), so address, IDN and non-ASCII subject
encoding stay the ``email`` package's, the header order is the same as before, and a header with a
line break is still refused: :class:`PermanentFailure` "the e-mail could not be built".

One change, deliberate: smtplib's ``send_message`` (the sync adapter) wrote a body line that
begins with "From " as ">From " (an mbox habit of the ``email`` generator's default arguments,
which changed the text, and which aiosmtplib's never had). Both adapters now send it as written.

The caches are ``functools.lru_cache``, safe for the sync dispatcher's worker threads, which share
them: two threads that miss at once each build a body, both correct, and one is kept. A letter
whose text differs per recipient misses every time and costs what building it costs (below).

SMTPUTF8 is decided as ``send_message`` of smtplib and aiosmtplib decided it: when the envelope
sender or recipient is not ASCII, the headers are folded with ``utf8=True`` (the ``SMTPUTF8``
policy: raw UTF-8 instead of encoded words), and the adapter asks for ``SMTPUTF8`` at MAIL FROM
(or fails permanently when the server does not offer it). The body is the same either way: its
headers are ASCII and its parts quoted-printable.

Measured (2026-12-06, ``python -m bench.smtp_client --messages 2000 --rounds 3``, before and
after this module, twice each, alternating; this 2-CPU machine shared with other jobs, load
average 2–6; client CPU per e-mail, building included; medians of 3 rounds):

- one letter to 2,000 recipients (every body after the first cached): SmtpEmail **2.82 and 2.93
  → 0.60 and 0.55 ms**, AsyncSmtpEmail **3.42 and 3.39 → 0.74 and 0.76 ms**. Messages per
  second are now set by the test server's CPU (~1.8 ms per message): sync 168–184 → 243–326,
  async 107–159 → 244–266. With the server waiting 100 ms per DATA (``--smtp-latency-ms 100``):
  AsyncSmtpEmail 0.79 ms, 178 msg/s (was 3.0–3.3 ms, 115–160 msg/s);
- every message a text of its own (``--distinct-letters``, the cache's worst case): SmtpEmail
  1.62 ms, AsyncSmtpEmail 1.77 ms; still less than before, since From is folded once;
- in the process alone (no SMTP; a timing loop over 2,000 e-mails): building and flattening an ``EmailMessage`` 2.36 ms;
  :func:`encode_message` 0.21 ms with a cached body (To, Date, Message-ID: ~0.15 ms of it) and
  1.10 ms with a new body each time.

The hand-built body (2026-12-06, ``--distinct-letters --messages 2000 --rounds 3``, before and
after, twice each, alternating; load average 1–5; client CPU per e-mail, medians of 3 rounds):
SmtpEmail **1.557 and 1.567 → 0.624 and 0.646 ms**, AsyncSmtpEmail **1.683 and 1.644 → 0.790
and 0.779 ms**. In the process alone (best of 5 loops over 5,000 bodies): a body built anew
0.81 → 0.033 ms, from the cache 0.0001 ms; :func:`encode_message` with a new body each time
0.25 ms, with the same body 0.20 ms. The cache is kept: it costs nothing, and it gives every
recipient of one letter the same bytes.
"""

from __future__ import annotations

import binascii
import functools
import random
import re
import sys
from dataclasses import dataclass
from email.policy import SMTP, SMTPUTF8
from email.utils import formatdate, parseaddr

from config.settings import Settings
from notifications.channels.base import OutgoingEmail, PermanentFailure

BODY_CACHE_SIZE = 8
HEADER_CACHE_SIZE = 32


@dataclass(frozen=True)
class EncodedEmail:
    """One e-mail as it goes on the wire: the envelope and the message with CRLF line ends."""

    sender: str  # MAIL FROM
    recipient: str  # RCPT TO
    smtputf8: bool  # an envelope address is not ASCII: send with SMTPUTF8, or not at all
    data: bytes


def envelope_sender(settings: Settings) -> str:
    """MAIL FROM: the bare address of MAIL_FROM (which may carry a display name)."""
    return parseaddr(settings.mail_from)[1] or settings.mail_from


def encode_message(settings: Settings, email: OutgoingEmail) -> EncodedEmail:
    """The e-mail both SMTP adapters send: From/Reply-To from the settings, a plain part and an
    optional HTML alternative, quoted-printable UTF-8. Raises :class:`PermanentFailure` when it
    cannot be built (a header with a line break, a malformed address)."""
    sender = envelope_sender(settings)
    smtputf8 = not (sender.isascii() and email.to.isascii())
    try:
        headers = [_repeated_header("From", settings.mail_from, smtputf8)]
        if settings.mail_reply_to:
            headers.append(_repeated_header("Reply-To", settings.mail_reply_to, smtputf8))
        headers += (
            _plain_header("To", email.to, _PLAIN_ADDRESS) or _header("To", email.to, smtputf8),
            _repeated_header("Subject", email.subject, smtputf8),
            _plain_header("Date", date := formatdate(localtime=True), _DATE) or _header("Date", date, smtputf8),
            _plain_header("Message-ID", email.message_id, _PLAIN_MESSAGE_ID)
            or _header("Message-ID", email.message_id, smtputf8),
            # RFC 3834: no vacation replies to a robot.
            _repeated_header("Auto-Submitted", "auto-generated", smtputf8),
            _body(email.text, email.html),
        )
    except (ValueError, TypeError) as error:
        # A header with a line break or a malformed address: sending again cannot help.
        # (UnicodeEncodeError is a ValueError: a non-ASCII header the policy cannot encode.)
        raise PermanentFailure(f"the e-mail could not be built ({type(error).__name__})") from None
    return EncodedEmail(sender=sender, recipient=email.to, smtputf8=smtputf8, data=b"".join(headers))


def _header(name: str, value: str, utf8: bool) -> bytes:
    """One header line (folded, CRLF), as ``message[name] = value`` and ``BytesGenerator`` make it."""
    policy = SMTPUTF8 if utf8 else SMTP
    name, parsed = policy.header_store_parse(name, value)  # ValueError on CR or LF in the value
    return policy.fold_binary(name, parsed)


# Values that the email package writes unchanged: a bare ASCII address, our Message-IDs, the
# date formatdate() gives. Written directly they cost a regular expression instead of the
# package's parse and fold (a sixth of the e-mail lane's CPU for a letter to thousands); anything
# else (a display name, a non-ASCII or quoted address, a line break) goes through the package.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_DOMAIN}")
_PLAIN_MESSAGE_ID = re.compile(rf"<{_ATOM}(?:\.{_ATOM})*@{_DOMAIN}>")
_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}")


def _plain_header(name: str, value: str, pattern: re.Pattern) -> bytes | None:
    """``name: value`` as the email package would write it, when ``value`` matches ``pattern``
    and needs no folding; else None."""
    if len(name) + 2 + len(value) <= 78 and pattern.fullmatch(value):
        return f"{name}: {value}\r\n".encode("ascii")
    return None


# The same values again and again: From and Reply-To (the settings), a letter's Subject.
_repeated_header = functools.lru_cache(maxsize=HEADER_CACHE_SIZE)(_header)


@functools.lru_cache(maxsize=BODY_CACHE_SIZE)
def _body(text: str, html: str | None) -> bytes:
    """The MIME headers and body for this content, built once for every e-mail that carries it.

    Written by hand in the shape and header order ``EmailMessage.set_content`` and
    ``add_alternative`` gave it (see the module docstring); a cache miss costs two C calls per part.
    """
    if html is None:
        return _PLAIN_HEADERS + b"MIME-Version: 1.0\r\n\r\n" + _quoted_printable(text)
    # As the email generator chooses it: 19 random digits between "=" signs. It cannot occur in
    # a quoted-printable part, where "=" only ever begins "=XX" or ends a line as a soft break.
    boundary = b"===============%019d==" % random.randrange(sys.maxsize)
    return b"".join(
        (
            b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="%s"\r\n\r\n' % boundary,
            b"--%s\r\n%s\r\n" % (boundary, _PLAIN_HEADERS),
            _quoted_printable(text),
            b"\r\n--%s\r\n%sMIME-Version: 1.0\r\n\r\n" % (boundary, _HTML_HEADERS),
            _quoted_printable(html),
            b"\r\n--%s--\r\n" % boundary,
        )
    )


_PLAIN_HEADERS = b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
_HTML_HEADERS = b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
# binascii ends a line whose trailing space or tab it encodes at column 74 or 75 at 77 or 78
# characters; RFC 2045 allows 76. A soft break before that "=20" or "=09" mends it.
_OVERLONG = re.compile(rb"^(.{74,75})(=20|=09)$", re.MULTILINE)


def _quoted_printable(text: str) -> bytes:
    """``text`` as UTF-8 quoted-printable with CRLF line ends, decoding to what ``set_content`` gave.

    Like ``set_content``: the lines split at CR, LF or CRLF (``bytes.splitlines``) and each ended
    with one line break, so the text ends with one (an empty text is one empty line). Lone
    surrogates raise ``UnicodeEncodeError``, as before. ``binascii.b2a_qp`` (C) encodes "=",
    control characters, bytes above 126, a space or tab at a line's end and a "." alone on a line;
    its lines are at most 76 characters (after :data:`_OVERLONG`), where the ``email`` package
    wrapped at 78, so the bytes differ from before but decode to the same text.
    """
    data = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return _OVERLONG.sub(rb"\1=\n\2", encoded).replace(b"\n", b"\r\n")
