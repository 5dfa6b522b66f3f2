"""The team's and the on-call officer's letter pages: the assessment, writing and sending a
letter (with a "check your answers" preview), and the call list of unacknowledged letters.

- ``/incidents/<id>/assess`` (team, admin): in office hours the team assesses a notice: not
  relevant (a reason is required; the incident closes, nothing is sent) or relevant, with or
  without local routines, which leads to the first letter. Outside office hours the page says
  that the on-call officer handles the notice, but a team member may still assess it (a team
  member working late should not have to wait for the morning to close an irrelevant notice).
- ``/incidents/<id>/letters/new?kind=first|update|resolution`` (team, admin, on-call officer):
  the letter is pre-filled from a template with the incident's facts (service, supplier,
  planned or unplanned, start, expected end), so the on-call officer's simplified letter is
  "read, adjust, preview, send". The preview shows how many contacts and providers get it.
- ``/incidents/calls`` (team, admin, on-call officer): providers that have not acknowledged an
  urgent letter after its re-send, with their contacts' numbers and a form for the outcome.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from accounts.access import roles_required
from accounts.models import User
from accounts.roles import Role
from contacts.models import ContactPerson, Provider
from contacts.register import SERVICE_LABELS
from core import audit
from core.clock import current_clock
from core.extensions import db
from core.local_time import local_text
from core.text import one_line
from crisis.incidents import letter_texts, timeline
from crisis.incidents.affected import affected_providers, letter_recipients
from crisis.incidents.letter_jobs import queue_remaining_after
from crisis.incidents.letters import (
    CALL_OUTCOMES,
    LOCAL_MEASURES,
    LetterError,
    check_may_send,
    first_letter,
    letters_of,
    record_call,
    send_staff_letter,
)
from crisis.incidents.models import Incident, IncidentStatus, Letter, LetterKind, LetterReceipt
from crisis.oncall.models import Party
from crisis.oncall.responsible import contact_details
from worktime.calendar import is_office_hours

log = logging.getLogger(__name__)
bp = Blueprint("letters", __name__)

TEAM = (Role.TEAM, Role.ADMIN)
WRITERS = (Role.TEAM, Role.ADMIN, Role.ON_CALL)
COMPOSE_KINDS = (LetterKind.FIRST.value, LetterKind.UPDATE.value, LetterKind.RESOLUTION.value)


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _incident(incident_id: int) -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        abort(404, description=_("Störningen finns inte."))
    return incident


# --- the assessment ---------------------------------------------------------------------------------


def _render_assess(incident: Incident, *, errors=None, values=None, status: int = 200):
    now = current_clock().now()
    return render_template(
        "incidents/assess.html",
        incident=incident,
        errors=errors or {},
        values=values or {"relevant": "", "apply_local_routines": True, "reason": ""},
        office_hours=is_office_hours(now, _policy()),
        has_letters=first_letter(db.session, incident.id) is not None,
        service_label=SERVICE_LABELS.get(incident.service, incident.service),
    ), status


@bp.route("/incidents/<int:incident_id>/assess", methods=["GET", "POST"])
@roles_required(*TEAM)
def assess(incident_id: int):
    """Relevant for the providers (with or without local routines), or not (with a reason)."""
    incident = _incident(incident_id)
    if request.method == "GET":
        return _render_assess(incident)
    form = request.form
    values = {
        "relevant": form.get("relevant", ""),
        "apply_local_routines": form.get("apply_local_routines") == "yes",
        "reason": form.get("reason", "").strip(),
    }
    errors: dict[str, str] = {}
    if not incident.is_open:
        errors["_"] = _("Störningen är avslutad och kan inte bedömas igen.")
    elif values["relevant"] not in ("yes", "no"):
        errors["relevant"] = _("Välj om störningen är relevant för utförarna.")
    elif values["relevant"] == "no":
        if not values["reason"]:
            errors["reason"] = _("Skriv varför störningen inte är relevant.")
        elif len(values["reason"]) > 1000:
            errors["reason"] = _("Motiveringen får vara högst 1000 tecken.")
        elif first_letter(db.session, incident.id) is not None:
            errors["_"] = _("Brev har redan skickats om störningen. Avsluta den med ett brev om att den är åtgärdad.")
    if errors:
        return _render_assess(incident, errors=errors, values=values, status=400)
    now = current_clock().now()
    relevant = values["relevant"] == "yes"
    incident.assessed_at = now
    incident.assessed_by_id = g.user.id
    incident.relevant = relevant
    incident.apply_local_routines = values["apply_local_routines"] if relevant else False
    incident.assessment_reason = values["reason"] or None
    incident.updated_at = now
    if not relevant:
        incident.status = IncidentStatus.NOT_RELEVANT.value
    timeline.record(
        db.session,
        incident.id,
        "assessed",
        now,
        actor_id=g.user.id,
        party=Party.TEAM.value,
        relevant=relevant,
        apply_local_routines=incident.apply_local_routines,
        reason=incident.assessment_reason,
    )
    db.session.commit()
    log.info("incident assessed", extra={"incident_id": incident.id, "relevant": relevant})
    if not relevant:
        flash(_("Störningen är bedömd som inte relevant och avslutad. Inget har skickats."), "success")
        return redirect(url_for("incidents.detail", incident_id=incident.id), code=303)
    kind = LetterKind.UPDATE.value if first_letter(db.session, incident.id) is not None else LetterKind.FIRST.value
    return redirect(url_for("letters.compose", incident_id=incident.id, kind=kind), code=303)


# --- writing a letter -------------------------------------------------------------------------------


def _prefill(incident: Incident, kind: str) -> dict:
    """The letter's starting text, from the incident's facts (the simplified letter). The subject
    is the incident's title alone: every copy is headed by what the letter is ("Driftstörning",
    "Uppdatering 1", "Åtgärdat"), see :mod:`crisis.incidents.letter_texts`."""
    service = SERVICE_LABELS.get(incident.service, incident.service or "")
    supplier = incident.supplier.name if incident.supplier is not None else "Leverantören"
    starts = local_text(incident.starts_at)
    expected = local_text(incident.expected_end_at)
    apply = incident.apply_local_routines if incident.apply_local_routines is not None else True
    if kind == LetterKind.FIRST.value:
        what = "planerat arbete" if incident.planned else "en oplanerad driftstörning"
        lines = [f"{supplier} meddelar {what} som påverkar {service.lower()}: {incident.title}."]
        facts = []
        if starts:
            facts.append(f"Start: {starts}")
        if expected:
            facts.append(f"Beräknas klart: {expected}")
        if facts:
            lines.append("\n".join(facts))
        if not incident.planned:
            lines.append("Följ era lokala rutiner. Vi skickar en uppdatering när vi vet mer.")
        return {"subject": incident.title[:200], "body": "\n\n".join(lines), "apply": apply}
    if kind == LetterKind.UPDATE.value:
        interval = timedelta(
            minutes=_policy().crisis.planned_update_interval_minutes
            if incident.planned
            else _policy().crisis.update_interval_minutes
        )
        next_update = local_text(current_clock().now() + interval)
        lines = ["Läget just nu: "]
        if expected:
            lines.append(f"Beräknas klart: {expected}")
        lines.append(f"Nästa uppdatering senast {next_update}.")
        return {"subject": incident.title[:200], "body": "\n\n".join(lines), "apply": apply}
    return {
        "subject": incident.title[:200],
        "body": f"{service} fungerar igen. Störningen är åtgärdad och ni kan återgå till ordinarie rutiner.",
        "apply": False,
    }


def _kind_arg() -> str:
    kind = request.values.get("kind", LetterKind.FIRST.value)
    if kind not in COMPOSE_KINDS:
        abort(400, description=_("Okänd sorts brev."))
    return kind


def _render_compose(
    incident: Incident, kind: str, values: dict, *, errors=None, preview=False, status=200, blocked=False
):
    now = current_clock().now()
    context = {
        "blocked": blocked,
        "incident": incident,
        "kind": kind,
        "values": values,
        "errors": errors or {},
        "preview": preview,
        "is_on_call": g.user.role == Role.ON_CALL.value,
        "service_label": SERVICE_LABELS.get(incident.service, incident.service),
        "recipients": len(letter_recipients(db.session, incident)),
        "providers": len(affected_providers(db.session, incident)),
        "measures": list(LOCAL_MEASURES) if values.get("apply") else [],
        "contact": contact_details(db.session, now),
        "local_text": local_text,
    }
    if preview:
        context["copy"] = _preview_copy(incident, kind, values, now)
    return render_template("incidents/letter_compose.html", **context), status


def _preview_copy(incident: Incident, kind: str, values: dict, now) -> dict:
    """The first recipient's e-mail and SMS exactly as the send renders them (letter_texts.preview);
    the link is a stand-in of a real link's length (each provider gets its own)."""
    recipients = letter_recipients(db.session, incident)
    contact = recipients[0] if recipients else None
    provider = db.session.get(Provider, contact.provider_id) if contact is not None else None
    base = current_app.extensions["krisrutin.settings"].public_base_url.rstrip("/")
    next_receipt = (db.session.scalar(select(func.max(LetterReceipt.id))) or 0) + 1
    rendered = letter_texts.preview(
        db.session,
        incident,
        kind=kind,
        subject=values["subject"],
        body=values["body"],
        apply_local_routines=values["apply"],
        now=now,
        name=contact.name if contact is not None else _("Kontaktpersonen"),
        provider=provider.name if provider is not None else _("Utföraren"),
        link=f"{base}/d/{next_receipt}-{'x' * 10}-{'x' * 22}",
    )
    return {
        "rendered": rendered,
        "segments": rendered.sms_length.segments if rendered.sms else 0,
        "contact": contact.name if contact is not None else None,
        "provider": provider.name if provider is not None else None,
    }


