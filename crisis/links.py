"""Signed links of every kind: expiry, renewal by the team and brute-force protection (issue 7).

Three kinds of personal link exist, each signed with its own HMAC purpose key, so a token of
one kind never verifies as another: the monthly check (``/k/``, :mod:`contacts.check_links`),
the letter receipt (``/d/``, :mod:`crisis.letters`) and the visit alert (``/v/``,
:mod:`crisis.visits`).

Expiry (decided in the database at every request, the clock is an input):

* check links close with their month's check (the next month's check opens), status 410;
* letter links work until :data:`LETTER_LINK_DAYS` days after the incident was resolved;
* visit links work while any visit of the alert is open, and until :data:`VISIT_LINK_DAYS`
  days after the latest due time of the alert's visits once none is open.

An expired letter or visit link gets :func:`expired_page` (status 410, whom to contact).

Renewal: team and admin can give a receipt, an alert or a check recipient a new nonce
(POST ``/links/<kind>/<id>/renew``); the old link then answers "replaced" (404).

Brute force: every refused link (malformed, forged, unknown, replaced) is stored as a row of
:class:`LinkFailure` with the client address and the time. More than :data:`FAILURE_LIMIT`
within :data:`FAILURE_WINDOW` from one address, and every link page of every kind answers 429
to that address (valid links too) until the count falls below. Rows older than the window are
pruned as new failures come in.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from sqlalchemy import String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from accounts.access import roles_required
from accounts.roles import Role
from core.clock import current_clock
from core.extensions import db
from core.types import UTCDateTime

log = logging.getLogger(__name__)
bp = Blueprint("links", __name__)

LETTER_LINK_DAYS = 30
VISIT_LINK_DAYS = 7
FAILURE_LIMIT = 30
FAILURE_WINDOW = timedelta(minutes=10)
COUNTED_REASONS = frozenset({"malformed", "forged", "unknown", "replaced"})
# The endpoints of the link pages (no login) that the limit covers.
LINK_BLUEPRINTS = frozenset({"check_public", "provider_page"})
LINK_ENDPOINTS = frozenset({"visit_page.page", "visit_page.mark"})


class LinkFailure(db.Model):
    """One refused link request: the client address and when (no token, no path)."""

    __tablename__ = "link_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


# --- expiry ------------------------------------------------------------------------------------------


def letter_link_expired(db_session: Session, receipt, now: datetime) -> bool:
    """True once the receipt's incident was resolved more than LETTER_LINK_DAYS days ago."""
    from crisis.models import Incident

    incident = db_session.get(Incident, receipt.letter.incident_id)
    resolved = incident.resolved_at if incident is not None else None
    return resolved is not None and now > resolved + timedelta(days=LETTER_LINK_DAYS)


def visit_link_expired(db_session: Session, alert, now: datetime) -> bool:
    """True when no visit of the alert is open and the latest was due over VISIT_LINK_DAYS ago."""
    from crisis.visit_models import Visit, VisitStatus

    ids = list(alert.visit_ids or [])
    if not ids:
        return now > alert.created_at + timedelta(days=VISIT_LINK_DAYS)
    visits = list(db_session.scalars(select(Visit).where(Visit.id.in_(ids))))
    if not visits or any(visit.status == VisitStatus.OPEN.value for visit in visits):
        return False
    return now > max(visit.due_at for visit in visits) + timedelta(days=VISIT_LINK_DAYS)


def _contact():
    settings = current_app.extensions["krisrutin.settings"]
    return {"team_email": getattr(settings, "team_email", None), "team_mobile": getattr(settings, "team_mobile", None)}


def expired_page():
    """The page of a link that has expired (410), saying whom to contact."""
    log.info("link expired")
    return render_template("links/expired.html", **_contact()), 410


# --- brute force -------------------------------------------------------------------------------------


def client_ip() -> str:
    return (request.remote_addr or "unknown")[:64]


def note_refused(reason: str) -> None:
    """Count a refused link from this client (only reasons a guesser produces); commits."""
    if reason not in COUNTED_REASONS:
        return
    now = current_clock().now()
    db.session.execute(delete(LinkFailure).where(LinkFailure.at < now - FAILURE_WINDOW))
    db.session.add(LinkFailure(ip=client_ip(), at=now))
    db.session.commit()


def failures(db_session: Session, ip: str, now: datetime) -> int:
    return db_session.scalar(
        select(func.count()).select_from(LinkFailure).where(LinkFailure.ip == ip, LinkFailure.at > now - FAILURE_WINDOW)
    )


def _is_link_page() -> bool:
    return request.blueprint in LINK_BLUEPRINTS or request.endpoint in LINK_ENDPOINTS


@bp.before_app_request
def _limit_link_pages():
    if not _is_link_page():
        return None
    if failures(db.session, client_ip(), current_clock().now()) >= FAILURE_LIMIT:
        log.warning("link pages limited for a client")
        return render_template("links/limited.html", **_contact()), 429, {"Retry-After": "600"}
    return None


# --- renewal by the team -----------------------------------------------------------------------------


def _back(default: str):
    target = request.form.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target, code=303)
    return redirect(default, code=303)


@bp.post("/links/letter-receipts/<int:receipt_id>/renew")
@roles_required(Role.TEAM, Role.ADMIN)
def renew_receipt(receipt_id: int):
    """Give one provider's letter link a new nonce: the old link stops working."""
    from crisis.letters import new_nonce
    from crisis.models import LetterReceipt

    receipt = db.session.get(LetterReceipt, receipt_id) or abort(404)
    receipt.nonce = new_nonce()
    incident_id = receipt.letter.incident_id
    db.session.commit()
    log.info("letter link renewed", extra={"receipt_id": receipt_id})
    return _back(url_for("incidents.detail", incident_id=incident_id))


@bp.post("/links/visit-alerts/<int:alert_id>/renew")
@roles_required(Role.TEAM, Role.ADMIN)
def renew_alert(alert_id: int):
    """Give a visit alert's link a new nonce: the old link stops working."""
    from crisis.visit_models import VisitAlert
    from crisis.visits import new_nonce

    alert = db.session.get(VisitAlert, alert_id) or abort(404)
    alert.nonce = new_nonce()
    incident_id = alert.incident_id
    db.session.commit()
    log.info("visit link renewed", extra={"alert_id": alert_id})
    default = url_for("incidents.detail", incident_id=incident_id) if incident_id else url_for("incidents.index")
    return _back(default)


@bp.post("/links/check-recipients/<int:recipient_id>/renew")
@roles_required(Role.TEAM, Role.ADMIN)
def renew_check_recipient(recipient_id: int):
    """Give a check recipient's link a new nonce: the old link stops working."""
    from contacts.check_links import new_nonce
    from contacts.check_models import CheckRecipient

    recipient = db.session.get(CheckRecipient, recipient_id) or abort(404)
    recipient.nonce = new_nonce()
    db.session.commit()
    log.info("check link renewed", extra={"recipient_id": recipient_id})
    return _back("/")
