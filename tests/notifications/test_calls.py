"""Phone calls: queued with send(), placed through the real twilio library against the local
Twilio server, answered by Twilio calling our signed webhooks (a key pressed, the call's statuses)."""

from __future__ import annotations

import threading
from xml.etree import ElementTree

import pytest
from sqlalchemy import select, update
from werkzeug.serving import make_server

from core.extensions import db
from notifications import voice
from notifications.dispatcher import Dispatcher
from notifications.models import Channel, Message, MessageEvent, Priority
from notifications.rendering import RenderError
from notifications.service import send
from tests.conftest import build_app, create_schema, log_in
from tests.support.twilio_server import gather_action

OFFICER = "+46701740605"
CALLER = "+46101234567"
REF_TYPE = "test.page"


class LiveApp:
    """The application served on 127.0.0.1, so that the local Twilio server can call its webhooks."""

    def __init__(self, database_url, clock, twilio_server, **overrides):
        holder: dict = {}
        self.server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        settings = {
            "TWILIO_ACCOUNT_SID": twilio_server.account_sid,
            "TWILIO_AUTH_TOKEN": twilio_server.auth_token,
            "TWILIO_FROM": "Krisrutin",
            "TWILIO_CALL_FROM": CALLER,
            "TWILIO_API_BASE_URL": twilio_server.url,
            "PUBLIC_BASE_URL": self.base_url,
            "CALL_RATE_PER_SECOND": "0",
            **overrides,
        }
        self.app = holder["app"] = build_app(database_url, clock, **settings)
        create_schema(self.app)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def live(sqlite_url, clock, twilio_server):
    """SQLite only: what is tested here is not database-specific (the lane's claims are, below)."""
    served = LiveApp(sqlite_url, clock, twilio_server)
    yield served
    served.stop()


class Handlers:
    """A domain's hooks: records what notifications hands it; a key "1" acknowledges."""

    def __init__(self, app):
        self.keys: list[tuple[int, str]] = []
        self.statuses: list[tuple[int, str, str]] = []
        voice.register_keypress_handler(app, REF_TYPE, self.keypress)
        voice.register_call_status_handler(app, REF_TYPE, self.call_status)

    def keypress(self, db_session, message, digits, now):
        self.keys.append((message.id, digits))
        return "Larmet är kvitterat. Tack." if digits == "1" else None

    def call_status(self, db_session, message, status, now):
        self.statuses.append((message.id, status, message.status))


def queue_call(app, clock, *, key="page:1", to=OFFICER, priority=Priority.URGENT) -> int:
    with app.app_context():
        (message,) = send(
            db_session=db.session,
            kind="test.hello",
            context={"name": "Anna", "link": "https://example.se/x"},
            channels=(Channel.CALL,),
            to_mobile=to,
            priority=priority,
            idempotency_key=key,
            ref=(REF_TYPE, 7),
            now=clock.now(),
        )
        db.session.commit()
        return message.id


def dispatch(app):
    return Dispatcher(app, name="call-test", listen=False, jitter=lambda: 1.0).run_until_idle(timeout=20)


def stored(app, message_id) -> tuple[Message, list[str]]:
    with app.app_context():
        message = db.session.get(Message, message_id)
        events = db.session.scalars(
            select(MessageEvent.status).where(MessageEvent.message_id == message_id).order_by(MessageEvent.id)
        ).all()
        db.session.expunge(message)
        return message, list(events)


def says(twiml: str) -> list[tuple[str | None, str]]:
    """Every <Say> of ``twiml`` (in order, inside gathers too): (language, text)."""
    return [(say.get("language"), say.text) for say in ElementTree.fromstring(twiml).iter("Say")]


