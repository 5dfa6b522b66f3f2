"""Corrections of the monthly check and the team's calls: submitting, accepting, rejecting,
recording a call's outcome. Service functions: the caller's session, no commit (the views
commit once, or roll back everything when a :class:`~contacts.register.RegisterError` or
:class:`ReviewConflict` is raised, so nothing is ever half-applied).

Decisions (the issue left them open):
- A contact's "no" by link stores one ``correction`` row with only the fields that differ from
  the register (cleaned by :func:`contacts.register.clean_contact`), plus a ``new_contact`` row
  when a new contact person is named. A new submission supersedes the recipient's corrections
  still pending; a later "yes" withdraws them (see :func:`contacts.check_links.record_answer`).
- Accepting a correction with only a comment changes nothing in the register (the team acts
  on the comment in the register pages); it records that the team has dealt with it.
- Accepting and rejecting are compare-and-set on ``status = 'pending'``: of two team members
  accepting the same correction, the second gets :class:`ReviewConflict`, never a double change.
- A call "reached with corrections" applies the fields at once (source ``call``) and keeps an
  ``accepted`` correction row with ``submitted_via = 'call'`` as the record of what was changed.
- A call "number wrong" marks the contact's mobile as failing (shown on the register until the
  number is corrected, which clears the mark). Call outcomes can be changed until the check
  closes: an answer recorded by a call is withdrawn when the outcome becomes "not reached" or
  "number wrong", and the failing mark a call set is cleared when the outcome changes again.
  Register changes already applied by a call stay (they are in the register's history).
- "Not reached" is not done: the contact stays among the calls to make until a later call
  reaches them (or they answer by link). Every recorded call is kept as an attempt (when, by
  whom, outcome; ``call_attempts``), a changed outcome too, so the call list shows them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from contacts import register
from contacts.check_links import CheckClosed, record_answer
from contacts.check_models import CALL_OUTCOMES, CheckCorrection, CheckRecipient
from contacts.models import ContactPerson, Provider
from contacts.register import Actor, RegisterError

# The contact fields a correction may change (not is_active: leaving is said in the comment).
EDITABLE_FIELDS = ("name", "role_title", "mobile", "email", "services")
NEW_PREFIX = "new_"
MAX_COMMENT = 2000
WRONG_NUMBER_REASON = "Fel nummer enligt välfärdsteknikteamets samtal"


class ReviewConflict(Exception):
    """The correction is no longer waiting (someone else reviewed it, or it was superseded)."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def current_values(contact: ContactPerson) -> dict:
    return {name: getattr(contact, name) for name in EDITABLE_FIELDS}


def _comment(text: str | None, errors: dict) -> str:
    comment = (text or "").strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = f"Kommentaren får vara högst {MAX_COMMENT} tecken"
    return comment


def clean_changes(contact: ContactPerson, data: Mapping) -> dict:
    """The fields of ``data`` (form values) that differ from the register, cleaned; raises
    :class:`RegisterError` by field. Values equal to the register's after cleaning (a mobile
    typed as 070-…) are not changes."""
    submitted = {name: data[name] for name in EDITABLE_FIELDS if name in data}
    cleaned = register.clean_contact(submitted, partial=True, current=contact)
    return {name: value for name, value in cleaned.items() if getattr(contact, name) != value}


def clean_new_contact(data: Mapping) -> dict | None:
    """A new contact person named in the form (fields ``new_name`` ...), cleaned; None when the
    section is left empty. Raises :class:`RegisterError` with the ``new_`` field names."""
    raw = {name: data.get(NEW_PREFIX + name) for name in EDITABLE_FIELDS}
    if not any(value not in (None, "", []) for value in raw.values()):
        return None
    try:
        return register.clean_contact(raw)
    except RegisterError as error:
        raise RegisterError({NEW_PREFIX + name: message for name, message in error.errors.items()}) from None


def submit_correction(
    db_session: Session,
    recipient: CheckRecipient,
    data: Mapping,
    *,
    via: str = "link",
    now: datetime,
) -> list[CheckCorrection]:
    """The contact's "no": record the answer and queue what is wrong for the team's review.
    ``data`` holds the form's fields (the contact's, ``new_*`` for a new contact, ``comment``).
    Raises :class:`RegisterError` (nothing stored) or :class:`CheckClosed`."""
    contact = recipient.contact
    errors: dict[str, str] = {}
    comment = _comment(data.get("comment"), errors)
    changes: dict = {}
    new_contact = None
    try:
        changes = clean_changes(contact, data)
    except RegisterError as error:
        errors.update(error.errors)
    try:
        new_contact = clean_new_contact(data)
    except RegisterError as error:
        errors.update(error.errors)
    if not errors and not changes and not comment and new_contact is None:
        errors["_"] = "Ändra minst en uppgift, skriv vad som är fel eller ange en ny kontaktperson"
    if errors:
        raise RegisterError(errors)
    record_answer(db_session, recipient, "no", via=via, now=now)
    withdraw_pending(db_session, recipient, now=now)
    created = []
    if changes or comment:
        created.append(
            CheckCorrection(
                recipient_id=recipient.id,
                kind="correction",
                contact_id=contact.id,
                provider_id=recipient.provider_id,
                proposed=changes,
                comment=comment,
                status="pending",
                submitted_at=now,
                submitted_via=via,
            )
        )
    if new_contact is not None:
        created.append(
            CheckCorrection(
                recipient_id=recipient.id,
                kind="new_contact",
                contact_id=None,
                provider_id=recipient.provider_id,
                proposed=new_contact,
                comment="",  # the comment goes with the correction row
                status="pending",
                submitted_at=now,
                submitted_via=via,
            )
        )
    db_session.add_all(created)
    db_session.flush()
    return created


