"""The channel interface: adapters only move bytes; the notifications service owns the rules.

An adapter sends one message and returns the gateway's id for it, or raises
:class:`TransientFailure` (worth retrying: timeouts, refused connections, SMTP 4xx, HTTP 429/5xx)
or :class:`PermanentFailure` (retrying cannot help: unknown mailbox, invalid number). Adapters
are not shared between threads: a dispatcher builds one per worker with the factory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ChannelFailure(Exception):
    """A send that did not succeed; the message names no recipient (it may be logged)."""


class TransientFailure(ChannelFailure):
    def __init__(self, message: str, *, retry_after: float | None = None, rate_limited: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        # The gateway asked us to slow down (HTTP 429): retried later without using up an attempt,
        # since it says nothing about the message.
        self.rate_limited = rate_limited


class PermanentFailure(ChannelFailure):
    def __init__(self, message: str, *, address_rejected: bool = False):
        super().__init__(message)
        # True when the recipient's address itself is bad: the contact is marked as failing.
        self.address_rejected = address_rejected


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str | None
    message_id: str  # our Message-ID header value, e.g. "<msg-42@krisrutin>"


@dataclass(frozen=True)
class OutgoingSms:
    to: str  # E.164
    body: str
    status_callback: str | None  # where the gateway posts delivery statuses


@dataclass(frozen=True)
class OutgoingCall:
    to: str  # E.164
    text: str  # what the call says (Swedish), see notifications.voice
    gather_url: str  # where the gateway posts the key pressed
    status_callback: str  # where the gateway posts the call's statuses


class EmailSender(Protocol):
    gateway: str  # "smtp" or "console"

    def send_email(self, email: OutgoingEmail) -> str:
        """Send; returns the gateway's id for the message."""

    def close(self) -> None:
        """Release the connection, if any."""


class SmsSender(Protocol):
    gateway: str  # "twilio" or "console"

    def send_sms(self, sms: OutgoingSms) -> str:
        """Send; returns the gateway's id (Twilio's MessageSid)."""

    def close(self) -> None:
        """Release the connection, if any."""


class CallSender(Protocol):
    gateway: str  # "twilio" or "console"

    def place_call(self, call: OutgoingCall) -> str:
        """Place the call; returns the gateway's id (Twilio's CallSid)."""

    def close(self) -> None:
        """Release the connection, if any."""


class AsyncEmailSender(Protocol):
    """An e-mail adapter for the asynchronous lanes (issue 18): one per lane, shared by all its
    concurrent sends (it keeps its own pool of up to ``max_in_flight`` connections). Built and used
    inside the lane's event loop; raises the same failures as :class:`EmailSender`."""

    gateway: str

    async def send_email(self, email: OutgoingEmail) -> str:
        """Send; returns the gateway's id for the message (its Message-ID)."""

    async def aclose(self) -> None:
        """Close every pooled connection."""


class AsyncSmsSender(Protocol):
    """An SMS adapter for the asynchronous lanes: one per lane, safe for ``max_in_flight``
    concurrent sends in its event loop; raises the same failures as :class:`SmsSender`."""

    gateway: str

    async def send_sms(self, sms: OutgoingSms) -> str:
        """Send; returns the gateway's id (Twilio's MessageSid)."""

    async def aclose(self) -> None:
        """Close the HTTP session."""
