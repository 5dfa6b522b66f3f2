"""The incident pages for staff: the list of disruptions and the page of one incident with its
timeline (the incident's record).

The list (``/incidents``) shows open incidents first — new ones, not yet acknowledged by the
handling party, highlighted — then closed ones, newest first, with filters by status, service,
supplier and month (the month of the first notice, local time). The incident page shows the
header, the notices as received (with a link to the original), the affected providers, the
routing and letters panels (``incidents/_routing_panel.html``, ``incidents/_letters_panel.html``) and the
timeline: every step in order, in local time, with the delivery state of each letter's messages
per recipient. Access: team, administrators and the on-call officer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import STAFF
from contacts.models import SERVICES, Provider
from contacts.register import SERVICE_LABELS
from core import audit
from core.extensions import db
from core.labels import VOCABULARIES, reason_label
from core.labels import label as vocabulary_label
from core.numbers import month_start, record_id
from crisis.incidents import receipt_answers, report
from crisis.incidents.affected import affected_providers
from crisis.incidents.models import OPEN_STATUSES, Incident, IncidentEvent, IncidentStatus, Letter, Supplier
from crisis.incidents.receipt_answers import NOT_YET, YES
from notifications.views import ContactDeliveries, delivery_overview

bp = Blueprint("incidents", __name__, template_folder="templates")

LIST_LIMIT = 200
LETTER_REF = "letter"
ALERT_REF = "alert"

STATUS_LABELS = {
    IncidentStatus.NEW.value: _l("Ny, inte kvitterad"),
    IncidentStatus.OPEN.value: _l("Kvitterad, pågår"),
    IncidentStatus.NOT_RELEVANT.value: _l("Stängd: inte relevant"),
    IncidentStatus.RESOLVED.value: _l("Åtgärdad"),
}
PARTY_LABELS = VOCABULARIES["party"]
SOURCE_LABELS = VOCABULARIES["notice_source"]
LETTER_KIND_LABELS = {
    "first": _l("Informationsbrev"),
    "update": _l("Uppdatering"),
    "resolution": _l("Brev om att felet är åtgärdat"),
    "planned_reminder": _l("Påminnelse om planerat arbete"),
}
# Swedish descriptions of the timeline's steps (crisis.timeline.EVENT_KINDS).
EVENT_LABELS = {
    "notice_received": _l("Avisering mottagen"),
    "flagged": _l("Flaggad till teamet"),
    "routed": _l("Tilldelad"),
    "alerted": _l("Larmad"),
    "acknowledged": _l("Kvitterad av den som hanterar störningen"),
    "escalated": _l("Ingen kvittens: nästa steg larmat"),
    "called": _l("Uppringd om larmet"),
    "call_status": _l("Samtalet om larmet"),
    "alert_acknowledged": _l("Påminnelse kvitterad"),
    "assessed": _l("Bedömd"),
    "letter_sent": _l("Brev skickat"),
    "letter_acknowledged": _l("En utförare kvitterade brevet"),
    "letter_resent": _l("Brevet skickat igen"),
    "call_listed": _l("Satt på ringlistan"),
    "update_due": _l("Påminnelse: dags för en uppdatering"),
    "estimate_requested": _l("Ny prognos begärd av leverantören"),
    "expected_end_changed": _l("Beräknat slut ändrat"),
    "handover": _l("Överlämnad"),
    "handover_acknowledged": _l("Överlämningen kvitterad"),
    "resolved": _l("Åtgärdad"),
    "note": _l("Anteckning"),
    "visits_created": _l("Fysiska besök i stället för kameratillsyn"),
    "visits_escalated": _l("Besök eskalerade"),
    "supervision_returned": _l("Kameratillsynen tillbaka hos larmoperatören"),
}
# A step acknowledged by an SMS reply or a call ("via" in its detail) says how: "Kvitterad via sms".
ACKNOWLEDGED_VIA = {
    "acknowledged": _l("Kvitterad %(via)s av den som hanterar störningen"),
    "handover_acknowledged": _l("Överlämningen kvitterad %(via)s"),
    "alert_acknowledged": _l("Påminnelse kvitterad %(via)s"),
}
ESCALATION_STEPS = {"call_list": _l("inte kvitterade, utföraren på ringlistan"), "overdue": _l("försenade")}
STATUS_FILTERS = ("open", "closed", *[status.value for status in IncidentStatus])


def service_label(key: str | None) -> str:
    if not key:
        return ""
    label = SERVICE_LABELS.get(key)
    return _(label) if label else key


def party_label(party: str | None) -> str:
    return str(PARTY_LABELS.get(party, party or ""))


# Prefixed: the template globals of other parts have names of their own.
bp.add_app_template_global(service_label, "incident_service_label")
bp.add_app_template_global(party_label, "incident_party_label")


def user_names(db_session: Session, ids) -> dict[int, str]:
    ids = sorted({i for i in ids if i is not None})
    if not ids:
        return {}
    return dict(db_session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).tuples().all())


# --- the timeline -----------------------------------------------------------------------------


@dataclass
class TimelineEntry:
    event: IncidentEvent
    description: str
    actor_name: str | None
    letter: Letter | None = None
    alert_id: int | None = None
    deliveries: list[ContactDeliveries] = field(default_factory=list)


def _provider_list(ids, providers: dict[int, str]) -> str:
    if not isinstance(ids, list):
        return str(ids)
    return ", ".join(providers.get(pid, _("utförare %(id)s", id=pid)) for pid in ids or ())


def describe_event(
    event: IncidentEvent, names: dict[int, str], letter: Letter | None = None, providers: dict[int, str] | None = None
) -> str:
    """The step in Swedish (or the page's language), with the details that matter to a reader."""
    label = str(EVENT_LABELS.get(event.kind, event.kind))
    detail = event.detail or {}
    if detail.get("via") and event.kind in ACKNOWLEDGED_VIA:  # by SMS reply or a call, not the page
        label = str(ACKNOWLEDGED_VIA[event.kind]) % {"via": vocabulary_label(detail["via"], "via")}
    providers = providers or {}
    extra = ""
    if event.kind == "notice_received" and detail.get("source"):
        extra = str(SOURCE_LABELS.get(detail["source"], detail["source"]))
    elif event.kind == "alert_acknowledged":
        extra = reason_label(detail.get("reason"))
    elif event.kind == "call_status" and detail.get("status"):
        extra = vocabulary_label(detail["status"], "call_status")
    elif event.kind in ("routed", "alerted", "escalated", "called"):
        parts = []
        if detail.get("party") or event.party:
            parts.append(party_label(detail.get("party") or event.party))
        if detail.get("user_id") in names:
            parts.append(names[detail["user_id"]])
        if event.kind == "escalated" and detail.get("step") is not None:
            parts.append(_("steg %(step)s", step=detail["step"]))
        extra = ", ".join(parts)
    elif event.kind == "assessed":
        if detail.get("relevant") is False:
            extra = _("inte relevant")
        elif detail.get("relevant"):
            extra = _("relevant, lokala rutiner ska tillämpas") if detail.get("apply_local_routines") else _("relevant")
        if detail.get("reason"):
            extra = f"{extra}: {detail['reason']}" if extra else str(detail["reason"])
    elif event.kind == "letter_sent":
        # The letter's own row when there is one; ``kind`` cannot be a detail key of
        # timeline.record (it is the event's kind), so the detail may say ``letter_kind``.
        kind = letter.kind if letter is not None else detail.get("letter_kind") or detail.get("kind")
        number = letter.number if letter is not None else detail.get("number", "?")
        recipients = letter.recipients if letter is not None else detail.get("recipients")
        extra = _("nr %(number)s, %(kind)s", number=number, kind=LETTER_KIND_LABELS.get(kind, kind or ""))
        if recipients is not None:
            extra += ", " + _("%(n)s mottagare", n=recipients)
    elif event.kind == "letter_acknowledged" and {"local_routines", "local_routines_started"} & set(detail):
        answer = detail.get("local_routines")
        if "local_routines_started" in detail:  # a step recorded before the question (see receipt_answers)
            answer = YES if detail["local_routines_started"] else NOT_YET
        extra = f"{receipt_answers.QUESTION} {receipt_answers.answer_label(answer)}"
    elif event.kind == "handover":
        extra = f"{party_label(detail.get('from_party'))} → {party_label(detail.get('to_party'))}"
    elif event.kind == "expected_end_changed":
        extra = _("från %(old)s till %(new)s", old=detail.get("old") or "–", new=detail.get("new") or "–")
    elif event.kind == "visits_created":
        extra = ngettext("%(num)s besök", "%(num)s besök", int(detail.get("count") or 0))
        if detail.get("providers"):
            extra += " " + _("för %(providers)s", providers=_provider_list(detail["providers"], providers))
    elif event.kind == "visits_escalated":
        extra = ngettext("%(num)s besök", "%(num)s besök", int(detail.get("visits") or 0))
        if detail.get("provider_id") is not None:
            extra += " " + _("för %(providers)s", providers=_provider_list([detail["provider_id"]], providers))
        if detail.get("step") in ESCALATION_STEPS:
            extra += ", " + str(ESCALATION_STEPS[detail["step"]])
        if detail.get("party"):
            extra += ", " + _("till %(party)s", party=party_label(detail["party"]).lower())
    elif event.kind == "supervision_returned" and detail.get("count") is not None:
        extra = ngettext("%(num)s tillsyn", "%(num)s tillsyner", int(detail["count"]))
    elif event.kind in ("letter_resent", "call_listed") and detail.get("providers"):
        extra = _provider_list(detail["providers"], providers)
    elif event.kind in ("flagged", "note") and (detail.get("reason") or detail.get("text")):
        extra = str(detail.get("reason") or detail.get("text"))
    return f"{label}: {extra}" if extra else label


def timeline(db_session: Session, incident: Incident) -> list[TimelineEntry]:
    """Every step of ``incident`` in order, described, with the deliveries of each letter and alert."""
    events = list(
        db_session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id)
            .order_by(IncidentEvent.at, IncidentEvent.id)
        )
    )
    names = user_names(
        db_session,
        [e.actor_user_id for e in events] + [(e.detail or {}).get("user_id") for e in events],
    )
    letters = {
        letter.id: letter for letter in db_session.scalars(select(Letter).where(Letter.incident_id == incident.id))
    }
    provider_ids = set()
    for event in events:
        detail = event.detail or {}
        listed = detail.get("providers")
        if isinstance(listed, list):
            provider_ids.update(pid for pid in listed if isinstance(pid, int))
        if isinstance(detail.get("provider_id"), int):
            provider_ids.add(detail["provider_id"])
    providers = (
        dict(db_session.execute(select(Provider.id, Provider.name).where(Provider.id.in_(provider_ids))).all())
        if provider_ids
        else {}
    )
    entries = []
    for event in events:
        letter_id = (event.detail or {}).get("letter_id")
        letter = letters.get(letter_id) if event.kind == "letter_sent" else None
        entry = TimelineEntry(event, describe_event(event, names, letter, providers), names.get(event.actor_user_id))
        if letter is not None:
            entry.letter = letter
            entry.deliveries, _counts = delivery_overview(
                db_session=db_session, ref_type=LETTER_REF, ref_id=str(letter_id)
            )
        elif event.kind in ("alerted", "escalated") and (event.detail or {}).get("alert_id") is not None:
            entry.alert_id = event.detail["alert_id"]
            entry.deliveries, _counts = delivery_overview(
                db_session=db_session, ref_type=ALERT_REF, ref_id=str(entry.alert_id)
            )
        entries.append(entry)
    return entries


