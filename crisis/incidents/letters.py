"""Information letters (informationsbrev), updates and resolution letters to the affected providers.

:func:`send_letter` freezes a letter, gives every affected provider a :class:`LetterReceipt` (its
own signed page, ``/d/<token>``, see :mod:`crisis.incidents.provider_page`) and queues, in the caller's
transaction, an e-mail with the whole letter and an SMS that summarises it and links to that page
for every active contact of those providers. Every letter carries the routine's local measures
(when the letter asks for local routines) and whom to contact, which depends on whether the
letter went out in office hours. The copies are queued with :func:`notifications.bulk.send_many`:
the letter is rendered once for all its contacts (only the contact's name, the provider's name and
its link differ, ``letter_texts.PERSONAL``) and its messages are inserted in bulk (issue 18).

Decisions (where the issue is silent)
    - The first letter is the information letter; updates, the resolution letter and the planned
      work reminder need it. A resolution letter closes the incident; nothing is sent on a closed
      incident.
    - Unacknowledged *urgent* letters (unplanned incidents) are re-sent after
      ``letter_resend_minutes`` and put on the handling party's call list after
      ``letter_call_minutes`` — first letters and updates only: a resolution letter asks nobody to
      start anything. When a newer letter has gone out (it has its own re-send and call list) or
      the incident has closed, an older letter's steps do nothing.
    - "Whom to contact" is decided by the letter's own instant (so a re-sent letter says what it
      said the first time): in office hours the team's mailbox and Lindesk, with the team's duty
      phone for urgent matters; outside office hours the on-call officer on duty (the roster),
      else the team's duty phone.
    - The on-call officer's letters also go to the team's mailbox (an e-mail copy with a link to
      the incident page).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contacts.models import ContactPerson, Provider
from core.signed_links import InvalidLink, make_token, new_nonce, row_for_token, sign
from core.text import one_line, refusal
from crisis.incidents import timeline
from crisis.incidents.affected import affected_providers
from crisis.incidents.letter_texts import (
    KIND_LABELS,
    LOCAL_MEASURE_TEXTS,
    LOCAL_MEASURES,
    MESSAGE_KIND,
    SMS_MAX_SEGMENTS,
    copy_context,
    letter_context,
    shared_context,
    sms_title,
)
from crisis.incidents.models import Incident, IncidentStatus, Letter, LetterKind, LetterReceipt
from crisis.incidents.receipt_answers import ANSWERS
from crisis.incidents.routing import acknowledge_incident
from crisis.oncall.models import Party
from notifications.bulk import Outgoing, send_many
from notifications.models import Channel, Priority
from notifications.service import send
from scheduling.service import schedule

log = logging.getLogger(__name__)

REF_TYPE = "letter"
FANOUT_TASK = "crisis.letter_fanout"
FIRST_CHUNK = 50  # contacts queued with the letter itself: the first messages leave at its commit
# Contacts per transaction for the rest of a big letter: FANOUT_CHUNK first, each chunk then
# twice the last, up to FANOUT_CHUNK_MAX (issue 18). While the dispatchers send the first part,
# each transaction's round trips cost the request more than its rows, so big chunks make the
# POST fast; a small one first leaves the dispatchers room to send the first SMS. On PostgreSQL
# 3,000 contacts took 2.3-2.8 s in chunks of 250, 1.4-1.6 s in chunks of 1,000, with the first
# SMS after 0.4-0.5 s and 0.6-0.7 s (bench.incident_fanout). A chunk of 2,000 holds SQLite's
# write lock for about 0.4 s, which the dispatchers wait out.
FANOUT_CHUNK = 250
FANOUT_CHUNK_MAX = 2000
RESEND_TASK = "crisis.letter_resend"
CALL_TASK = "crisis.letter_call"
CHANNELS = (Channel.EMAIL, Channel.SMS)
LINK_PATH = "/d/"
BODY_MAX = 20_000  # a letter's text, as a notice's


class LetterError(Exception):
    """A letter that may not be sent now; the message is Swedish, for the person writing it."""

    def __init__(self, message: str, field: str = "_"):
        super().__init__(message)
        self.message = message
        self.field = field


# --- settings of the running application --------------------------------------------------------


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _settings():
    return current_app.extensions["krisrutin.settings"]


# --- signed links to the provider's page ----------------------------------------------------------

_PURPOSE = b"krisrutin letter receipt link v1"


def _mac(secret: str, row_id: int, nonce: str) -> str:
    return sign(secret, _PURPOSE, row_id, nonce)


def link_token(receipt: LetterReceipt, secret: str) -> str:
    return make_token(receipt.id, receipt.nonce, secret=secret, purpose=_PURPOSE)


def link_url(receipt: LetterReceipt, *, secret: str | None = None, base_url: str | None = None) -> str:
    secret = secret or current_app.config["SECRET_KEY"]
    base_url = base_url or _settings().public_base_url
    return f"{base_url.rstrip('/')}{LINK_PATH}{link_token(receipt, secret)}"


def receipt_for_token(db_session: Session, token: str, *, secret: str) -> LetterReceipt:
    """The receipt a provider link belongs to; raises :class:`InvalidLink`."""
    return row_for_token(db_session, LetterReceipt, token, secret=secret, purpose=_PURPOSE)


# --- sending ------------------------------------------------------------------------------------------


def letters_of(db_session: Session, incident_id: int) -> list[Letter]:
    return list(db_session.scalars(select(Letter).where(Letter.incident_id == incident_id).order_by(Letter.number)))


def first_letter(db_session: Session, incident_id: int) -> Letter | None:
    return db_session.scalars(
        select(Letter).where(Letter.incident_id == incident_id, Letter.kind == LetterKind.FIRST.value)
    ).first()


def check_may_send(db_session: Session, incident: Incident, kind: LetterKind | str) -> None:
    """Raise :class:`LetterError` when a letter of ``kind`` may not go out now."""
    kind = LetterKind(kind)
    if not incident.is_open:
        raise LetterError("Störningen är avslutad. Inga fler brev kan skickas.")
    first = first_letter(db_session, incident.id)
    if kind is LetterKind.FIRST and first is not None:
        raise LetterError("Informationsbrevet är redan skickat. Skicka en uppdatering i stället.")
    if kind is not LetterKind.FIRST and first is None:
        raise LetterError("Skicka informationsbrevet först.")


def _contacts_of(db_session: Session, provider_ids: list[int]) -> list:
    """The active contacts of active providers among ``provider_ids``, in a stable order, as
    rows (id, provider_id, name, email, mobile): plain values, so that a commit between the
    chunks of a big letter does not make each of them load again."""
    if not provider_ids:
        return []
    return list(
        db_session.execute(
            select(
                ContactPerson.id,
                ContactPerson.provider_id,
                ContactPerson.name,
                ContactPerson.email,
                ContactPerson.mobile,
            )
            .join(Provider, Provider.id == ContactPerson.provider_id)
            .where(
                ContactPerson.provider_id.in_(provider_ids),
                ContactPerson.is_active.is_(True),
                Provider.is_active.is_(True),
            )
            .order_by(ContactPerson.provider_id, ContactPerson.id)
        )
    )


@dataclass(frozen=True)
class Copies:
    """What the copies of one letter to some providers are made of, read once (plain values: it
    outlives the commits between the chunks of a big letter): the contacts in their stable
    order, each provider's name and link, and the context every copy shares."""

    letter_id: int
    priority: Priority
    contacts: list
    providers: dict[int, str]
    links: dict[int, str]
    common: dict


