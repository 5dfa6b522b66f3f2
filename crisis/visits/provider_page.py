"""The provider's visit list: by the signed link in the alert (``/v/<token>``, no login) or, for
staff of a provider with an account (role provider, ``User.provider_id``), at ``/visits/mine``.

Made for a phone at night: large tap targets, high contrast, no scripts. The page lists ALL the
open visits of THAT provider (not only the alert's), the earliest due first, in local time; "Vi
tar dessa" (acknowledge, with a name) and a form that marks many visits at once done (with the
time, now by default) or not done (with a reason; "other" needs a comment). The provider's
recently closed visits (marked in the last 24 hours) are listed below, then the routine's advice
and whom to contact.

Isolation: the token names one :class:`~crisis.visits.models.VisitAlert`, and everything the
page shows or changes is selected by that alert's ``provider_id`` (a logged-in user's
``provider_id``); a visit id of another provider in a post is refused like an unknown one.
A forged, altered or replaced link gets a 404 page; an expired one 410 (:func:`visit_link_expired`).
Opening the page records nothing (mail scanners open links).
Posts carry the session's CSRF token; a stale form gets a page that leads back.

A successful post answers 303 to the page (post, redirect, get): ``?klart=kvitterat`` or
``?klart=markerat`` shows the thanks, so a reload only reads the page again and never resends.
The name typed when marking is kept in the visitor's session (not in the address, which is
logged) to fill in the next marking; a post with errors answers 400 with the form as it was.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from accounts.access import public, roles_required
from accounts.roles import Role
from contacts.models import Provider
from core import audit, link_pages
from core.clock import current_clock
from core.extensions import db
from core.local_time import LocalTimeError, form_instant
from core.numbers import record_id
from core.signed_links import KEPT_IN_LOG
from crisis.incidents.letters import LOCAL_MEASURES, InvalidLink
from crisis.oncall.responsible import contact_details
from crisis.visits.models import NOT_DONE_REASONS, Visit, VisitAlert, VisitStatus
from crisis.visits.service import VisitError, acknowledge, alert_for_token, mark_visits, open_visits

log = logging.getLogger(__name__)
bp = Blueprint("visit_page", __name__)

RECENT = timedelta(hours=24)
# ?klart=... after a successful post: which thanks the page shows.
DONE = {"kvitterat": "acknowledged", "markerat": "marked"}
NAME_KEY = "visit_page_name"
RECENT_LIMIT = 100

# The text of each error code of crisis.visits (shown on the page, in the visitor's language).
ERROR_TEXTS = {
    "visits_none": _l("Välj minst ett besök."),
    "visits_unknown": _l("Ett av besöken finns inte i er lista."),
    "visits_closed": _l("Ett av besöken är redan markerat. Ladda om sidan."),
    "done_at_missing": _l("Skriv när besöket gjordes, som datum och klockslag."),
    "done_at_future": _l("Tiden för besöket kan inte vara i framtiden."),
    "done_at_early": _l("Tiden är mer än ett dygn före besökets planerade tid."),
    "reason_missing": _l("Välj varför besöket inte gjordes."),
    "comment_missing": _l("Beskriv varför besöket inte gjordes."),
    "outcome_missing": _l("Välj om besöken är gjorda eller inte gjorda."),
    "comment_long": _l("Kommentaren får vara högst 500 tecken."),
    "name_missing": _l("Skriv ditt namn."),
    "name_long": _l("Namnet får vara högst 200 tecken."),
    "call_outcome_missing": _l("Välj hur samtalet gick."),
    "note_long": _l("Anteckningen får vara högst 250 tecken."),
}


VISIT_LINK_DAYS = 7


def visit_link_expired(db_session: Session, alert, now: datetime) -> bool:
    """True when no visit of the alert is open and the latest was due over VISIT_LINK_DAYS ago."""
    ids = list(alert.visit_ids or [])
    if not ids:
        return now > alert.created_at + timedelta(days=VISIT_LINK_DAYS)
    visits = list(db_session.scalars(select(Visit).where(Visit.id.in_(ids))))
    if not visits or any(visit.status == VisitStatus.OPEN.value for visit in visits):
        return False
    return now > max(visit.due_at for visit in visits) + timedelta(days=VISIT_LINK_DAYS)


def error_texts(errors: dict[str, str]) -> dict[str, object]:
    return {field: ERROR_TEXTS.get(code, code) for field, code in errors.items()}


def _tz():
    return current_app.extensions["krisrutin.routine"].timezone


def _invalid(reason: str):
    log.info("visit link refused", extra={"reason": reason})
    link_pages.note_refused(reason)
    if reason == "expired":
        return link_pages.expired_page()
    return render_template("visits/visit_invalid.html", reason=reason), 404


@bp.errorhandler(CSRFError)
def _csrf_failed(error):
    token = (request.view_args or {}).get("token", "")
    back = url_for("visit_page.page", token=token) if token else url_for("visit_page.mine")
    return render_template("visits/visit_expired.html", back=back), 400


def recent_visits(provider_id: int, now: datetime) -> list[Visit]:
    return list(
        db.session.scalars(
            select(Visit)
            .options(selectinload(Visit.client))
            .where(
                Visit.provider_id == provider_id,
                Visit.status != VisitStatus.OPEN.value,
                Visit.marked_at >= now - RECENT,
            )
            .order_by(Visit.marked_at.desc(), Visit.id.desc())
            .limit(RECENT_LIMIT)
        )
    )


def _last_acknowledgement(provider_id: int) -> VisitAlert | None:
    return db.session.scalars(
        select(VisitAlert)
        .where(VisitAlert.provider_id == provider_id, VisitAlert.acknowledged_at.is_not(None))
        .order_by(VisitAlert.acknowledged_at.desc(), VisitAlert.id.desc())
        .limit(1)
    ).first()


def _page(
    provider_id: int,
    *,
    ack_action: str,
    mark_action: str,
    ask_name: bool,
    errors=None,
    values=None,
    thanks: str | None = None,
    status: int = 200,
):
    now = current_clock().now()
    visits = open_visits(db.session, provider_id)
    overdue_after = timedelta(minutes=current_app.extensions["krisrutin.routine"].crisis.visit_overdue_minutes)
    waiting = [visit for visit in visits if visit.acknowledged_at is None]
    default_values = {
        "name": "",
        "visits": [],
        "outcome": "",
        "done_at": now.astimezone(_tz()).strftime("%Y-%m-%dT%H:%M"),
        "reason": "",
        "comment": "",
    }
    return render_template(
        "visits/visit_page.html",
        provider=db.session.get(Provider, provider_id),
        visits=visits,
        waiting=waiting,
        late={visit.id for visit in visits if visit.due_at <= now},
        overdue={visit.id for visit in visits if visit.due_at + overdue_after <= now},
        recent=recent_visits(provider_id, now),
        last_ack=_last_acknowledgement(provider_id),
        measures=list(LOCAL_MEASURES),
        contact=contact_details(db.session, now),
        reasons=NOT_DONE_REASONS,
        ack_action=ack_action,
        mark_action=mark_action,
        ask_name=ask_name,
        errors=error_texts(errors or {}),
        values={**default_values, **(values or {})},
        thanks=thanks,
    ), status


def _name(text: str) -> str:
    return " ".join((text or "").split())


def _thanks_from_query() -> dict:
    """The page's thanks after a post (``?klart=``) and the name kept for the next marking."""
    return {"thanks": DONE.get(request.args.get("klart", "")), "values": {"name": session.get(NAME_KEY, "")}}


