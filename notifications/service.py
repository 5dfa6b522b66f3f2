"""The outbox: queue messages in the caller's transaction, cancel them, and read who received what.

Other domains call :func:`send` inside the transaction of the business change that causes the
message (a letter published, a check started); dispatchers (``notifications.dispatcher``) send
what is queued. Nothing here commits: the message exists exactly when the caller's change does.
The dispatchers are woken when (and only if) the caller's transaction commits
(:mod:`notifications.wakeup`).

No message is queued whose subject, text, HTML, SMS text or address holds a character the text
boundary refuses (:func:`core.text.unsendable`: NUL and the other control characters, lone
surrogates, the bidirectional overrides; in a subject or address also tabs and line breaks):
:class:`UnsendableText` is raised instead, whatever path the text came by, so none reaches SMTP
or Twilio. It is a programming error, not the user's: text is cleaned where it enters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from core.database import dialect_insert
from core.text import unsendable
from core.types import UTCDateTime
from notifications import recipients, rendering
from notifications.models import Channel, ChannelState, Message, MessageEvent, MessageStatus, Priority
from notifications.recipients import Recipient
from notifications.segments import count_segments
from notifications.wakeup import wake_on_commit

log = logging.getLogger(__name__)

# Twilio posts delivery statuses here (notifications/webhooks.py); ``message`` is our id, so that
# a callback that arrives before the dispatcher has stored Twilio's id still finds its message.
STATUS_CALLBACK_PATH = "/webhooks/twilio/status"
# A due message waiting longer than this means the channel is not keeping up (or no dispatcher runs).
STALE_QUEUE_AFTER = timedelta(minutes=10)

_MESSAGES = Message.__table__
_EVENTS = MessageEvent.__table__


# --- queueing ---------------------------------------------------------------------------------


class UnsendableText(ValueError):
    """A rendered message holds a character no message may carry (see the module docstring)."""


def _refuse_unsendable(kind: str, channel: Channel, address: str, content: dict) -> None:
    parts = (("subject", False), ("body_text", True), ("body_html", True))
    problems = [(part, unsendable(content.get(part), lines=lines)) for part, lines in parts]
    problems.append(("address", unsendable(address, lines=False)))
    for part, code in problems:
        if code is not None:
            raise UnsendableText(
                f"the {channel.value} message {kind!r} holds {code} in its {part}: "
                "text must be cleaned where it enters (core.text)"
            )


def send(
    *,
    db_session: Session,
    kind: str,
    context: dict,
    channels: Iterable[Channel | str],
    priority: Priority | int,
    idempotency_key: str,
    now: datetime,
    contact: Recipient | None = None,
    to_email: str | None = None,
    to_mobile: str | None = None,
    language: str = "sv",
    ref: tuple[str, object] | None = None,
) -> list[Message]:
    """Queue the message ``kind`` rendered with ``context``, once per channel; does not commit.

    One :class:`Message` per channel, keyed ``f"{idempotency_key}:{channel}"``: asking again
    with the same key returns the existing messages unchanged (whatever their state), also when
    another transaction creates them concurrently. ``contact`` is any
    :class:`~notifications.recipients.Recipient`: its ``id`` is stored as the recipient key and
    its addresses are used unless ``to_email``/``to_mobile`` are given. A channel without an
    address is left out (logged as a count), so the result may hold fewer messages than channels.
    ``ref`` is ``(ref_type, ref_id)``, e.g. ``("letter", 12)``, for :func:`deliveries`.
    """
    wanted = list(dict.fromkeys(Channel(channel) for channel in channels))
    if not wanted:
        raise ValueError("send needs at least one channel")
    if not idempotency_key or len(idempotency_key) > 240:
        raise ValueError("idempotency_key must be 1 to 240 characters")
    mobile = to_mobile or (contact.mobile if contact is not None else None)
    addresses = {
        Channel.EMAIL: to_email or (contact.email if contact is not None else None),
        Channel.SMS: mobile,
        Channel.CALL: mobile,
    }
    if contact is not None and contact.id is None:
        db_session.flush()
    ref_type, ref_id = (ref[0], str(ref[1])) if ref is not None else (None, None)

    rendered = None
    messages: list[Message] = []
    created: list[str] = []
    skipped = 0
    for channel in wanted:
        address = addresses[channel]
        if not address:
            skipped += 1
            continue
        key = f"{idempotency_key}:{channel.value}"
        existing = _by_key(db_session, key)
        if existing is not None:
            messages.append(existing)
            continue
        if channel is Channel.CALL:
            content = _call_content(kind, context, address)
        else:
            if rendered is None:
                rendered = rendering.render(kind, language, context)
            content = {"language": rendered.language}
            if channel is Channel.EMAIL:
                if rendered.subject is None:
                    raise ValueError(f"the message {kind!r} has no e-mail")
                content.update(subject=rendered.subject, body_text=rendered.text, body_html=rendered.html)
            else:
                if not rendered.sms:
                    raise ValueError(f"the message {kind!r} has no SMS text")
                content.update(subject=None, body_text=rendered.sms, segments=count_segments(rendered.sms).segments)
        _refuse_unsendable(kind, channel, address, content)
        statement = (
            dialect_insert(db_session, _MESSAGES)
            .values(
                idempotency_key=key,
                kind=kind,
                channel=channel.value,
                priority=int(priority),
                contact_id=contact.id if contact is not None else None,
                to_address=address,
                ref_type=ref_type,
                ref_id=ref_id,
                status=MessageStatus.QUEUED.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
                **content,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(_MESSAGES.c.id)  # a row only when inserted
        )
        message_id = db_session.execute(statement).scalar()
        if message_id is not None:
            add_event(db_session, message_id, MessageStatus.QUEUED.value, now, detail=f"priority {int(priority)}")
            created.append(channel.value)
        messages.append(_by_key(db_session, key))
    if created:
        wake_on_commit(db_session, created)
    if skipped:
        log.info(
            "message left out on channels without an address",
            extra={"kind": kind, "contact_id": contact.id if contact is not None else None, "channels": skipped},
        )
    return messages


_E164 = re.compile(r"\+[1-9]\d{6,14}")


def _call_content(kind: str, context: dict, address: str) -> dict:
    """A call's row content: the Swedish ``<kind>.call.txt`` (a call speaks Swedish whatever the
    recipient's language, see notifications.voice). The number may be any E.164 number, mobile or
    landline: a call, unlike an SMS, reaches a landline."""
    if not _E164.fullmatch(address):
        raise ValueError(f"the call {kind!r} needs a phone number in E.164 form (+46701234567)")
    spoken = rendering.render(kind, rendering.DEFAULT_LANGUAGE, context).call
    if not spoken:
        raise ValueError(f"the message {kind!r} has no call text ({kind}.call.txt)")
    return {"subject": None, "body_text": spoken, "language": rendering.DEFAULT_LANGUAGE}


def cancel(
    *,
    db_session: Session,
    now: datetime,
    idempotency_key: str | None = None,
    ref: tuple[str, object] | None = None,
    reason: str = "cancelled",
) -> int:
    """Cancel the still-queued messages of one :func:`send` call (its ``idempotency_key``) or of a
    reference; returns how many. Messages already being sent or sent are not touched. Does not
    commit. ``reason`` goes into the event (no personal data)."""
    if (idempotency_key is None) == (ref is None):
        raise ValueError("cancel needs exactly one of idempotency_key and ref")
    if idempotency_key is not None:
        which = _MESSAGES.c.idempotency_key.in_([f"{idempotency_key}:{channel.value}" for channel in Channel])
    else:
        which = (_MESSAGES.c.ref_type == ref[0]) & (_MESSAGES.c.ref_id == str(ref[1]))
    cancelled = db_session.execute(
        update(_MESSAGES)
        .where(which, _MESSAGES.c.status == MessageStatus.QUEUED.value)
        .values(status=MessageStatus.CANCELLED.value, updated_at=now, failed_at=now)
        .returning(_MESSAGES.c.id)
    ).scalars()
    ids = list(cancelled)
    for message_id in ids:
        add_event(db_session, message_id, MessageStatus.CANCELLED.value, now, detail=reason[:500])
    return len(ids)


# --- what happened ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One message of a letter or check, for the team's "who has received what" view.

    ``contact_id`` is the recipient key; ``contact_name`` and ``organisation`` are what the
    recipients' ``describe`` hook says of it (None without a hook or a key).
    """

    message_id: int
    contact_id: int | None
    contact_name: str | None
    channel: str
    kind: str
    to_address: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    last_error: str | None
    organisation: str | None = None


