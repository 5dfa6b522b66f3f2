"""Register extract (registerutdrag) and erasure (radering) for one contact person.

* :func:`extract` gathers everything the service holds about one contact person: the register
  fields, the register history rows about them, their monthly-check rows and corrections, the
  messages sent to them (kind, channel, time, status; the text only while it is still kept, see
  core/retention.py) and the SMS replies from their number. Nothing about other people: not the
  provider's other contacts, not letters' receipts of the provider.
* :func:`erase` removes the personal values everywhere in one transaction and keeps the record:
  the contact row stays as "Raderad kontaktperson" (inactive, no name, role, number or address),
  history values about them are blanked, message texts and addresses to them are blanked (queued
  ones are cancelled), their check answers stay as anonymous figures with notes and proposed
  values cleared, and names typed on their provider's receipts and visits that equal theirs are
  cleared (the domains that hold those add their part with :func:`register_erasure`:
  :mod:`crisis.incidents.privacy`, :mod:`crisis.visits.privacy`). What is kept, and why: the
  fact that a contact of the provider existed and was sent operational messages at given times,
  with their status and answers, because the routine's record (test av rutin, disruptions) must
  show that the provider was reached.

Pages (team and admin): ``/register/contacts/<id>/extract`` (readable HTML),
``/register/contacts/<id>/extract.json`` (download), ``/register/contacts/<id>/erase`` (a
confirmation step, then the erasure).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import Update, or_, select, update
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.roles import Role
from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck
from contacts.models import ContactPerson, RegisterChange
from core import audit
from core.clock import current_clock
from core.extensions import db
from core.numbers import record_id

log = logging.getLogger(__name__)

ERASED_NAME = "Raderad kontaktperson"
PERSONAL_FIELDS = ("name", "role_title", "mobile", "email")
ALLOWED = (Role.TEAM, Role.ADMIN)

bp = Blueprint("privacy", __name__, url_prefix="/register")

ErasurePart = Callable[[ContactPerson], Iterable[tuple[str, Update]]]
"""``part(contact)``: ``(count name, UPDATE statement)`` pairs that clear the person's values in a
domain's tables; :func:`erase` runs them while ``contact`` still holds its name and number."""

_ERASURE_PARTS = "krisrutin.privacy.erasure_parts"


def register_erasure(app, part: ErasurePart) -> None:
    """Add a domain's part to every erasure, after the register's and the parts registered before."""
    app.extensions.setdefault(_ERASURE_PARTS, []).append(part)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def extract(db_session: Session, contact: ContactPerson) -> dict:
    """Everything held about ``contact``, as plain JSON-ready data."""
    from notifications.models import InboundSms, Message

    history = db_session.scalars(
        select(RegisterChange)
        .where(RegisterChange.entity == "contact", RegisterChange.entity_id == contact.id)
        .order_by(RegisterChange.id)
    ).all()
    recipients = db_session.execute(
        select(CheckRecipient, MonthlyCheck.month)
        .join(MonthlyCheck, CheckRecipient.check_id == MonthlyCheck.id)
        .where(CheckRecipient.contact_id == contact.id)
        .order_by(MonthlyCheck.month)
    ).all()
    corrections = db_session.scalars(
        select(CheckCorrection)
        .where(or_(CheckCorrection.contact_id == contact.id, CheckCorrection.created_contact_id == contact.id))
        .order_by(CheckCorrection.id)
    ).all()
    messages = db_session.scalars(
        select(Message).where(Message.contact_id == contact.id).order_by(Message.created_at, Message.id)
    ).all()
    replies = []
    if contact.mobile:
        replies = db_session.scalars(
            select(InboundSms).where(InboundSms.from_address == contact.mobile).order_by(InboundSms.received_at)
        ).all()
    return {
        "contact": {
            "id": contact.id,
            "provider_id": contact.provider_id,
            "provider": contact.provider.name,
            "name": contact.name,
            "role_title": contact.role_title,
            "mobile": contact.mobile,
            "email": contact.email,
            "services": list(contact.services or []),
            "is_active": contact.is_active,
            "created_at": _iso(contact.created_at),
            "updated_at": _iso(contact.updated_at),
            "email_failing_since": _iso(contact.email_failing_since),
            "mobile_failing_since": _iso(contact.mobile_failing_since),
        },
        "history": [
            {
                "changed_at": _iso(row.changed_at),
                "action": row.action,
                "field": row.field,
                "old_value": row.old_value,
                "new_value": row.new_value,
                "source": row.source,
            }
            for row in history
        ],
        "monthly_checks": [
            {
                "month": month,
                "added_at": _iso(row.added_at),
                "first_opened_at": _iso(row.first_opened_at),
                "answer": row.answer,
                "answered_at": _iso(row.answered_at),
                "answered_via": row.answered_via,
                "reminders_sent": row.reminders_sent,
                "call_outcome": row.call_outcome,
                "call_note": row.call_note,
                "called_at": _iso(row.called_at),
                "call_attempts": [
                    {"at": attempt.get("at"), "outcome": attempt.get("outcome")} for attempt in row.call_attempts or []
                ],
            }
            for row, month in recipients
        ],
        "corrections": [
            {
                "kind": row.kind,
                "status": row.status,
                "proposed": row.proposed,
                "comment": row.comment,
                "submitted_at": _iso(row.submitted_at),
                "submitted_via": row.submitted_via,
                "reviewed_at": _iso(row.reviewed_at),
            }
            for row in corrections
        ],
        "messages": [
            {
                "kind": row.kind,
                "channel": row.channel,
                "to_address": row.to_address or None,
                "created_at": _iso(row.created_at),
                "sent_at": _iso(row.sent_at),
                "delivered_at": _iso(row.delivered_at),
                "status": row.status,
                "subject": row.subject,
                "text": row.body_text or None,  # blanked after the retention period
            }
            for row in messages
        ],
        "sms_replies": [{"received_at": _iso(row.received_at), "text": row.body or None} for row in replies],
    }


