"""The incidents' part of a contact person's erasure (contacts/privacy.py): their name where it
was typed to acknowledge a letter to their provider."""

from __future__ import annotations

from sqlalchemy import Update, update

from contacts.models import ContactPerson
from crisis.incidents.models import LetterReceipt


def erasure(contact: ContactPerson) -> list[tuple[str, Update]]:
    """Clear ``contact``'s name on their provider's letter receipts."""
    return [
        (
            "letter_receipts",
            update(LetterReceipt)
            .where(LetterReceipt.provider_id == contact.provider_id, LetterReceipt.acknowledged_by == contact.name)
            .values(acknowledged_by=None),
        )
    ]
