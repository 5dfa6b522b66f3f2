"""The team's pages of the monthly check: the months, one month at a glance with its recipients,
each contact's history across months, the review queue, the call list and the CSV report.

Access: the team and administrators do everything; the on-call officer (TIB) may read the
months, the contact history and the report (the review queue and the call list are the team's
work). Every action is a normal form post (CSRF-checked centrally).

The report (``/checks/<month>/report.csv``) is the municipality's record that the routine was
tested, written by :mod:`core.csv_export` (UTF-8 with a BOM and ``;`` as Excel writes it in
Sweden, cells that start like a formula guarded): Swedish column names whatever the page's
language, one row per recipient, then an empty line and the month's totals as ``label;value``
rows at the end (so the file still opens as one table whose first line is the header). Times are
local (Europe/Stockholm), ``YYYY-MM-DD HH:MM``.

"Skickat" and "levererat" (the month page and the report say so beside the numbers): sent is a
message handed to the SMTP server or Twilio; delivered is an SMS whose delivery report from Twilio
says it reached the phone. E-mail has no delivery report, so an e-mail is never counted delivered.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from accounts.access import roles_required
from accounts.roles import STAFF, Role
from contacts import check_queries, check_review
from contacts.check_links import CheckClosed
from contacts.check_models import CALL_AGAIN_OUTCOMES, CALL_OUTCOMES, CheckCorrection, CheckRecipient, MonthlyCheck
from contacts.check_queries import REF_TYPE
from contacts.models import SERVICES, ContactPerson
from contacts.register import RegisterError, history
from core import audit, csv_export
from core.clock import current_clock
from core.extensions import db
from core.numbers import month_start

log = logging.getLogger(__name__)
bp = Blueprint("checks", __name__)

TEAM = (Role.TEAM, Role.ADMIN)


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _today():
    return current_clock().now().astimezone(_policy().timezone).date()


def _check(month: str) -> MonthlyCheck:
    check = check_queries.check_for_month(db.session, month) if month_start(month) is not None else None
    if check is None:
        abort(404, description=_("Det finns ingen månadskontroll för %(month)s.", month=month[:7]))
    return check


@bp.get("/checks")
@roles_required(*STAFF)
def months():
    """Every month's check, newest first, with its figures."""
    today = _today()
    checks = check_queries.checks_newest_first(db.session)
    summaries = [(check, check_queries.month_summary(db.session, check, today=today)) for check in checks]
    return render_template("contacts/check/months.html", summaries=summaries, now=current_clock().now())


@bp.get("/checks/<month>")
@roles_required(*STAFF)
@audit.audited_view("check_recipient")
def month(month: str):
    """The month at a glance and its recipients, filtered by ``visa``."""
    check = _check(month)
    audit.viewed("check_recipient", check=check.id)
    show = request.args.get("visa", "all")
    if show not in check_queries.RECIPIENT_FILTERS:
        show = "all"
    rows = check_queries.recipients(db.session, check, show=show)
    return render_template(
        "contacts/check/month.html",
        check=check,
        summary=check_queries.month_summary(db.session, check, today=_today()),
        rows=rows,
        show=show,
        corrections=check_queries.correction_counts(db.session, check),
        callers=check_queries.user_names(db.session, [r.called_by_id for r in rows]),
        is_open=check.is_open(current_clock().now()),
        ref_type=REF_TYPE,
    )


@bp.get("/checks/contacts/<int:contact_id>")
@roles_required(*STAFF)
@audit.audited_view("contact", id_arg="contact_id", checks=True)
def contact_history(contact_id: int):
    """One contact across months: answers, calls, corrections and the register's changes."""
    contact = db.session.get(ContactPerson, contact_id)
    if contact is None:
        abort(404, description=_("Kontaktpersonen finns inte."))
    recipients = check_queries.contact_recipients(db.session, contact_id)
    corrections = check_queries.corrections_of(db.session, [r.id for r in recipients])
    changes = history(db.session, entity="contact", entity_id=contact_id)
    user_ids = [r.called_by_id for r in recipients] + [c.changed_by_id for c in changes]
    user_ids += [c.reviewed_by_id for items in corrections.values() for c in items]
    return render_template(
        "contacts/check/contact.html",
        contact=contact,
        recipients=recipients,
        corrections=corrections,
        changes=changes,
        users=check_queries.user_names(db.session, user_ids),
    )


