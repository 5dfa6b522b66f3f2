"""Test support for the outbox and dispatcher tests: an in-memory recording channel, factories
for contacts and queued messages, and a poll helper. Test code only."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy import select

from contacts.models import ContactPerson, Provider
from core.extensions import db
from notifications.channels import ChannelSetup
from notifications.channels.base import OutgoingCall, OutgoingEmail, OutgoingSms
from notifications.models import Message, MessageEvent, Priority
from notifications.service import send

_EMAIL_ID = re.compile(r"<krisrutin-(\d+)@")
_SMS_ID = re.compile(r"[?&]message=(\d+)")


class Recorder:
    """What the recording channel 'sent', and failures to raise, per channel ("email", "sms", "call").

    ``script[channel]`` is a list of exceptions (or None for a success) used up one per send;
    ``always[channel]`` is raised on every send once the script is used up; ``delay[channel]``
    seconds are slept before each send (real time, for the threaded tests).
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.sent: list[tuple[str, int]] = []  # (channel, message id), in the order accepted
        self.attempts: list[tuple[str, int]] = []
        self.script: dict[str, list[Exception | None]] = {"email": [], "sms": [], "call": []}
        self.always: dict[str, Exception | None] = {"email": None, "sms": None, "call": None}
        self.delay: dict[str, float] = {"email": 0.0, "sms": 0.0, "call": 0.0}
        self.adapters_created = 0
        self.outgoing: list[OutgoingEmail | OutgoingSms] = []

    def setup(self) -> ChannelSetup:
        return ChannelSetup(
            email_factory=lambda: RecordingEmail(self),
            sms_factory=lambda: RecordingSms(self),
            email_gateway="memory",
            sms_gateway="memory",
            call_factory=lambda: RecordingCall(self),
            call_gateway="memory",
        )

    def _send(self, channel: str, message_id: int, outgoing) -> str:
        if self.delay[channel]:
            time.sleep(self.delay[channel])
        with self.lock:
            self.attempts.append((channel, message_id))
            failure = self.script[channel].pop(0) if self.script[channel] else self.always[channel]
            if failure is not None:
                raise failure
            self.sent.append((channel, message_id))
            self.outgoing.append(outgoing)
            self.lock.notify_all()
            return f"mem-{channel}-{message_id}-{len(self.sent)}"

    def sent_ids(self, channel: str | None = None) -> list[int]:
        with self.lock:
            return [message_id for kind, message_id in self.sent if channel in (None, kind)]

    def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = 10.0, what: str = "sends") -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout} s waiting for {what}; sent {len(self.sent)}")
                self.lock.wait(min(remaining, 0.05))


class RecordingEmail:
    gateway = "memory"

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        with recorder.lock:
            recorder.adapters_created += 1

    def send_email(self, email: OutgoingEmail) -> str:
        return self.recorder._send("email", int(_EMAIL_ID.search(email.message_id).group(1)), email)

    def close(self) -> None:
        pass


class RecordingSms:
    gateway = "memory"

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        with recorder.lock:
            recorder.adapters_created += 1

    def send_sms(self, sms: OutgoingSms) -> str:
        return self.recorder._send("sms", int(_SMS_ID.search(sms.status_callback).group(1)), sms)

    def close(self) -> None:
        pass


class RecordingCall:
    gateway = "memory"

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def place_call(self, call: OutgoingCall) -> str:
        return self.recorder._send("call", int(_SMS_ID.search(call.status_callback).group(1)), call)

    def close(self) -> None:
        pass


def make_contact(*, now: datetime, number: int = 1, email: str | None = "", mobile: str | None = "") -> ContactPerson:
    """In an app context: a provider's contact person (committed). Addresses default to unique ones."""
    provider = db.session.scalar(select(Provider).where(Provider.name == "Testutföraren"))
    if provider is None:
        provider = Provider(name="Testutföraren", kind="private", created_at=now)
        db.session.add(provider)
    contact = ContactPerson(
        provider=provider,
        name=f"Kontakt {number}",
        email=f"kontakt{number}@example.se" if email == "" else email,
        mobile=f"+4670{number:07d}" if mobile == "" else mobile,
        created_at=now,
    )
    db.session.add(contact)
    db.session.commit()
    db.session.refresh(contact)
    db.session.expunge(contact)  # a snapshot, readable after later commits and the app context
    return contact