def withdraw_pending(db_session: Session, recipient: CheckRecipient, *, now: datetime) -> None:
    """Mark the recipient's corrections still waiting as superseded (a new answer replaces them)."""
    db_session.execute(
        update(CheckCorrection)
        .where(CheckCorrection.recipient_id == recipient.id, CheckCorrection.status == "pending")
        .values(status="superseded", reviewed_at=now)
        .execution_options(synchronize_session="fetch")
    )


def _claim(db_session: Session, correction_id: int, status: str, *, user_id: int, now: datetime, reason=None):
    """Compare-and-set ``pending`` -> ``status``; raises :class:`ReviewConflict` when another
    reviewer (or a newer answer) got there first."""
    result = db_session.execute(
        update(CheckCorrection)
        .where(CheckCorrection.id == correction_id, CheckCorrection.status == "pending")
        .values(status=status, reviewed_by_id=user_id, reviewed_at=now, reject_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    correction = db_session.get(CheckCorrection, correction_id)
    if correction is None:
        raise ReviewConflict("missing")
    if result.rowcount != 1:
        db_session.refresh(correction)
        raise ReviewConflict(correction.status)
    db_session.refresh(correction)
    return correction


def accept_correction(db_session: Session, correction_id: int, *, user_id: int, now: datetime) -> CheckCorrection:
    """Apply the correction to the register (history with source ``review``) and mark it
    accepted. Raises :class:`ReviewConflict` or :class:`RegisterError`; the caller then rolls
    back, so neither the status nor the register is changed."""
    correction = _claim(db_session, correction_id, "accepted", user_id=user_id, now=now)
    actor = Actor("review", user_id)
    if correction.kind == "new_contact":
        provider = db_session.get(Provider, correction.provider_id)
        outcome = register.create_contact(db_session, provider, correction.proposed, actor=actor, now=now)
        correction.created_contact_id = outcome.record.id
    elif correction.proposed:
        contact = db_session.get(ContactPerson, correction.contact_id)
        register.update_contact(db_session, contact, correction.proposed, actor=actor, now=now)
    db_session.flush()
    return correction


def reject_correction(
    db_session: Session, correction_id: int, *, user_id: int, reason: str, now: datetime
) -> CheckCorrection:
    """Reject with a reason (required; shown in the contact's history). Raises
    :class:`RegisterError` (``reason``) or :class:`ReviewConflict`."""
    text = (reason or "").strip()
    if not text:
        raise RegisterError({"reason": "Skriv varför rättelsen avvisas"})
    if len(text) > MAX_COMMENT:
        raise RegisterError({"reason": f"Motiveringen får vara högst {MAX_COMMENT} tecken"})
    return _claim(db_session, correction_id, "rejected", user_id=user_id, now=now, reason=text)


def record_call(
    db_session: Session,
    recipient: CheckRecipient,
    *,
    outcome: str,
    note: str | None,
    user_id: int,
    now: datetime,
    data: Mapping | None = None,
) -> None:
    """Record the outcome of the team's call (see the module docstring for what each does).
    ``data`` holds the corrected fields for ``corrections``. Raises :class:`RegisterError`
    (nothing stored) or :class:`CheckClosed`."""
    if outcome not in CALL_OUTCOMES:
        raise RegisterError({"outcome": "Välj hur samtalet gick"})
    errors: dict[str, str] = {}
    note_text = (note or "").strip()
    if len(note_text) > MAX_COMMENT:
        errors["note"] = f"Anteckningen får vara högst {MAX_COMMENT} tecken"
    changes: dict = {}
    contact = recipient.contact
    if outcome == "corrections":
        try:
            changes = clean_changes(contact, data or {})
        except RegisterError as error:
            errors.update(error.errors)
        if not errors and not changes:
            errors["_"] = "Ändra minst en uppgift, eller välj Nådd och bekräftade"
    if errors:
        raise RegisterError(errors)
    if not recipient.check.is_open(now):
        raise CheckClosed(recipient.check.month)

    previous = recipient.call_outcome
    if (
        previous == "wrong_number"
        and outcome != "wrong_number"
        and contact.mobile_failure_reason == WRONG_NUMBER_REASON
    ):
        contact.mobile_failing_since = None
        contact.mobile_failure_reason = None
    if outcome == "confirmed":
        record_answer(db_session, recipient, "yes", via="call", now=now)
    elif outcome == "corrections":
        record_answer(db_session, recipient, "no", via="call", now=now)
        register.update_contact(db_session, contact, changes, actor=Actor("call", user_id), now=now)
        db_session.add(
            CheckCorrection(
                recipient_id=recipient.id,
                kind="correction",
                contact_id=contact.id,
                provider_id=recipient.provider_id,
                proposed=changes,
                comment=note_text,
                status="accepted",
                submitted_at=now,
                submitted_via="call",
                reviewed_at=now,
                reviewed_by_id=user_id,
            )
        )
    else:
        if recipient.answered_via == "call":  # the earlier outcome was recorded by mistake
            recipient.answer = None
            recipient.answered_at = None
            recipient.answered_via = None
        if outcome == "wrong_number" and contact.mobile:
            if contact.mobile_failing_since is None:
                contact.mobile_failing_since = now
            contact.mobile_failure_reason = WRONG_NUMBER_REASON
    recipient.call_outcome = outcome
    recipient.call_note = note_text or None
    recipient.called_at = now
    recipient.called_by_id = user_id
    # A new list (not an in-place append) so that the JSON column is seen as changed.
    recipient.call_attempts = [
        *(recipient.call_attempts or []),
        {"at": now.isoformat(), "by": user_id, "outcome": outcome},
    ]
    db_session.flush()