def deliveries(*, db_session: Session, ref_type: str, ref_id: object) -> list[Delivery]:
    """Every message sent for ``(ref_type, ref_id)``, by recipient name (unnamed last) and channel."""
    messages = db_session.scalars(
        select(Message).where(Message.ref_type == ref_type, Message.ref_id == str(ref_id)).order_by(Message.id)
    ).all()
    names = recipients.describe(db_session=db_session, keys={message.contact_id for message in messages})
    found = [
        Delivery(
            message_id=message.id,
            contact_id=message.contact_id,
            contact_name=names[message.contact_id].name if message.contact_id in names else None,
            channel=message.channel,
            kind=message.kind,
            to_address=message.to_address,
            status=message.status,
            attempts=message.attempts,
            created_at=message.created_at,
            sent_at=message.sent_at,
            delivered_at=message.delivered_at,
            failed_at=message.failed_at,
            last_error=message.last_error,
            organisation=names[message.contact_id].organisation if message.contact_id in names else None,
        )
        for message in messages
    ]
    return sorted(found, key=lambda d: (d.contact_name is None, d.contact_name or "", d.channel, d.message_id))


def get_message(*, db_session: Session, message_id: int) -> Message | None:
    return db_session.get(Message, message_id)


# --- delivery statuses from the gateway -------------------------------------------------------

