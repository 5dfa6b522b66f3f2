"""The gateways of the benchmarks and drills: the tests' SMTP server (aiosmtpd) and Twilio-speaking
HTTP server, each in a child process of its own, as real gateways run elsewhere (in the measured
process they would share its interpreter lock). The parent asks them over a pipe each what
arrived, and may stop and restart the SMTP server (bench.drills).

Two processes, not one (2026-12-06): in one, the SMTP server's event loop waited for the
interpreter lock behind the Twilio server's hundred request threads, which no real relay does
behind Twilio. Measured with ``bench.service_fanout`` at 200/100 ms, one after the other on an
idle machine: the e-mail lane at 261-288 e-mails per second with one process, 296 and 324 with
two; the whole letter 10.5-11.5 s against 9.3 and 10.2 s. Both peers' CPU still counts on the
same two cores. (On the slower machine of the session before, with the cores saturated, two
processes had measured worse, 138 e-mails per second against 152; not kept then.)

Real gateways take time (issue 18): ``sms_latency_ms`` makes the Twilio peer wait that long
before it answers each request, ``smtp_latency_ms`` the SMTP peer before it answers each DATA.
The waits overlap: the Twilio peer is a threaded HTTP server (a thread per connection, each
sleeping on its own) and aiosmtpd an asyncio server (``asyncio.sleep`` per session), so N
requests in flight wait N at once, never one after another. ``sms_max_concurrent`` caps the
requests the Twilio peer works on at once, as Twilio caps an account's concurrent requests: one
more is answered at once with HTTP 429, Twilio's error 20429 body and ``Retry-After: 1``, and
not processed (never a message). The peers count the 429s, the highest number of requests they
worked on at once (admitted ones only: the cap is never exceeded), and note the wall-clock time
(``time.time()``, comparable across the processes) of every acceptance and how long the peer took
to answer it. That answer time is the latency plus the peer's own queue: a peer whose process is
busy (the SMTP peer parses every message, about 1 ms of its one event loop's time) wakes late
from its wait and answers later than its latency."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import threading
import time
from collections import Counter


class _Gauge:
    """Requests in flight at one peer: the highest seen, when each was accepted, and how long the
    peer took to answer each one it accepted."""

    def __init__(self, cap: int | None = None):
        self.cap = cap
        self.lock = threading.Condition()
        self.came = 0  # requests counted in or refused
        self.in_flight = 0
        self.max_in_flight = 0
        self.refused = 0
        self.accepted_at: list[float] = []
        self.answer_seconds: list[float] = []

    def enter(self) -> float | None:
        """Count a request in; returns when it came (``time.perf_counter()``), or None when it
        is refused above the cap (and not counted in)."""
        with self.lock:
            self.came += 1
            self.lock.notify_all()
            if self.cap is not None and self.in_flight >= self.cap:
                self.refused += 1
                return None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return time.perf_counter()

    def wait_until_came(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` requests have come (for tests: see ``_latency_twilio``'s ``hold_until``)."""
        with self.lock:
            self.lock.wait_for(lambda: self.came >= count, timeout)

    def leave(self, accepted: bool, came_at: float) -> None:
        answered = time.perf_counter()
        with self.lock:
            self.in_flight -= 1
            if accepted:
                self.accepted_at.append(time.time())
                self.answer_seconds.append(answered - came_at)


def _latency_twilio(latency_ms: int, max_concurrent: int | None, hold_until: int | None = None):
    """The tests' Twilio server with a latency and a cap (see the module's docstring).
    ``hold_until`` (for tests): admitted requests wait until that many have come (10 s at most)
    before their latency, so that requests sent at once meet the cap together, however slowly a
    busy machine sends them; their answer times (``answer_seconds``) count from then."""
    from tests.support import twilio_server

    gauge = _Gauge(max_concurrent)
    body = json.dumps(
        {
            "code": twilio_server.FAILURES["rate_limited"].code,
            "message": "Too Many Requests",
            "more_info": "https://www.twilio.com/docs/errors/20429",
            "status": 429,
        }
    ).encode()

    class Handler(twilio_server._Handler):
        def do_POST(self):
            came_at = gauge.enter()
            if came_at is None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(429)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(body)
                return
            answered.sid = None
            try:
                if hold_until is not None:
                    gauge.wait_until_came(hold_until)
                    came_at = time.perf_counter()  # the test's hold is not the peer's answer time
                if latency_ms:
                    time.sleep(latency_ms / 1000)
                super().do_POST()
            finally:
                gauge.leave(answered.sid is not None, came_at)

    answered = threading.local()  # the SID the handler's thread created last, if any

    class Listener(twilio_server._Server):
        request_queue_size = 256  # a hundred clients may connect at once

    class Server(twilio_server.TwilioTestServer):
        server_class = Listener
        handler_class = Handler

        def answer(self, path, params, auth):
            result = super().answer(path, params, auth)
            answered.sid = result.sid
            return result

    return Server(), gauge


def _latency_smtp(latency_ms: int):
    """The tests' SMTP server, waiting ``latency_ms`` before it answers each DATA."""
    from tests.support.smtp_server import RecordingHandler, SmtpTestServer

    gauge = _Gauge()

    class Handler(RecordingHandler):
        async def handle_DATA(self, server, session, envelope):
            came_at = gauge.enter()
            reply = ""
            try:
                if latency_ms:
                    await asyncio.sleep(latency_ms / 1000)
                reply = await super().handle_DATA(server, session, envelope)
            finally:
                gauge.leave(reply.startswith("250"), came_at)
            return reply

    smtp = SmtpTestServer()
    smtp.handler = Handler()
    return smtp, gauge


