"""Twilio's webhooks: delivery statuses of our SMS, SMS sent to our number, and our phone calls
(a key pressed, the call's statuses; what they do is notifications.voice's).

Twilio has no session and no CSRF token: it signs every request instead (``X-Twilio-Signature``,
an HMAC of the URL it called and the form fields with our Auth Token). The views are public and
exempt from CSRF, and :func:`twilio_signed` refuses anything not signed with our token for the
public URL — before any work or database access. Nothing from the request is logged but ids.
The signature covers the values as sent, so the views read the raw form (:func:`~core.text_input.raw_text`)
and clean each value they use (:func:`_field`: :func:`core.text.scrub`, since Twilio cannot be
told that a value was refused).
"""

from __future__ import annotations

import logging
from functools import wraps

from flask import Blueprint, Response, current_app, jsonify, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from accounts.access import exempt_from_csrf, public
from core.clock import current_clock
from core.extensions import db
from core.numbers import record_id
from core.text import scrub
from core.text_input import raw_text

log = logging.getLogger(__name__)
bp = Blueprint("twilio_webhooks", __name__)

SIGNATURE_HEADER = "X-Twilio-Signature"
SHARED_KEY_HEADER = "X-Twilio-Webhooks-Signature-Settings"  # set when Twilio signs with a SharedKey
MAX_SID_LENGTH = 200  # Message.gateway_id, InboundSms.gateway_id


def public_url() -> str:
    """The URL Twilio called: our public base URL (behind the proxy) with this path and query."""
    settings = current_app.extensions["krisrutin.settings"]
    path = request.full_path[:-1] if request.full_path.endswith("?") else request.full_path
    return settings.public_base_url + path


def _signature_problem() -> str | None:
    """Why the request cannot be trusted as Twilio's, or None when it can."""
    token = current_app.extensions["krisrutin.settings"].twilio_auth_token
    if not token:
        return "Twilio is not configured (TWILIO_AUTH_TOKEN)"
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return "the request is not signed"
    # The MultiDict, not a plain dict: a field sent twice must be covered by the signature twice.
    if RequestValidator(token).validate(public_url(), request.form, signature):
        return None
    if request.headers.get(SHARED_KEY_HEADER):
        return "signed with a webhook SharedKey; only Auth Token signatures are configured"
    return "the signature does not match (check PUBLIC_BASE_URL and TWILIO_AUTH_TOKEN)"


def twilio_signed(view):
    """Answer 403 unless Twilio signed this request with our Auth Token; nothing is recorded."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        problem = _signature_problem()
        if problem is not None:
            log.warning("refused a webhook request: %s", problem, extra={"route": request.url_rule.rule})
            response = jsonify(error="the request is not signed by Twilio for this service")
            response.status_code = 403
            return response
        return view(*args, **kwargs)

    return wrapper


def _bad_request(message: str):
    response = jsonify(error=message)
    response.status_code = 400
    return response


def _field(name: str, *, lines: bool = False) -> str:
    """A form value as sent, without the characters the service never stores."""
    return scrub(request.form.get(name, ""), lines=lines)


def _sid(field: str) -> str | None:
    value = _field(field)
    return value if value and len(value) <= MAX_SID_LENGTH else None


@bp.post("/webhooks/twilio/status")
@public
@exempt_from_csrf
@raw_text
@twilio_signed
def status_callback():
    """A delivery status of an SMS we sent (queued, sent, delivered, undelivered, failed, ...).

    204 also for a MessageSid we do not know (e.g. sent before a database restore): Twilio would
    otherwise retry it for nothing.
    """
    from notifications.service import record_delivery_status

    sid, status = _sid("MessageSid"), _field("MessageStatus")
    if sid is None or not status:
        return _bad_request("MessageSid and MessageStatus are required")
    message = record_delivery_status(
        db_session=db.session,
        gateway_id=sid,
        status=status,
        error_code=_field("ErrorCode") or None,
        now=current_clock().now(),
        # Our id in the callback URL we gave Twilio (covered by the signature): finds the message
        # also when the callback comes before the dispatcher stored Twilio's MessageSid.
        message_id=record_id(request.args.get("message")),
    )
    db.session.commit()
    if message is None:
        log.info("status callback for an unknown message", extra={"gateway_id": sid})
    return Response(status=204)


@bp.post("/webhooks/twilio/inbound")
@public
@exempt_from_csrf
@raw_text
@twilio_signed
def inbound_sms():
    """An SMS sent to our number: stored once, handed to the handlers (notifications.inbound),
    answered with TwiML — the handler's reply, or an empty response (see inbound.py for when)."""
    from notifications.inbound import receive_sms

    sid, sender = _sid("MessageSid"), _field("From")
    if sid is None or not sender:
        return _bad_request("MessageSid and From are required")
    result = receive_sms(
        db_session=db.session,
        gateway_id=sid,
        from_address=sender,
        body=request.form.get("Body", ""),  # cleaned by receive_sms
        now=current_clock().now(),
    )
    db.session.commit()
    twiml = MessagingResponse()
    if result.reply:
        twiml.message(result.reply)
    return _twiml(twiml.to_xml())


