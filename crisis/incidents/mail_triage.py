"""Inbound supplier e-mail: what becomes of a message read from the mailbox, and the triage list
"Inkommande e-post att bedöma" where staff judge the rest.

:func:`store_message` is called by :mod:`crisis.incidents.mailbox` once per message, inside the
transaction that also records it (``inbound_emails``): a message from a known supplier's sender
address becomes a notice through the e-mail intake (:func:`crisis.incidents.email_ingest.ingest_email`,
same rules, same Message-ID de-duplication, the original kept byte for byte); any other message
waits in the triage list with the reason.

Decisions (the issue left them open):
- "Known supplier" is decided by the From address only (:func:`email_ingest.supplier_for`: a
  supplier's exact sender addresses, then its ``@domain`` entries, then its e-mail's domain). The
  addresses quoted in a forwarded text are not enough to act without a person: such a message
  goes to triage.
- A message bigger than :data:`email_ingest.MAX_BYTES` is kept with its headers and size only
  (the bytes are not fetched); made a notice from the triage list, its notice's original is those
  headers. An unparsable message (empty, NUL bytes, no From/Subject) is kept byte for byte.
- A message whose Message-ID was read before (under another UID, e.g. sent twice) is stored as
  ``duplicate`` pointing to the first one's notice: it never shows in the triage list twice.
- The triage list's actions are one click each: "Gör till driftstörning" with the supplier chosen
  (an active supplier, or "okänd": then no supplier at all, not a guess from the text), and "Avfärda" with a
  required reason. Both are recorded on the row (who, when) and in the audit log as changes.
"""

from __future__ import annotations

import email.parser
import email.policy
from datetime import datetime
from email.utils import getaddresses, parseaddr

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.roles import STAFF, Role
from core import audit, todo
from core.clock import current_clock
from core.extensions import db
from core.numbers import record_id
from core.text import scrub
from crisis.incidents.email_ingest import MAX_BYTES, NoticeError, ingest_email, parse_message, supplier_for
from crisis.incidents.models import InboundEmail, InboundEmailReason, InboundEmailStatus, Supplier

REASON_MAX = 500
SUBJECT_MAX = 300


def _headers(raw: bytes):
    """The message's headers, parsed leniently (a broken header is read as missing)."""
    return email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw or b"")


def _header(headers, name: str) -> str:
    try:
        value = headers[name]
    except (ValueError, IndexError, TypeError):
        return ""
    return scrub(str(value or ""), lines=False).strip()


def sender_of(headers) -> str:
    """The From header's address, lower case ('' when there is none)."""
    value = _header(headers, "From")
    addresses = [address for _, address in getaddresses([value]) if "@" in address] or [parseaddr(value)[1]]
    return (addresses[0] if addresses else "").strip().lower()[:254]


def store_message(
    db_session: Session,
    *,
    mailbox_key: str,
    raw: bytes,
    size: int,
    headers_only: bool,
    server_date: datetime | None,
    now: datetime,
) -> InboundEmail:
    """Record the message ``raw`` read from the mailbox under ``mailbox_key`` and decide what
    becomes of it (a notice, triage or a duplicate). ``headers_only``: too big, ``raw`` is its
    headers. Does not commit; the caller's unique key on ``mailbox_key`` makes it happen once."""
    headers = _headers(raw)
    message_id = _header(headers, "Message-ID")[:300] or None
    subject = _header(headers, "Subject")[:SUBJECT_MAX] or None
    row = InboundEmail(
        mailbox_key=mailbox_key,
        message_id=message_id,
        sender=sender_of(headers) or None,
        subject=subject,
        received_at=now,
        server_date=server_date,
        size=size,
        raw=raw,
        raw_is_headers=headers_only,
        status=InboundEmailStatus.TRIAGE.value,
    )
    db_session.add(row)
    if headers_only or size > MAX_BYTES:
        row.reason = InboundEmailReason.TOO_BIG.value
        row.reason_text = f"{size} bytes"
        return row
    try:
        parse_message(raw)
    except NoticeError as error:
        row.reason = InboundEmailReason.UNPARSABLE.value
        row.reason_text = "; ".join(error.errors.values())[:REASON_MAX]
        return row
    if message_id:
        earlier = db_session.scalar(
            select(InboundEmail)
            .where(InboundEmail.message_id == message_id, InboundEmail.mailbox_key != mailbox_key)
            .order_by(InboundEmail.id)
            .limit(1)
        )
        if earlier is not None:
            row.status = InboundEmailStatus.DUPLICATE.value
            row.notice_id, row.incident_id = earlier.notice_id, earlier.incident_id
            return row
    supplier = supplier_for(db_session, [row.sender]) if row.sender else None
    if supplier is None:
        row.reason = InboundEmailReason.UNKNOWN_SENDER.value
        return row
    _make_notice(db_session, row, now=now, supplier=supplier)
    return row