def plan_copies(db_session: Session, letter: Letter, incident: Incident, links: dict[int, str]) -> Copies:
    """The copies of ``letter`` to the providers of ``links`` (provider id -> its page's link)."""
    common = letter_context(db_session, letter, incident)
    if links:
        common["sms_title"] = sms_title(common, max(links.values(), key=len))
    chosen = select(Provider.id, Provider.name).where(Provider.id.in_(list(links) or [0]))
    providers = {provider_id: name for provider_id, name in db_session.execute(chosen)}
    return Copies(
        letter_id=letter.id,
        priority=Priority.URGENT if letter.urgent else Priority.NORMAL,
        contacts=_contacts_of(db_session, list(links)),
        providers=providers,
        links=dict(links),
        common=common,
    )


def queue_planned(
    db_session: Session,
    copies: Copies,
    now: datetime,
    *,
    part: tuple[int, int | None] = (0, None),
    suffix: str = "",
    reminder: bool = False,
) -> None:
    """Queue the e-mail and SMS of the copies to the contacts in ``part`` (a slice of
    ``copies.contacts``); already queued ones are left alone. The letter is rendered once for
    them all: only the contact's name, the provider's name and its link differ (PERSONAL)."""
    contacts = copies.contacts[part[0] : part[1]]
    if not contacts:
        return
    items = [
        Outgoing(
            idempotency_key=f"letter:{copies.letter_id}:contact:{contact.id}{suffix}",
            context={
                "name": contact.name,
                "provider": copies.providers[contact.provider_id],
                "link": copies.links[contact.provider_id],
            },
            contact_id=contact.id,
            to_email=contact.email,
            to_mobile=contact.mobile,
        )
        for contact in contacts
    ]
    send_many(
        db_session=db_session,
        kind=MESSAGE_KIND,
        items=items,
        channels=CHANNELS,
        priority=copies.priority,
        now=now,
        ref=(REF_TYPE, copies.letter_id),
        shared_context=shared_context(copies.common, reminder=reminder),
        links=("link",),
    )