def _serve_peer(connection, which: str, sms_latency_ms: int, smtp_latency_ms: int, sms_max_concurrent) -> None:
    """One peer in this process, the SMTP server (``"smtp"``) or the Twilio server (``"sms"``),
    answering the parent's commands about it (:meth:`Peers.ask` puts the two answers together)."""
    if which == "smtp":
        server, gauge = _latency_smtp(smtp_latency_ms)
        server.start()
        connection.send({"smtp_host": server.host, "smtp_port": server.port})

        def count() -> int:
            return len(server.messages)

        def tally() -> list:
            return [(m.message["Message-ID"], tuple(m.rcpt_tos)) for m in server.messages]

    else:
        server, gauge = _latency_twilio(sms_latency_ms, sms_max_concurrent)
        server.start()
        connection.send({"twilio_url": server.url, "account_sid": server.account_sid, "auth_token": server.auth_token})

        def count() -> int:
            return sum(1 for r in server.requests if r.sid)

        def tally() -> list:
            return [
                (r.params.get("StatusCallback", "").rsplit("=", 1)[-1], r.params.get("To"))
                for r in server.requests
                if r.sid
            ]

    while True:
        command = connection.recv()
        if command == "counts":
            connection.send(count())
        elif command == "tally":
            connection.send(tally())
        elif command == "gauges":
            connection.send(
                {
                    "accepted_at": list(gauge.accepted_at),
                    "answer_seconds": list(gauge.answer_seconds),
                    "max_in_flight": gauge.max_in_flight,
                    "refused_429": gauge.refused,
                }
            )
        elif command == "server_stop":
            server.stop()
            connection.send("ok")
        elif command == "server_start":
            server.start()
            connection.send("ok")
        elif command == "stop":
            server.stop()
            connection.send("stopped")
            return


class Peers:
    def __init__(self, *, sms_latency_ms: int = 0, smtp_latency_ms: int = 0, sms_max_concurrent: int | None = None):
        context = multiprocessing.get_context("spawn")
        self._children = {}
        self.info = {}
        for which in ("smtp", "sms"):
            connection, child = context.Pipe()
            process = context.Process(
                target=_serve_peer,
                args=(child, which, sms_latency_ms, smtp_latency_ms, sms_max_concurrent),
                daemon=True,
            )
            process.start()
            self._children[which] = (connection, process)
        for connection, _ in self._children.values():
            self.info.update(connection.recv())
        self._lock = threading.Lock()

    def _ask_one(self, which: str, command: str):
        connection, _ = self._children[which]
        connection.send(command)
        return connection.recv()

    def ask(self, command: str):
        """``"counts"`` and ``"tally"``: (the e-mails', the SMS') answers; ``"gauges"``: per
        channel; ``"smtp_stop"``/``"smtp_start"``: the SMTP server only; ``"stop"``: both."""
        with self._lock:
            if command in ("smtp_stop", "smtp_start"):
                return self._ask_one("smtp", command.replace("smtp", "server"))
            smtp, sms = (self._ask_one(which, command) for which in ("smtp", "sms"))
        if command == "gauges":
            return {"email": smtp, "sms": sms}
        return (smtp, sms)

    def pid(self, which: str) -> int:
        """The process id of the SMTP peer (``"smtp"``) or of the Twilio peer (``"sms"``)."""
        return self._children[which][1].pid

    def arrived(self) -> int:
        emails, texts = self.ask("counts")
        return emails + texts

    def tally(self, stopped_after: int | None = None) -> dict:
        """What arrived: totals, distinct messages, and the addresses that got each channel.
        ``stopped_after``: the number of e-mails the SMTP server held when it was stopped;
        ``duplicates_across_stop`` counts the e-mails whose first copy is among those and
        which came again after the restart."""
        emails, texts = self.ask("tally")
        across = 0
        if stopped_after is not None:
            first = {mid for mid, _ in emails[:stopped_after]}
            across = len({mid for mid, _ in emails[stopped_after:] if mid in first})
        return {
            "duplicates_across_stop": across,
            "emails": len(emails),
            "texts": len(texts),
            "duplicates": (len(emails) - len({mid for mid, _ in emails}))
            + (len(texts) - len({mid for mid, _ in texts})),
            "email_to": Counter(address for _, rcpts in emails for address in rcpts),
            "sms_to": Counter(to for _, to in texts),
        }

    def stop(self) -> None:
        try:
            self.ask("stop")
        finally:
            for _, process in self._children.values():
                process.join(10)

    def gauges(self) -> dict:
        """Per channel ("email", "sms"): ``accepted_at`` (wall-clock times of the acceptances, in
        order), ``answer_seconds`` (for each acceptance, in the same order, the peer's own time
        from the request -- the SMS's POST read, the e-mail's DATA received -- to its answer: the
        latency, plus whatever the peer's own queue added), ``max_in_flight`` and ``refused_429``
        (the Twilio peer's cap; 0 for e-mail)."""
        return self.ask("gauges")

    def counts(self) -> tuple[int, int]:
        """(e-mails, SMS) that arrived."""
        return self.ask("counts")