def _make_notice(db_session: Session, row: InboundEmail, *, now, supplier, actor_id=None) -> str | None:
    """``row`` becomes a notice through the e-mail intake; or, refused, waits in triage with the
    intake's reason, which is returned."""
    savepoint = db_session.begin_nested()
    try:
        notice, created = ingest_email(
            db_session, row.raw or b"", now=now, actor_id=actor_id, supplier=supplier, guess_supplier=False
        )
    except NoticeError as error:
        savepoint.rollback()
        row.status = InboundEmailStatus.TRIAGE.value
        row.reason = InboundEmailReason.REFUSED.value
        row.reason_text = "; ".join(error.errors.values())[:REASON_MAX]
        return row.reason_text
    savepoint.commit()
    row.status = (InboundEmailStatus.NOTICE if created else InboundEmailStatus.DUPLICATE).value
    row.notice_id, row.incident_id = notice.id, notice.incident_id
    return None


# --- the triage list ------------------------------------------------------------------------------


def waiting(db_session: Session) -> list[InboundEmail]:
    """The messages waiting in the triage list, oldest first."""
    return list(
        db_session.scalars(
            select(InboundEmail)
            .where(InboundEmail.status == InboundEmailStatus.TRIAGE.value)
            .order_by(InboundEmail.received_at, InboundEmail.id)
        )
    )


def make_notice(
    db_session: Session, row: InboundEmail, *, supplier: Supplier | None, now: datetime, actor_id: int
) -> str | None:
    """A notice from a message of the triage list, with ``supplier`` (None: unknown). Returns the
    intake's refusal (the row then keeps waiting), else None. Does not commit."""
    refusal = _make_notice(db_session, row, now=now, supplier=supplier, actor_id=actor_id)
    if refusal is None:
        row.decided_by_id, row.decided_at = actor_id, now
    return refusal


def dismiss(db_session: Session, row: InboundEmail, *, reason: str, now: datetime, actor_id: int) -> None:
    """The message is no notice: leaves the triage list with ``reason``. Does not commit."""
    row.status = InboundEmailStatus.DISMISSED.value
    row.dismiss_reason = reason[:REASON_MAX]
    row.decided_by_id, row.decided_at = actor_id, now


def message_text(row: InboundEmail) -> str:
    """The text to show of a message (its body; '' when it has none or cannot be read)."""
    from crisis.incidents.email_ingest import message_text as body_of

    if not row.raw or row.raw_is_headers or b"\x00" in row.raw:
        return ""
    return body_of(email.message_from_bytes(row.raw, policy=email.policy.default))[:20_000]


# --- the pages: /incidents/mail -------------------------------------------------------------------

bp = Blueprint("mail_triage", __name__)


def _row_or_404(message_id: int) -> InboundEmail:
    row = db.session.get(InboundEmail, message_id)
    if row is None:
        abort(404, description=_("Meddelandet finns inte."))
    return row