def queue_copies(
    db_session: Session,
    letter: Letter,
    incident: Incident,
    receipts: list[LetterReceipt],
    now: datetime,
    *,
    suffix: str = "",
    part: tuple[int, int | None] = (0, None),
    reminder: bool = False,
) -> int:
    """Queue the e-mail and SMS of ``letter`` to the active contacts of the receipts' providers
    (those in ``part``, a slice of them in their stable order; already queued ones are left
    alone); a ``reminder`` is the re-sent letter ("Påminnelse: …"). Returns the number of
    contacts of the whole letter."""
    links = {receipt.provider_id: link_url(receipt) for receipt in receipts}
    copies = plan_copies(db_session, letter, incident, links)
    queue_planned(db_session, copies, now, part=part, suffix=suffix, reminder=reminder)
    return len(copies.contacts)


def _queue_team_copy(db_session: Session, letter: Letter, incident: Incident, now: datetime) -> None:
    settings = _settings()
    if not settings.team_email:
        return
    link = f"{settings.public_base_url.rstrip('/')}/incidents/{incident.id}"
    send(
        db_session=db_session,
        kind=MESSAGE_KIND,
        context=copy_context(
            letter_context(db_session, letter, incident),
            name="Välfärdsteknikteamet",
            provider="",
            link=link,
            team_copy=True,
        ),
        channels=[Channel.EMAIL],
        priority=Priority.URGENT if letter.urgent else Priority.NORMAL,
        idempotency_key=f"letter:{letter.id}:team",
        now=now,
        to_email=settings.team_email,
        ref=(REF_TYPE, letter.id),
    )


