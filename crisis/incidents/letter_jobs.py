"""The timed work of a letter: the rest of a big letter's copies, the re-send to providers that
have not acknowledged an urgent letter, and their place on the handling party's call list.

When a newer letter has gone out (it has its own re-send and call list) or the incident has
closed, an older letter's steps do nothing. Nothing here commits, except :func:`queue_remaining`
when a request asks it to (after the request's own commit).

A request that sends a big letter answers once the letter, its first contacts' copies and the
``crisis.letter_fanout`` task are committed, and queues the rest after its answer has been
written (:func:`queue_remaining_after`, :mod:`core.after_response`): the officer who sends a letter
to 3,000 contacts at night has the answer within half a second instead of waiting for 6,000 rows,
and the rest follows within about a second. When that work is done it marks the task done; if the
worker dies first, the task queues the rest on the scheduler's next tick.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.after_response import after_answer
from core.clock import current_clock
from core.extensions import db
from crisis.incidents import letters, timeline
from crisis.incidents.letters import (
    CALL_TASK,
    FANOUT_TASK,
    RESEND_TASK,
    link_url,
    plan_copies,
    queue_copies,
    queue_planned,
)
from crisis.incidents.models import Incident, Letter, LetterReceipt
from scheduling.registry import task_handler
from scheduling.service import finish


def public_base_url() -> str:
    return current_app.extensions["krisrutin.settings"].public_base_url.rstrip("/")


def _newest_number(db_session: Session, incident_id: int) -> int:
    return db_session.scalar(select(func.max(Letter.number)).where(Letter.incident_id == incident_id)) or 0


def _still_current(db_session: Session, letter: Letter) -> Incident | None:
    incident = db_session.get(Incident, letter.incident_id)
    if incident is None or not incident.is_open or _newest_number(db_session, incident.id) != letter.number:
        return None
    return incident


def _unacknowledged(letter: Letter) -> list[LetterReceipt]:
    return [receipt for receipt in letter.receipts if receipt.acknowledged_at is None]


def queue_remaining(db_session: Session, letter_id: int, now: datetime, *, commit: bool = False) -> None:
    """Queue the copies of a big letter that its first transaction left for later, a chunk of
    contacts per transaction when ``commit`` (a request after its own commit; the chunks grow
    from ``FANOUT_CHUNK`` to ``FANOUT_CHUNK_MAX``, see letters), else all in the caller's
    transaction (the task). Copies already queued are skipped."""
    letter = db_session.get(Letter, letter_id)
    if letter is None or letter.recipients <= letters.FIRST_CHUNK:  # all queued with the letter
        return
    incident = db_session.get(Incident, letter.incident_id)
    receipts = list(letter.receipts)
    if not commit:
        queue_copies(db_session, letter, incident, receipts, now, part=(letters.FIRST_CHUNK, None))
        return
    # Read once, as plain values: each commit expires the ORM objects.
    copies = plan_copies(db_session, letter, incident, {receipt.provider_id: link_url(receipt) for receipt in receipts})
    start, size = letters.FIRST_CHUNK, letters.FANOUT_CHUNK
    while start < len(copies.contacts):
        queue_planned(db_session, copies, now, part=(start, start + size))
        db_session.commit()
        start, size = start + size, min(2 * size, letters.FANOUT_CHUNK_MAX)
    if finish(db_session=db_session, kind=FANOUT_TASK, key=str(letter_id), now=now):
        db_session.commit()  # the tick need not plan the letter again to find nothing left


def queue_remaining_after(response: Response, letter_id: int | None) -> Response:
    """``response``, with the rest of the big letter ``letter_id`` (committed) queued once the
    response has been written (nothing when ``letter_id`` is None)."""
    if letter_id is None:
        return response

    def rest() -> None:
        queue_remaining(db.session, letter_id, current_clock().now(), commit=True)

    return after_answer(response, rest, what=FANOUT_TASK)


@task_handler(FANOUT_TASK)
def _queue_remaining_task(db_session: Session, task, now: datetime) -> None:
    queue_remaining(db_session, task.payload["letter_id"], now)


@task_handler(RESEND_TASK)
def resend_letter(db_session: Session, task, now: datetime) -> None:
    """Re-send an urgent letter to the providers that have not acknowledged it."""
    letter = db_session.get(Letter, task.payload["letter_id"])
    incident = _still_current(db_session, letter) if letter is not None else None
    if incident is None:
        return
    receipts = _unacknowledged(letter)
    if not receipts:
        return
    queue_copies(db_session, letter, incident, receipts, now, suffix=":resend", reminder=True)
    for receipt in receipts:
        receipt.resent_at = now
    timeline.record(
        db_session,
        incident.id,
        "letter_resent",
        now,
        letter_id=letter.id,
        providers=[receipt.provider_id for receipt in receipts],
    )


@task_handler(CALL_TASK)
def call_list_letter(db_session: Session, task, now: datetime) -> None:
    """Put the providers that still have not acknowledged an urgent letter on the call list."""
    letter = db_session.get(Letter, task.payload["letter_id"])
    incident = _still_current(db_session, letter) if letter is not None else None
    if incident is None:
        return
    receipts = [receipt for receipt in _unacknowledged(letter) if receipt.call_listed_at is None]
    if not receipts:
        return
    for receipt in receipts:
        receipt.call_listed_at = now
    timeline.record(
        db_session,
        incident.id,
        "call_listed",
        now,
        letter_id=letter.id,
        providers=[receipt.provider_id for receipt in receipts],
    )
    from crisis.incidents.routing import notify_handler

    base = public_base_url()
    notify_handler(
        db_session,
        incident,
        reason=f"call_list:{letter.id}",
        kind="crisis.followup.call_list",
        context={"providers": len(receipts), "letter_number": letter.number, "calls_link": f"{base}/incidents/calls"},
        now=now,
    )
