"""Contract test against Twilio's own OpenAPI description: Prism (``@stoplight/prism-cli``, from
package.json) serves tests/contracts/twilio_api_v2010.json as a mock with ``--errors``, so a
request that does not match Twilio's description (path, basic auth, form fields) is answered with
a 4xx problem+json instead of a made-up 201. The service's Twilio channel is pointed at it with
TWILIO_API_BASE_URL, and our real SMS traffic goes through the real dispatcher: the monthly
check's invitation, an information letter and a visit alert, each with the production status
callback. Each must reach 'sent' and Prism must log no violation. A phone call (the Calls
resource) is checked the same way, up to one known Prism limitation (see PRISM_ARRAY_LIMITATION).

Skipped when node or Prism is missing (``npm ci`` installs Prism), except with REQUIRE_PRISM=1
(.ci/run), which fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from accounts.models import User
from accounts.service import create_token, create_user
from contacts import register
from contacts.register import Actor
from core.clock import FixedClock
from core.extensions import db
from notifications.dispatcher import Dispatcher
from notifications.models import Message
from scheduling.service import tick
from tests.conftest import build_app, create_schema

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "contracts" / "twilio_api_v2010.json"
PRISM = ROOT / "node_modules" / ".bin" / "prism"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC_BASE_URL = "https://krisrutin.kommun.example.se"
VIOLATION = re.compile(r"Request did not pass the validation rules|Request terminated with error|✖")
STARTUP_SECONDS = 60


def _missing(reason: str):
    if os.environ.get("REQUIRE_PRISM") == "1":
        pytest.fail(f"Prism is required (REQUIRE_PRISM=1) but {reason}; run `npm ci --no-audit --no-fund`")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Prism:
    """A running ``prism mock --errors`` and its log (stdout and stderr, in one file)."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process, self.port, self.log_path = process, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self._mark = 0

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def new_log(self) -> str:
        """What Prism logged since the last call."""
        text = self.log()
        new, self._mark = text[self._mark :], len(text)
        return new

    def answered(self, count: int, timeout: float = 10.0) -> tuple[list[str], list[str]]:
        """(requests, violation lines) Prism logged since the last call, once it has logged an
        answer to ``count`` requests (its log is written asynchronously)."""
        deadline = time.monotonic() + timeout
        text = ""
        while True:
            text += self.new_log()
            requests = re.findall(r"\[HTTP SERVER\] (\w+ \S+) ℹ\s+info\s+Request received", text)
            answers = len(re.findall(r"> Responding with|Request terminated with error", text))
            if (len(requests) >= count and answers >= count) or time.monotonic() > deadline:
                violations = [line for line in text.splitlines() if VIOLATION.search(line)]
                return requests, violations
            time.sleep(0.05)


@pytest.fixture(scope="session")
def prism(tmp_path_factory):
    if shutil.which("node") is None:
        _missing("node is not installed")
    if not PRISM.exists():
        _missing(f"{PRISM.relative_to(ROOT)} is missing")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("prism") / "prism.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [str(PRISM), "mock", str(SPEC), "--host", "127.0.0.1", "--port", str(port), "--errors"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Prism(process, port, log_path)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Prism is listening" not in server.log():
            if process.poll() is not None:
                pytest.fail(f"Prism exited with {process.returncode}:\n{server.log()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"Prism did not start in {STARTUP_SECONDS} s:\n{server.log()[-2000:]}")
            time.sleep(0.1)
        server.new_log()  # the start-up listing of every route is not part of any test
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def clock():
    """Tuesday 1 December 2026, 09:00 in Stockholm: the day the December check is sent."""
    return FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=STOCKHOLM))


@pytest.fixture
def app(prism, sqlite_url, clock):
    application = build_app(
        sqlite_url,
        clock,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM="Krisrutin",
        TWILIO_API_BASE_URL=prism.url,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        TEAM_EMAIL="valfardsteknik@kommun.example.se",
        TEAM_MOBILE="+46701999999",
    )
    create_schema(application)
    prism.new_log()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


TEAM = Actor("team")


