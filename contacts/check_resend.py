"""Sending a contact's renewed check link ("Ny länk", :mod:`crisis.links`): the month's
invitation again, with the new link, by e-mail and SMS through the notifications service.

The key is ``check:{month}:{contact_id}:link:{nonce}``: pressing "Skicka" twice for the same link
queues one e-mail and one SMS; a newer link (a new nonce) may be sent again."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from contacts.check_models import CheckRecipient
from contacts.check_queries import REF_TYPE
from contacts.checks import CHANNELS, INVITE, _last_day_label, _link, _policy, month_label
from notifications.models import Message, Priority
from notifications.service import send

log = logging.getLogger(__name__)


def send_renewed_link(db_session: Session, recipient: CheckRecipient, now: datetime) -> list[Message]:
    """Queue the invitation with the recipient's current link to the contact's e-mail address and
    mobile number (those the register holds); does not commit. Returns the messages (none for a
    contact without addresses)."""
    contact, check = recipient.contact, recipient.check
    messages = send(
        db_session=db_session,
        kind=INVITE,
        context={
            "month_label": month_label(check.month),
            "last_day": _last_day_label(check, _policy()),
            "name": contact.name,
            "provider": recipient.provider.name,
            "link": _link(recipient.id, recipient.nonce),
        },
        channels=CHANNELS,
        priority=Priority.NORMAL,
        idempotency_key=f"check:{check.month}:{contact.id}:link:{recipient.nonce}",
        now=now,
        contact=contact,
        ref=(REF_TYPE, check.id),
    )
    log.info("renewed check link queued", extra={"recipient_id": recipient.id, "messages": len(messages)})
    return messages
