"""The register as the recipients of notifications: failing marks, senders by number, names.

notifications knows no domain: a message carries a recipient key, and these hooks (registered
in ``contacts.init_app``, see :mod:`notifications.recipients`) say what the key is here, a
contact person's id.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, literal, select, update
from sqlalchemy.orm import Session

from contacts.models import ContactPerson, Provider
from core.types import UTCDateTime
from notifications.models import Channel
from notifications.recipients import RecipientName

log = logging.getLogger(__name__)


def mark_address_failing(
    *, db_session: Session, key: int, channel: str, address: str, reason: str, now: datetime
) -> bool:
    """Mark the contact's e-mail address or mobile number as failing, if it is still ``address``
    (the team may have corrected it since the message was queued). Keeps the first ``since``;
    does not commit."""
    contacts = ContactPerson.__table__
    prefix = "email" if Channel(channel) is Channel.EMAIL else "mobile"
    since = contacts.c[f"{prefix}_failing_since"]
    result = db_session.execute(
        update(contacts)
        .where(contacts.c.id == key, contacts.c[prefix] == address)
        .values({since: func.coalesce(since, literal(now, UTCDateTime())), f"{prefix}_failure_reason": reason[:300]})
    )
    if result.rowcount:
        log.warning("contact address marked failing", extra={"contact_id": key, "channel": channel})
    return bool(result.rowcount)


def find_sender(*, db_session: Session, number: str) -> ContactPerson | None:
    """The one active contact person with this mobile number; None when none or several have it."""
    matches = db_session.scalars(
        select(ContactPerson).where(ContactPerson.mobile == number, ContactPerson.is_active.is_(True)).limit(2)
    ).all()
    return matches[0] if len(matches) == 1 else None


_KEY_CHUNK = 1000  # ids per IN (...): a month's check has tens of thousands of recipients


def describe(*, db_session: Session, keys: set[int]) -> dict[int, RecipientName]:
    """The contact persons' names, and their providers' as the organisation."""
    ordered = sorted(keys)
    names: dict[int, RecipientName] = {}
    for start in range(0, len(ordered), _KEY_CHUNK):
        rows = db_session.execute(
            select(ContactPerson.id, ContactPerson.name, Provider.name)
            .join(Provider, ContactPerson.provider_id == Provider.id)
            .where(ContactPerson.id.in_(ordered[start : start + _KEY_CHUNK]))
        )
        names.update((contact_id, RecipientName(name, provider)) for contact_id, name, provider in rows)
    return names