def send_letter(
    db_session: Session,
    incident: Incident,
    *,
    kind: LetterKind | str,
    subject: str,
    body: str,
    apply_local_routines: bool,
    author_id: int | None,
    party: Party | str,
    now: datetime,
    provider_ids: list[int] | None = None,
) -> Letter:
    """Send a letter of ``kind`` about ``incident`` to every active contact of its affected
    providers (or of ``provider_ids``); does not commit. Raises :class:`LetterError`."""
    kind = LetterKind(kind)
    party = Party(party)
    subject = one_line(subject or "")  # the e-mail's subject: one line
    body = (body or "").strip()
    for field, text in (("subject", subject), ("body", body)):
        if refusal(text):
            raise LetterError(refusal(text), field)
    if not subject:
        raise LetterError("Skriv en rubrik.", "subject")
    if len(subject) > 200:
        raise LetterError("Rubriken får vara högst 200 tecken.", "subject")
    if not body:
        raise LetterError("Skriv brevets text.", "body")
    if len(body) > BODY_MAX:
        raise LetterError(f"Brevets text får vara högst {BODY_MAX:,} tecken.".replace(",", " "), "body")
    check_may_send(db_session, incident, kind)

    if provider_ids is None:
        provider_ids = [provider.id for provider in affected_providers(db_session, incident)]
    number = (db_session.scalar(select(func.max(Letter.number)).where(Letter.incident_id == incident.id)) or 0) + 1
    letter = Letter(
        incident_id=incident.id,
        number=number,
        kind=kind.value,
        party=party.value,
        author_id=author_id,
        subject=subject,
        body=body,
        apply_local_routines=bool(apply_local_routines),
        urgent=not incident.planned,
        sent_at=now,
        recipients=0,
    )
    db_session.add(letter)
    db_session.flush()
    receipts = [LetterReceipt(letter_id=letter.id, provider_id=pid, nonce=new_nonce()) for pid in provider_ids]
    db_session.add_all(receipts)
    db_session.flush()
    # A big letter queues its first FIRST_CHUNK contacts in this transaction, so that the first
    # messages go out as soon as it commits; the rest follow in transactions of their own
    # (letter_jobs.queue_remaining_after: by the request's worker once it has answered) and,
    # whatever happens to that worker, by the FANOUT_TASK on the next tick (idempotent: queued
    # copies are skipped).
    letter.recipients = queue_copies(db_session, letter, incident, receipts, now, part=(0, FIRST_CHUNK))
    if letter.recipients > FIRST_CHUNK:
        schedule(
            db_session=db_session,
            kind=FANOUT_TASK,
            key=str(letter.id),
            due_at=now,
            payload={"letter_id": letter.id},
            now=now,
        )
    if party is Party.ON_CALL:
        _queue_team_copy(db_session, letter, incident, now)

    incident.last_letter_at = now
    incident.updated_at = now
    timeline.record(
        db_session,
        incident.id,
        "letter_sent",
        now,
        actor_id=author_id,
        party=party.value,
        letter_id=letter.id,
        number=number,
        letter_kind=kind.value,  # "kind" is record()'s own argument
        recipients=letter.recipients,
        providers=len(receipts),
    )
    if kind is LetterKind.RESOLUTION:
        incident.status = IncidentStatus.RESOLVED.value
        incident.resolved_at = now
        timeline.record(db_session, incident.id, "resolved", now, actor_id=author_id, party=party.value)
    elif letter.urgent and kind in (LetterKind.FIRST, LetterKind.UPDATE):
        crisis = _policy().crisis
        steps = ((RESEND_TASK, crisis.letter_resend_minutes), (CALL_TASK, crisis.letter_call_minutes))
        for task_kind, minutes in steps:
            schedule(
                db_session=db_session,
                kind=task_kind,
                key=str(letter.id),
                due_at=now + timedelta(minutes=minutes),
                payload={"letter_id": letter.id},
                now=now,
            )
    log.info(
        "letter sent",
        extra={"incident_id": incident.id, "letter_id": letter.id, "kind": kind.value, "contacts": letter.recipients},
    )
    return letter