# Twilio's MessageStatus values -> ours. None: nothing to record (the gateway's own queueing).
_GATEWAY_STATUSES: dict[str, MessageStatus | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.UNDELIVERED,
    "failed": MessageStatus.FAILED,
    "canceled": MessageStatus.FAILED,
}
# The states a callback may move a message from: forward only, so callbacks that arrive out of
# order (Twilio does not promise order) never take a message back. "delivered" wins over
# everything: it is the fact the team needs. "queued" is allowed because a message whose send
# reached Twilio just before a dispatcher crashed is queued again; its callback settles it.
_FORWARD_FROM: dict[MessageStatus, tuple[MessageStatus, ...]] = {
    MessageStatus.SENT: (MessageStatus.SENDING,),
    MessageStatus.DELIVERED: (
        MessageStatus.QUEUED,
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
    ),
    MessageStatus.UNDELIVERED: (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.SENT),
    MessageStatus.FAILED: (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.SENT),
}
# Twilio error codes that say the number itself cannot receive SMS: the address is marked failing.
UNREACHABLE_NUMBER_CODES = {
    "21211": "invalid number",
    "21614": "not a mobile number",
    "30005": "unknown or inactive number",
    "30006": "landline or unreachable carrier",
}


def record_delivery_status(
    *,
    db_session: Session,
    gateway_id: str,
    status: str,
    error_code: str | int | None = None,
    now: datetime,
    message_id: int | None = None,
    statuses: Mapping[str, MessageStatus | None] | None = None,
) -> Message | None:
    """Record a gateway's delivery status (Twilio's MessageStatus) for the message it names; the
    caller commits. Returns the message, or None when no message has that id. ``statuses`` maps
    the gateway's values to ours (default: an SMS's; a call's are in notifications.voice).

    ``message_id`` (from the callback URL's ``message`` parameter) finds the message also when
    the callback comes before the dispatcher has stored ``gateway_id``. Statuses only move
    forward; a repeated or late status is ignored. An undelivered or failed SMS whose error code
    says the number cannot be reached is marked failing through the recipients' ``mark_failing``
    hook (:mod:`notifications.recipients`; nothing is marked without one).
    """
    ours = (statuses if statuses is not None else _GATEWAY_STATUSES).get(status.strip().lower())
    code = str(error_code).strip() if error_code not in (None, "") else None
    where = _MESSAGES.c.id == message_id if message_id is not None else _MESSAGES.c.gateway_id == gateway_id
    if ours is not None:
        values: dict = {"status": ours.value, "updated_at": now}
        if ours is MessageStatus.SENT:
            values.update(sent_at=func.coalesce(_MESSAGES.c.sent_at, literal(now, UTCDateTime())))
        elif ours is MessageStatus.DELIVERED:
            values.update(delivered_at=now)
        else:
            values.update(failed_at=now, last_error=f"gateway reported {status}" + (f" (code {code})" if code else ""))
        if message_id is not None:
            values["gateway_id"] = func.coalesce(_MESSAGES.c.gateway_id, gateway_id)
        moved = db_session.execute(
            update(_MESSAGES)
            .where(where, _MESSAGES.c.status.in_([s.value for s in _FORWARD_FROM[ours]]))
            .values(**values)
            .returning(_MESSAGES.c.id, _MESSAGES.c.channel, _MESSAGES.c.contact_id, _MESSAGES.c.to_address)
        ).first()
        if moved is not None:
            detail = f"gateway status {status}" + (f", code {code}" if code else "")
            add_event(db_session, moved.id, ours.value, now, detail=detail)
            log.info(
                "delivery status recorded",
                extra={"message_id": moved.id, "status": ours.value, "error_code": code},
            )
            # A call reaches landlines too: only an invalid number marks a called number failing.
            unreachable = code in UNREACHABLE_NUMBER_CODES and (moved.channel == Channel.SMS.value or code == "21211")
            if ours in (MessageStatus.UNDELIVERED, MessageStatus.FAILED) and unreachable:
                recipients.mark_failing(
                    db_session=db_session,
                    key=moved.contact_id,
                    channel=moved.channel,
                    address=moved.to_address,
                    reason=f"{'SMS' if moved.channel == Channel.SMS.value else 'call'} undelivered: "
                    f"{UNREACHABLE_NUMBER_CODES[code]} (Twilio {code})",
                    now=now,
                )
    return db_session.scalars(select(Message).where(where).execution_options(populate_existing=True)).first()