@pytest.fixture
def outgoing(monkeypatch):
    """The form fields of every request the Twilio channel makes (observed, then sent on as is)."""
    from notifications.channels.twilio_sms import _BaseUrlHttpClient
    from notifications.channels.twilio_sms_async import _AsyncBaseUrlHttpClient

    seen: list[dict] = []
    send = _BaseUrlHttpClient.request
    send_async = _AsyncBaseUrlHttpClient.request

    def observed(self, method, url, *args, **kwargs):  # calls
        seen.append(dict(kwargs.get("data") or {}))
        return send(self, method, url, *args, **kwargs)

    async def observed_async(self, method, url, *args, **kwargs):  # SMS, from the asynchronous lane
        seen.append(dict(kwargs.get("data") or {}))
        return await send_async(self, method, url, *args, **kwargs)

    monkeypatch.setattr(_BaseUrlHttpClient, "request", observed)
    monkeypatch.setattr(_AsyncBaseUrlHttpClient, "request", observed_async)
    return seen


def _register(app, clock) -> dict[str, int]:
    """Two providers with a contact each (both with mobiles), made through the register."""
    ids = {}
    with app.app_context():
        for provider_name, person in (
            ("Hemtjänst Norr", {"name": "Anna Lind", "mobile": "070-100 00 01", "email": "anna@norr.se"}),
            ("Omsorg Söder AB", {"name": "Cia Berg", "mobile": "+46701000003", "email": "cia@soder.se"}),
        ):
            provider = register.create_provider(
                db.session, {"name": provider_name, "kind": "municipal"}, actor=TEAM, now=clock.now()
            ).record
            register.create_contact(
                db.session,
                provider,
                {**person, "services": ["camera_supervision", "alarms"]},
                actor=TEAM,
                now=clock.now(),
            )
            ids[provider_name] = provider.id
        db.session.commit()
    return ids


def _token(app, clock, role: str) -> str:
    with app.app_context():
        user = create_user(
            db_session=db.session,
            username=f"twilio-{role.replace('_', '-')}",
            display_name=role,
            role=role,
            now=clock.now(),
            password="a-long-test-password" if role == "team" else None,
        )
        _, secret = create_token(db_session=db.session, user=db.session.get(User, user.id), name="t", now=clock.now())
        db.session.commit()
        return secret


def _api(app, token: str, method: str, url: str, body: dict) -> dict:
    response = app.test_client().open(url, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), (method, url, response.get_json())
    return response.get_json()


def _send_and_check(app, prism, outgoing) -> dict[str, list[str]]:
    """Run the dispatcher until idle: every queued SMS is 'sent', went out once with our sender,
    its text and the production status callback, and Prism logged no violation. Returns the
    recipients by kind of message."""
    Dispatcher(app, name="prism-test", jitter=lambda: 1.0, listen=False).run_until_idle(timeout=30)
    with app.app_context():
        sms = db.session.scalars(select(Message).where(Message.channel == "sms").order_by(Message.id)).all()
        requests, violations = prism.answered(len(sms))
        states = [(message.kind, message.status, message.last_error) for message in sms]
        expected = [
            {
                "To": message.to_address,
                "From": "Krisrutin",
                "Body": message.body_text,
                "StatusCallback": f"{PUBLIC_BASE_URL}/webhooks/twilio/status?message={message.id}",
            }
            for message in sms
        ]
        by_kind: dict[str, list[str]] = {}
        for message in sms:
            by_kind.setdefault(message.kind, []).append(message.to_address)
        db.session.remove()
    assert violations == [], "Prism refused what we sent:\n" + "\n".join(violations)
    assert [state for state in states if state[1] != "sent"] == [], states
    assert requests == [f"post /2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"] * len(sms)
    assert sorted(outgoing, key=str) == sorted(expected, key=str)
    return {kind: sorted(recipients) for kind, recipients in by_kind.items()}


def test_the_monthly_check_invitation_sms_matches_twilios_description(app, prism, outgoing, clock):
    _register(app, clock)
    for _ in range(2):  # the planner schedules the month's check; the next tick runs it
        with app.app_context():
            tick(db_session=db.session, now=clock.now())
            db.session.remove()
    assert _send_and_check(app, prism, outgoing) == {"check.invite": ["+46701000001", "+46701000003"]}


def test_an_information_letter_sms_matches_twilios_description(app, prism, outgoing, clock):
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=STOCKHOLM))  # Tuesday, office hours
    _register(app, clock)
    notice = {
        "title": "GSM-störning hos Telia",
        "service": "camera_supervision",
        "letter": {
            "subject": "Driftstörning i kameratillsynen",
            "body": "Kameratillsynen fungerar inte i norra kommundelen. Gör fysiska besök enligt era rutiner.",
        },
    }
    _api(app, _token(app, clock, "team"), "POST", "/api/v1/notices", notice)
    sent = _send_and_check(app, prism, outgoing)
    assert sent["crisis.letter"] == ["+46701000001", "+46701000003"], sent