@bp.route("/incidents/<int:incident_id>/letters/new", methods=["GET", "POST"])
@roles_required(*WRITERS)
def compose(incident_id: int):
    """Write (pre-filled), preview ("check your answers") and send a letter."""
    incident = _incident(incident_id)
    kind = _kind_arg()
    if request.method == "GET":
        values = _prefill(incident, kind)
        try:
            check_may_send(db.session, incident, kind)
        except LetterError as error:
            return _render_compose(incident, kind, values, errors={"_": error.message}, status=400, blocked=True)
        return _render_compose(incident, kind, values)
    form = request.form
    values = {
        "subject": one_line(form.get("subject", "")),
        "body": form.get("body", "").strip(),
        "apply": form.get("apply_local_routines") == "yes",
    }
    errors: dict[str, str] = {}
    if not values["subject"]:
        errors["subject"] = _("Skriv en rubrik.")
    elif len(values["subject"]) > 200:
        errors["subject"] = _("Rubriken får vara högst 200 tecken.")
    if not values["body"]:
        errors["body"] = _("Skriv brevets text.")
    try:
        check_may_send(db.session, incident, kind)
    except LetterError as error:
        errors["_"] = error.message
    if errors:
        return _render_compose(incident, kind, values, errors=errors, status=400)
    if form.get("action") == "edit":
        return _render_compose(incident, kind, values)
    if form.get("action") != "send":
        return _render_compose(incident, kind, values, preview=True)
    party = Party.ON_CALL if g.user.role == Role.ON_CALL.value else Party.TEAM
    try:
        letter = send_staff_letter(
            db.session,
            incident,
            user=g.user,
            kind=kind,
            subject=values["subject"],
            body=values["body"],
            apply_local_routines=values["apply"],
            party=party,
            now=current_clock().now(),
        )
    except LetterError as error:
        db.session.rollback()
        incident = _incident(incident_id)
        return _render_compose(incident, kind, values, errors={error.field: error.message}, status=400)
    db.session.commit()
    flash(
        _(
            "Brevet är skickat till %(contacts)s kontaktpersoner hos %(providers)s utförare.",
            contacts=letter.recipients,
            providers=len(letter.receipts),
        ),
        "success",
    )
    response = redirect(url_for("incidents.detail", incident_id=incident_id), code=303)
    return queue_remaining_after(response, letter.id)  # a big letter's rest