def _acknowledge(provider_id: int, name: str | None, render, done):
    """The post of "Vi tar dessa"; ``done(word)`` is the page's address after it."""
    if name is None:  # the link: a name is asked for
        name = _name(request.form.get("name", ""))
        if not name:
            return render(errors={"ack_name": "name_missing"}, values={"ack_name": name}, status=400)
        if len(name) > 200:
            return render(errors={"ack_name": "name_long"}, values={"ack_name": name}, status=400)
    alerts = acknowledge(db.session, provider_id, name=name, now=current_clock().now())
    db.session.commit()
    log.info("visits acknowledged", extra={"provider_id": provider_id, "alerts": len(alerts)})
    return redirect(done("kvitterat"), 303)


def _mark(provider_id: int, by: str | None, render, done):
    """The post of the marking form: many visits at once, all or nothing."""
    form = request.form
    raw_ids = form.getlist("visit")
    values = {
        "name": _name(form.get("name", "")),
        "visits": raw_ids,
        "outcome": form.get("outcome", ""),
        "done_at": form.get("done_at", "").strip(),
        "reason": form.get("reason", ""),
        "comment": form.get("comment", "").strip(),
    }
    errors: dict[str, str] = {}
    ids = [record_id(value) for value in raw_ids]
    if None in ids:
        ids, errors["visits"] = [], "visits_unknown"
    done_at = None
    if values["outcome"] == VisitStatus.DONE.value:
        try:
            done_at = form_instant(form, "done_at", _tz())
        except LocalTimeError as error:  # the page's own words for a malformed time
            errors["done_at"] = "done_at_missing" if error.kind == "format" else error.message
    now = current_clock().now()
    try:
        marked = mark_visits(
            db.session,
            provider_id,
            ids,
            outcome=values["outcome"],
            done_at=done_at,
            reason=values["reason"] or None,
            comment=values["comment"],
            by=by if by is not None else values["name"],
            now=now,
        )
    except VisitError as error:
        db.session.rollback()
        return render(errors={**error.errors, **errors}, values=values, status=400)
    if errors:
        db.session.rollback()
        return render(errors=errors, values=values, status=400)
    db.session.commit()
    log.info("visits marked", extra={"provider_id": provider_id, "visits": len(marked), "status": values["outcome"]})
    if by is None:
        session[NAME_KEY] = values["name"]
    return redirect(done("markerat"), 303)