# --- the review queue ---------------------------------------------------------------------------


def _render_review(errors: dict[int, dict[str, str]] | None = None, status: int = 200, reasons=None):
    queue = check_queries.pending_corrections(db.session)
    contacts = {c.contact_id: db.session.get(ContactPerson, c.contact_id) for c in queue if c.contact_id}
    return render_template(
        "contacts/check/review.html",
        queue=queue,
        contacts=contacts,
        errors=errors or {},
        reasons=reasons or {},
        fields=check_review.EDITABLE_FIELDS,
    ), status


@bp.get("/checks/review")
@roles_required(*TEAM)
@audit.audited_view("check_correction")
def review():
    """Corrections waiting for the team, oldest first, current values beside the proposed."""
    return _render_review()


@bp.post("/checks/review/<int:correction_id>")
@roles_required(*TEAM)
def decide(correction_id: int):
    """Accept (the register is updated) or reject (with a reason) one correction."""
    action = request.form.get("action")
    now = current_clock().now()
    reason = request.form.get("reason", "")
    try:
        if action == "accept":
            correction = check_review.accept_correction(db.session, correction_id, user_id=g.user.id, now=now)
        elif action == "reject":
            correction = check_review.reject_correction(
                db.session, correction_id, user_id=g.user.id, reason=reason, now=now
            )
        else:
            abort(400, description=_("Välj godkänn eller avvisa."))
    except check_review.ReviewConflict as conflict:
        db.session.rollback()
        if conflict.status == "missing":
            abort(404, description=_("Rättelsen finns inte."))
        message = {
            "accepted": _("Rättelsen har redan godkänts av någon annan. Inget ändrades nu."),
            "rejected": _("Rättelsen har redan avvisats av någon annan. Inget ändrades nu."),
            "superseded": _("Kontaktpersonen har svarat igen, så rättelsen gäller inte längre. Inget ändrades."),
        }.get(conflict.status, _("Rättelsen väntar inte längre på granskning."))
        flash(message, "error")
        return redirect(url_for("checks.review"), code=303)
    except RegisterError as error:
        db.session.rollback()
        return _render_review({correction_id: error.errors}, 400, {correction_id: reason})
    db.session.commit()
    log.info("correction reviewed", extra={"correction_id": correction.id, "status": correction.status})
    if action == "accept":
        flash(_("Rättelsen är godkänd och registret uppdaterat."), "success")
    else:
        flash(_("Rättelsen är avvisad."), "success")
    return redirect(url_for("checks.review"), code=303)


# --- the call list ------------------------------------------------------------------------------


def _render_calls(check: MonthlyCheck, *, errors=None, submitted=None, status: int = 200):
    rows = check_queries.recipients(db.session, check, show="calls")
    user_ids = [r.called_by_id for r in rows] + [a.get("by") for r in rows for a in (r.call_attempts or [])]
    callers = check_queries.user_names(db.session, user_ids)
    attempts = {
        r.id: [
            {"at": datetime.fromisoformat(a["at"]), "by": callers.get(a.get("by"), ""), "outcome": a["outcome"]}
            for a in (r.call_attempts or [])
            if a.get("at")
        ]
        for r in rows
    }
    # "Not reached" is not done: those contacts are among the calls to make, with their attempts.
    to_call = [r for r in rows if r.answer is None and (r.call_outcome in (None, *CALL_AGAIN_OUTCOMES))]
    done = [r for r in rows if r not in to_call]
    return render_template(
        "contacts/check/calls.html",
        check=check,
        to_call=to_call,
        done=done,
        attempts=attempts,
        errors=errors or {},
        submitted=submitted or {},
        callers=callers,
        call_day_reached=_today() >= check.call_on,
        is_open=check.is_open(current_clock().now()),
        outcomes=CALL_OUTCOMES,
        call_again=CALL_AGAIN_OUTCOMES,
        fields=check_review.EDITABLE_FIELDS,
        services=SERVICES,
    ), status


@bp.get("/checks/<month>/calls")
@roles_required(*TEAM)
@audit.audited_view("check_recipient", calls=True)
def calls(month: str):
    """Whom to phone: the contacts who have not answered, and the outcomes recorded so far."""
    audit.viewed("check_recipient", month=month, calls=True)
    return _render_calls(_check(month))