# --- the call list ------------------------------------------------------------------------------------


def call_list_rows(db_session) -> list[dict]:
    """One entry per provider to phone: its call-listed receipts not acknowledged, of open
    incidents (the letters it has not acknowledged, oldest first), with its contacts. A provider
    drops out when every such letter is acknowledged (or its incident closed)."""
    rows = db_session.execute(
        select(LetterReceipt, Letter, Incident, Provider)
        .join(Letter, Letter.id == LetterReceipt.letter_id)
        .join(Incident, Incident.id == Letter.incident_id)
        .join(Provider, Provider.id == LetterReceipt.provider_id)
        .where(
            LetterReceipt.call_listed_at.is_not(None),
            LetterReceipt.acknowledged_at.is_(None),
            Incident.status.in_(("new", "open")),
        )
        .order_by(LetterReceipt.call_listed_at, Letter.sent_at, LetterReceipt.id)
    ).all()
    entries: dict[int, dict] = {}
    for receipt, letter, incident, provider in rows:
        entry = entries.setdefault(provider.id, {"provider": provider, "items": [], "contacts": []})
        entry["items"].append({"receipt": receipt, "letter": letter, "incident": incident})
    if entries:
        for contact in db_session.scalars(
            select(ContactPerson)
            .where(ContactPerson.provider_id.in_(entries), ContactPerson.is_active.is_(True))
            .order_by(ContactPerson.name)
        ):
            entries[contact.provider_id]["contacts"].append(contact)
    for entry in entries.values():
        receipts = [item["receipt"] for item in entry["items"]]
        entry["receipt"] = receipts[-1]  # the form's target; the call is recorded on every receipt
        entry["call_listed_at"] = min(receipt.call_listed_at for receipt in receipts)
        called = [receipt for receipt in receipts if receipt.called_at is not None]
        entry["last_call"] = max(called, key=lambda receipt: receipt.called_at) if called else None
    return sorted(entries.values(), key=lambda entry: (entry["call_listed_at"], entry["provider"].name.casefold()))


