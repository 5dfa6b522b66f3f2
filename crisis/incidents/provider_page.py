"""The provider's page of an incident (``/d/<token>``): no login, made for a phone.

Every affected provider gets one link per letter (its :class:`~crisis.incidents.models.LetterReceipt`,
signed like the monthly check's links, see :mod:`crisis.incidents.letters`). The page shows the incident's
letters, newest first, the routine's local measures and whom to contact, and asks for a receipt:
the name of who acknowledges and "Har ni startat era lokala rutiner?" as radios (Ja / Nej, inte
än / Behövs inte), nothing pre-selected (a pre-ticked box under a button that stated the answer
recorded the opposite of what keyboard users meant); an unanswered question is an error, and
the receipt records exactly the answer (:mod:`crisis.incidents.receipt_answers`). A receipt is
answered with a redirect to the page (reloading never resends), which then shows who
acknowledged and what they answered. Acknowledging covers every letter of the incident the
provider has got (the page shows them all); posting again changes nothing. Opening the page
records nothing (mail scanners open links).

A forged, altered or replaced link gets a 404 page; 30 days after the incident was resolved
the link has expired (410, see :func:`letter_link_expired`; :mod:`core.link_pages` limits repeated bad links).
A resolved incident's page still shows its
letters, read-only: providers read the resolution letter through the same link, and there is
nothing left to acknowledge. Posts are CSRF-protected like every session post (the GET sets
the token in the visitor's session cookie); a stale form gets a page that leads back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.orm import Session

from accounts.access import public
from contacts.models import Provider
from core import audit, link_pages
from core.clock import current_clock
from core.extensions import db
from core.signed_links import KEPT_IN_LOG
from crisis.incidents.letters import (
    KIND_LABELS,
    LOCAL_MEASURES,
    InvalidLink,
    acknowledge,
    letters_of,
    receipt_for_token,
)
from crisis.incidents.models import Incident, LetterReceipt
from crisis.incidents.receipt_answers import ANSWERS, LABELS
from crisis.oncall.responsible import contact_details

log = logging.getLogger(__name__)
bp = Blueprint("provider_page", __name__)


LETTER_LINK_DAYS = 30


def letter_link_expired(db_session: Session, receipt, now: datetime) -> bool:
    """True once the receipt's incident was resolved more than LETTER_LINK_DAYS days ago."""
    incident = db_session.get(Incident, receipt.letter.incident_id)
    resolved = incident.resolved_at if incident is not None else None
    return resolved is not None and now > resolved + timedelta(days=LETTER_LINK_DAYS)


def _invalid(reason: str):
    log.info("letter link refused", extra={"reason": reason})
    link_pages.note_refused(reason)
    return render_template("incidents/provider_invalid.html", reason=reason), 404


@bp.errorhandler(CSRFError)
def _csrf_failed(error):
    token = (request.view_args or {}).get("token", "")
    return render_template("incidents/provider_expired.html", token=token), 400


def _page(receipt: LetterReceipt, token: str, *, errors=None, values=None, status=200):
    incident = db.session.get(Incident, receipt.letter.incident_id)
    letters = list(reversed(letters_of(db.session, incident.id)))
    newest = letters[0]
    own = db.session.query(LetterReceipt).filter(
        LetterReceipt.provider_id == receipt.provider_id,
        LetterReceipt.letter_id.in_([letter.id for letter in letters]),
    )
    by_letter = {item.letter_id: item for item in own}
    waiting = [item for item in by_letter.values() if item.acknowledged_at is None]
    return render_template(
        "incidents/provider_page.html",
        incident=incident,
        provider=db.session.get(Provider, receipt.provider_id),
        letters=letters,
        receipts=by_letter,
        waiting=waiting,
        acknowledged=sorted(
            (item for item in by_letter.values() if item.acknowledged_at is not None),
            key=lambda item: item.acknowledged_at,
        ),
        measures=list(LOCAL_MEASURES) if newest.apply_local_routines else [],
        contact=contact_details(db.session, current_clock().now()),  # whom to contact now, by the calendar
        kind_labels=KIND_LABELS,
        token=token,
        errors=errors or {},
        values=values or {"name": "", "local_routines": ""},
        answers=[(value, LABELS[value]) for value in ANSWERS],
    ), status


@bp.route("/d/<token>", methods=["GET", "POST"])
@public
@audit.secret_in_path("token", keep=KEPT_IN_LOG)
@audit.audited_view("letter_receipt")
def page(token: str):
    """The letters and the acknowledgement form; a post acknowledges."""
    try:
        receipt = receipt_for_token(db.session, token, secret=current_app.config["SECRET_KEY"])
    except InvalidLink as error:
        return _invalid(error.reason)
    if letter_link_expired(db.session, receipt, current_clock().now()):
        return link_pages.expired_page()
    audit.viewed("letter_receipt", receipt.id, actor_kind="link", actor_id=f"letter:{receipt.id}")
    if request.method == "GET":
        return _page(receipt, token)
    incident = db.session.get(Incident, receipt.letter.incident_id)
    if not incident.is_open:
        return _page(receipt, token, status=409)
    name = " ".join(request.form.get("name", "").split())
    answer = request.form.get("local_routines", "")
    values = {"name": name, "local_routines": answer}
    errors = {}
    if not name:
        errors["name"] = _("Skriv ditt namn.")
    elif len(name) > 200:
        errors["name"] = _("Namnet får vara högst 200 tecken.")
    if answer not in ANSWERS:
        errors["local_routines"] = _("Svara på om ni har startat era lokala rutiner.")
    if errors:
        return _page(receipt, token, errors=errors, values=values, status=400)
    done = acknowledge(db.session, receipt, name=name, local_routines=answer, now=current_clock().now())
    db.session.commit()
    log.info("letter acknowledged", extra={"receipt_id": receipt.id, "receipts": len(done)})
    if done:
        flash(_("Tack! Ni har kvitterat breven."), "success")
    return redirect(url_for("provider_page.page", token=token), code=303)
