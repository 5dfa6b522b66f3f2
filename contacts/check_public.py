"""The personal link pages of the monthly check (``/k/<token>``): no login, made for a phone.

``GET /k/<token>`` shows what the register holds for the contact and asks "Stämmer
uppgifterna?". Opening it only records that it was opened (mail scanners open links); the
answer is a form post: "Ja" posts to the same address, "Nej" opens ``/k/<token>/korrigera``,
whose submission records "no" and queues the correction for the team (see
:mod:`contacts.check_review`). A link that cannot be used gets a page saying why, with status
404 (forged, altered, replaced, unknown) or 410 (the month's check has closed).

An answer that was saved answers 303 to ``GET /k/<token>?svar=sparat`` (post, redirect, get),
which shows the thanks for the answer the register holds: a reload reads, never resends.

These posts have no staff session, yet they are CSRF-protected like every session post
(:func:`accounts.access.enforce_access`): the form carries the token kept in the visitor's
session cookie, which the GET of the link sets (SameSite=Lax allows the same-site post that
follows, also in a phone's browser opened from an SMS). A missing or stale token gets a page
in the visitor's language that leads back to the link.

The token never leaves the site: no third-party resources, ``Referrer-Policy: same-origin``,
``noindex`` for search engines, and errors are logged by route, not path.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from accounts.access import public
from contacts import check_review
from contacts.check_links import CheckClosed, InvalidLink, recipient_for_token, record_answer, record_opened
from contacts.check_models import CheckCorrection, CheckRecipient
from contacts.models import SERVICES
from contacts.register import SERVICE_LABELS, RegisterError
from core import audit, link_pages
from core.clock import current_clock
from core.contact_now import team_contact
from core.extensions import db
from core.signed_links import KEPT_IN_LOG

log = logging.getLogger(__name__)
bp = Blueprint("check_public", __name__)


def _recipient(token: str) -> CheckRecipient:
    """The link's recipient; from here on the request acts for the link, and what the page shows
    of the contact is recorded as viewed through it (the audit log)."""
    recipient = recipient_for_token(
        db.session, token, secret=current_app.config["SECRET_KEY"], now=current_clock().now()
    )
    audit.viewed("check_recipient", recipient.id, actor_kind="link", actor_id=f"check_recipient:{recipient.id}")
    return recipient


def _team_contact():
    """The team's mailbox and phone (``TEAM_EMAIL``, ``TEAM_MOBILE``): whom to ask to change details."""
    return team_contact()


def _invalid(reason: str):
    status = 410 if reason == "closed" else 404
    log.info("check link refused", extra={"reason": reason})
    link_pages.note_refused(reason)  # the shared brute-force count of all link kinds
    return render_template("contacts/check/invalid_link.html", reason=reason, team=_team_contact()), status


@bp.errorhandler(CSRFError)
def _csrf_failed(error):
    token = (request.view_args or {}).get("token", "")
    return render_template("contacts/check/expired_form.html", token=token), 400


def _latest_correction(recipient: CheckRecipient, *, status: str | None = None) -> list[CheckCorrection]:
    query = db.session.query(CheckCorrection).filter(CheckCorrection.recipient_id == recipient.id)
    if status is not None:
        query = query.filter(CheckCorrection.status == status)
    return query.order_by(CheckCorrection.id).all()


def _page_context(recipient: CheckRecipient, token: str) -> dict:
    return {
        "recipient": recipient,
        "contact": recipient.contact,
        "provider": recipient.provider,
        "check": recipient.check,
        "token": token,
        "service_labels": SERVICE_LABELS,
        "services": SERVICES,
        "corrections": _latest_correction(recipient),
    }


@bp.route("/k/<token>", methods=["GET", "POST"])
@public
@audit.secret_in_path("token", keep=KEPT_IN_LOG)
@audit.audited_view("check_recipient")
def link(token: str):
    """The contact's details and the question; a post of ``answer=yes`` confirms them."""
    try:
        recipient = _recipient(token)
    except InvalidLink as error:
        return _invalid(error.reason)
    now = current_clock().now()
    if request.method == "POST":
        if request.form.get("answer") != "yes":
            return render_template("contacts/check/link.html", **_page_context(recipient, token), bad_answer=True), 400
        try:
            record_answer(db.session, recipient, "yes", via="link", now=now)
        except CheckClosed:
            db.session.rollback()
            return _invalid("closed")
        record_opened(recipient, now)
        db.session.commit()
        log.info("check answered", extra={"recipient_id": recipient.id, "answer": "yes", "via": "link"})
        return _answered(token)
    record_opened(recipient, now)
    db.session.commit()
    if request.args.get("svar") == "sparat" and recipient.answer is not None:
        return render_template("contacts/check/thanks.html", **_page_context(recipient, token), answer=recipient.answer)
    return render_template("contacts/check/link.html", **_page_context(recipient, token))


def _answered(token: str):
    """After a saved answer: the thanks, by GET (a reload does not post again)."""
    return redirect(url_for("check_public.link", token=token, svar="sparat"), 303)


def _form_values(recipient: CheckRecipient) -> dict:
    """The form's starting values: the register's, with a pending correction's proposals on top."""
    values = check_review.current_values(recipient.contact)
    values["comment"] = ""
    for correction in _latest_correction(recipient, status="pending"):
        if correction.kind == "correction":
            values.update(correction.proposed)
            values["comment"] = correction.comment
        else:
            values.update({check_review.NEW_PREFIX + name: value for name, value in correction.proposed.items()})
    return values


def _submitted_values() -> dict:
    form = request.form
    values = {name: form.get(name, "") for name in ("name", "role_title", "mobile", "email", "comment")}
    values["services"] = form.getlist("services")
    for name in ("name", "role_title", "mobile", "email"):
        values[check_review.NEW_PREFIX + name] = form.get(check_review.NEW_PREFIX + name, "")
    values[check_review.NEW_PREFIX + "services"] = form.getlist(check_review.NEW_PREFIX + "services")
    return values


@bp.route("/k/<token>/korrigera", methods=["GET", "POST"])
@public
@audit.secret_in_path("token", keep=KEPT_IN_LOG)
@audit.audited_view("check_recipient")
def correct(token: str):
    """The "Nej" form: each field editable, a comment, and optionally a new contact person."""
    try:
        recipient = _recipient(token)
    except InvalidLink as error:
        return _invalid(error.reason)
    now = current_clock().now()
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _submitted_values()
        try:
            check_review.submit_correction(db.session, recipient, values, via="link", now=now)
        except RegisterError as error:
            db.session.rollback()
            errors = error.errors
        except CheckClosed:
            db.session.rollback()
            return _invalid("closed")
        else:
            record_opened(recipient, now)
            db.session.commit()
            log.info("check answered", extra={"recipient_id": recipient.id, "answer": "no", "via": "link"})
            return _answered(token)
        recipient = _recipient(token)  # reloaded after the rollback
    else:
        record_opened(recipient, now)
        db.session.commit()
        values = _form_values(recipient)
    return render_template(
        "contacts/check/correct.html", **_page_context(recipient, token), values=values, errors=errors
    ), (400 if errors else 200)