def _render_calls(*, errors=None, submitted=None, status=200):
    return render_template(
        "incidents/letter_calls.html",
        rows=call_list_rows(db.session),
        errors=errors or {},
        submitted=submitted or {},
        outcomes=CALL_OUTCOMES,
    ), status


@bp.get("/incidents/calls")
@roles_required(*WRITERS)
@audit.audited_view("letter_receipt", calls=True)
def calls():
    """Whom to phone: providers that have not acknowledged an urgent letter."""
    return _render_calls()


@bp.post("/incidents/calls/<int:receipt_id>")
@roles_required(*WRITERS)
def record_call_view(receipt_id: int):
    """One call to a provider covers every letter it has on the call list: the outcome is recorded
    on each ("reached" acknowledges them all)."""
    receipt = db.session.get(LetterReceipt, receipt_id)
    if receipt is None:
        abort(404, description=_("Mottagaren finns inte."))
    outcome = request.form.get("outcome", "")
    note = request.form.get("note", "")
    entry = next((row for row in call_list_rows(db.session) if row["provider"].id == receipt.provider_id), None)
    receipts = [item["receipt"] for item in entry["items"]] if entry else [receipt]
    if receipt not in receipts:
        receipts.append(receipt)
    now = current_clock().now()
    try:
        for each in receipts:
            record_call(db.session, each, outcome=outcome, note=note, user_id=g.user.id, now=now)
    except LetterError as error:
        db.session.rollback()
        message = _("Välj hur samtalet gick.") if error.field == "outcome" else _("Anteckningen är för lång.")
        return _render_calls(
            errors={receipt.provider_id: {error.field: message}},
            submitted={receipt.provider_id: {"outcome": outcome, "note": note}},
            status=400,
        )
    db.session.commit()
    log.info("letter call recorded", extra={"receipt_id": receipt.id, "receipts": len(receipts), "outcome": outcome})
    flash(_("Samtalet är registrerat."), "success")
    return redirect(url_for("letters.calls"), code=303)


# --- the panel on the incident page -------------------------------------------------------------------


RECEIPT_ROWS = 50  # receipts shown per letter on the incident page before "Visa alla"


def letters_panel(incident: Incident) -> dict:
    """What ``incidents/_letters_panel.html`` shows for ``incident``."""
    letters = letters_of(db.session, incident.id)
    provider_ids = {receipt.provider_id for letter in letters for receipt in letter.receipts}
    providers = (
        dict(db.session.execute(select(Provider.id, Provider.name).where(Provider.id.in_(provider_ids))).all())
        if provider_ids
        else {}
    )
    assessor = db.session.get(User, incident.assessed_by_id) if incident.assessed_by_id else None
    first = any(letter.kind == LetterKind.FIRST.value for letter in letters)
    # A letter to every provider has a thousand receipts: the ones not acknowledged come first and
    # the table stops at RECEIPT_ROWS unless all are asked for (``?receipts=all``), so the page
    # stays quick to read (and to load on a phone) in a crisis.
    show_all = request.args.get("receipts") == "all"
    rows, acknowledged = {}, {}
    for letter in letters:
        ordered = sorted(
            letter.receipts,
            key=lambda r: (r.acknowledged_at is not None, providers.get(r.provider_id, "").casefold(), r.id),
        )
        rows[letter.id] = ordered if show_all else ordered[:RECEIPT_ROWS]
        acknowledged[letter.id] = sum(1 for receipt in letter.receipts if receipt.acknowledged_at is not None)
    return {
        "letters": list(reversed(letters)),
        "rows": rows,
        "acknowledged": acknowledged,
        "providers": providers,
        "assessor": assessor.display_name if assessor is not None else None,
        "first_sent": first,
        "may_assess": incident.is_open and not first,
        "may_write": incident.is_open,
    }


def init_app(app) -> None:
    app.add_template_global(letters_panel, "letters_panel")
