"""Supplier notices over the JSON API: ``/api/v1/notices`` (described in :mod:`crisis.incidents.openapi`).

Decisions (the issue left them open):
- Who may: suppliers' API users, the alarm centre, the team, the on-call officer and admins post
  notices and read them; a supplier's user reads only its own supplier's notices (others answer
  404) and its notices are always for its own supplier: naming another is refused with 403.
  Giving a new expected end or saying the disruption is fixed (PATCH) is for the supplier and
  staff, not the alarm centre.
- ``Idempotency-Key`` (at most 200 characters): the same key from the same user again answers
  200 with the notice already made, not a second incident.
- Errors have the shape of the rest of the API: ``{"error": ..., "fields": {field: message}}``.
  400: the body is not a JSON object or names unknown fields; 422: the values are refused
  (Swedish messages, for the person who typed them).
- ``resolved_by_supplier`` does not close the incident: the handling party does that with a
  resolution letter; the step is on the timeline (``note``) for them to see.
- ``letter`` (staff only: the team, the on-call officer, admins): ``{"subject", "body",
  "apply_local_routines"}`` sends the first information letter at once, in the same transaction
  as the notice — the on-call officer's "notice and letter in one step" at 02:10. The handling
  party taking it (the caller) counts as its acknowledgement. A supplier or the alarm centre
  sending ``letter`` gets 403; a refused letter refuses the whole request (422, nothing saved).
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request, url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from accounts.access import roles_required
from accounts.roles import Role
from contacts.api_input import MAX_ID, ApiError, json_object
from core.clock import current_clock
from core.extensions import db
from crisis.incidents import intake, timeline
from crisis.incidents.email_ingest import ingest_email
from crisis.incidents.models import Incident, LetterKind, Notice, NoticeSource, Supplier

bp = Blueprint("notice_api", __name__, url_prefix="/api/v1")

SENDERS = (Role.SUPPLIER, Role.ALARM_OPERATOR, Role.TEAM, Role.ON_CALL, Role.ADMIN)
UPDATERS = (Role.SUPPLIER, Role.TEAM, Role.ON_CALL, Role.ADMIN)
NOTICE_FIELDS = (
    "title",
    "body",
    "service",
    "supplier",
    "supplier_id",
    "planned",
    "starts_at",
    "expected_end",
    "providers",
    "letter",
    "area",
)
LETTER_SENDERS = (Role.TEAM, Role.ON_CALL, Role.ADMIN)
LETTER_FIELDS = ("subject", "body", "apply_local_routines")
PATCH_FIELDS = ("expected_end", "resolved_by_supplier", "comment", "area")
KEY_MAX = 200


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    db.session.rollback()
    body = {"error": error.message}
    if error.fields:
        body["fields"] = error.fields
    response = jsonify(body)
    response.status_code = error.status
    return response


def _own_supplier() -> Supplier | None:
    """The supplier a supplier's user acts for; None for other roles."""
    if g.user.role_enum is not Role.SUPPLIER:
        return None
    supplier = db.session.scalar(select(Supplier).where(Supplier.user_id == g.user.id))
    if supplier is None or not supplier.is_active:
        raise ApiError(403, "your account is not linked to an active supplier")
    return supplier


def _get_notice(notice_id: int) -> Notice:
    own = _own_supplier()
    notice = db.session.get(Notice, notice_id) if notice_id <= MAX_ID else None
    if notice is None or (own is not None and notice.supplier_id != own.id):
        raise ApiError(404, f"no notice with id {notice_id}")
    return notice


def _instant(value):
    return value.isoformat() if value is not None else None


def notice_json(notice: Notice) -> dict:
    incident: Incident = notice.incident
    providers = "all" if incident.all_providers else intake.chosen_providers(db.session, incident)
    return {
        "id": notice.id,
        "incident_id": incident.id,
        "source": notice.source,
        "title": notice.subject,
        "body": notice.body,
        "supplier_id": notice.supplier_id,
        "supplier": incident.supplier.name if incident.supplier else None,
        "service": incident.service,
        "planned": incident.planned,
        "starts_at": _instant(incident.starts_at),
        "expected_end": _instant(incident.expected_end_at),
        "providers": providers,
        "area": incident.area,
        "received_at": _instant(notice.received_at),
        "status": incident.status,
        "party": incident.party,
        "flag_reason": incident.flag_reason,
        "estimate_requested": intake.estimate_requested(incident),
    }


