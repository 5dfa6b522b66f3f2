"""Forwarded e-mail: an RFC 822 message becomes a notice, kept whole as received.

Entry points: ``POST /api/v1/notices/email`` (in :mod:`crisis.incidents.api`) and
``flask notices ingest FILE.eml``.

Decisions (the issue left them open):
- Title: the subject without forwarding prefixes (Fwd:, VB:, ...). Body: the text/plain part,
  else the HTML part as text.
- Supplier: the active supplier with the sender among its sender addresses (exact addresses
  first, then ``@domain`` entries), else whose e-mail domain is the sender's (or a parent of
  it); a forwarded message's sender is the forwarder, so the addresses quoted in the text are
  tried next.
- Service: guessed from words in the subject and text (kamera/trygghetskamera/nattillsyn →
  camera supervision, larm → alarms, lås/nyckelfri → keyless locks, tidsregistrering → time
  registration; GSM, router, Careium → camera supervision). When nothing matches, camera
  supervision — the routine is about it — and a ``note`` step asks the handling party to check
  it. The handling party corrects it on the incident's edit page.
- Planned when the text says planerat/planerad/planerade/planned (not oplanerad/unplanned);
  the start is the Date header (or the time of receipt); no expected end.
- De-duplicated by Message-ID; a message without one by the SHA-256 of its bytes.
- ``original`` is the message as text: UTF-8 when it is (nearly every message: MIME keeps them
  7-bit), else Latin-1, which maps every byte to one character, with ``original_type``
  ``message/rfc822; charset=latin-1`` so that the download gives back the very bytes received.
- Odd characters: the original is kept byte for byte (a message with NUL bytes is refused: it is
  no e-mail), but everything taken from it — title, text, Message-ID — is cleaned by
  :func:`core.text.scrub` (control characters and bidirectional overrides removed, a broken
  character replaced by U+FFFD), not refused: a supplier's notice of an outage must not be lost
  for an invisible character nobody can be asked to remove, and the original shows what came.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import html
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses
from html.parser import HTMLParser

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.extensions import db
from core.text import scrub
from crisis.incidents import timeline
from crisis.incidents.intake import TITLE_MAX, NoticeError, create_notice
from crisis.incidents.models import Notice, NoticeSource, Supplier

ORIGINAL_TYPE = "message/rfc822"
LATIN1_TYPE = "message/rfc822; charset=latin-1"
MAX_BYTES = 10 * 1024 * 1024
GUESSED_NOTE = "Tjänsten gissad (inget nyckelord i meddelandet): kontrollera den"

_PREFIX = re.compile(r"^\s*((fwd?|vb|vs|fw|sv|re|aw)\s*:\s*)+", re.IGNORECASE)
_PLANNED = re.compile(r"\b(planerat|planerad|planerade|planned)\b", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
# (pattern, service), the specific words first; the generic ones only say "it is the camera line".
_SERVICE_WORDS = (
    (re.compile(r"trygghetskamera|kameratillsyn|nattillsyn|kamera|camera", re.IGNORECASE), "camera_supervision"),
    (re.compile(r"trygghetslarm|larm|alarm", re.IGNORECASE), "alarms"),
    (re.compile(r"nyckelfri|lås\b|låsen|lock", re.IGNORECASE), "keyless_locks"),
    (re.compile(r"tidsregistrering|time registration", re.IGNORECASE), "time_registration"),
    (re.compile(r"\bgsm\b|router|careium|4g\b|mobilnät", re.IGNORECASE), "camera_supervision"),
)


class _TextOfHtml(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "div", "li", "tr", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in html.unescape("".join(parser.parts)).splitlines())
    return "\n".join(line for line in lines if line)


def _content(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # an unknown or wrong charset
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def message_text(message: EmailMessage) -> str:
    """The message's text: its text/plain body, else its HTML body as text."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = _content(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return scrub(text).strip()


def guess_service(text: str) -> str | None:
    for pattern, service in _SERVICE_WORDS:
        if pattern.search(text):
            return service
    return None


def _domain_matches(domain: str, supplier_domain: str) -> bool:
    return domain == supplier_domain or domain.endswith("." + supplier_domain)


def _clean_address(address: str) -> str:
    return address.strip().strip("<>").strip().lower()


def supplier_for(db_session: Session, addresses: list[str]) -> Supplier | None:
    """The active supplier that ``addresses`` (senders) come from: an exact sender address of a
    supplier first, then a supplier's ``@domain`` sender entry, then the domain of its ``email``."""
    suppliers = list(db_session.scalars(select(Supplier).where(Supplier.is_active.is_(True)).order_by(Supplier.id)))
    cleaned = [_clean_address(address) for address in addresses if "@" in address]
    exact = [
        (supplier, {e.lower() for e in supplier.sender_address_list if not e.startswith("@")}) for supplier in suppliers
    ]
    for address in cleaned:
        for supplier, entries in exact:
            if address in entries:
                return supplier
    domains = [
        (supplier, [e[1:].lower() for e in supplier.sender_address_list if e.startswith("@")]) for supplier in suppliers
    ] + [
        (supplier, [supplier.email.rsplit("@", 1)[1].lower()])
        for supplier in suppliers
        if supplier.email and "@" in supplier.email
    ]
    for address in cleaned:
        domain = address.rsplit("@", 1)[1]
        for supplier, supplier_domains in domains:
            if any(_domain_matches(domain, supplier_domain) for supplier_domain in supplier_domains):
                return supplier
    return None


