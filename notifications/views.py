"""Staff pages of the notifications package: the console outbox and who received what.

The Twilio webhooks are in webhooks.py (public, signed by Twilio); everything here is for staff.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from flask import Blueprint, current_app, render_template
from markupsafe import Markup, escape
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.roles import STAFF
from core import audit
from core.extensions import db
from notifications import service
from notifications.models import OPEN_STATUSES, Channel, Message, MessageStatus
from notifications.references import describe_reference
from notifications.service import Delivery

bp = Blueprint("notifications", __name__, template_folder="templates")

CONSOLE_PAGE_SIZE = 50

# Everything up to white space or a character that cannot stand unescaped in a URL; trailing
# punctuation is the sentence's, not the link's ("Svara här: https://…/x.").
_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?"


def linkify(text: str | None) -> Markup:
    """``text`` as HTML with its http(s) URLs made into links; everything is escaped.

    The text is split into URLs and the rest, and every piece is escaped on its own, so neither a
    body's markup nor a crafted URL can reach the page as HTML; only http(s) links are made.
    """
    if not text:
        return Markup("")
    parts: list[Markup] = []
    position = 0
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if not re.match(r"https?://[^/?#]", url, re.IGNORECASE):
            continue
        parts.append(escape(text[position : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(url))
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


bp.add_app_template_filter(linkify, "linkify")


def _trim(url: str) -> str:
    while url and url[-1] in _TRAILING:
        url = url[:-1]
    while url.endswith(")") and url.count(")") > url.count("("):  # "(se https://x.se/a)"
        url = url[:-1]
    return url


def console_channels() -> set[str]:
    """The channels whose messages go to the console instead of a real gateway (as the dispatcher decides)."""
    setup = current_app.extensions["krisrutin.channels"]
    gateways = {
        Channel.EMAIL.value: setup.email_gateway,
        Channel.SMS.value: setup.sms_gateway,
        Channel.CALL.value: setup.call_gateway,
    }
    return {channel for channel, gateway in gateways.items() if gateway == "console"}


def console_messages(*, db_session: Session, channels: set[str], limit: int = CONSOLE_PAGE_SIZE) -> list[Message]:
    """The newest messages the console gateway took, and those still queued for a console channel."""
    condition = Message.gateway == "console"
    if channels:
        condition = or_(
            condition,
            and_(Message.channel.in_(sorted(channels)), Message.status.in_([s.value for s in OPEN_STATUSES])),
        )
    return list(
        db_session.scalars(
            select(Message).where(condition).order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)
        )
    )


@bp.get("/notifications/console")
@roles_required(*STAFF)
@audit.audited_view("message", console=True)
def console():
    """The console outbox: what the demo 'sent', with clickable links (e.g. in check messages)."""
    channels = console_channels()
    return render_template(
        "notifications/console.html",
        messages=console_messages(db_session=db.session, channels=channels),
        console_channels=channels,
        page_size=CONSOLE_PAGE_SIZE,
    )


@dataclass
class ContactDeliveries:
    """One row of the delivery overview: one recipient and what was sent to them.

    ``contact_id`` is the recipient key; ``contact_name`` and ``provider_name`` (the organisation
    the recipient answers for) come from the recipients' ``describe`` hook
    (:mod:`notifications.recipients`), and are None without one.
    """

    contact_id: int | None
    contact_name: str | None
    provider_name: str | None
    address: str  # shown for a message without a recipient key (an address typed by hand), or unnamed
    messages: dict[str, list[Delivery]] = field(default_factory=dict)  # channel -> oldest first


def delivery_overview(*, db_session: Session, ref_type: str, ref_id: str) -> tuple[list[ContactDeliveries], Counter]:
    """Per recipient, the messages of one letter or check; and the messages' statuses counted."""
    found = service.deliveries(db_session=db_session, ref_type=ref_type, ref_id=ref_id)
    rows: dict[object, ContactDeliveries] = {}
    counts: Counter = Counter()
    for delivery in sorted(found, key=lambda d: (d.created_at, d.message_id)):
        key = delivery.contact_id if delivery.contact_id is not None else ("address", delivery.to_address)
        if key not in rows:
            rows[key] = ContactDeliveries(
                delivery.contact_id, delivery.contact_name, delivery.organisation, delivery.to_address
            )
        rows[key].messages.setdefault(delivery.channel, []).append(delivery)
        counts[delivery.status] += 1
    last = "\uffff"  # rows without a provider or name go last
    ordered = sorted(
        rows.values(), key=lambda r: ((r.provider_name or last).casefold(), (r.contact_name or last).casefold())
    )
    return ordered, counts


@bp.get("/notifications/deliveries/<ref_type>/<ref_id>")
@roles_required(*STAFF)
@audit.audited_view("message", deliveries=True)
def deliveries(ref_type: str, ref_id: str):
    """Who has received what, for one information letter or monthly check."""
    audit.viewed("message", deliveries=f"{ref_type}:{ref_id}"[:100])
    rows, counts = delivery_overview(db_session=db.session, ref_type=ref_type, ref_id=ref_id)
    summary = {
        "contacts": len(rows),
        "messages": sum(counts.values()),
        "delivered": counts[MessageStatus.DELIVERED.value],
        "sent": counts[MessageStatus.SENT.value],
        "pending": sum(counts[s.value] for s in OPEN_STATUSES),
        "failed": counts[MessageStatus.FAILED.value] + counts[MessageStatus.UNDELIVERED.value],
        "cancelled": counts[MessageStatus.CANCELLED.value],
    }
    about, about_url = describe_reference(db.session, ref_type, ref_id)
    return render_template(
        "notifications/deliveries.html",
        about=about,
        about_url=about_url,
        ref_type=ref_type,
        ref_id=ref_id,
        rows=rows,
        summary=summary,
        # Calls (to staff) have a column only where a call was made.
        channels=[c.value for c in Channel if c is not Channel.CALL or any(c.value in r.messages for r in rows)],
    )