# --- the list ---------------------------------------------------------------------------------


def _parse_filters(args) -> tuple[dict, dict[str, str]]:
    chosen = {key: (args.get(key) or "").strip() for key in ("status", "service", "supplier", "month")}
    errors = {}
    if chosen["status"] and chosen["status"] not in STATUS_FILTERS:
        errors["status"] = _("Välj en status i listan.")
    if chosen["service"] and chosen["service"] not in SERVICES:
        errors["service"] = _("Välj en tjänst i listan.")
    if chosen["supplier"] and record_id(chosen["supplier"]) is None:
        errors["supplier"] = _("Välj en leverantör i listan.")
    if chosen["month"] and month_start(chosen["month"]) is None:
        errors["month"] = _("Ange månaden som ÅÅÅÅ-MM, till exempel 2027-03.")
    return chosen, errors


def list_incidents(db_session: Session, chosen: dict, tz) -> list[Incident]:
    """New incidents first, then the other open ones, then closed; newest first within each (at
    most LIST_LIMIT)."""
    is_open = Incident.status.in_(OPEN_STATUSES)
    query = select(Incident)
    status = chosen.get("status")
    if status == "open":
        query = query.where(is_open)
    elif status == "closed":
        query = query.where(~is_open)
    elif status:
        query = query.where(Incident.status == status)
    if chosen.get("service"):
        query = query.where(Incident.service == chosen["service"])
    if chosen.get("supplier"):
        query = query.where(Incident.supplier_id == record_id(chosen["supplier"]))
    if chosen.get("month"):
        month = month_start(chosen["month"])
        ids = [incident.id for incident in report.incidents_in_month(db_session, month, tz)]
        query = query.where(Incident.id.in_(ids or [-1]))
    # New (not yet acknowledged) first, then the other open ones, then the closed ones.
    rank = case((Incident.status == IncidentStatus.NEW.value, 0), (is_open, 1), else_=2)
    query = query.order_by(rank, Incident.created_at.desc(), Incident.id.desc())
    return list(db_session.scalars(query.limit(LIST_LIMIT)))