def _page(errors: dict[int, dict[str, str]] | None = None, values: dict | None = None, status: int = 200):
    rows = waiting(db.session)
    suppliers = list(db.session.scalars(select(Supplier).where(Supplier.is_active.is_(True)).order_by(Supplier.name)))
    return render_template(
        "incidents/mail_triage.html",
        rows=rows,
        texts={row.id: message_text(row) for row in rows},
        suppliers=suppliers,
        guesses={row.id: _guess(row) for row in rows},
        errors=errors or {},
        values=values or {},
    ), status


def _guess(row: InboundEmail) -> int | None:
    """The supplier pre-chosen for "Gör till driftstörning": the one the sender or a quoted address names."""
    if not row.sender:
        return None
    supplier = supplier_for(db.session, [row.sender])
    return supplier.id if supplier is not None else None


@bp.get("/incidents/mail")
@roles_required(*STAFF)
@audit.audited_view("inbound_email")
def index():
    """Inkommande e-post att bedöma: the messages of the supplier mailbox no rule could place."""
    return _page()


@bp.post("/incidents/mail/<int:message_id>/notice")
@roles_required(*STAFF)
def make_notice_view(message_id: int):
    row = _row_or_404(message_id)
    if row.status != InboundEmailStatus.TRIAGE.value:
        abort(409, description=_("Meddelandet är redan bedömt."))
    choice = (request.form.get("supplier") or "").strip()
    supplier = None
    if choice != "unknown":
        number = record_id(choice)
        supplier = db.session.get(Supplier, number) if number is not None else None
        if supplier is None or not supplier.is_active:
            return _page({row.id: {"supplier": _("Välj leverantör, eller okänd")}}, {row.id: request.form}, 400)
    now = current_clock().now()
    refusal = make_notice(db.session, row, supplier=supplier, now=now, actor_id=g.user.id)
    if refusal is not None:  # nothing changes; the refusal is shown beside the choice
        db.session.rollback()
        message = _("Meddelandet kan inte bli en driftstörning: %(why)s", why=refusal)
        return _page({row.id: {"supplier": message}}, {}, 400)
    audit.changed("inbound_email", row.id, status=row.status)
    db.session.commit()
    flash(_("Driftstörningen är skapad."), "success")
    return redirect(url_for("incidents.detail", incident_id=row.incident_id))


@bp.post("/incidents/mail/<int:message_id>/dismiss")
@roles_required(*STAFF)
def dismiss_view(message_id: int):
    row = _row_or_404(message_id)
    if row.status != InboundEmailStatus.TRIAGE.value:
        abort(409, description=_("Meddelandet är redan bedömt."))
    reason = " ".join((request.form.get("reason") or "").split())
    if not reason:
        return _page({row.id: {"reason": _("Skriv varför meddelandet inte är en driftstörning")}}, {}, 400)
    if len(reason) > REASON_MAX:
        message = _("Skälet får vara högst %(max)d tecken", max=REASON_MAX)
        return _page({row.id: {"reason": message}}, {row.id: request.form}, 400)
    dismiss(db.session, row, reason=reason, now=current_clock().now(), actor_id=g.user.id)
    audit.changed("inbound_email", row.id, status=row.status)
    db.session.commit()
    flash(_("Meddelandet är avfärdat."), "success")
    return redirect(url_for("mail_triage.index"))


def todo_items(db_session: Session, now: datetime, user) -> list[todo.TodoItem]:
    """The start page's row for the triage list (team, on-call officer, admin)."""
    if user.role_enum not in (Role.TEAM, Role.ON_CALL, Role.ADMIN):
        return []
    rows = waiting(db_session)
    if not rows:
        return []
    return [
        todo.TodoItem(
            urgency=todo.ACKNOWLEDGE,
            at=rows[0].received_at,
            text=ngettext(
                "Inkommande e-post att bedöma: %(num)d meddelande",
                "Inkommande e-post att bedöma: %(num)d meddelanden",
                len(rows),
            ),
            link=url_for("mail_triage.index"),
            kind="inbound_email",
        )
    ]
