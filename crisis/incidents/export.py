"""The incident's record for the follow-up with the supplier: JSON and a printable page.

``GET /incidents/<id>/export.json`` (staff) returns one object (``format``
``"krisrutin.incident/1"``). Every instant is an object ``{"utc": "2027-03-28T01:30:00Z",
"local": "2027-03-28T03:30:00+02:00"}`` (ISO 8601; ``local`` in ``timezone``), or null::

    format, exported_at, timezone
    incident: id, title, service, service_label, supplier {id, name, email} | null, planned,
        status, party, party_since, handler {id, name} | null, starts_at, expected_end_at,
        all_providers, acknowledged_at, acknowledged_by, assessed_at, assessed_by, relevant,
        apply_local_routines, assessment_reason, flag_reason, last_letter_at, resolved_at,
        created_at, url
    affected_providers: [{id, name}]        (as the register stands at export time)
    notices: [{id, source, supplier, external_id, subject, body, received_at, received_by,
        original_type, original}]            (``original``: the raw e-mail or JSON as received)
    timeline: [{id, at, kind, description, actor {id, name} | null, party, detail}]
    letters: [{id, number, kind, party, author, subject, body, apply_local_routines, urgent,
        sent_at, recipients,
        deliveries: [{message_id, contact {id, name} | null, provider, channel, to_address,
            status, attempts, queued_at, sent_at, delivered_at, failed_at, error}],
        receipts: [{provider {id, name}, acknowledged_at, acknowledged_by,
            local_routines, local_routines_answer, resent_at, call_listed_at, called_at, call_outcome}]}]
    handovers: [{id, boundary_at, from_party, to_party, from_user, to_user, created_at,
        acknowledged_at, acknowledged_by, realerted_at, summary}]
    alerts: [{id, reason, step, party, user, sent_at, acknowledged_at, acknowledged_by,
        deliveries: [...as for letters]}]
    figures: {first_notice_at, first_letter_at, notice_to_first_letter_seconds, start_at,
        resolved_at, start_to_resolution_seconds}

People are ``{id, name}``. A delivery's ``to_address`` is given only for messages that went to
an address rather than a contact person of the register (the team's mailbox, an officer's
phone); contact persons are named. ``GET /incidents/<id>/print`` shows the same record as a
page meant for printing (or saving as PDF from the browser).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, jsonify, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.access import roles_required
from accounts.roles import STAFF
from contacts.models import Provider
from core import audit
from core.clock import current_clock
from core.extensions import db
from crisis.incidents import report
from crisis.incidents.affected import affected_providers
from crisis.incidents.models import Letter, LetterReceipt
from crisis.incidents.receipt_answers import answer_label as local_routines_label
from crisis.incidents.views import (
    ALERT_REF,
    LETTER_REF,
    STATUS_LABELS,
    get_incident_or_404,
    service_label,
    timeline,
    user_names,
)
from crisis.oncall.models import Alert, Handover
from notifications.views import delivery_overview

bp = Blueprint("incident_export", __name__)

FORMAT = "krisrutin.incident/1"


def instant(value: datetime | None, tz) -> dict | None:
    if value is None:
        return None
    utc = value.astimezone(timezone.utc)
    return {"utc": utc.isoformat().replace("+00:00", "Z"), "local": utc.astimezone(tz).isoformat()}


def _person(user_id: int | None, names: dict[int, str]) -> dict | None:
    if user_id is None:
        return None
    return {"id": user_id, "name": names.get(user_id)}


def _deliveries(db_session: Session, ref_type: str, ref_id: int, tz) -> list[dict]:
    rows, _counts = delivery_overview(db_session=db_session, ref_type=ref_type, ref_id=str(ref_id))
    found = []
    for row in rows:
        for channel, messages in row.messages.items():
            for message in messages:
                found.append(
                    {
                        "message_id": message.message_id,
                        "contact": {"id": row.contact_id, "name": row.contact_name} if row.contact_id else None,
                        "provider": row.provider_name,
                        "channel": channel,
                        "to_address": None if row.contact_id else message.to_address,
                        "status": message.status,
                        "attempts": message.attempts,
                        "queued_at": instant(message.created_at, tz),
                        "sent_at": instant(message.sent_at, tz),
                        "delivered_at": instant(message.delivered_at, tz),
                        "failed_at": instant(message.failed_at, tz),
                        "error": message.last_error,
                    }
                )
    return found


def build_record(db_session: Session, incident, *, tz, now: datetime) -> dict:
    """The whole record of ``incident`` (see the module docstring)."""
    letters = list(db_session.scalars(select(Letter).where(Letter.incident_id == incident.id).order_by(Letter.number)))
    handovers = list(
        db_session.scalars(select(Handover).where(Handover.incident_id == incident.id).order_by(Handover.boundary_at))
    )
    alerts = list(
        db_session.scalars(select(Alert).where(Alert.incident_id == incident.id).order_by(Alert.sent_at, Alert.id))
    )
    receipts = (
        list(
            db_session.scalars(
                select(LetterReceipt)
                .where(LetterReceipt.letter_id.in_([letter.id for letter in letters]))
                .order_by(LetterReceipt.provider_id)
            )
        )
        if letters
        else []
    )
    provider_names = (
        dict(
            db_session.execute(
                select(Provider.id, Provider.name).where(Provider.id.in_({r.provider_id for r in receipts}))
            )
            .tuples()
            .all()
        )
        if receipts
        else {}
    )
    entries = timeline(db_session, incident)
    names = user_names(
        db_session,
        [
            incident.handler_user_id,
            incident.acknowledged_by_id,
            incident.assessed_by_id,
            *[notice.received_by_id for notice in incident.notices],
            *[letter.author_id for letter in letters],
            *[h.from_user_id for h in handovers],
            *[h.to_user_id for h in handovers],
            *[h.acknowledged_by_id for h in handovers],
            *[a.user_id for a in alerts],
            *[a.acknowledged_by_id for a in alerts],
            *[entry.event.actor_user_id for entry in entries],
        ],
    )
    figures = report.incident_figures(db_session, incident)
    to_letter = figures.notice_to_first_letter
    to_resolution = figures.start_to_resolution
    supplier = incident.supplier
    return {
        "format": FORMAT,
        "exported_at": instant(now, tz),
        "timezone": str(tz),
        "incident": {
            "id": incident.id,
            "title": incident.title,
            "service": incident.service,
            "service_label": service_label(incident.service),
            "supplier": {"id": supplier.id, "name": supplier.name, "email": supplier.email} if supplier else None,
            "planned": bool(incident.planned),
            "status": incident.status,
            "status_label": str(STATUS_LABELS.get(incident.status, incident.status)),
            "party": incident.party,
            "party_since": instant(incident.party_since, tz),
            "handler": _person(incident.handler_user_id, names),
            "starts_at": instant(incident.starts_at, tz),
            "expected_end_at": instant(incident.expected_end_at, tz),
            "all_providers": bool(incident.all_providers),
            "acknowledged_at": instant(incident.acknowledged_at, tz),
            "acknowledged_by": _person(incident.acknowledged_by_id, names),
            "assessed_at": instant(incident.assessed_at, tz),
            "assessed_by": _person(incident.assessed_by_id, names),
            "relevant": incident.relevant,
            "apply_local_routines": incident.apply_local_routines,
            "assessment_reason": incident.assessment_reason,
            "flag_reason": incident.flag_reason,
            "last_letter_at": instant(incident.last_letter_at, tz),
            "resolved_at": instant(incident.resolved_at, tz),
            "created_at": instant(incident.created_at, tz),
            "url": current_app.extensions["krisrutin.settings"].public_base_url
            + url_for("incidents.detail", incident_id=incident.id),
        },
        "affected_providers": [{"id": p.id, "name": p.name} for p in affected_providers(db_session, incident)],
        "notices": [
            {
                "id": notice.id,
                "source": notice.source,
                "supplier": notice.supplier_id,
                "external_id": notice.external_id,
                "subject": notice.subject,
                "body": notice.body,
                "received_at": instant(notice.received_at, tz),
                "received_by": _person(notice.received_by_id, names),
                "original_type": notice.original_type,
                "original": notice.original,
            }
            for notice in incident.notices
        ],
        "timeline": [
            {
                "id": entry.event.id,
                "at": instant(entry.event.at, tz),
                "kind": entry.event.kind,
                "description": entry.description,
                "actor": _person(entry.event.actor_user_id, names),
                "party": entry.event.party,
                "detail": entry.event.detail or {},
            }
            for entry in entries
        ],
        "letters": [
            {
                "id": letter.id,
                "number": letter.number,
                "kind": letter.kind,
                "party": letter.party,
                "author": _person(letter.author_id, names),
                "subject": letter.subject,
                "body": letter.body,
                "apply_local_routines": bool(letter.apply_local_routines),
                "urgent": bool(letter.urgent),
                "sent_at": instant(letter.sent_at, tz),
                "recipients": letter.recipients,
                "deliveries": _deliveries(db_session, LETTER_REF, letter.id, tz),
                "receipts": [
                    {
                        "provider": {"id": r.provider_id, "name": provider_names.get(r.provider_id)},
                        "acknowledged_at": instant(r.acknowledged_at, tz),
                        "acknowledged_by": r.acknowledged_by,
                        "local_routines": r.local_routines,
                        "local_routines_answer": local_routines_label(r.local_routines) if r.acknowledged_at else None,
                        "resent_at": instant(r.resent_at, tz),
                        "call_listed_at": instant(r.call_listed_at, tz),
                        "called_at": instant(r.called_at, tz),
                        "call_outcome": r.call_outcome,
                    }
                    for r in receipts
                    if r.letter_id == letter.id
                ],
            }
            for letter in letters
        ],
        "handovers": [
            {
                "id": h.id,
                "boundary_at": instant(h.boundary_at, tz),
                "from_party": h.from_party,
                "to_party": h.to_party,
                "from_user": _person(h.from_user_id, names),
                "to_user": _person(h.to_user_id, names),
                "created_at": instant(h.created_at, tz),
                "acknowledged_at": instant(h.acknowledged_at, tz),
                "acknowledged_by": _person(h.acknowledged_by_id, names),
                "realerted_at": instant(h.realerted_at, tz),
                "summary": h.summary or {},
            }
            for h in handovers
        ],
        "alerts": [
            {
                "id": a.id,
                "reason": a.reason,
                "step": a.step,
                "party": a.party,
                "user": _person(a.user_id, names),
                "sent_at": instant(a.sent_at, tz),
                "acknowledged_at": instant(a.acknowledged_at, tz),
                "acknowledged_by": _person(a.acknowledged_by_id, names),
                "deliveries": _deliveries(db_session, ALERT_REF, a.id, tz),
            }
            for a in alerts
        ],
        "figures": {
            "first_notice_at": instant(figures.first_notice_at, tz),
            "first_letter_at": instant(figures.first_letter_at, tz),
            "notice_to_first_letter_seconds": int(to_letter.total_seconds()) if to_letter is not None else None,
            "start_at": instant(figures.start_at, tz),
            "resolved_at": instant(figures.resolved_at, tz),
            "start_to_resolution_seconds": int(to_resolution.total_seconds()) if to_resolution is not None else None,
        },
    }


def _tz():
    return current_app.extensions["krisrutin.routine"].timezone


@bp.get("/incidents/<int:incident_id>/export.json")
@roles_required(*STAFF)
@audit.audited_export("incident", id_arg="incident_id", format="json")
def export_json(incident_id: int):
    incident = get_incident_or_404(incident_id)
    record = build_record(db.session, incident, tz=_tz(), now=current_clock().now())
    response = jsonify(record)
    response.headers["Content-Disposition"] = f'attachment; filename="storning-{incident.id}.json"'
    response.headers["Cache-Control"] = "no-store"  # personal data
    return response


@bp.get("/incidents/<int:incident_id>/print")
@roles_required(*STAFF)
@audit.audited_export("incident", id_arg="incident_id", format="print")
def print_page(incident_id: int):
    """The record as a page for printing or saving as PDF (the same content as the JSON)."""
    incident = get_incident_or_404(incident_id)
    record = build_record(db.session, incident, tz=_tz(), now=current_clock().now())
    response = current_app.make_response(
        render_template(
            "incidents/export_print.html",
            incident=incident,
            record=record,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def instant_text(value: dict | None) -> str:
    """An exported instant as local ``YYYY-MM-DD HH:MM`` (the page's reading of the JSON)."""
    if not value:
        return "–"
    return value["local"][:16].replace("T", " ")


bp.add_app_template_filter(instant_text, "instant_text")


def figures_duration(seconds: int | None) -> str:
    return report.duration_text(None if seconds is None else timedelta(seconds=seconds))


bp.add_app_template_global(figures_duration, "figures_duration")
