"""Whom a message is for, as far as notifications knows: an address and a key the caller chose.

notifications knows no domain. A message goes to an address (an e-mail address or an E.164
number) and carries an opaque ``ref`` (what it belongs to, e.g. ``("letter", 12)``) and a
recipient key, an id the caller chooses. :func:`notifications.service.send` takes the addresses
and the key from any :class:`Recipient` (``contact=``), or the addresses alone. The key is kept
in the ``contact_id`` column of ``messages`` and ``inbound_sms``; the schema keeps that column's
foreign key to the register's ``contact_persons``, so a key is a contact person's id or None.

What a key means is known only to the domain that owns the recipients. It registers hooks on the
application, in its ``init_app``, so that notifications never imports it::

    from notifications.recipients import register_hooks

    register_hooks(app, mark_failing=..., find_sender=..., describe=...)

``mark_failing(*, db_session, key, channel, address, reason, now) -> bool``
    A gateway refused ``address`` (on ``channel``, ``"email"``, ``"sms"`` or ``"call"``) for good: a mailbox
    rejected at RCPT, a number that cannot receive SMS. Runs in the transaction that records the
    failure and does not commit; returns whether anything was marked.
``find_sender(*, db_session, number) -> Recipient | None``
    Whose inbound SMS this is. Its ``id`` is stored with the SMS and the recipient itself is
    handed to the inbound handlers (:mod:`notifications.inbound`).
``describe(*, db_session, keys) -> dict[int, RecipientName]``
    The names shown on the deliveries page (a person, and the organisation they answer for).

Each hook has one owner per application: registering another function for a hook that has one
raises ``ValueError`` (the same function again is harmless).

Without hooks (notifications used on its own, as in some tests) everything is sent, stored and
retried as ever, and a permanently refused address still fails its message; but nothing is
marked failing, every inbound SMS comes from an unknown sender (stored for the team, handed to no
handler, answered with nothing), and the deliveries page shows addresses without names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from flask import Flask, current_app
from sqlalchemy.orm import Session

# app.extensions[HOOKS_EXTENSION]: the application's RecipientHooks (a test that uses notifications
# on its own puts NO_HOOKS there).
HOOKS_EXTENSION = "krisrutin.recipient_hooks"


class Recipient(Protocol):
    """Anything a message can be addressed to: an id (the recipient key) and its addresses."""

    @property
    def id(self) -> int | None: ...

    @property
    def email(self) -> str | None: ...

    @property
    def mobile(self) -> str | None: ...


@dataclass(frozen=True)
class RecipientName:
    """How the deliveries page names a recipient: the person, and whom they answer for."""

    name: str
    organisation: str | None = None


class MarkFailing(Protocol):
    def __call__(
        self, *, db_session: Session, key: int, channel: str, address: str, reason: str, now: datetime
    ) -> bool: ...


class FindSender(Protocol):
    def __call__(self, *, db_session: Session, number: str) -> Recipient | None: ...


class DescribeRecipients(Protocol):
    def __call__(self, *, db_session: Session, keys: set[int]) -> dict[int, RecipientName]: ...


@dataclass(frozen=True)
class RecipientHooks:
    """The hooks one application has registered; None where none is."""

    mark_failing: MarkFailing | None = None
    find_sender: FindSender | None = None
    describe: DescribeRecipients | None = None


NO_HOOKS = RecipientHooks()


def register_hooks(
    app: Flask,
    *,
    mark_failing: MarkFailing | None = None,
    find_sender: FindSender | None = None,
    describe: DescribeRecipients | None = None,
) -> RecipientHooks:
    """Register the given hooks on ``app`` (see the module docstring); returns all of its hooks."""
    hooks = app.extensions.get(HOOKS_EXTENSION, NO_HOOKS)
    given = {"mark_failing": mark_failing, "find_sender": find_sender, "describe": describe}
    for name, fn in given.items():
        existing = getattr(hooks, name)
        if fn is None or existing is fn:
            continue
        if existing is not None:
            raise ValueError(f"the recipient hook {name} is already registered: {_named(existing)}")
        hooks = replace(hooks, **{name: fn})
    app.extensions[HOOKS_EXTENSION] = hooks
    return hooks


def _named(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def registered_hooks(app: Flask | None = None) -> RecipientHooks:
    """The hooks of ``app`` (default: the current application); :data:`NO_HOOKS` if none."""
    return (app or current_app).extensions.get(HOOKS_EXTENSION, NO_HOOKS)


# --- what notifications asks, with the answers it uses when no hook is registered ------------


def mark_failing(
    *, db_session: Session, key: int | None, channel: str, address: str, reason: str, now: datetime
) -> bool:
    """Have the recipient's owner mark ``address`` as failing; False without a key or a hook."""
    hook = registered_hooks().mark_failing
    if key is None or hook is None:
        return False
    return hook(db_session=db_session, key=key, channel=channel, address=address, reason=reason, now=now)


def find_sender(*, db_session: Session, number: str) -> Recipient | None:
    """The recipient an inbound SMS from ``number`` comes from; None (unknown) without a hook."""
    hook = registered_hooks().find_sender
    return hook(db_session=db_session, number=number) if hook is not None else None


def describe(*, db_session: Session, keys: Iterable[int | None]) -> dict[int, RecipientName]:
    """The names of the recipients with these keys, as far as known; empty without a hook."""
    wanted = {key for key in keys if key is not None}
    hook = registered_hooks().describe
    if not wanted or hook is None:
        return {}
    return hook(db_session=db_session, keys=wanted)
