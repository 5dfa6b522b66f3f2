"""Renewing a signed link: team and admin give a provider's letter link, visit link or check link
a new nonce (``POST /links/<kind>/<id>/renew``); the old link then answers "replaced" (404).

The three kinds belong to three domains (the monthly check, incidents, visits); this module stands
above them. The rules every link page shares (brute force, the expired page) are
:mod:`core.link_pages`; each domain decides when its own links expire.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, url_for

from accounts.access import roles_required
from accounts.roles import Role
from contacts.check_links import new_nonce as new_check_nonce
from contacts.check_models import CheckRecipient
from core.extensions import db
from core.link_pages import back_to
from crisis.incidents.letters import new_nonce as new_letter_nonce
from crisis.incidents.models import LetterReceipt
from crisis.visits.models import VisitAlert
from crisis.visits.service import new_nonce as new_visit_nonce

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)


@bp.post("/links/letter-receipts/<int:receipt_id>/renew")
@roles_required(Role.TEAM, Role.ADMIN)
def renew_receipt(receipt_id: int):
    """Give one provider's letter link a new nonce: the old link stops working."""
    receipt = db.session.get(LetterReceipt, receipt_id) or abort(404)
    receipt.nonce = new_letter_nonce()
    incident_id = receipt.letter.incident_id
    db.session.commit()
    log.info("letter link renewed", extra={"receipt_id": receipt_id})
    return back_to(url_for("incidents.detail", incident_id=incident_id))


@bp.post("/links/visit-alerts/<int:alert_id>/renew")
@roles_required(Role.TEAM, Role.ADMIN)
def renew_alert(alert_id: int):
    """Give a visit alert's link a new nonce: the old link stops working."""
    alert = db.session.get(VisitAlert, alert_id) or abort(404)
    alert.nonce = new_visit_nonce()
    incident_id = alert.incident_id
    db.session.commit()
    log.info("visit link renewed", extra={"alert_id": alert_id})
    default = url_for("incidents.detail", incident_id=incident_id) if incident_id else url_for("incidents.index")
    return back_to(default)


@bp.post("/links/check-recipients/<int:recipient_id>/renew")
@roles_required(Role.TEAM, Role.ADMIN)
def renew_check_recipient(recipient_id: int):
    """Give a check recipient's link a new nonce: the old link stops working."""
    recipient = db.session.get(CheckRecipient, recipient_id) or abort(404)
    recipient.nonce = new_check_nonce()
    db.session.commit()
    log.info("check link renewed", extra={"recipient_id": recipient_id})
    return back_to("/")