def test_a_queued_call_rings_in_swedish_and_pressing_1_is_handed_to_the_domain(live, twilio_server, clock):
    handlers = Handlers(live.app)
    message_id = queue_call(live.app, clock)

    assert dispatch(live.app).sent == 1
    (call,) = twilio_server.wait_for(1, calls=True)
    assert call.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Calls.json"
    assert (call.params["To"], call.params["From"], call.params["Timeout"]) == (OFFICER, CALLER, "30")
    assert call.params["StatusCallback"] == f"{live.base_url}/webhooks/twilio/call-status?message={message_id}"
    assert call.params["StatusCallbackMethod"] == "POST"
    assert call.multi["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    root = ElementTree.fromstring(call.params["Twiml"])
    gathers = root.findall("Gather")
    assert len(gathers) == 2, "said twice before giving up"
    assert {(g.get("numDigits"), g.get("method"), g.get("timeout")) for g in gathers} == {("1", "POST", "8")}
    assert gather_action(call.params["Twiml"]) == f"{live.base_url}/webhooks/twilio/call-gather?message={message_id}"
    spoken = "Hej Anna. Det här är ett testsamtal från Krisrutin. Du behöver inte göra något. Tryck 1 för att kvittera."
    assert says(call.params["Twiml"]) == [("sv-SE", spoken)] * 2 + [("sv-SE", voice.NO_KEY)]
    assert root[-1].tag == "Hangup"
    message, _ = stored(live.app, message_id)
    assert (message.status, message.gateway, message.gateway_id, message.attempts) == ("sent", "twilio", call.sid, 1)

    status, body = twilio_server.press_key(call, "1")

    assert status == 200
    assert says(body) == [("sv-SE", "Larmet är kvitterat. Tack.")]
    assert ElementTree.fromstring(body)[-1].tag == "Hangup"
    assert handlers.keys == [(message_id, "1")]
    assert stored(live.app, message_id)[1][-1] == "call-key"


def test_status_callbacks_follow_the_call_and_reach_the_domain_once_each(live, twilio_server, clock):
    handlers = Handlers(live.app)
    message_id = queue_call(live.app, clock)
    dispatch(live.app)
    (call,) = twilio_server.wait_for(1, calls=True)

    for step in ("initiated", "ringing", "in-progress", "completed", "completed", "ringing"):
        assert twilio_server.post_call_status(call, step)[0] == 204

    message, events = stored(live.app, message_id)
    assert message.status == "delivered" and message.delivered_at == clock.now()
    assert handlers.statuses == [
        (message_id, "initiated", "sent"),
        (message_id, "ringing", "sent"),
        (message_id, "in-progress", "sent"),
        (message_id, "completed", "delivered"),
    ], "a repeated callback is recorded once and handed on once"
    assert events[-5:] == ["call-initiated", "call-ringing", "call-in-progress", "call-completed", "delivered"]


@pytest.mark.parametrize(
    ("outcome", "state"), [("no-answer", "undelivered"), ("busy", "undelivered"), ("failed", "failed")]
)
def test_a_call_not_answered_is_undelivered_and_the_domain_is_told(live, twilio_server, clock, outcome, state):
    handlers = Handlers(live.app)
    message_id = queue_call(live.app, clock)
    dispatch(live.app)
    (call,) = twilio_server.wait_for(1, calls=True)

    assert twilio_server.post_call_status(call, outcome)[0] == 204

    message, _ = stored(live.app, message_id)
    assert message.status == state
    assert handlers.statuses == [(message_id, outcome, state)]


def test_an_unknown_key_asks_once_more_then_says_goodbye(live, twilio_server, clock):
    handlers = Handlers(live.app)
    message_id = queue_call(live.app, clock)
    dispatch(live.app)
    (call,) = twilio_server.wait_for(1, calls=True)

    status, again = twilio_server.press_key(call, "7")
    assert status == 200
    assert says(again)[0] == ("sv-SE", "Okänt val.")
    assert len(ElementTree.fromstring(again).findall("Gather")) == 1
    assert gather_action(again).endswith(f"?message={message_id}&again=1")

    status, last = twilio_server.press_key(call, "9", twiml=again)
    assert status == 200
    assert says(last) == [("sv-SE", "Okänt val. Hej då.")]
    assert handlers.keys == [(message_id, "7"), (message_id, "9")]


def test_a_call_without_a_handler_for_its_reference_says_goodbye(live, twilio_server, clock):
    queue_call(live.app, clock)
    dispatch(live.app)
    (call,) = twilio_server.wait_for(1, calls=True)
    status, body = twilio_server.press_key(call, "1")
    assert status == 200 and says(body) == [("sv-SE", "Okänt val. Hej då.")]


def test_a_rate_limited_call_is_retried_without_using_up_an_attempt(live, twilio_server, clock):
    message_id = queue_call(live.app, clock)
    twilio_server.fail_next("rate_limited")

    report = dispatch(live.app)

    assert (report.retried, report.sent) == (1, 0)
    message, events = stored(live.app, message_id)
    assert (message.status, message.attempts) == ("queued", 0)
    assert "429" in message.last_error and events[-1] == "retry"
    clock.advance(seconds=10)
    assert dispatch(live.app).sent == 1
    assert stored(live.app, message_id)[0].attempts == 1
    assert len(twilio_server.calls) == 1


def test_an_invalid_number_fails_the_call_at_once(live, twilio_server, clock):
    message_id = queue_call(live.app, clock, to="+46700000001")
    twilio_server.fail_for_number("+46700000001", "invalid_number")

    report = dispatch(live.app)

    assert (report.failed, report.retried) == (1, 0)
    message, _ = stored(live.app, message_id)
    assert (message.status, message.attempts) == ("failed", 1)
    assert "21211" in message.last_error and "+46700000001" not in message.last_error
    assert twilio_server.calls == []


def test_webhooks_refuse_requests_not_signed_by_twilio(live, twilio_server, clock):
    handlers = Handlers(live.app)
    message_id = queue_call(live.app, clock)
    client = live.app.test_client()
    form = {"CallSid": "CA" + "0" * 32, "CallStatus": "completed", "Digits": "1"}
    for path in ("call-status", "call-gather"):
        assert client.post(f"/webhooks/twilio/{path}?message={message_id}", data=form).status_code == 403
        signed_by_another = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
        response = client.post(f"/webhooks/twilio/{path}?message={message_id}", data=form, headers=signed_by_another)
        assert response.status_code == 403
    assert handlers.keys == [] and handlers.statuses == []
    assert stored(live.app, message_id)[0].status == "queued"


def test_webhooks_answer_unknown_calls_and_refuse_bad_input(live, twilio_server, clock):
    from tests.support.twilio_server import post_status_callback

    token = twilio_server.auth_token
    base = live.base_url
    sid = "CA" + "1" * 32
    status, body = post_status_callback(
        f"{base}/webhooks/twilio/call-gather?message=999", {"CallSid": sid, "Digits": "1"}, auth_token=token
    )
    assert status == 200 and says(body) == [("sv-SE", "Hej då.")]
    status, _ = post_status_callback(
        f"{base}/webhooks/twilio/call-status?message=999", {"CallSid": sid, "CallStatus": "completed"}, auth_token=token
    )
    assert status == 204
    message_id = queue_call(live.app, clock)
    status, _ = post_status_callback(
        f"{base}/webhooks/twilio/call-status?message={message_id}",
        {"CallSid": sid, "CallStatus": "exploded"},
        auth_token=token,
    )
    assert status == 400
    status, _ = post_status_callback(
        f"{base}/webhooks/twilio/call-gather?message={message_id}", {"CallSid": sid, "Digits": "12"}, auth_token=token
    )
    assert status == 400
    status, body = post_status_callback(
        f"{base}/webhooks/twilio/call-gather?message={message_id}", {"CallSid": sid}, auth_token=token
    )
    assert status == 200 and says(body) == [("sv-SE", "Hej då.")]
    assert stored(live.app, message_id)[0].status == "queued"


def test_calls_go_to_the_console_without_twilio_and_the_page_shows_what_is_said(app, client, make_user, clock):
    assert app.extensions["krisrutin.channels"].call_gateway == "console"
    message_id = queue_call(app, clock)

    assert dispatch(app).sent == 1

    message, _ = stored(app, message_id)
    assert (message.status, message.gateway) == ("sent", "console")
    _, username, password = make_user("team")
    log_in(client, username, password)
    page = client.get("/notifications/console").get_data(as_text=True)
    assert "Samtal till" in page
    assert "Hej Anna. Det här är ett testsamtal från Krisrutin." in page


def test_send_refuses_a_call_without_its_text_or_a_phone_number(make_app, clock):
    app = make_app()
    with app.app_context():
        common = {
            "db_session": db.session,
            "channels": (Channel.CALL,),
            "priority": Priority.URGENT,
            "now": clock.now(),
        }
        with pytest.raises(ValueError, match="no call text"):
            send(
                kind="generic", context={"subject": "s", "body": "b"}, to_mobile=OFFICER, idempotency_key="a", **common
            )
        with pytest.raises(RenderError, match="unknown message kind"):
            send(kind="no.such.kind", context={}, to_mobile=OFFICER, idempotency_key="b", **common)
        with pytest.raises(ValueError, match=r"E\.164"):
            send(
                kind="test.hello",
                context={"name": "A", "link": "https://example.se"},
                to_mobile="0701740605",
                idempotency_key="c",
                **common,
            )
        # A landline can be called.
        (message,) = send(
            kind="test.hello",
            context={"name": "A", "link": "https://example.se"},
            to_mobile="+4686001000",
            idempotency_key="d",
            **common,
        )
        assert message.to_address == "+4686001000" and message.body_text.startswith("Hej A.")
        db.session.rollback()


def test_each_hook_has_one_owner_per_reference_type(make_app):
    app = make_app()

    def first(*args):
        return None

    def second(*args):
        return None

    voice.register_keypress_handler(app, "incident", first)
    voice.register_keypress_handler(app, "incident", first)  # the same again: harmless
    voice.register_keypress_handler(app, "handover", second)
    with pytest.raises(ValueError, match="already registered"):
        voice.register_keypress_handler(app, "incident", second)
    voice.register_call_status_handler(app, "incident", second)
    with pytest.raises(ValueError, match="already registered"):
        voice.register_call_status_handler(app, "incident", first)


def test_a_long_call_text_is_said_once_and_one_too_long_for_twilio_fails_clearly(twilio_server):
    from config.settings import load_settings
    from notifications.channels.base import OutgoingCall, PermanentFailure
    from notifications.channels.twilio_call import TwilioCall

    settings = {
        "KRISRUTIN_ENV": "testing",
        "TWILIO_ACCOUNT_SID": twilio_server.account_sid,
        "TWILIO_AUTH_TOKEN": twilio_server.auth_token,
        "TWILIO_FROM": CALLER,
        "TWILIO_API_BASE_URL": twilio_server.url,
    }
    gateway = TwilioCall(load_settings(settings, environ={}))
    try:
        url = "https://krisrutin.example.se/webhooks/twilio/call-gather?message=1"
        status = "https://krisrutin.example.se/webhooks/twilio/call-status?message=1"
        gateway.place_call(OutgoingCall(OFFICER, "Larm. " * 400, url, status))
        (call,) = twilio_server.wait_for(1, calls=True)
        assert len(ElementTree.fromstring(call.params["Twiml"]).findall("Gather")) == 1
        with pytest.raises(PermanentFailure, match="too long"):
            gateway.place_call(OutgoingCall(OFFICER, "Larm. " * 700, url, status))
    finally:
        gateway.close()


def test_a_failing_keypress_handler_changes_nothing_and_the_caller_hears_an_apology(live, twilio_server, clock):
    def broken(db_session, message, digits, now):
        db_session.execute(update(Message).where(Message.id == message.id).values(status="cancelled"))
        raise RuntimeError("a bug in the domain")

    voice.register_keypress_handler(live.app, REF_TYPE, broken)
    message_id = queue_call(live.app, clock)
    dispatch(live.app)
    (call,) = twilio_server.wait_for(1, calls=True)

    status, body = twilio_server.press_key(call, "1")

    assert status == 200
    assert says(body) == [("sv-SE", voice.APOLOGY)]
    message, events = stored(live.app, message_id)
    assert message.status == "sent" and "call-key" not in events


def test_a_failing_call_status_handler_keeps_the_calls_own_record(live, twilio_server, clock):
    def broken(db_session, message, status, now):
        db_session.execute(update(Message).where(Message.id == message.id).values(status="cancelled"))
        raise RuntimeError("a bug in the domain")

    voice.register_call_status_handler(live.app, REF_TYPE, broken)
    message_id = queue_call(live.app, clock)
    dispatch(live.app)
    (call,) = twilio_server.wait_for(1, calls=True)

    assert twilio_server.post_call_status(call, "completed")[0] == 204, "no 500: Twilio would retry"

    message, events = stored(live.app, message_id)
    assert message.status == "delivered", "the handler's change is rolled back, the call's status stands"
    assert events[-2:] == ["call-completed", "delivered"]


def test_a_calls_gateway_that_keeps_failing_marks_the_channel_degraded(live, twilio_server, clock):
    queue_call(live.app, clock)
    twilio_server.fail_next("server_error", times=5)
    for _ in range(5):
        assert dispatch(live.app).retried == 1
        clock.advance(hours=1)

    body = live.app.test_client().get("/readyz").get_json()
    assert body["channels"] == {"email": "ok", "sms": "ok", "call": "degraded"}
    assert body["warnings"][0].startswith("call channel degraded since")
    assert dispatch(live.app).sent == 1
    assert live.app.test_client().get("/readyz").get_json()["channels"]["call"] == "ok"
