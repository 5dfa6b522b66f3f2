"""The Twilio SMS channel for the asynchronous SMS lane (issue 18): the SDK's async path.

One :class:`AsyncTwilioSms` per lane, built inside the lane's event loop, shared by up to
``max_in_flight`` concurrent :meth:`~AsyncTwilioSms.send_sms` calls. It sends through the
official ``twilio`` library (``client.messages.create_async``) with the same parameters, the
same error translation and the same TWILIO_API_BASE_URL as the synchronous
:class:`~notifications.channels.twilio_sms.TwilioSms`; what it reuses from there is imported,
not copied (:func:`check_sender_id`, :func:`translate_error` with ``ADDRESS_REJECTED_CODES``,
:func:`rewrite_base_url`, and through ``translate_error`` the Retry-After parsing).

Design decisions:

- HTTP: one aiohttp ``ClientSession`` per adapter, with a ``TCPConnector(limit=max_in_flight)``
  (keep-alive: at most that many connections in use, idle ones reused) and a total timeout of
  ``timeout`` seconds per request. The total includes any wait for a free connection; the lane
  never runs more than ``max_in_flight`` sends, so there is none in practice. The SDK passes
  ``timeout=None`` to its HTTP client, which aiohttp would read as "no timeout at all": our
  client therefore leaves the session's timeout in force unless the SDK asks for a real one.
- No retries below us: the SDK's client wraps its session in aiohttp_retry's ``RetryClient``
  only when given ``max_retries``; we give none, and replace its session with ours. The
  dispatcher decides what is retried and when (a 429 is retried without using up an attempt).
- Retry-After per request: the SDK's exceptions do not carry the response headers, and its async
  client keeps the last response on the instance (``_test_only_last_response``), which all
  concurrent sends share. Our client's ``request()`` stores each response's headers in a
  ``ContextVar`` instead: the SDK raises in the same task that awaited the request, so
  :meth:`AsyncTwilioSms.send_sms` reads the headers of its own response, whatever the other
  sends did in between. (With twilio 9.13 nothing awaits between the response and the raise,
  so the shared attribute happens to be right today; the ContextVar does not depend on that.)
- Network errors (``aiohttp.ClientError``, ``OSError``) and timeouts (``TimeoutError``, which is
  ``asyncio.TimeoutError`` since Python 3.11) are :class:`TransientFailure` naming only the
  error's type, never the number.
- It must be built inside the running loop (aiohttp binds the session to it); built elsewhere it
  raises ``RuntimeError`` with a message saying so.

CPU per SMS, measured with ``python -m bench.sms_cpu`` (2,000 sends after 100 unmeasured, to
bench.peers' Twilio peer in a child process, so ``time.process_time()`` counts the client alone;
2 cores, Python 3.11, twilio 9.13, aiohttp 3.14, 2026-12-06):

- zero latency: this adapter (100 in flight) 0.19-0.22 ms, the synchronous ``TwilioSms`` (one
  thread, one send after another) 0.70-0.87 ms: about 0.25-0.3 times the CPU of the
  synchronous adapter (requests and urllib3 cost more per request than aiohttp and its C parser);
- 200 ms latency, 100 in flight (~480 SMS/s): 0.34-0.37 ms (each wake-up of the loop finds fewer
  answers ready), i.e. ~0.17 of a core at the lane's 500 SMS/s.

Where it goes (cProfile of the async run, own time): aiohttp ~40 % (building the request, the
pool, parsing the answer), the form's URL-encoding ~10 % (urllib quotes byte by byte; requests
does the same), the SDK ~10 % (headers per request, the ``MessageInstance`` with three RFC 2822
dates parsed), the event loop ~8 %, the socket's ``send`` ~5-8 %. Two cheap changes are made
here, together -10 % (0.235 -> 0.211 ms with the SDK's own ``request()`` on the same session):
the Authorization header computed once instead of aiohttp's ``auth=`` (deprecated in aiohttp
3.14, a warning per request), and the form sent URL-encoded instead of a dict (from which aiohttp
builds a multipart writer with a random boundary per request). Not made: the SDK's private
``_create_async`` (the payload, without the ``MessageInstance``) would save another ~0.02 ms
(0.188 ms) at the price of a private API; a bare aiohttp POST costs 0.166 ms, so the SDK's
whole share is ~0.045 ms per SMS.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from config.settings import Settings
from notifications.channels.base import OutgoingSms, TransientFailure
from notifications.channels.twilio_sms import (
    ADDRESS_REJECTED_CODES,
    DEFAULT_TIMEOUT,
    TWILIO_API_BASE_URL,
    check_sender_id,
    rewrite_base_url,
    translate_error,
)

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})

# The headers of the last Twilio response in this task (see the module docstring).
_response_headers: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "twilio_response_headers", default=_NO_HEADERS
)


class _AsyncBaseUrlHttpClient(AsyncTwilioHttpClient):
    """The SDK's async HTTP client with our session (pool, timeout, no retries), sending to
    ``base_url`` instead of https://api.twilio.com, and leaving each response's headers in
    :data:`_response_headers` for the task that asked."""

    def __init__(self, base_url: str, *, max_in_flight: int, timeout: float):
        # pool_connections=False: the SDK builds no session of its own; max_retries=None: no RetryClient.
        super().__init__(pool_connections=False, timeout=timeout, max_retries=None)
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_in_flight),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        self._authorization: tuple[tuple[str, str], str] | None = None

    def _authorization_header(self, auth: tuple[str, str]) -> str:
        if self._authorization is None or self._authorization[0] != auth:
            self._authorization = (auth, aiohttp.encode_basic_auth(auth[0], auth[1]))
        return self._authorization[1]

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        method = method.upper()
        if self.logger.isEnabledFor(logging.INFO):  # the SDK formats its log lines before logging them
            self.log_request({"method": method, "url": url, "params": params, "headers": headers})
        headers = dict(headers or {})
        if auth is not None:
            # A header, not aiohttp's auth= (deprecated in aiohttp 3.14: a warning per request).
            headers["Authorization"] = self._authorization_header(auth)
        options = {} if timeout is None else {"timeout": aiohttp.ClientTimeout(total=timeout)}
        # The form encoded as requests encodes it for the synchronous client; given a dict, aiohttp
        # would build a multipart writer (and a random boundary) per request only to urlencode it.
        body = urlencode(data, doseq=True).encode() if data else None
        async with self.session.request(
            method,
            rewrite_base_url(url, self.base_url),
            params=params,
            data=body,
            headers=headers,
            allow_redirects=allow_redirects,
            **options,
        ) as response:
            text = await response.text()
        if self.logger.isEnabledFor(logging.INFO):
            self.log_response(response.status, response)
        _response_headers.set(response.headers)
        return Response(response.status, text, response.headers)


class AsyncTwilioSms:
    """Sends SMS through Twilio's Messages API with the account in the settings, up to
    ``max_in_flight`` at once from one event loop."""

    gateway = "twilio"
    address_rejected_codes = ADDRESS_REJECTED_CODES

    def __init__(self, settings: Settings, *, max_in_flight: int, timeout: float = DEFAULT_TIMEOUT):
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            raise ValueError("AsyncTwilioSms needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.sender = check_sender_id(settings.twilio_from)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("AsyncTwilioSms must be built inside the lane's running event loop") from None
        self._http = _AsyncBaseUrlHttpClient(
            settings.twilio_api_base_url or TWILIO_API_BASE_URL, max_in_flight=max_in_flight, timeout=timeout
        )
        client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=self._http)
        self._messages = client.messages  # the account's MessageList, resolved once

    async def send_sms(self, sms: OutgoingSms) -> str:
        """Send one SMS; returns Twilio's MessageSid."""
        token = _response_headers.set(_NO_HEADERS)
        try:
            return await self._create_message(sms)
        except (TwilioRestException, TwilioServiceException) as error:
            raise translate_error(error, _response_headers.get(), self.address_rejected_codes) from error
        except TimeoutError as error:  # asyncio's and aiohttp's timeouts; before OSError, since it is one
            raise TransientFailure("Twilio did not answer in time") from error
        except (aiohttp.ClientError, OSError) as error:
            raise TransientFailure(f"could not reach Twilio ({type(error).__name__})") from error
        finally:
            _response_headers.reset(token)

    async def _create_message(self, sms: OutgoingSms) -> str:
        """The one place that calls the SDK."""
        options = {"status_callback": sms.status_callback} if sms.status_callback else {}
        message = await self._messages.create_async(to=sms.to, from_=self.sender, body=sms.body, **options)
        return message.sid

    async def aclose(self) -> None:
        """Close the HTTP session and its pooled keep-alive connections."""
        await self._http.close()
