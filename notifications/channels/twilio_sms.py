"""The Twilio SMS channel: one REST call per message through the official ``twilio`` library.

As in Grafana OnCall's Twilio provider, the SDK is called in one private method and its errors
are translated into the channel's two failures:

- HTTP 429 (Twilio code 20429), HTTP 5xx, network errors and timeouts: :class:`TransientFailure`
  (with ``retry_after`` from the Retry-After header when Twilio sends one; a 429 is
  ``rate_limited``: retried without using up one of the message's attempts);
- HTTP 401 (code 20003, the account SID or auth token is wrong): :class:`TransientFailure`, since
  the channel's configuration is wrong, not the message; the messages go out once fixed;
- the recipient codes in :data:`ADDRESS_REJECTED_CODES`: :class:`PermanentFailure` with
  ``address_rejected`` (the contact's number needs correcting, or they sent STOP);
- any other 4xx (e.g. 21408, sending to that country is not enabled on our account; 21606, our
  sender cannot send; 21617, body too long): :class:`PermanentFailure` without ``address_rejected``.

Twilio's error messages quote the recipient's number, so failure messages carry only the HTTP
status and Twilio's error code.

TWILIO_API_BASE_URL moves the REST calls to another host (a local Twilio-speaking server in
tests and drills): twilio 9.13 builds every URL as ``https://api.twilio.com/2010-04-01/...``;
``edge``/``region`` only rewrite ``*.twilio.com`` names, so the HTTP client below swaps the
scheme and host of such URLs on their way out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from config.settings import Settings
from notifications.channels.base import OutgoingSms, PermanentFailure, TransientFailure

log = logging.getLogger("krisrutin.twilio_channel")

TWILIO_API_BASE_URL = "https://api.twilio.com"
DEFAULT_TIMEOUT = 15.0

# Twilio error codes that mean "this recipient's number cannot get our SMS".
ADDRESS_REJECTED_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21265,  # 'To' number cannot be a short code
        21610,  # the recipient replied STOP (unsubscribed) to our sender
        21612,  # the 'To' number is not reachable via SMS (cannot route to it)
        21614,  # 'To' number is not a valid mobile number (a landline)
        21635,  # 'To' number cannot be a landline
    }
)
RATE_LIMITED_CODE = 20429

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


def check_sender_id(sender: str | None) -> str:
    """TWILIO_FROM as given, if it is an E.164 number or an alphanumeric sender ID; else ValueError."""
    value = (sender or "").strip()
    if _E164.fullmatch(value) or _ALPHANUMERIC_SENDER.fullmatch(value):
        return value
    raise ValueError(
        f"TWILIO_FROM: expected a phone number in E.164 form (+46701234567) or an alphanumeric sender ID "
        f"(1-11 letters, digits or spaces, at least one letter, e.g. 'Krisrutin'), got {value!r}"
    )


def rewrite_base_url(url: str, base_url: str) -> str:
    """``url`` with the scheme and host of Twilio's REST API (``https://api[.edge.region].twilio.com``)
    replaced by ``base_url`` (no trailing slash); other URLs, and every URL when ``base_url`` is
    Twilio's own, unchanged. Shared by the synchronous and the asynchronous HTTP client."""
    if base_url == TWILIO_API_BASE_URL:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host.startswith("api.") and host.endswith(".twilio.com"):
        rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
        return base_url + rest
    return url


class _BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, sending to ``base_url`` instead of https://api.twilio.com, and keeping
    the last response's headers (the SDK's exceptions do not carry Retry-After)."""

    def __init__(self, base_url: str, *, timeout: float):
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")
        self.last_headers: Mapping[str, str] = {}

    def _rewrite(self, url: str) -> str:
        return rewrite_base_url(url, self.base_url)

    def request(self, method: str, url: str, *args, **kwargs) -> Response:
        self.last_headers = {}
        response = super().request(method, self._rewrite(url), *args, **kwargs)
        self.last_headers = response.headers or {}
        return response


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    # An HTTP date is relative to the real wall clock, not to the service's (injectable) clock.
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class TwilioGateway:
    """What the SMS and the calls gateway share: the account's client against
    ``TWILIO_API_BASE_URL``, the SDK's errors translated into the channel's failures (with the
    gateway's own :attr:`address_rejected_codes`), and closing the HTTP session."""

    gateway = "twilio"
    address_rejected_codes: frozenset[int] = frozenset()

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT):
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError(f"{type(self).__name__} needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        self._http = _BaseUrlHttpClient(settings.twilio_api_base_url or TWILIO_API_BASE_URL, timeout=timeout)
        self._client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=self._http)

    def _calling_twilio(self, create, item) -> str:
        """``create(item)`` (the one place that calls the SDK) with its errors translated."""
        try:
            return create(item)
        except (TwilioRestException, TwilioServiceException) as error:
            raise translate_error(error, self._http.last_headers, self.address_rejected_codes) from error
        except requests.Timeout as error:
            raise TransientFailure("Twilio did not answer in time") from error
        except requests.RequestException as error:
            raise TransientFailure(f"could not reach Twilio ({type(error).__name__})") from error

    def close(self) -> None:
        """Close the HTTP session (its pooled keep-alive connections)."""
        if self._http.session is not None:
            self._http.session.close()


class TwilioSms(TwilioGateway):
    """Sends SMS through Twilio's Messages API with the account in the settings."""

    address_rejected_codes = ADDRESS_REJECTED_CODES

    def __init__(self, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT):
        super().__init__(settings, timeout=timeout)
        self.sender = check_sender_id(settings.twilio_from)

    def send_sms(self, sms: OutgoingSms) -> str:
        """Send one SMS; returns Twilio's MessageSid."""
        return self._calling_twilio(self._create_message, sms)

    def _create_message(self, sms: OutgoingSms) -> str:
        """The one place that calls the SDK."""
        options = {"status_callback": sms.status_callback} if sms.status_callback else {}
        message = self._client.messages.create(to=sms.to, from_=self.sender, body=sms.body, **options)
        return message.sid


def translate_error(
    error: TwilioRestException | TwilioServiceException, headers: Mapping[str, str], address_rejected: frozenset[int]
) -> TransientFailure | PermanentFailure:
    """A Twilio REST error as the channel's failure (see the module docstring); ``address_rejected``
    are the codes that mean the recipient's number is bad (they differ for SMS and calls)."""
    status, code = int(error.status or 0), error.code
    what = f"HTTP {status}, Twilio error {code}" if code and code != status else f"HTTP {status}"
    if status == 429 or code == RATE_LIMITED_CODE:
        return TransientFailure(f"Twilio rate limit ({what})", retry_after=_retry_after(headers), rate_limited=True)
    if status >= 500:
        return TransientFailure(f"Twilio server error ({what})", retry_after=_retry_after(headers))
    if status == 401:
        return TransientFailure(
            f"Twilio refused the credentials ({what}); check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    if code in address_rejected:
        return PermanentFailure(f"Twilio rejected the recipient ({what})", address_rejected=True)
    return PermanentFailure(f"Twilio refused the message ({what})")
