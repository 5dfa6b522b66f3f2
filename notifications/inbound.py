"""Inbound SMS: stored once, matched to its sender, handed to the domain that asked for it.

Whose message it is, the recipients' ``find_sender`` hook says (:mod:`notifications.recipients`;
the register registers it: the one active contact person with the number). A domain registers a
handler, e.g. the monthly check for "JA"/"NEJ"::

    @inbound_handler("contacts.check_answer")
    def check_answer(db_session, inbound, contact, now) -> str | None:
        ...  # return a reply text if this handler took the message, else None

``contact`` is the :class:`~notifications.recipients.Recipient` the hook found. Handlers run in
registration order inside the webhook's transaction; the first that returns a reply (``""``
means "handled, no reply") takes the message and is recorded in ``handled_by``.

A second kind of handler is asked **before** the sender lookup, for senders who are no contact
persons (staff answering an alert: their numbers are on their accounts, not in the register)::

    @inbound_handler("crisis.oncall.sms_acknowledge", before_sender=True)
    def acknowledge(db_session, inbound, now) -> str | None:
        ...  # a reply if this handler took the message, else None (it goes on to the lookup)

It gets no contact (it knows its own senders), and the same rules: registration order, the first
reply takes the message, a failing handler leaves the message unhandled and unanswered. A message
a before-sender handler takes is never matched to a contact person.

What happens to a message no handler takes — decided here, so that the product behaves the same
everywhere:

- **Unknown sender** (the hook finds nobody: in the register no active contact person has the
  number, or several do, so we cannot tell whose answer it is; or no hook is registered): stored
  for the team, no handler, **no reply**. Auto-replies to unknown numbers answer other machines
  (short codes, operators' notices, other auto-responders) and can loop, cost money for every
  spam message, and confirm to a sender that the number is live. (A before-sender handler sees the
  message first and may answer a number it recognises a request from, with its own limit against
  loops: e.g. a help text to a "1" at most once a day per number.)
- **Known sender, nothing took it** (e.g. "vi har fått ny enhetschef"): stored for the team, and
  the sender gets one short reply saying that the number is not read by people and where to
  turn instead — they would otherwise believe that someone read it. At most one such reply per
  number in :data:`UNMONITORED_REPLY_INTERVAL`, so that a phone's own auto-reply ("I'm on
  holiday") cannot start a loop with ours.
- **Twilio retries** (same MessageSid): the message is stored and handled once; the retry gets
  no reply, so nobody receives a reply twice.
- **Odd characters** are never a reason to drop a message: the sender cannot be told. The text
  and the number are stored, shown and handed to the handlers cleaned by :func:`core.text.scrub`
  (NFC; control characters, NUL and the bidirectional overrides removed, a lone surrogate
  replaced by U+FFFD), so no handler and no page meets them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import error_location
from core.text import scrub
from notifications import recipients
from notifications.models import InboundSms
from notifications.recipients import Recipient

log = logging.getLogger(__name__)

InboundHandler = Callable[[Session, InboundSms, Recipient, datetime], "str | None"]
BeforeSenderHandler = Callable[[Session, InboundSms, datetime], "str | None"]

# Sent as an SMS to a known sender, in Swedish (the register keeps no language per contact).
# One SMS: at most 160 GSM-7 characters (tests/notifications/test_inbound_sms.py checks).
UNMONITORED_REPLY = (
    "Det här numret läses inte av någon. Kontakta välfärdsteknikteamet via funktionsbrevlådan "
    "eller Lindesk. Akut: se senaste informationsbrevet."
)
UNMONITORED_REPLY_INTERVAL = timedelta(hours=24)
MAX_FROM_LENGTH = 32  # InboundSms.from_address


class InboundRegistry:
    """Named inbound-SMS handlers, asked in the order they were registered: those asked before
    the sender lookup (``before_sender=True``), then those that get the contact."""

    def __init__(self) -> None:
        self._handlers: dict[str, InboundHandler] = {}
        self._before: dict[str, BeforeSenderHandler] = {}

    def register(self, name: str, handler, *, before_sender: bool = False):
        if (name in self._handlers and self._handlers[name] is not handler) or (
            name in self._before and self._before[name] is not handler
        ):
            raise ValueError(f"an inbound SMS handler named {name!r} is already registered")
        (self._before if before_sender else self._handlers)[name] = handler
        return handler

    def unregister(self, name: str) -> None:
        self._handlers.pop(name, None)
        self._before.pop(name, None)

    def handler(self, name: str, *, before_sender: bool = False):
        """Decorator form of :meth:`register`."""

        def decorate(handler):
            return self.register(name, handler, before_sender=before_sender)

        return decorate

    def names(self) -> list[str]:
        return list(self._before) + list(self._handlers)

    def items(self) -> list[tuple[str, InboundHandler]]:
        return list(self._handlers.items())

    def before_sender_items(self) -> list[tuple[str, BeforeSenderHandler]]:
        return list(self._before.items())


registry = InboundRegistry()


def inbound_handler(name: str, *, before_sender: bool = False):
    """Register ``fn(db_session, inbound, contact, now) -> str | None`` with the default registry;
    with ``before_sender``, ``fn(db_session, inbound, now) -> str | None``, asked first."""
    return registry.handler(name, before_sender=before_sender)


@dataclass(frozen=True)
class InboundResult:
    inbound: InboundSms | None  # None only for a retry whose row another request is writing
    duplicate: bool
    reply: str | None  # the text to answer with, if any


def receive_sms(
    *,
    db_session: Session,
    gateway_id: str,
    from_address: str,
    body: str,
    now: datetime,
    handlers: InboundRegistry | None = None,
) -> InboundResult:
    """Store an inbound SMS once and let the first willing handler take it; the caller commits.

    Call it first in a fresh transaction: a concurrent retry that stored the same MessageSid
    first makes it roll the session back.
    """
    existing = _by_gateway_id(db_session, gateway_id)
    if existing is not None:
        return InboundResult(inbound=existing, duplicate=True, reply=None)
    number = scrub(from_address, lines=False)[:MAX_FROM_LENGTH]
    body = scrub(body)
    handlers = handlers or registry
    inbound = InboundSms(gateway_id=gateway_id, from_address=number, body=body, received_at=now, contact_id=None)
    db_session.add(inbound)
    try:
        # The first write of the transaction: on PostgreSQL a concurrent retry waits here on the
        # unique MessageSid until this request commits, then fails and answers as a duplicate.
        db_session.flush()
    except IntegrityError:
        db_session.rollback()
        return InboundResult(inbound=_by_gateway_id(db_session, gateway_id), duplicate=True, reply=None)
    first = _dispatch(db_session, inbound, handlers.before_sender_items(), now)
    if first is _FAILED:
        return InboundResult(inbound=inbound, duplicate=False, reply=None)
    if first is not None:
        return InboundResult(inbound=inbound, duplicate=False, reply=first or None)
    contact = recipients.find_sender(db_session=db_session, number=number)
    if contact is None:
        log.info("inbound SMS from an unknown number stored", extra={"inbound_sms_id": inbound.id})
        return InboundResult(inbound=inbound, duplicate=False, reply=None)
    inbound.contact_id = contact.id
    outcome = _dispatch(db_session, inbound, handlers.items(), now, contact)
    if outcome is _FAILED:
        return InboundResult(inbound=inbound, duplicate=False, reply=None)
    if outcome is None:
        log.info("inbound SMS from a contact stored, no handler took it", extra={"inbound_sms_id": inbound.id})
        if _may_send_unmonitored_reply(db_session, inbound, now):
            outcome = UNMONITORED_REPLY
    return InboundResult(inbound=inbound, duplicate=False, reply=outcome or None)


def _by_gateway_id(db_session: Session, gateway_id: str) -> InboundSms | None:
    return db_session.scalar(select(InboundSms).where(InboundSms.gateway_id == gateway_id))


_FAILED = object()


def _dispatch(db_session, inbound, handlers, now, *contact):
    """The reply of the handler that took the message, None when none did, or _FAILED. ``contact``:
    the sender, for the handlers after the lookup (none for those before it)."""
    for name, handler in handlers:
        try:
            with db_session.begin_nested():  # a failing handler's writes are undone, the row stays
                reply = handler(db_session, inbound, *contact, now)
        except Exception as error:
            # Kept unhandled for the team, and no reply: "not read by anyone" would be wrong for
            # an answer its handler failed on, and a later handler must not take it either.
            # Only the class and place are logged: exception messages may hold personal data.
            log.error(
                "inbound SMS handler %s failed with %s at %s",
                name,
                type(error).__name__,
                error_location(error),
                extra={"inbound_sms_id": inbound.id},
            )
            return _FAILED
        if reply is not None:
            inbound.handled_by = name
            inbound.handled_at = now
            log.info("inbound SMS handled", extra={"inbound_sms_id": inbound.id, "handler": name})
            return reply
    return None


def _may_send_unmonitored_reply(db_session: Session, inbound: InboundSms, now: datetime) -> bool:
    """No earlier unhandled message from this number in the interval (it got the reply then)."""
    earlier = db_session.scalar(
        select(func.count())
        .select_from(InboundSms)
        .where(
            InboundSms.from_address == inbound.from_address,
            InboundSms.handled_by.is_(None),
            InboundSms.id != inbound.id,
            InboundSms.received_at > now - UNMONITORED_REPLY_INTERVAL,
        )
    )
    return earlier == 0
