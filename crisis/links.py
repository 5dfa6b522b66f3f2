"""Renewing a signed link: team and admin give a provider's letter link, visit link or check link
a new nonce (``POST /links/<kind>/<id>/renew``); the old link then answers "replaced" (404).

Asking first: "Ny länk" on a page is a link to ``GET`` of the same address, a page that says the
old link stops working and asks to go on; only its ``POST`` voids the old link. After a check
link is renewed the team sees the new link (``/links/check-recipients/<id>``): as selectable
text, with a copy button (``static/js/copy-link.js``, allowed by the CSP's ``'self'``) and a form
that sends it to the contact by SMS and e-mail (:func:`contacts.check_resend.send_renewed_link`).
A letter's or visit alert's link goes to a provider's many contacts, so after renewing one the
team is led back to the page it came from, as before.

The three kinds belong to three domains (the monthly check, incidents, visits); this module stands
above them. The rules every link page shares (brute force, the expired page) are
:mod:`core.link_pages`; each domain decides when its own links expire.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from accounts.access import roles_required
from accounts.roles import Role
from contacts.check_links import link_url as check_link_url
from contacts.check_links import new_nonce as new_check_nonce
from contacts.check_models import CheckRecipient
from contacts.check_resend import send_renewed_link
from core import audit
from core.clock import current_clock
from core.extensions import db
from core.link_pages import back_to
from crisis.incidents.letters import new_nonce as new_letter_nonce
from crisis.incidents.models import LetterReceipt
from crisis.visits.models import VisitAlert
from crisis.visits.service import new_nonce as new_visit_nonce

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)

# What each kind of link is, on the page that asks before it is voided.
WHAT = {
    "receipt": _l("länken till informationsbrevet"),
    "alert": _l("länken till besökslistan"),
    "check": _l("länken till månadskontrollen"),
}


def _confirm(kind: str, back: str):
    """The question before a working link is voided (nothing changes until its form is posted)."""
    target = request.args.get("next", "")
    if (
        not target.startswith("/") or target.startswith("//") or "\\" in target
    ):  # a browser reads a backslash as a slash
        target = back
    return render_template("links/confirm_renew.html", what=WHAT[kind], back=target)


@bp.route("/links/letter-receipts/<int:receipt_id>/renew", methods=["GET", "POST"])
@roles_required(Role.TEAM, Role.ADMIN)
def renew_receipt(receipt_id: int):
    """Give one provider's letter link a new nonce: the old link stops working."""
    receipt = db.session.get(LetterReceipt, receipt_id) or abort(404)
    if request.method == "GET":
        return _confirm("receipt", url_for("incidents.detail", incident_id=receipt.letter.incident_id))
    receipt.nonce = new_letter_nonce()
    incident_id = receipt.letter.incident_id
    db.session.commit()
    log.info("letter link renewed", extra={"receipt_id": receipt_id})
    flash(_("En ny länk är skapad. Den gamla fungerar inte längre."), "success")
    return back_to(url_for("incidents.detail", incident_id=incident_id))


@bp.route("/links/visit-alerts/<int:alert_id>/renew", methods=["GET", "POST"])
@roles_required(Role.TEAM, Role.ADMIN)
def renew_alert(alert_id: int):
    """Give a visit alert's link a new nonce: the old link stops working."""
    alert = db.session.get(VisitAlert, alert_id) or abort(404)
    incident_id = alert.incident_id
    default = url_for("incidents.detail", incident_id=incident_id) if incident_id else url_for("incidents.index")
    if request.method == "GET":
        return _confirm("alert", default)
    alert.nonce = new_visit_nonce()
    db.session.commit()
    log.info("visit link renewed", extra={"alert_id": alert_id})
    flash(_("En ny länk är skapad. Den gamla fungerar inte längre."), "success")
    return back_to(default)


@bp.route("/links/check-recipients/<int:recipient_id>/renew", methods=["GET", "POST"])
@roles_required(Role.TEAM, Role.ADMIN)
def renew_check_recipient(recipient_id: int):
    """Give a check recipient's link a new nonce: the old link stops working; then the new link."""
    recipient = db.session.get(CheckRecipient, recipient_id) or abort(404)
    if request.method == "GET":
        return _confirm("check", url_for("checks.month", month=recipient.check.month))
    recipient.nonce = new_check_nonce()
    db.session.commit()
    log.info("check link renewed", extra={"recipient_id": recipient_id})
    return redirect(url_for("links.check_link", recipient_id=recipient_id), 303)


@bp.get("/links/check-recipients/<int:recipient_id>")
@roles_required(Role.TEAM, Role.ADMIN)
@audit.audited_view("check_recipient", id_arg="recipient_id")
def check_link(recipient_id: int):
    """The contact's current check link, to copy or to send to the contact."""
    recipient = db.session.get(CheckRecipient, recipient_id) or abort(404)
    settings = current_app.extensions["krisrutin.settings"]
    link = check_link_url(recipient, secret=current_app.config["SECRET_KEY"], base_url=settings.public_base_url)
    is_open = recipient.check.is_open(current_clock().now())
    return render_template("links/check_link.html", recipient=recipient, link=link, is_open=is_open)


@bp.post("/links/check-recipients/<int:recipient_id>/send")
@roles_required(Role.TEAM, Role.ADMIN)
def send_check_link(recipient_id: int):
    """Queue the contact's current link by SMS and e-mail (once per link)."""
    recipient = db.session.get(CheckRecipient, recipient_id) or abort(404)
    now = current_clock().now()
    if not recipient.check.is_open(now):
        abort(409, description=_l("Månadskontrollen är avslutad. Länken kan inte skickas."))
    messages = send_renewed_link(db.session, recipient, now)
    db.session.commit()
    if messages:
        channels = {message.channel for message in messages}
        how = [label for channel, label in (("sms", _("SMS")), ("email", _("e-post"))) if channel in channels]
        flash(
            _("Länken ligger i kön och skickas till kontaktpersonen med %(how)s.", how=_(" och ").join(how)), "success"
        )
    else:
        flash(_("Kontaktpersonen har varken mobilnummer eller e-postadress i registret."), "error")
    return redirect(url_for("links.check_link", recipient_id=recipient_id), 303)