def _answer(notice: Notice, created: bool):
    db.session.refresh(notice.incident)  # its steps, as committed
    response = jsonify(notice_json(notice))
    response.status_code = 201 if created else 200
    if created:
        response.headers["Location"] = url_for("notice_api.get_notice", notice_id=notice.id)
    return response


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > KEY_MAX or not key.isprintable():
        raise ApiError(
            400,
            f"Idempotency-Key: expected 1-{KEY_MAX} printable characters",
            {"Idempotency-Key": f"expected 1-{KEY_MAX} printable characters"},
        )
    # Per user: two clients choosing the same key do not meet.
    return f"api:{g.user.id}:{key}"


def _commit_or_existing(external_id: str | None) -> Notice | None:
    """Commit; when another request with the same key won the race, its notice (else 409)."""
    try:
        db.session.commit()
        return None
    except IntegrityError:
        db.session.rollback()
        existing = intake.find_by_external_id(db.session, external_id) if external_id else None
        if existing is None:
            raise ApiError(409, "a change made at the same time conflicted with this one; try again") from None
        return existing


@bp.post("/notices")
@roles_required(*SENDERS)
def create_notice():
    """A supplier notice: a new incident, routed to the party handling it now."""
    own = _own_supplier()
    original = request.get_data(as_text=True)  # kept as received (json_object reads the cached body)
    data = json_object()
    unknown = sorted(set(data) - set(NOTICE_FIELDS))
    if unknown:
        raise ApiError(
            400,
            "the body does not match the documented schema",
            {name: "unknown field (fields: " + ", ".join(NOTICE_FIELDS) + ")" for name in unknown},
        )
    if own is not None:
        named = data.get("supplier_id")
        name = data.get("supplier")
        if (named not in (None, "") and named != own.id) or (
            isinstance(name, str) and name.strip() and name.strip().casefold() != own.name.casefold()
        ):
            raise ApiError(403, "a supplier's token sends notices for its own supplier only", {"supplier": "not yours"})
    letter = _letter_request(data.pop("letter", None))
    external_id = _idempotency_key()
    try:
        notice, created = intake.create_notice(
            db.session,
            data,
            source=NoticeSource.API,
            now=current_clock().now(),
            actor_id=g.user.id,
            supplier=own,
            original=original,
            original_type="application/json",
            external_id=external_id,
        )
    except intake.NoticeError as error:
        raise ApiError(422, "the notice was refused: see fields", error.errors) from None
    letter_id = _send_first_letter(notice.incident, letter) if letter is not None and created else None
    existing = _commit_or_existing(external_id)
    if existing is not None:
        return _answer(existing, False)
    from crisis.incidents.letter_jobs import queue_remaining_after

    return queue_remaining_after(_answer(notice, created), letter_id)  # a big letter's rest


def _letter_request(value) -> dict | None:
    """The optional immediate letter of a notice, checked for shape (its texts by send_letter)."""
    if value is None:
        return None
    if g.user.role not in LETTER_SENDERS:
        raise ApiError(403, "only the team and the on-call officer send letters", {"letter": "not allowed"})
    if not isinstance(value, dict):
        raise ApiError(400, "the body does not match the documented schema", {"letter": "expected an object"})
    unknown = sorted(set(value) - set(LETTER_FIELDS))
    if unknown:
        raise ApiError(
            400,
            "the body does not match the documented schema",
            {f"letter.{name}": "unknown field (fields: " + ", ".join(LETTER_FIELDS) + ")" for name in unknown},
        )
    for name in ("subject", "body"):
        if not isinstance(value.get(name), str):
            raise ApiError(422, "the letter was refused: see fields", {f"letter.{name}": "expected text"})
    routines = value.get("apply_local_routines", True)
    if not isinstance(routines, bool):
        raise ApiError(
            422, "the letter was refused: see fields", {"letter.apply_local_routines": "expected true or false"}
        )
    return {"subject": value["subject"], "body": value["body"], "apply_local_routines": routines}


def _send_first_letter(incident: Incident, letter: dict) -> int:
    """The caller handles the incident now: it is acknowledged by them and the letter goes out."""
    from crisis.incidents.letters import LetterError, send_staff_letter

    try:
        sent = send_staff_letter(
            db.session,
            incident,
            user=g.user,
            kind=LetterKind.FIRST,
            subject=letter["subject"],
            body=letter["body"],
            apply_local_routines=letter["apply_local_routines"],
            party=incident.party,
            now=current_clock().now(),
        )
    except LetterError as error:
        raise ApiError(422, "the letter was refused: see fields", {f"letter.{error.field}": error.message}) from None
    return sent.id