def _twiml(xml: str) -> Response:
    return Response(xml, status=200, content_type="text/xml; charset=utf-8")


_DIGITS = frozenset("0123456789*#")


@bp.post("/webhooks/twilio/call-gather")
@public
@exempt_from_csrf
@raw_text
@twilio_signed
def call_gather():
    """A key pressed during one of our calls (``Digits``): the message's ref type's keypress
    handler decides what it means, and its answer is said (notifications.voice). A message we do
    not know gets a goodbye, not an error: Twilio would otherwise say "an application error"."""
    from notifications import voice

    digits = _field("Digits")
    if digits and (len(digits) > 1 or digits not in _DIGITS):
        return _bad_request("Digits must be one key: 0-9, * or #")
    message = voice.find_call(db.session, record_id(request.args.get("message")))
    if message is None:
        log.info("key pressed on a call we do not know")
        return _twiml(voice.say_and_hang_up(voice.GOODBYE))
    if not digits:
        return _twiml(voice.say_and_hang_up(voice.GOODBYE))
    try:
        answer = voice.answer_keypress(
            db_session=db.session,
            message=message,
            digits=digits,
            again=request.args.get("again") == "1",
            now=current_clock().now(),
        )
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        log.error("a keypress handler failed", extra={"message_id": message.id, "error": type(error).__name__})
        return _twiml(voice.say_and_hang_up(voice.APOLOGY))
    log.info("key pressed on a call", extra={"message_id": message.id})
    return _twiml(answer)


@bp.post("/webhooks/twilio/call-status")
@public
@exempt_from_csrf
@raw_text
@twilio_signed
def call_status():
    """A status of one of our calls (``CallStatus``): recorded on its message and handed to the
    ref type's status handler (notifications.voice). 204 also for a call we do not know, and for a
    repeated status: Twilio would otherwise retry it for nothing."""
    from notifications import voice

    sid, status = _sid("CallSid"), _field("CallStatus").strip().lower()
    if sid is None or not status:
        return _bad_request("CallSid and CallStatus are required")
    if status not in voice.CALL_STATUSES:
        return _bad_request(f"unknown CallStatus; expected one of {', '.join(voice.CALL_STATUSES)}")
    message = voice.find_call(db.session, record_id(request.args.get("message")))
    if message is None:
        log.info("status callback for a call we do not know", extra={"gateway_id": sid})
        return Response(status=204)
    voice.record_call_status(
        db_session=db.session,
        message=message,
        call_sid=sid,
        status=status,
        error_code=_field("ErrorCode") or None,
        now=current_clock().now(),
    )
    db.session.commit()
    return Response(status=204)