def last_letters(db_session: Session, incidents: list[Incident]) -> dict[int, object]:
    """When each incident's last letter went out (``last_letter_at``, else from the letters)."""
    ids = [incident.id for incident in incidents]
    found = {}
    if ids:
        found = dict(
            db_session.execute(
                select(Letter.incident_id, func.max(Letter.sent_at))
                .where(Letter.incident_id.in_(ids))
                .group_by(Letter.incident_id)
            )
            .tuples()
            .all()
        )
    result = {}
    for incident in incidents:
        candidates = [value for value in (incident.last_letter_at, report.as_utc(found.get(incident.id))) if value]
        result[incident.id] = max(candidates) if candidates else None
    return result


@bp.get("/incidents")
@roles_required(*STAFF)
def index():
    tz = current_app.extensions["krisrutin.routine"].timezone
    chosen, errors = _parse_filters(request.args)
    incidents = [] if errors else list_incidents(db.session, chosen, tz)
    suppliers = list(db.session.scalars(select(Supplier).order_by(Supplier.name)))
    return render_template(
        "incidents/incidents.html",
        incidents=incidents,
        open_incidents=[incident for incident in incidents if incident.is_open],
        closed_incidents=[incident for incident in incidents if not incident.is_open],
        handlers=user_names(db.session, [incident.handler_user_id for incident in incidents]),
        last_letter=last_letters(db.session, incidents),
        suppliers=suppliers,
        services=[(key, service_label(key)) for key in SERVICES],
        statuses=STATUS_LABELS,
        chosen=chosen,
        errors=errors,
        filtered=any(chosen.values()),
        limit=LIST_LIMIT,
    ), (400 if errors else 200)