@bp.post("/notices/email")
@roles_required(*SENDERS)
def create_notice_from_email():
    """A forwarded e-mail (the raw RFC 822 message) as a notice."""
    own = _own_supplier()
    if request.mimetype != "message/rfc822":
        raise ApiError(400, "send the raw e-mail with the header Content-Type: message/rfc822")
    try:
        notice, created = ingest_email(
            db.session, request.get_data(cache=False), now=current_clock().now(), actor_id=g.user.id, supplier=own
        )
    except intake.NoticeError as error:
        raise ApiError(422, "the message was refused: see fields", error.errors) from None
    existing = _commit_or_existing(notice.external_id if created else None)
    if existing is not None:
        return _answer(existing, False)
    return _answer(notice, created)


@bp.get("/notices/<int:notice_id>")
@roles_required(*SENDERS)
def get_notice(notice_id: int):
    """A notice and where its incident stands."""
    return jsonify(notice_json(_get_notice(notice_id)))


@bp.patch("/notices/<int:notice_id>")
@roles_required(*UPDATERS)
def update_notice(notice_id: int):
    """A new expected end, or word from the supplier that the disruption is fixed."""
    notice = _get_notice(notice_id)
    data = json_object()
    problems = {
        name: "unknown field (fields: " + ", ".join(PATCH_FIELDS) + ")" for name in data if name not in PATCH_FIELDS
    }
    if "resolved_by_supplier" in data and not isinstance(data["resolved_by_supplier"], bool):
        problems["resolved_by_supplier"] = "expected true or false"
    if "comment" in data and not (isinstance(data["comment"], str) and len(data["comment"]) <= 2000):
        problems["comment"] = "expected a string of at most 2000 characters"
    if "expected_end" in data and not isinstance(data["expected_end"], str):
        problems["expected_end"] = "expected an ISO 8601 instant with an offset"
    if "area" in data and data["area"] is not None and not isinstance(data["area"], str):
        problems["area"] = "expected a string or null"
    if not problems and not ({"expected_end", "resolved_by_supplier", "comment", "area"} & set(data)):
        problems["expected_end"] = "send expected_end, resolved_by_supplier, comment or area"
    if problems:
        raise ApiError(400, "the body does not match the documented schema", problems)
    incident = notice.incident
    if not incident.is_open:
        raise ApiError(409, "the incident is closed; send a new notice if the disruption is back")
    now = current_clock().now()
    comment = " ".join((data.get("comment") or "").split())
    try:
        if "area" in data:
            intake.set_area(db.session, incident, data["area"], now=now, actor_id=g.user.id)
        if "expected_end" in data:
            intake.set_expected_end(db.session, incident, data["expected_end"], now=now, actor_id=g.user.id)
    except intake.NoticeError as error:
        raise ApiError(422, "the change was refused: see fields", error.errors) from None
    if data.get("resolved_by_supplier") is True:
        text = "Leverantören meddelar att störningen är åtgärdad" + (f": {comment}" if comment else "")
        timeline.record(
            db.session,
            incident.id,
            "note",
            now,
            actor_id=g.user.id,
            party=incident.party,
            text=text,
            resolved_by_supplier=True,
            notice_id=notice.id,
        )
    elif comment:
        timeline.record(
            db.session,
            incident.id,
            "note",
            now,
            actor_id=g.user.id,
            party=incident.party,
            text=comment,
            notice_id=notice.id,
        )
    incident.updated_at = now
    if g.user.role == Role.SUPPLIER.value and ("expected_end" in data or data.get("resolved_by_supplier") is True):
        _tell_handler(incident, data, comment, now)
    db.session.commit()
    return _answer(notice, False)


def _tell_handler(incident: Incident, data: dict, comment: str, now) -> None:
    """The supplier gave a new expected end or says it is fixed: the handling party hears it at
    once (each PATCH is its own alert)."""
    from core.local_time import local_text
    from crisis.incidents.routing import notify_handler
    from crisis.oncall.models import Alert

    earlier = db.session.scalar(
        select(func.count())
        .select_from(Alert)
        .where(Alert.incident_id == incident.id, Alert.reason.like("supplier_update:%"), Alert.step == 0)
    )
    notify_handler(
        db.session,
        incident,
        reason=f"supplier_update:{earlier + 1}",
        kind="crisis.supplier_update",
        context={
            "supplier": incident.supplier.name if incident.supplier else "Leverantören",
            "expected_end": local_text(incident.expected_end_at) if "expected_end" in data else None,
            "resolved": data.get("resolved_by_supplier") is True,
            "comment": comment,
        },
        now=now,
    )