def send_staff_letter(
    db_session: Session,
    incident: Incident,
    *,
    user,
    kind: LetterKind | str,
    subject: str,
    body: str,
    apply_local_routines: bool,
    party: Party | str,
    now: datetime,
) -> Letter:
    """A letter written by a person (the team, the on-call officer, an admin), from the incident
    page or the API: the one rule of both paths is that sending it takes the incident — an
    unacknowledged incident is acknowledged by the writer (its alerts stop) before the letter
    goes out. Does not commit; raises :class:`LetterError` (the caller rolls back)."""
    check_may_send(db_session, incident, kind)
    acknowledge_incident(db_session, incident, user, now)
    return send_letter(
        db_session,
        incident,
        kind=kind,
        subject=subject,
        body=body,
        apply_local_routines=apply_local_routines,
        author_id=user.id,
        party=party,
        now=now,
    )


# --- acknowledgements, re-sending, the call list -------------------------------------------------------


def acknowledge(
    db_session: Session,
    receipt: LetterReceipt,
    *,
    name: str,
    local_routines: str | None,
    now: datetime,
    via: str = "link",
) -> list[LetterReceipt]:
    """The provider's receipt with its answer to "Har ni startat era lokala rutiner?" (one of
    ``receipt_answers.ANSWERS``, or None when it was not asked): acknowledges this receipt and
    the provider's other unacknowledged receipts of the same incident (the page shows every
    letter). Returns the receipts acknowledged now (none when already done: idempotent). Does not
    commit."""
    if local_routines is not None and local_routines not in ANSWERS:
        raise ValueError(f"not an answer: {local_routines!r}")
    letter = receipt.letter
    older = db_session.scalars(
        select(LetterReceipt)
        .join(Letter, Letter.id == LetterReceipt.letter_id)
        .where(
            Letter.incident_id == letter.incident_id,
            LetterReceipt.provider_id == receipt.provider_id,
            LetterReceipt.acknowledged_at.is_(None),
        )
        .order_by(Letter.number)
    ).all()
    for item in older:
        item.acknowledged_at = now
        item.acknowledged_by = name[:200]
        item.local_routines = local_routines
        timeline.record(
            db_session,
            letter.incident_id,
            "letter_acknowledged",
            now,
            letter_id=item.letter_id,
            provider_id=item.provider_id,
            local_routines=local_routines,
            via=via,
        )
    return list(older)


CALL_OUTCOMES = ("reached", "not_reached", "wrong_number")


def record_call(
    db_session: Session, receipt: LetterReceipt, *, outcome: str, note: str, user_id: int | None, now: datetime
) -> None:
    """Record a call to a provider on the call list; "reached" also acknowledges the letter
    (the provider confirmed on the phone). Raises :class:`LetterError`. Does not commit."""
    if outcome not in CALL_OUTCOMES:
        raise LetterError("Välj hur samtalet gick.", "outcome")
    note = (note or "").strip()
    if len(note) > 250:
        raise LetterError("Anteckningen får vara högst 250 tecken.", "note")
    receipt.called_at = now
    receipt.call_outcome = outcome + (f": {note}" if note else "")
    incident_id = receipt.letter.incident_id
    timeline.record(
        db_session,
        incident_id,
        "note",
        now,
        actor_id=user_id,
        what="call",
        letter_id=receipt.letter_id,
        provider_id=receipt.provider_id,
        outcome=outcome,
    )
    if outcome == "reached" and receipt.acknowledged_at is None:
        # On the phone the question is not asked: the receipt records no answer rather than a guess.
        acknowledge(db_session, receipt, name="Per telefon", local_routines=None, now=now, via="call")


__all__ = [
    "CALL_OUTCOMES",
    "KIND_LABELS",
    "LOCAL_MEASURES",
    "LOCAL_MEASURE_TEXTS",
    "MESSAGE_KIND",
    "SMS_MAX_SEGMENTS",
    "InvalidLink",
    "LetterError",
    "acknowledge",
    "check_may_send",
    "first_letter",
    "letter_context",
    "letters_of",
    "link_url",
    "receipt_for_token",
    "record_call",
    "send_letter",
    "send_staff_letter",
]