# --- one incident -----------------------------------------------------------------------------


PROVIDER_ROWS = 50  # affected providers listed on the incident page before "Visa alla"


def get_incident_or_404(incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        abort(404, description=_("Störningen finns inte."))
    return incident


@bp.get("/incidents/<int:incident_id>")
@roles_required(*STAFF)
@audit.audited_view("incident", id_arg="incident_id")
def detail(incident_id: int):
    incident = get_incident_or_404(incident_id)
    names = user_names(db.session, [incident.handler_user_id, incident.acknowledged_by_id, incident.assessed_by_id])
    return render_template(
        "incidents/incident.html",
        incident=incident,
        names=names,
        status_label=STATUS_LABELS.get(incident.status, incident.status),
        providers=affected_providers(db.session, incident),
        list_limit=PROVIDER_ROWS,
        entries=timeline(db.session, incident),
        figures=report.incident_figures(db.session, incident),
        source_labels=SOURCE_LABELS,
    )


def describe_letter(db_session: Session, ref_id: str):
    """The deliveries page's "Gäller" for a letter: its number, kind and subject, linking to its incident."""
    number = record_id(ref_id)
    letter = db_session.get(Letter, number) if number is not None else None
    if letter is None:
        return None
    text = _(
        "Brev %(number)s (%(kind)s): %(subject)s",
        number=letter.number,
        kind=LETTER_KIND_LABELS.get(letter.kind, letter.kind),
        subject=letter.subject,
    )
    return text, url_for("incidents.detail", incident_id=letter.incident_id)