def test_a_visit_alert_sms_matches_twilios_description(app, prism, outgoing, clock):
    clock.set(datetime(2026, 11, 24, 9, 30, tzinfo=STOCKHOLM))
    providers = _register(app, clock)
    operator = _token(app, clock, "alarm_operator")
    client = {
        "reference": "NORR-0001",
        "provider_id": providers["Hemtjänst Norr"],
        "area": "Norr",
        "schedules": [{"weekdays": ["mon", "tue", "wed", "thu", "fri"], "times": ["09:00", "21:00"]}],
    }
    _api(app, operator, "PUT", "/api/v1/supervised-clients", {"clients": [client]})
    failure = {"reference": "NORR-0001", "scheduled_at": "2026-11-24T09:00:00+01:00", "reason": "Ingen bild"}
    _api(app, operator, "POST", "/api/v1/supervision-failures", failure)
    assert _send_and_check(app, prism, outgoing) == {"crisis.visit.alert": ["+46701000001"]}


def test_prism_refuses_a_message_without_a_recipient(app, prism):
    """The check can fail: a raw request through the twilio library without To is refused (422),
    and one without the account's basic auth too (401)."""
    from twilio.rest import Client

    from notifications.channels.twilio_sms import _BaseUrlHttpClient

    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=_BaseUrlHttpClient(prism.url, timeout=10))
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    no_recipient = client.request("POST", url, data={"From": "Krisrutin", "Body": "Hej"})
    no_auth = client.http_client.request("POST", url, data={"To": "+46701000001", "From": "Krisrutin", "Body": "Hej"})
    assert (no_recipient.status_code, no_auth.status_code) == (422, 401)
    _, violations = prism.answered(2)
    assert any("must have required property 'To'" in line for line in violations), violations
    assert any("Invalid security scheme used" in line for line in violations), violations


# Prism 5 reads a form body's repeated keys as one value (the last), so it calls Twilio's own
# encoding of an array (StatusCallbackEvent=initiated&StatusCallbackEvent=ringing&..., as the twilio
# library sends it and Twilio documents it) "not an array": stoplightio/prism#2654, open. That one
# false finding (with Prism's summary of it and the 422 it answers with) is set aside; any other
# finding fails the test, and Prism prints each finding on a line of its own.
PRISM_ARRAY_LIMITATION = "Request body property StatusCallbackEvent must be array"


def test_a_call_matches_twilios_description(prism, sqlite_url, clock, outgoing):
    """A call queued with send() and placed by the dispatcher: the Calls request (To, From,
    Twiml, StatusCallback, StatusCallbackEvent, StatusCallbackMethod, Timeout) passes Prism."""
    from notifications.models import Channel, Priority
    from notifications.service import send

    app = build_app(
        sqlite_url,
        clock,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM="Krisrutin",
        TWILIO_CALL_FROM="+46101234567",
        TWILIO_API_BASE_URL=prism.url,
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
    )
    create_schema(app)
    prism.new_log()
    with app.app_context():
        (call,) = send(
            db_session=db.session,
            kind="test.hello",
            context={"name": "Anna", "link": "https://example.se"},
            channels=(Channel.CALL,),
            to_mobile="+46701000001",
            priority=Priority.URGENT,
            idempotency_key="contract:call",
            ref=("incident", 1),
            now=clock.now(),
        )
        db.session.commit()
        call_id = call.id
    Dispatcher(app, name="prism-call", jitter=lambda: 1.0, listen=False).run_until_idle(timeout=30)
    requests, violations = prism.answered(1)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()

    assert requests == [f"post /2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"]
    if any(PRISM_ARRAY_LIMITATION in line for line in violations):
        violations = [
            line
            for line in violations
            if PRISM_ARRAY_LIMITATION not in line
            and "Request terminated with error" not in line
            and "Request did not pass the validation rules" not in line
        ]
    assert violations == [], "Prism refused what we sent:\n" + "\n".join(violations)
    (sent,) = outgoing
    assert (sent["To"], sent["From"], sent["Timeout"]) == ("+46701000001", "+46101234567", 30)
    assert sent["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert sent["StatusCallbackMethod"] == "POST"
    assert sent["StatusCallback"] == f"{PUBLIC_BASE_URL}/webhooks/twilio/call-status?message={call_id}"
    assert 'language="sv-SE"' in sent["Twiml"] and 'numDigits="1"' in sent["Twiml"]