def _original(raw: bytes) -> tuple[str, str]:
    try:
        return raw.decode("utf-8"), ORIGINAL_TYPE
    except UnicodeDecodeError:
        return raw.decode("latin-1"), LATIN1_TYPE


def original_bytes(notice: Notice) -> bytes:
    """The e-mail exactly as received."""
    encoding = "latin-1" if notice.original_type == LATIN1_TYPE else "utf-8"
    return (notice.original or "").encode(encoding)


def parse_message(raw: bytes) -> EmailMessage:
    """The parsed message, or :class:`NoticeError` when ``raw`` is not an e-mail."""
    if not raw or not raw.strip():
        raise NoticeError({"message": "Filen är tom: skicka e-postmeddelandet som det togs emot (.eml)"})
    if len(raw) > MAX_BYTES:
        raise NoticeError({"message": "Meddelandet är större än 10 MB"})
    if b"\x00" in raw:
        raise NoticeError({"message": "Filen är inte ett e-postmeddelande (den innehåller NUL-tecken)"})
    message = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        has_headers = message["From"] is not None or message["Subject"] is not None
    except (ValueError, IndexError, TypeError):
        has_headers = False
    if not has_headers:
        raise NoticeError({"message": "Filen är inte ett e-postmeddelande (inget From- eller Subject-huvud)"})
    return message


def _header(message: EmailMessage, name: str):
    try:
        return message[name]
    except (ValueError, IndexError, TypeError):  # a malformed header: as if it were missing
        return None


def parse_and_find(raw: bytes) -> Notice | None:
    """The notice already received for the message ``raw`` (by Message-ID or digest), if any."""
    message = parse_message(raw)
    message_id = scrub(str(_header(message, "Message-ID") or ""), lines=False)
    return db.session.scalar(select(Notice).where(Notice.external_id == _external_id(message_id, raw)))


def _external_id(message_id: str, raw: bytes) -> str:
    return message_id[:300] if message_id else "sha256:" + hashlib.sha256(raw).hexdigest()


def ingest_email(
    db_session: Session,
    raw: bytes,
    *,
    now: datetime,
    actor_id: int | None = None,
    supplier=None,
    guess_supplier: bool = True,
):
    """A notice from the RFC 822 message ``raw``: (notice, True), or (the notice already received
    with its Message-ID, False). ``supplier``: the sender's own (a supplier's API user, or the one
    chosen in the mail triage), used instead of the guess; ``guess_supplier=False`` with no
    ``supplier``: no supplier ("okänd"). Raises :class:`NoticeError`; does not commit."""
    message = parse_message(raw)
    message_id = scrub(str(_header(message, "Message-ID") or ""), lines=False)
    external_id = _external_id(message_id, raw)
    existing = db_session.scalar(select(Notice).where(Notice.external_id == external_id))
    if existing is not None:
        return existing, False

    subject = scrub(str(_header(message, "Subject") or ""), lines=False)
    title = _PREFIX.sub("", subject).strip() or "Driftstörning (e-post utan ämne)"
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1] + "…"
    body = message_text(message)
    text = f"{subject}\n{body}"

    if supplier is None and guess_supplier:
        senders = [address for _, address in getaddresses([str(_header(message, "From") or "")])]
        supplier = supplier_for(db_session, senders) or supplier_for(
            db_session, [match.group(0) for match in _ADDRESS.finditer(body)]
        )
    service = guess_service(text)
    date = _header(message, "Date")
    starts_at = getattr(date, "datetime", None)
    if starts_at is None or starts_at.tzinfo is None or not 1900 <= starts_at.year <= 2200:
        starts_at = now
    original, original_type = _original(raw)
    notice, created = create_notice(
        db_session,
        {
            "title": title,
            "body": body[:20_000],
            "service": service or "camera_supervision",
            "planned": bool(_PLANNED.search(text)),
            "starts_at": starts_at,
            "providers": "all",
        },
        source=NoticeSource.EMAIL,
        now=now,
        actor_id=actor_id,
        supplier=supplier,
        original=original,
        original_type=original_type,
        external_id=external_id,
    )
    if created and service is None:
        timeline.record(db_session, notice.incident_id, "note", now, actor_id=actor_id, text=GUESSED_NOTE)
    return notice, created


# --- flask notices ingest FILE.eml --------------------------------------------------------------

notices_cli = AppGroup("notices", help="Supplier notices (driftmeddelanden).")


@notices_cli.command("ingest")
@click.argument("path", metavar="FILE.eml")
def ingest_command(path: str) -> None:
    """Turn a forwarded e-mail (RFC 822, .eml) into a notice and print the incident's id."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror}") from None
    try:
        notice, created = ingest_email(db.session, raw, now=current_clock().now())
        db.session.commit()
    except NoticeError as error:
        db.session.rollback()
        raise click.ClickException(f"{path}: " + "; ".join(error.errors.values())) from None
    except IntegrityError:  # the same message, ingested at the same moment by another process
        db.session.rollback()
        notice, created = parse_and_find(raw), False
        if notice is None:
            raise
    if created:
        click.echo(f"Incident {notice.incident_id} created from notice {notice.id}.")
    else:
        click.echo(f"Already received: incident {notice.incident_id} (notice {notice.id}).")


def init_app(app) -> None:
    app.cli.add_command(notices_cli)
