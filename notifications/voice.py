"""Phone calls: what a call says, what a key press does, and what the call's statuses record.

A call is a message on the ``call`` channel (:func:`notifications.service.send` with
``channels=(Channel.CALL,)``): its ``body_text`` is the spoken text, rendered from the Swedish
``<kind>.call.txt`` (plain text, no links). The dispatcher places it through Twilio's Calls API
(:mod:`notifications.channels.twilio_call`) with the TwiML :func:`call_twiml` builds:

- ``<Gather numDigits="1">`` around ``<Say language="sv-SE">`` the text and "Tryck 1 för att
  kvittera."; the key goes to ``/webhooks/twilio/call-gather?message=<id>``;
- no key within :data:`GATHER_TIMEOUT` seconds: the text said once more, in a second gather;
- still no key: "Ingen knapp trycktes. Larmet är inte kvitterat." and the call hangs up.

notifications knows no domain: what a key means is for the domain that owns the message's
``ref_type`` to say. It registers, in its ``init_app``:

``register_keypress_handler(app, ref_type, fn)``
    ``fn(db_session, message, digits, now) -> str | None`` is called once per key press on a call
    whose message has ``ref_type``, inside the webhook's transaction (committed after it returns;
    an exception rolls everything back and Twilio hears an apology). Its answer is said in Swedish
    and the call hangs up; ``None`` means the key means nothing: "Okänt val." and the gather is
    repeated once (a second unknown key, or no handler at all, ends the call with a goodbye).
``register_call_status_handler(app, ref_type, fn)``
    ``fn(db_session, message, status, now) -> None`` for each status callback of such a call
    (Twilio's CallStatus: queued, initiated, ringing, in-progress, completed, busy, no-answer,
    failed, canceled), after the message's own state is updated, in the same transaction. A
    repeated callback (same message, same status) is recorded once and not handed on again.

Each (hook, ref_type) has one owner: registering another function raises ``ValueError`` (the
same function again is harmless), as in :mod:`notifications.recipients`.

The message's own state follows the call (decided here; the delivery states are the outbox's):
``completed`` (answered, by a person or a voicemail) -> ``delivered``; ``busy`` and
``no-answer`` -> ``undelivered``; ``failed`` and ``canceled`` -> ``failed``; the steps on the
way (queued, initiated, ringing, in-progress) change no state. Every status is kept as an event
``call-<status>`` on the message; a key press as the event ``call-key``. States move forward
only, as for SMS: a late "ringing" never takes an answered call back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from notifications.models import Channel, Message, MessageEvent, MessageStatus

log = logging.getLogger(__name__)

LANGUAGE = "sv-SE"  # every call speaks Swedish (Twilio's sv-SE voice)
GATHER_TIMEOUT = 8  # seconds to wait for a key after the text was said
PROMPT = "Tryck 1 för att kvittera."
NO_KEY = "Ingen knapp trycktes. Larmet är inte kvitterat. Hej då."
UNKNOWN_KEY = "Okänt val."
GOODBYE = "Hej då."
APOLOGY = "Något gick fel. Kvittera i stället med sms eller på webben. Hej då."

GATHER_PATH = "/webhooks/twilio/call-gather"
CALL_STATUS_PATH = "/webhooks/twilio/call-status"

# Twilio's CallStatus values -> the message's state (None: a step on the way, no state change).
CALL_STATUSES: dict[str, MessageStatus | None] = {
    "queued": None,
    "initiated": None,
    "ringing": None,
    "in-progress": None,
    "completed": MessageStatus.DELIVERED,
    "busy": MessageStatus.UNDELIVERED,
    "no-answer": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
EVENT_PREFIX = "call-"
KEY_EVENT = "call-key"

KeypressHandler = Callable[[Session, Message, str, datetime], "str | None"]
CallStatusHandler = Callable[[Session, Message, str, datetime], None]
HANDLERS_EXTENSION = "krisrutin.voice_handlers"


# --- what a call says -------------------------------------------------------------------------


def gather_url(base_url: str, message_id: int, *, again: bool = False) -> str:
    return f"{base_url}{GATHER_PATH}?message={message_id}" + ("&again=1" if again else "")


def status_callback_url(base_url: str, message_id: int) -> str:
    return f"{base_url}{CALL_STATUS_PATH}?message={message_id}"


def _gather(response: VoiceResponse, text: str, action: str) -> None:
    gather = response.gather(num_digits=1, action=action, method="POST", timeout=GATHER_TIMEOUT)
    gather.say(f"{text} {PROMPT}", language=LANGUAGE)


def call_twiml(text: str, action: str, *, times: int = 2, before: str | None = None) -> str:
    """The TwiML of a call saying ``text`` and asking for a key ``times`` times (key to ``action``),
    then saying that no key was pressed and hanging up. ``before`` is said first (e.g. "Okänt val.")."""
    response = VoiceResponse()
    if before:
        response.say(before, language=LANGUAGE)
    for _ in range(times):
        _gather(response, text, action)
    response.say(NO_KEY, language=LANGUAGE)
    response.hangup()
    return str(response)


def say_and_hang_up(text: str | None) -> str:
    """TwiML saying ``text`` (if any) and hanging up."""
    response = VoiceResponse()
    if text:
        response.say(text, language=LANGUAGE)
    response.hangup()
    return str(response)


# --- the hooks the domains fill -----------------------------------------------------------------


@dataclass(frozen=True)
class VoiceHandlers:
    keypress: dict[str, KeypressHandler] = field(default_factory=dict)
    call_status: dict[str, CallStatusHandler] = field(default_factory=dict)


def _register(app: Flask, hook: str, ref_type: str, fn) -> None:
    if not ref_type or not callable(fn):
        raise ValueError(f"{hook} handler: a ref_type and a function are needed")
    handlers = app.extensions.get(HANDLERS_EXTENSION, VoiceHandlers())
    table = getattr(handlers, hook)
    existing = table.get(ref_type)
    if existing is fn:
        return
    if existing is not None:
        raise ValueError(f"the {hook} handler for {ref_type!r} is already registered: {_named(existing)}")
    app.extensions[HANDLERS_EXTENSION] = replace(handlers, **{hook: {**table, ref_type: fn}})


def _named(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def register_keypress_handler(app: Flask, ref_type: str, fn: KeypressHandler) -> None:
    """``fn(db_session, message, digits, now) -> str | None`` for keys pressed on calls of ``ref_type``."""
    _register(app, "keypress", ref_type, fn)


def register_call_status_handler(app: Flask, ref_type: str, fn: CallStatusHandler) -> None:
    """``fn(db_session, message, status, now) -> None`` for the status callbacks of calls of ``ref_type``."""
    _register(app, "call_status", ref_type, fn)


def registered_handlers(app: Flask | None = None) -> VoiceHandlers:
    return (app or current_app).extensions.get(HANDLERS_EXTENSION, VoiceHandlers())


# --- what the webhooks do -----------------------------------------------------------------------


def find_call(db_session: Session, message_id: int | None) -> Message | None:
    """The call message with this id, or None (no such message, or not a call)."""
    if message_id is None:
        return None
    message = db_session.get(Message, message_id)
    return message if message is not None and message.channel == Channel.CALL.value else None


def _seen(db_session: Session, message_id: int, event: str) -> bool:
    found = db_session.scalar(
        select(MessageEvent.id).where(MessageEvent.message_id == message_id, MessageEvent.status == event).limit(1)
    )
    return found is not None


def record_call_status(
    *, db_session: Session, message: Message, call_sid: str, status: str, error_code: str | None, now: datetime
) -> bool:
    """Record Twilio's ``status`` of the call ``message`` (see the module docstring) and hand it to
    the ref type's status handler; does not commit. False for a repeated callback (nothing done)."""
    from notifications.service import add_event, record_delivery_status

    event = f"{EVENT_PREFIX}{status}"
    if _seen(db_session, message.id, event):
        return False
    add_event(db_session, message.id, event, now, detail=f"code {error_code}" if error_code else None)
    if CALL_STATUSES[status] is not None:
        record_delivery_status(
            db_session=db_session,
            gateway_id=call_sid,
            status=status,
            error_code=error_code,
            now=now,
            message_id=message.id,
            statuses=CALL_STATUSES,
        )
    db_session.refresh(message)
    handler = registered_handlers().call_status.get(message.ref_type or "")
    if handler is not None:
        # The call's own record stands whatever the domain does with it: a failing handler is
        # rolled back alone (and logged), so Twilio gets its 204 and does not retry for nothing.
        try:
            with db_session.begin_nested():
                handler(db_session, message, status, now)
        except Exception as error:
            log.error(
                "a call status handler failed",
                extra={"message_id": message.id, "status": status, "error": type(error).__name__},
            )
    return True


def answer_keypress(*, db_session: Session, message: Message, digits: str, again: bool, now: datetime) -> str:
    """The TwiML answer to ``digits`` pressed on the call ``message``; does not commit."""
    from notifications.service import add_event

    add_event(db_session, message.id, KEY_EVENT, now, detail=f"key {digits}")
    handler = registered_handlers().keypress.get(message.ref_type or "")
    spoken = handler(db_session, message, digits, now) if handler is not None else None
    if spoken:
        return say_and_hang_up(spoken)
    if again or handler is None:
        return say_and_hang_up(f"{UNKNOWN_KEY} {GOODBYE}")
    settings = current_app.extensions["krisrutin.settings"]
    action = gather_url(settings.public_base_url, message.id, again=True)
    return call_twiml(message.body_text, action, times=1, before=UNKNOWN_KEY)
