"""The Twilio calls channel: one phone call per message through the official ``twilio`` library.

``client.calls.create`` with the call's TwiML inline (:func:`notifications.voice.call_twiml`: the
text said in Swedish inside ``<Gather numDigits="1">``, twice, then a goodbye), a status callback
for every step of the call (initiated, ringing, answered, completed) and a ring time
(``CALL_RING_SECONDS``, 30 by default: then Twilio gives up with ``no-answer``).

The caller ID is ``TWILIO_CALL_FROM``, or ``TWILIO_FROM`` when that is a phone number: an
alphanumeric sender ID ("Krisrutin") can send SMS but cannot call, so with one and no
``TWILIO_CALL_FROM`` calls go to the console and start-up warns
(:func:`notifications.channels.build_channels`).

Errors are translated as for SMS (:class:`~notifications.channels.twilio_sms.TwilioGateway`):
429 retried without using up an attempt, 5xx and network errors transient, 401 transient (the
configuration is wrong, not the call); the codes in :data:`ADDRESS_REJECTED_CODES` (the number
itself is invalid) permanent and the address marked failing; any other 4xx permanent. Failure
messages carry only the HTTP status and Twilio's code: Twilio's own messages quote the number.
"""

from __future__ import annotations

from config.settings import Settings
from notifications import voice
from notifications.channels.base import OutgoingCall, PermanentFailure
from notifications.channels.twilio_sms import _E164, DEFAULT_TIMEOUT, TwilioGateway

# Twilio error codes of the Calls API that mean "this number cannot be called".
ADDRESS_REJECTED_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21214,  # 'To' phone number cannot be reached
        21217,  # phone number does not appear to be valid
    }
)
TWIML_MAX = 4000  # characters of inline Twiml Twilio accepts
# Twilio's status callback events we ask for ("answered" arrives as CallStatus in-progress).
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


def call_sender(settings: Settings) -> str | None:
    """The number calls come from: TWILIO_CALL_FROM, else TWILIO_FROM if it is a number; None if
    there is none (an alphanumeric sender ID cannot call). ValueError for a malformed TWILIO_CALL_FROM."""
    if settings.twilio_call_from:
        value = settings.twilio_call_from.strip()
        if not _E164.fullmatch(value):
            raise ValueError(f"TWILIO_CALL_FROM: expected a phone number in E.164 form (+46101234567), got {value!r}")
        return value
    value = (settings.twilio_from or "").strip()
    return value if _E164.fullmatch(value) else None


class TwilioCall(TwilioGateway):
    """Places calls through Twilio's Calls API with the account in the settings."""

    address_rejected_codes = ADDRESS_REJECTED_CODES

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT):
        super().__init__(settings, timeout=timeout)
        sender = call_sender(settings)
        if sender is None:
            raise ValueError("TwilioCall needs a number to call from (TWILIO_CALL_FROM, or TWILIO_FROM as a number)")
        self.sender = sender
        self.ring_seconds = settings.call_ring_seconds

    def place_call(self, call: OutgoingCall) -> str:
        """Place one call; returns Twilio's CallSid."""
        return self._calling_twilio(self._create_call, call)

    def _create_call(self, call: OutgoingCall) -> str:
        """The one place that calls the SDK."""
        twiml = voice.call_twiml(call.text, call.gather_url)
        if len(twiml) > TWIML_MAX:  # said once instead of twice
            twiml = voice.call_twiml(call.text, call.gather_url, times=1)
        if len(twiml) > TWIML_MAX:
            raise PermanentFailure(f"the call's text is too long for Twilio (TwiML over {TWIML_MAX} characters)")
        created = self._client.calls.create(
            to=call.to,
            from_=self.sender,
            twiml=twiml,
            status_callback=call.status_callback,
            status_callback_event=STATUS_EVENTS,
            status_callback_method="POST",
            timeout=self.ring_seconds,
        )
        return created.sid
