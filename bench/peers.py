"""The gateways of the benchmarks and drills: the tests' SMTP server (aiosmtpd) and Twilio-speaking
HTTP server in a child process of their own, as real gateways run elsewhere (in the measured
process they would share its interpreter lock). The parent asks them over a pipe what arrived,
and may stop and restart the SMTP server (bench.drills)."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter


def _serve_peers(connection) -> None:
    from tests.support.smtp_server import SmtpTestServer
    from tests.support.twilio_server import TwilioTestServer

    smtp = SmtpTestServer().start()
    twilio = TwilioTestServer().start()
    connection.send(
        {
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "twilio_url": twilio.url,
            "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token,
        }
    )
    while True:
        command = connection.recv()
        if command == "counts":
            connection.send((len(smtp.messages), len([r for r in twilio.requests if r.sid])))
        elif command == "tally":
            emails = [(m.message["Message-ID"], tuple(m.rcpt_tos)) for m in smtp.messages]
            texts = [
                (r.params.get("StatusCallback", "").rsplit("=", 1)[-1], r.params.get("To"))
                for r in twilio.requests
                if r.sid
            ]
            connection.send((emails, texts))
        elif command == "smtp_stop":
            smtp.stop()
            connection.send("ok")
        elif command == "smtp_start":
            smtp.start()
            connection.send("ok")
        elif command == "stop":
            smtp.stop()
            twilio.stop()
            connection.send("stopped")
            return


class Peers:
    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve_peers, args=(child,), daemon=True)
        self._process.start()
        self.info = self._connection.recv()
        self._lock = threading.Lock()

    def ask(self, command: str):
        with self._lock:
            self._connection.send(command)
            return self._connection.recv()

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
            self._process.join(10)

    def counts(self) -> tuple[int, int]:
        """(e-mails, SMS) that arrived."""
        return self.ask("counts")
