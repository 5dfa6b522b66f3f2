"""A local HTTP server that speaks Twilio's Messages and Calls APIs, recording what it receives.

It implements ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` and ``.../Calls.json`` as
Twilio documents them (shared/specs/twilio_api_v2010.json): HTTP Basic auth with the account SID
and auth token, form-encoded parameters, a 201 answer shaped like ``api.v2010.account.message``
or ``api.v2010.account.call``, and Twilio's error bodies ``{"code", "message", "more_info",
"status"}``. Tests steer it: make the next requests (or those to one number) fail as an invalid
number, an unsubscribed number, a rate limit or a server error. It can also play Twilio calling
us: :func:`post_status_callback` posts a delivery status signed with ``X-Twilio-Signature``;
:meth:`TwilioTestServer.post_call_status` a call's status and :meth:`TwilioTestServer.press_key`
a key pressed during a call (to the gather action of the call's recorded TwiML).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

from notifications.segments import count_segments

API_VERSION = "2010-04-01"
_RESOURCE_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/(Messages|Calls)\.json$")
TWIML_MAX = 4000  # characters of inline Twiml Twilio accepts


def new_sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Failure:
    status: int
    code: int
    message: str  # may contain {to}, as Twilio's own messages do
    retry_after: int | None = None


# The failures tests can ask for, with the codes and messages Twilio answers with.
FAILURES = {
    "invalid_number": Failure(400, 21211, "The 'To' number {to} is not a valid phone number."),
    "unsubscribed": Failure(400, 21610, "Attempt to send to unsubscribed recipient"),
    "not_mobile": Failure(400, 21614, "'To' number {to} is not a valid mobile number"),
    "region_disabled": Failure(
        400, 21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
    ),
    "rate_limited": Failure(429, 20429, "Too Many Requests", retry_after=7),
    "server_error": Failure(500, 20500, "Internal Server Error"),
}


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict
    headers: dict[str, str]
    sid: str | None = None


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> _Answer:
    """Twilio's error body."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return _Answer(status, body, headers or {})


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    params: dict[str, str]  # form parameters, the last value of each
    headers: dict[str, str]
    auth: tuple[str, str] | None  # (user, password) from HTTP Basic auth
    status: int  # what the server answered
    sid: str | None  # the MessageSid or CallSid created, on success
    multi: dict[str, list[str]] = field(default_factory=dict)  # every value of each parameter

    @property
    def is_call(self) -> bool:
        return self.path.split("?")[0].endswith("/Calls.json")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as api.twilio.com
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def log_message(self, format, *args):  # quiet: the test output is ours
        pass

    def _send_json(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _auth(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user, password

    def do_GET(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = _error(405, 20004, "Method not allowed")
        self._send_json(answer.status, answer.body, answer.headers)

    def do_POST(self):
        server = self.server.twilio
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        params = dict(pairs)
        multi: dict[str, list[str]] = {}
        for name, value in pairs:
            multi.setdefault(name, []).append(value)
        auth = self._auth()
        answer = server.answer(self.path, params, auth)
        # Recorded before answering: once the client has its answer, the test can see the request.
        server.record(
            ReceivedRequest(
                method="POST",
                path=self.path,
                params=params,
                headers=dict(self.headers.items()),
                auth=auth,
                status=answer.status,
                sid=answer.sid,
                multi=multi,
            )
        )
        self._send_json(answer.status, answer.body, answer.headers)


class _Server(ThreadingHTTPServer):
    """Keeps its open connections, so that stopping it also ends keep-alive connections (the
    client then sees the server go away, as it would with a real outage)."""

    daemon_threads = True
    request_queue_size = 128  # the asynchronous lane opens up to 100 connections at once (socketserver's default: 5)
    twilio: TwilioTestServer

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def handle_error(self, request, client_address):
        """A client that resets its keep-alive connection (an aiohttp session closed while idle
        connections are open) is the client's business, not an error to print to the test run."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections, self.open_connections = list(self.open_connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class TwilioTestServer:
    """Twilio's Messages resource on 127.0.0.1, for one test. A subclass may serve it with other
    server and handler classes (the benchmarks' peer with a latency and a cap)."""

    server_class: type[ThreadingHTTPServer] = _Server
    handler_class: type[BaseHTTPRequestHandler] = _Handler

    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None, host: str = "127.0.0.1"):
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.host = host
        self.port: int | None = None
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._queued_failures: list[Failure] = []
        self._number_failures: dict[str, Failure] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give as TWILIO_API_BASE_URL."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> TwilioTestServer:
        if self._httpd is not None:
            return self
        httpd = self.server_class((self.host, self.port or 0), self.handler_class)
        httpd.twilio = self
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._httpd = httpd
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- steering --------------------------------------------------------------------------------

    def fail_next(self, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` message requests with a failure from :data:`FAILURES`."""
        with self._lock:
            self._queued_failures.extend([FAILURES[kind]] * times)

    def fail_for_number(self, number: str, kind: str, *, retry_after: int | None = None) -> None:
        """Answer every message to ``number`` with a failure from :data:`FAILURES` (with another
        Retry-After header, if given)."""
        failure = FAILURES[kind] if retry_after is None else replace(FAILURES[kind], retry_after=retry_after)
        with self._lock:
            self._number_failures[number] = failure

    # -- the resource ----------------------------------------------------------------------------

    def answer(self, path: str, params: dict[str, str], auth: tuple[str, str] | None) -> _Answer:
        match = _RESOURCE_PATH.match(urllib.parse.urlsplit(path).path)
        if match is None:
            return _error(404, 20404, f"The requested resource {path} was not found")
        if auth != (self.account_sid, self.auth_token) or match.group(1) != self.account_sid:
            return _error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if match.group(2) == "Calls":
            return self._answer_call(params)
        to = params.get("To", "")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not params.get("Body") and not params.get("MediaUrl"):
            return _error(400, 21602, "Message body is required.")
        failure = self._failure_for(to)
        if failure is not None:
            return failure
        sid = new_sid("SM")
        return _Answer(201, self._message_resource(sid, params), {}, sid)

    def _failure_for(self, to: str) -> _Answer | None:
        with self._lock:
            failure = self._queued_failures.pop(0) if self._queued_failures else self._number_failures.get(to)
        if failure is None:
            return None
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
        return _error(failure.status, failure.code, failure.message.format(to=to), headers)

    def _answer_call(self, params: dict[str, str]) -> _Answer:
        """``POST .../Calls.json``: To and From required, and what to say (Url, Twiml or ApplicationSid)."""
        to = params.get("To", "")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not params.get("From"):
            return _error(400, 21213, "No 'From' number is specified")
        if not (params.get("Url") or params.get("Twiml") or params.get("ApplicationSid")):
            return _error(400, 21205, "Url parameter is required.")
        if len(params.get("Twiml", "")) > TWIML_MAX:
            return _error(400, 13201, f"Twiml must be at most {TWIML_MAX} characters")
        failure = self._failure_for(to)
        if failure is not None:
            return failure
        sid = new_sid("CA")
        return _Answer(201, self._call_resource(sid, params), {}, sid)

    def _call_resource(self, sid: str, params: dict[str, str]) -> dict:
        """Shaped like ``api.v2010.account.call`` (a new outbound call, queued)."""
        now = format_datetime(datetime.now(timezone.utc))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json"
        return {
            "sid": sid,
            "date_created": now,
            "date_updated": now,
            "parent_call_sid": None,
            "account_sid": self.account_sid,
            "to": params.get("To"),
            "to_formatted": params.get("To"),
            "from": params.get("From"),
            "from_formatted": params.get("From"),
            "phone_number_sid": new_sid("PN"),
            "status": "queued",
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "direction": "outbound-api",
            "answered_by": None,
            "api_version": API_VERSION,
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "uri": uri,
            "subresource_uris": {
                "notifications": uri.replace(".json", "/Notifications.json"),
                "recordings": uri.replace(".json", "/Recordings.json"),
            },
        }

    def _message_resource(self, sid: str, params: dict[str, str]) -> dict:
        now = format_datetime(datetime.now(timezone.utc))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        body = params.get("Body", "")
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": params.get("From"),
            "messaging_service_sid": params.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(max(1, count_segments(body).segments)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": params.get("To"),
            "uri": uri,
        }

    # -- what arrived ----------------------------------------------------------------------------

    def record(self, request: ReceivedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def messages(self) -> list[ReceivedRequest]:
        """The requests that created a message (201)."""
        return [request for request in self.requests if request.status == 201 and not request.is_call]

    @property
    def calls(self) -> list[ReceivedRequest]:
        """The requests that created a call (201)."""
        return [request for request in self.requests if request.status == 201 and request.is_call]

    def wait_for(self, count: int, timeout: float = 5.0, *, calls: bool = False) -> list[ReceivedRequest]:
        """Block until at least ``count`` messages (or ``calls``) were created; returns them, or
        fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                created = [r for r in self._requests if r.status == 201 and r.is_call == calls]
                if len(created) >= count:
                    return created
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} message(s) within {timeout} s, got {len(created)}")
                self._changed.wait(min(remaining, 0.05))

    # -- Twilio calling us -----------------------------------------------------------------------

    def status_callback_params(
        self, message: ReceivedRequest, status: str, *, error_code: int | None = None
    ) -> dict[str, str]:
        """The form Twilio posts to a message's StatusCallback when its status changes."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.params.get("From", ""),
            "MessageSid": message.sid or "",
            "MessageStatus": status,
            "SmsSid": message.sid or "",
            "SmsStatus": status,
            "To": message.params.get("To", ""),
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    def signature(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature for a POST of ``params`` to ``url``, as Twilio computes it."""
        return signature(self.auth_token, url, params)

    def post_status_callback(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """POST a signed status callback to ``url``; returns (HTTP status, body)."""
        return post_status_callback(url, params, auth_token=self.auth_token)

    def post_call_status(self, call: ReceivedRequest, status: str, **extra: str) -> tuple[int, str]:
        """POST the call's ``status`` (queued, initiated, ringing, in-progress, completed, busy,
        no-answer, failed, canceled) to its StatusCallback, signed; returns (HTTP status, body)."""
        params = _call_params(self, call, CallStatus=status, **extra)
        if status in ("completed", "busy", "no-answer", "failed", "canceled"):
            params.setdefault("CallDuration", "12" if status == "completed" else "0")
        return post_status_callback(call.params["StatusCallback"], params, auth_token=self.auth_token)

    def press_key(self, call: ReceivedRequest, digits: str, *, twiml: str | None = None) -> tuple[int, str]:
        """POST ``digits`` to the gather action of the call's TwiML (or of ``twiml``, an answer that
        asked again), as Twilio does when the person presses a key; returns (HTTP status, body)."""
        url = gather_action(twiml if twiml is not None else call.params["Twiml"])
        params = _call_params(self, call, CallStatus="in-progress", Digits=digits)
        return post_status_callback(url, params, auth_token=self.auth_token)


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for a POST of ``params`` to ``url``."""
    return RequestValidator(auth_token).compute_signature(url, params)


def post_status_callback(url: str, params: dict[str, str], *, auth_token: str, timeout: float = 5.0) -> tuple[int, str]:
    """POST ``params`` to ``url`` as Twilio does, signed with ``auth_token``; returns (status, body)."""
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Twilio-Signature": signature(auth_token, url, params),
            "User-Agent": "TwilioProxy/1.1",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


# --- Twilio calling us about a call -------------------------------------------------------------


def _call_params(server: TwilioTestServer, call: ReceivedRequest, **extra: str) -> dict[str, str]:
    return {
        "AccountSid": server.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid or "",
        "Direction": "outbound-api",
        "From": call.params.get("From", ""),
        "To": call.params.get("To", ""),
        **extra,
    }


def gather_action(twiml: str) -> str:
    """The action URL of the first ``<Gather>`` in ``twiml`` (unescaped)."""
    root = ElementTree.fromstring(twiml)
    gather = root.find("Gather")
    if gather is None or not gather.get("action"):
        raise AssertionError("the TwiML has no Gather with an action")
    return gather.get("action")