# --- the signed link ------------------------------------------------------------------------------


def _alert_or_none(token: str):
    try:
        alert = alert_for_token(db.session, token, secret=current_app.config["SECRET_KEY"])
    except InvalidLink as error:
        return error
    if visit_link_expired(db.session, alert, current_clock().now()):
        return InvalidLink("expired")
    return alert


def _link_renderer(alert: VisitAlert, token: str):
    def render(**kwargs):
        return _page(
            alert.provider_id,
            ack_action=url_for("visit_page.page", token=token),
            mark_action=url_for("visit_page.mark", token=token),
            ask_name=True,
            **kwargs,
        )

    return render


def _link_done(token: str):
    return lambda word: url_for("visit_page.page", token=token, klart=word)


def _mine_done(word: str) -> str:
    return url_for("visit_page.mine", klart=word)


@bp.route("/v/<token>", methods=["GET", "POST"])
@public
@audit.secret_in_path("token", keep=KEPT_IN_LOG)
@audit.audited_view("visit")
def page(token: str):
    """The provider's visit list; a post acknowledges ("Vi tar dessa")."""
    alert = _alert_or_none(token)
    if isinstance(alert, InvalidLink):
        return _invalid(alert.reason)
    audit.viewed("visit", actor_kind="link", actor_id=f"visit_alert:{alert.id}", provider_id=alert.provider_id)
    render = _link_renderer(alert, token)
    if request.method == "GET":
        return render(**_thanks_from_query())
    return _acknowledge(alert.provider_id, None, render, _link_done(token))


@bp.post("/v/<token>/mark")
@public
@audit.secret_in_path("token", keep=KEPT_IN_LOG)
def mark(token: str):
    """Mark the chosen visits done or not done."""
    alert = _alert_or_none(token)
    if isinstance(alert, InvalidLink):
        return _invalid(alert.reason)
    audit.as_link(f"visit_alert:{alert.id}")
    return _mark(alert.provider_id, None, _link_renderer(alert, token), _link_done(token))


# --- after login (staff of a provider) --------------------------------------------------------------


def _own_provider_id() -> int:
    provider_id = g.user.provider_id
    if provider_id is None:
        abort(403, description=_l("Ditt konto hör inte till någon utförare."))
    return provider_id


def _user_label() -> str:
    return f"{g.user.display_name} (user:{g.user.id})"[:200]


def _mine_renderer(provider_id: int):
    def render(**kwargs):
        return _page(
            provider_id,
            ack_action=url_for("visit_page.mine"),
            mark_action=url_for("visit_page.mine_mark"),
            ask_name=False,
            **kwargs,
        )

    return render


@bp.route("/visits/mine", methods=["GET", "POST"])
@roles_required(Role.PROVIDER)
@audit.audited_view("visit")
def mine():
    """The same list for a logged-in provider user: its own provider's visits only."""
    provider_id = _own_provider_id()
    audit.viewed("visit", provider_id=provider_id)
    render = _mine_renderer(provider_id)
    if request.method == "GET":
        return render(**_thanks_from_query())
    return _acknowledge(provider_id, _user_label(), render, _mine_done)


@bp.post("/visits/mine/mark")
@roles_required(Role.PROVIDER)
def mine_mark():
    provider_id = _own_provider_id()
    return _mark(provider_id, _user_label(), _mine_renderer(provider_id), _mine_done)
