"""What a letter says in its e-mail and SMS: one context for every copy, rendered by
:func:`notifications.rendering.render` — for the send (:func:`crisis.incidents.letters.queue_copies`
queues it, the outbox renders it) and for the team's preview (:func:`preview`), so the preview
is what is queued, sender and SMS segments included.

Decisions (where the issue is silent)
    - Every copy is headed by what the letter is, said once: "Driftstörning" or "Planerat arbete"
      (the first letter), "Uppdatering 1", "Uppdatering 2" … (updates are numbered among the
      updates, not among all letters), "Åtgärdat" (calm, no capitals: it is good news) and
      "Påminnelse om planerat arbete". The subject the writer gave follows it; a label the
      subject starts with ("Driftstörning: …", "Uppdatering: …") is left out there
      (:func:`plain_title`), so no word is said twice.
    - A letter re-sent to the providers that have not acknowledged it starts with "Påminnelse: "
      (subject and SMS) and says that no receipt has come.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contacts.register import SERVICE_LABELS
from core.local_time import local_text
from crisis.incidents.models import Incident, Letter, LetterKind
from crisis.oncall.responsible import contact_details
from notifications import rendering
from notifications.rendering import RenderedMessage
from notifications.segments import count_segments

MESSAGE_KIND = "crisis.letter"
SMS_MAX_SEGMENTS = 2

# The provider's local measures (the routine's suggestions), in the order the routine lists them;
# the message templates and pages hold the text for each key.
LOCAL_MEASURES = ("inform_staff", "operations_manager", "extra_resources", "sos_112")
LOCAL_MEASURE_TEXTS = {
    "inform_staff": "Informera dag-, kvälls- och nattpersonal och dokumentera i Treserva.",
    "operations_manager": "Rådgör med verksamhetschefen.",
    "extra_resources": "Kalla in extra resurser för fysiska nattbesök.",
    "sos_112": "Om vägarna är oframkomliga (storm, snö, is): kontakta SOS 112.",
}
KIND_LABELS = {
    LetterKind.FIRST.value: "Informationsbrev",
    LetterKind.UPDATE.value: "Uppdatering",
    LetterKind.RESOLUTION.value: "Åtgärdat",
    LetterKind.PLANNED_REMINDER.value: "Påminnelse",
}

# A label at the start of a subject that the heading already says: "Driftstörning:",
# "Uppdatering 2:", "Påminnelse:", "Åtgärdat –" …
_LABEL = re.compile(
    r"^\s*(?:informationsbrev|driftstörning|driftstopp|planerat arbete|åtgärdat|påminnelse(?: om planerat arbete)?"
    r"|uppdatering(?: nr)?(?: \d+)?)\s*[:–—-]\s*",
    re.IGNORECASE,
)


def plain_title(subject: str) -> str:
    """The subject without the labels it starts with (the heading says them); never empty."""
    title = subject.strip()
    while (match := _LABEL.match(title)) and title[match.end() :].strip():
        title = title[match.end() :].strip()
    return title


def update_number(db_session: Session, letter: Letter) -> int | None:
    """The update's place among the incident's updates (1 for the first); None for other kinds."""
    if letter.kind != LetterKind.UPDATE.value:
        return None
    earlier = db_session.scalar(
        select(func.count(Letter.id)).where(
            Letter.incident_id == letter.incident_id,
            Letter.kind == LetterKind.UPDATE.value,
            Letter.number < letter.number,
        )
    )
    return (earlier or 0) + 1


def _incident_context(incident: Incident) -> dict:
    return {
        "title": incident.title,
        "service": SERVICE_LABELS.get(incident.service, incident.service or ""),
        "supplier": incident.supplier.name if incident.supplier is not None else "",
        "planned": bool(incident.planned),
        "starts": local_text(incident.starts_at),
        "expected_end": local_text(incident.expected_end_at),
    }


def letter_context(db_session: Session, letter: Letter, incident: Incident) -> dict:
    """What every copy of ``letter`` shows: the letter, the incident, the measures, whom to contact."""
    title = plain_title(letter.subject)
    return {
        "letter": {
            "number": letter.number,
            "update_number": update_number(db_session, letter),
            "kind": letter.kind,
            "kind_label": KIND_LABELS[letter.kind],
            "subject": letter.subject,
            "title": title,
            "body": letter.body,
            "sent": local_text(letter.sent_at),
            "urgent": letter.urgent,
        },
        "incident": _incident_context(incident),
        "measures": list(LOCAL_MEASURES) if letter.apply_local_routines else [],
        "contact": contact_details(db_session, letter.sent_at).as_context(),
        "sms_title": title,
        "reminder": False,
    }


# What differs between the providers' copies of a letter: the rest of a copy's context is the
# same for all of them, so the letter is rendered once (notifications.rendering.render_many).
PERSONAL = ("name", "provider", "link")


def shared_context(common: dict, *, team_copy: bool = False, reminder=False) -> dict:
    """What every copy of the letter shares: its common part, whether it is the team's copy and
    whether it is a reminder."""
    return {**common, "team_copy": team_copy, "reminder": reminder}


def copy_context(common: dict, *, name: str, provider: str, link: str, team_copy: bool = False, reminder=False):
    """The context of one copy: the letter's common part and its recipient (:data:`PERSONAL`)."""
    personal = {"name": name, "provider": provider, "link": link}
    return {**shared_context(common, team_copy=team_copy, reminder=reminder), **personal}


def sms_title(common: dict, longest_link: str) -> str:
    """The letter's title, shortened until the SMS fits in :data:`SMS_MAX_SEGMENTS` segments."""
    title = common["letter"]["title"].rstrip(" .")
    context = copy_context(common, name="", provider="", link=longest_link, reminder=True)  # the longest form
    while True:
        context["sms_title"] = title
        sms = rendering.render(MESSAGE_KIND, "sv", context).sms or ""
        if count_segments(sms).segments <= SMS_MAX_SEGMENTS or not title:
            return title
        # "..." rather than an ellipsis: the ellipsis is not in the GSM alphabet (it would halve the room).
        title = title[: max(0, len(title.removesuffix("...")) - 10)].rstrip()
        title = title + "..." if title else ""


def preview(
    db_session: Session,
    incident: Incident,
    *,
    kind: str,
    subject: str,
    body: str,
    apply_local_routines: bool,
    now: datetime,
    name: str,
    provider: str,
    link: str,
    reminder: bool = False,
) -> RenderedMessage:
    """The copy a recipient would get if the letter were sent now, rendered as the send renders
    it (an unsaved letter numbered as the next one)."""
    number = (db_session.scalar(select(func.max(Letter.number)).where(Letter.incident_id == incident.id)) or 0) + 1
    letter = Letter(
        incident_id=incident.id,
        number=number,
        kind=LetterKind(kind).value,
        subject=subject,
        body=body.strip(),
        apply_local_routines=bool(apply_local_routines),
        urgent=not incident.planned,
        sent_at=now,
    )
    common = letter_context(db_session, letter, incident)
    common["sms_title"] = sms_title(common, link)
    return rendering.render(
        MESSAGE_KIND, "sv", copy_context(common, name=name, provider=provider, link=link, reminder=reminder)
    )