@bp.post("/checks/<month>/calls/<int:recipient_id>")
@roles_required(*TEAM)
def record_call(month: str, recipient_id: int):
    check = _check(month)
    recipient = db.session.get(CheckRecipient, recipient_id)
    if recipient is None or recipient.check_id != check.id:
        abort(404, description=_("Kontaktpersonen finns inte i den här månadens kontroll."))
    form = request.form
    data = {name: form.get(name, "") for name in ("name", "role_title", "mobile", "email")}
    data["services"] = form.getlist("services")
    try:
        check_review.record_call(
            db.session,
            recipient,
            outcome=form.get("outcome", ""),
            note=form.get("note"),
            user_id=g.user.id,
            now=current_clock().now(),
            data=data,
        )
    except RegisterError as error:
        db.session.rollback()
        submitted = {recipient_id: {**data, "outcome": form.get("outcome", ""), "note": form.get("note", "")}}
        return _render_calls(check, errors={recipient_id: error.errors}, submitted=submitted, status=400)
    except CheckClosed:
        db.session.rollback()
        abort(409, description=_("Månadens kontroll är avslutad; samtal kan inte längre registreras."))
    db.session.commit()
    log.info("call recorded", extra={"recipient_id": recipient.id, "outcome": recipient.call_outcome})
    flash(_("Samtalet med %(name)s är registrerat.", name=recipient.contact.name), "success")
    return redirect(url_for("checks.calls", month=check.month) + f"#r{recipient.id}", code=303)


# --- the report ---------------------------------------------------------------------------------


def report_rows(check: MonthlyCheck) -> list:
    """The report's rows (see the module docstring): one per recipient, then the month's totals."""
    tz = _policy().timezone
    summary = check_queries.month_summary(db.session, check, today=_today())
    totals = [
        ("Månadskontroll", check.month),
        ("Utskick", check.send_on.isoformat()),
        ("Påminnelser", f"{check.first_reminder_on.isoformat()}, {check.second_reminder_on.isoformat()}"),
        ("Samtalsdag", check.call_on.isoformat()),
        ("Mottagare", summary.recipients),
        ("Meddelanden skickade (e-post och SMS)", summary.messages_sent),
        ("SMS levererade (e-post har ingen leveransrapport)", summary.messages_delivered),
        ("Meddelanden misslyckade", summary.messages_failed),
        ("Svar ja", summary.answered_yes),
        ("Svar nej", summary.answered_no),
        ("Obesvarade", summary.outstanding),
        ("Rättelser väntar", summary.corrections_waiting),
        ("Samtal gjorda", summary.calls_made),
        ("Samtal kvar att göra", summary.calls_to_make),
        ("Rapporten skapad", current_clock().now().astimezone(tz).strftime("%Y-%m-%d %H:%M")),
    ]
    return [check_queries.REPORT_COLUMNS, *check_queries.report_rows(db.session, check, tz=tz), [], *totals]


@bp.get("/checks/<month>/report.csv")
@roles_required(*STAFF)
@audit.audited_export("check_recipient")
def report(month: str):
    check = _check(month)
    audit.exported("check_recipient", check=check.id)
    return csv_export.response(report_rows(check), filename=f"manadskontroll-{check.month}.csv")


def correction_label_rows(correction: CheckCorrection, contact: ContactPerson | None):
    """``(field, current, proposed, changed)`` for the review page."""
    rows = []
    for name in check_review.EDITABLE_FIELDS:
        if correction.kind == "new_contact":
            if name in correction.proposed:
                rows.append((name, None, correction.proposed[name], True))
        elif name in correction.proposed:
            current = getattr(contact, name) if contact is not None else None
            rows.append((name, current, correction.proposed[name], current != correction.proposed[name]))
    return rows


bp.add_app_template_global(correction_label_rows, "correction_label_rows")


def describe_check(db_session, ref_id: str):
    """The deliveries page's "Gäller" for a monthly check: its month in words, linking to it."""
    from core.labels import month_name
    from core.numbers import record_id

    number = record_id(ref_id)
    check = db_session.get(MonthlyCheck, number) if number is not None else None
    if check is None:
        return None
    return _("Månadskontroll %(month)s", month=month_name(check.month)), url_for("checks.month", month=check.month)
