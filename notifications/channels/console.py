"""The console channel: logs that a message was 'sent' (or a call placed) instead of sending it.

The default when SMTP or Twilio is not configured (the demo). The log line names the message by
id only; the body stays in the outbox, where the console page (/notifications/console) shows it
so that a person can click the links in it.
"""

from __future__ import annotations

import logging
import uuid

from notifications.channels.base import OutgoingCall, OutgoingEmail, OutgoingSms

log = logging.getLogger("krisrutin.console_channel")


class ConsoleEmail:
    gateway = "console"

    def send_email(self, email: OutgoingEmail) -> str:
        gateway_id = f"console-{uuid.uuid4().hex[:16]}"
        log.info(
            "e-mail written to the console outbox", extra={"message_id": email.message_id, "gateway_id": gateway_id}
        )
        return gateway_id

    def close(self) -> None:
        pass


class ConsoleSms:
    gateway = "console"

    def send_sms(self, sms: OutgoingSms) -> str:
        gateway_id = f"console-{uuid.uuid4().hex[:16]}"
        log.info("SMS written to the console outbox", extra={"gateway_id": gateway_id})
        return gateway_id

    def close(self) -> None:
        pass


class ConsoleCall:
    """A call nobody hears: the console page shows its spoken text as "Samtal"."""

    gateway = "console"

    def place_call(self, call: OutgoingCall) -> str:
        gateway_id = f"console-{uuid.uuid4().hex[:16]}"
        log.info("call written to the console outbox", extra={"gateway_id": gateway_id})
        return gateway_id

    def close(self) -> None:
        pass