# --- health and status ------------------------------------------------------------------------


def oldest_due(*, db_session: Session, now: datetime) -> dict[str, datetime]:
    """Per channel, since when its oldest due queued message has been waiting."""
    rows = db_session.execute(
        select(_MESSAGES.c.channel, func.min(_MESSAGES.c.next_attempt_at))
        .where(_MESSAGES.c.status == MessageStatus.QUEUED.value, _MESSAGES.c.next_attempt_at <= now)
        .group_by(_MESSAGES.c.channel)
    ).all()
    return dict(rows)


def stale_channels(*, db_session: Session, now: datetime) -> dict[str, datetime]:
    """Channels whose oldest due message has waited more than :data:`STALE_QUEUE_AFTER`: the
    gateway cannot keep up, or no dispatcher is running. For the banner beside ``degraded_since``."""
    return {
        channel: since
        for channel, since in oldest_due(db_session=db_session, now=now).items()
        if now - since > STALE_QUEUE_AFTER
    }


def status_summary(*, db_session: Session, now: datetime) -> dict:
    """Counts by channel and status, the oldest due message per channel, and the channel states."""
    counts: dict[str, dict[str, int]] = {c.value: {s.value: 0 for s in MessageStatus} for c in Channel}
    for channel, status, count in db_session.execute(
        select(_MESSAGES.c.channel, _MESSAGES.c.status, func.count()).group_by(_MESSAGES.c.channel, _MESSAGES.c.status)
    ):
        counts[channel][status] = count
    waiting = oldest_due(db_session=db_session, now=now)
    states = db_session.scalars(select(ChannelState).order_by(ChannelState.channel)).all()
    summary = {
        "at": now.isoformat(),
        "messages": counts,
        "oldest_due_age_seconds": {
            channel: round((now - since).total_seconds(), 1) for channel, since in sorted(waiting.items())
        },
        "channels": [
            {
                "channel": state.channel,
                "gateway": state.gateway,
                "consecutive_failures": state.consecutive_failures,
                "degraded_since": _iso(state.degraded_since),
                "last_success_at": _iso(state.last_success_at),
                "last_failure_at": _iso(state.last_failure_at),
                "last_error": state.last_error,
            }
            for state in states
        ],
    }
    db_session.rollback()
    return summary


# --- shared with the dispatcher ---------------------------------------------------------------


_ADD_EVENT = insert(_EVENTS)


def add_event(db_session: Session, message_id: int, status: str, at: datetime, *, detail: str | None = None) -> None:
    """Append a step to a message's history (no personal data in ``detail``)."""
    db_session.execute(_ADD_EVENT, {"message_id": message_id, "at": at, "status": status, "detail": detail})


def _by_key(db_session: Session, key: str) -> Message | None:
    query = select(Message).where(Message.idempotency_key == key).execution_options(populate_existing=True)
    return db_session.scalars(query).first()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