def queue(
    *,
    now: datetime,
    key: str,
    channels=("email",),
    priority: Priority = Priority.NORMAL,
    contact: ContactPerson | None = None,
    to_email: str | None = None,
    to_mobile: str | None = None,
    ref: tuple[str, object] | None = None,
    commit: bool = True,
) -> list[Message]:
    """In an app context: queue a 'generic' message (and commit, unless told not to)."""
    if contact is None and to_email is None and to_mobile is None:
        to_email, to_mobile = f"{key}@example.se", "+46701234567"
    messages = send(
        db_session=db.session,
        kind="generic",
        context={"subject": f"Test {key}", "body": f"Meddelande {key}"},
        channels=channels,
        priority=priority,
        idempotency_key=key,
        now=now,
        contact=contact,
        to_email=to_email,
        to_mobile=to_mobile,
        ref=ref,
    )
    if commit:
        db.session.commit()
        for message in messages:
            db.session.refresh(message)
            db.session.expunge(message)  # a snapshot, readable after later commits and the app context
    return messages


def queue_many(*, now: datetime, prefix: str, count: int, channel: str, priority: Priority) -> list[int]:
    """In an app context: ``count`` messages on one channel, written in bulk in one transaction
    (as :func:`notifications.service.send` would write them; quicker for thousands); returns their ids."""
    rows = [
        {
            "idempotency_key": f"{prefix}:{number}:{channel}",
            "kind": "generic",
            "channel": channel,
            "priority": int(priority),
            "to_address": f"{prefix}{number}@example.se" if channel == "email" else f"+4673{number:07d}",
            "language": "sv",
            "subject": "Månadskontroll" if channel == "email" else None,
            "body_text": f"Kontroll {number}",
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for number in range(count)
    ]
    db.session.execute(sa.insert(Message), rows)
    ids = list(
        db.session.scalars(
            sa.select(Message.id).where(Message.idempotency_key.startswith(f"{prefix}:")).order_by(Message.id)
        )
    )
    db.session.execute(
        sa.insert(MessageEvent), [{"message_id": i, "at": now, "status": "queued", "detail": None} for i in ids]
    )
    db.session.commit()
    return ids


def events_of(message_id: int) -> list[str]:
    """In an app context: the statuses of a message's events, in order."""
    return list(
        db.session.scalars(
            select(MessageEvent.status).where(MessageEvent.message_id == message_id).order_by(MessageEvent.id)
        )
    )


def reload(message_id: int) -> Message:
    """In an app context: the message as stored now."""
    db.session.expire_all()
    return db.session.get(Message, message_id)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition") -> float:
    """Poll ``predicate`` until it holds; returns the seconds it took; fails after ``timeout``."""
    started = time.monotonic()
    pause = threading.Event()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.02)
    return time.monotonic() - started


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def message_statuses(app=None) -> dict[str, int]:
    """How many messages there are of each status, as the database has them now: in the current
    application context, or in ``app``'s own (its session removed after)."""
    if app is not None:
        with app.app_context():
            try:
                return message_statuses()
            finally:
                db.session.remove()
    db.session.expire_all()
    counts = dict(db.session.execute(sa.select(Message.status, sa.func.count()).group_by(Message.status)).all())
    db.session.rollback()
    return counts


def seconds_until_sent(app, clock, recorder: Recorder, *, key: str) -> float:
    """With a dispatcher running: queue one e-mail, commit, and return the seconds from the
    commit until ``recorder`` has it sent."""
    with app.app_context():
        [message] = queue(now=clock.now(), key=key)
        committed = time.monotonic()
    recorder.wait_for(lambda r: message.id in r.sent_ids(), timeout=10, what=f"the send of {key}")
    return time.monotonic() - committed