def erase(db_session: Session, contact: ContactPerson, *, user_id: int | None, now: datetime) -> dict[str, int]:
    """Remove ``contact``'s personal values everywhere (see the module docstring); returns how
    many rows of each kind were changed. Does not commit: the caller commits once."""
    from notifications.models import InboundSms, Message, MessageStatus

    counts: dict[str, int] = {}
    mobile = contact.mobile

    def apply(kind: str, statement) -> None:
        result = db_session.execute(statement, execution_options={"synchronize_session": False})
        counts[kind] = max(result.rowcount or 0, 0)

    apply(
        "history",
        update(RegisterChange)
        .where(
            RegisterChange.entity == "contact",
            RegisterChange.entity_id == contact.id,
            RegisterChange.field.in_(PERSONAL_FIELDS),
        )
        .values(old_value=None, new_value=None),
    )
    apply(
        "messages_cancelled",
        update(Message)
        .where(Message.contact_id == contact.id, Message.status == MessageStatus.QUEUED.value)
        .values(status=MessageStatus.CANCELLED.value, updated_at=now),
    )
    apply(
        "messages",
        update(Message)
        .where(Message.contact_id == contact.id)
        .values(body_text="", body_html=None, subject=None, to_address=""),
    )
    if mobile:
        apply(
            "sms_replies", update(InboundSms).where(InboundSms.from_address == mobile).values(body="", from_address="")
        )
    apply(
        "check_answers",
        update(CheckRecipient).where(CheckRecipient.contact_id == contact.id).values(call_note=None),
    )
    apply(
        "corrections",
        update(CheckCorrection)
        .where(or_(CheckCorrection.contact_id == contact.id, CheckCorrection.created_contact_id == contact.id))
        .values(proposed={}, comment="", reject_reason=None),
    )
    for part in current_app.extensions.get(_ERASURE_PARTS, ()):
        for kind, statement in part(contact):
            apply(kind, statement)
    if contact.is_active:
        db_session.add(
            RegisterChange(
                entity="contact",
                entity_id=contact.id,
                provider_id=contact.provider_id,
                action="deactivated",
                field="is_active",
                old_value="ja",
                new_value="nej",
                source="team",
                changed_by_id=user_id,
                changed_at=now,
            )
        )
    contact.name = ERASED_NAME
    contact.role_title = ""
    contact.mobile = None
    contact.email = None
    contact.is_active = False
    contact.email_failing_since = contact.email_failure_reason = None
    contact.mobile_failing_since = contact.mobile_failure_reason = None
    contact.updated_at = now
    counts["contact"] = 1
    db_session.flush()
    return counts


# --- pages ----------------------------------------------------------------------------------------


def _contact_or_404(contact_id: str) -> ContactPerson:
    number = record_id(contact_id)
    contact = db.session.get(ContactPerson, number) if number is not None else None
    if contact is None:
        abort(404)
    return contact


@bp.get("/contacts/<contact_id>/extract")
@roles_required(*ALLOWED)
@audit.audited_view("contact", id_arg="contact_id", extract=True)
def extract_page(contact_id: str):
    contact = _contact_or_404(contact_id)
    data = extract(db.session, contact)
    log.info("register extract viewed", extra={"contact_id": contact.id})
    return render_template("contacts/privacy/extract.html", contact=contact, data=data)


@bp.get("/contacts/<contact_id>/extract.json")
@roles_required(*ALLOWED)
@audit.audited_export("contact", id_arg="contact_id", extract=True)
def extract_json(contact_id: str):
    contact = _contact_or_404(contact_id)
    data = extract(db.session, contact)
    log.info("register extract downloaded", extra={"contact_id": contact.id})
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="registerutdrag-kontakt-{contact.id}.json"'},
    )


@bp.route("/contacts/<contact_id>/erase", methods=["GET", "POST"])
@roles_required(*ALLOWED)
@audit.audited_view("contact", id_arg="contact_id", erasure=True)
def erase_page(contact_id: str):
    contact = _contact_or_404(contact_id)
    errors: dict[str, str] = {}
    if contact.name == ERASED_NAME and not contact.mobile and not contact.email:
        return render_template("contacts/privacy/erase.html", contact=contact, errors=errors, erased=True)
    if request.method == "POST":
        if request.form.get("confirm") != "ja":
            errors["confirm"] = _("Bekräfta att begäran om radering är kontrollerad.")
        else:
            try:
                counts = erase(db.session, contact, user_id=g.user.id, now=current_clock().now())
                db.session.commit()
            except Exception:
                db.session.rollback()
                raise
            log.info("contact erased", extra={"contact_id": contact.id, "counts": counts})
            flash(_("Kontaktpersonens personuppgifter är raderade."), "success")
            return redirect(url_for("privacy.erase_page", contact_id=contact.id))
    return (
        render_template("contacts/privacy/erase.html", contact=contact, errors=errors, erased=False),
        400 if errors else 200,
    )
