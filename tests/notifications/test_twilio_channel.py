"""The Twilio SMS channel, through the real twilio library, against a local Twilio-speaking server."""

import base64
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from twilio.request_validator import RequestValidator

from config.settings import load_settings
from notifications.channels.base import OutgoingSms, PermanentFailure, TransientFailure
from notifications.channels.twilio_sms import ADDRESS_REJECTED_CODES, TwilioSms, _BaseUrlHttpClient, check_sender_id

TO = "+46701740605"
CALLBACK = "https://krisrutin.kommun.example.se/notifications/twilio/status/42"


def settings_for(server, **overrides):
    values = {
        "KRISRUTIN_ENV": "testing",
        "TWILIO_ACCOUNT_SID": server.account_sid,
        "TWILIO_AUTH_TOKEN": server.auth_token,
        "TWILIO_FROM": "Krisrutin",
        "TWILIO_API_BASE_URL": server.url,
        **overrides,
    }
    return load_settings(values, environ={})


@pytest.fixture
def channel(twilio_server):
    sender = TwilioSms(settings_for(twilio_server))
    yield sender
    sender.close()


def test_sms_arrives_with_to_from_body_and_status_callback_as_sent(channel, twilio_server):
    body = "Hej! Larmtjänsten är nere. Svara JA om ni har läst. €"

    sid = channel.send_sms(OutgoingSms(to=TO, body=body, status_callback=CALLBACK))

    (request,) = twilio_server.wait_for(1)
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.params == {"To": TO, "From": "Krisrutin", "Body": body, "StatusCallback": CALLBACK}
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.auth == (twilio_server.account_sid, twilio_server.auth_token)
    assert sid == request.sid
    assert sid.startswith("SM") and len(sid) == 34


def test_no_status_callback_parameter_when_none_is_given(channel, twilio_server):
    channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))
    (request,) = twilio_server.wait_for(1)
    assert "StatusCallback" not in request.params


def test_sender_can_be_a_phone_number(twilio_server):
    sender = TwilioSms(settings_for(twilio_server, TWILIO_FROM="+46766860001"))
    sender.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))
    assert twilio_server.wait_for(1)[0].params["From"] == "+46766860001"


def test_many_sms_each_get_their_own_sid(channel, twilio_server):
    sids = [channel.send_sms(OutgoingSms(to=TO, body=f"Meddelande {n}", status_callback=None)) for n in range(5)]
    assert len(set(sids)) == 5
    assert [r.sid for r in twilio_server.wait_for(5)] == sids


@pytest.mark.parametrize("kind", ["invalid_number", "unsubscribed", "not_mobile"])
def test_recipient_errors_are_permanent_and_reject_the_address(channel, twilio_server, kind):
    twilio_server.fail_next(kind)

    with pytest.raises(PermanentFailure) as caught:
        channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))

    assert caught.value.address_rejected is True
    assert TO not in str(caught.value)  # Twilio's own message names the number; ours must not


def test_the_codes_that_reject_an_address_are_the_documented_ones():
    assert {21211, 21610, 21612, 21614} <= ADDRESS_REJECTED_CODES
    assert 21408 not in ADDRESS_REJECTED_CODES


def test_region_not_enabled_is_permanent_but_not_the_addresses_fault(channel, twilio_server):
    twilio_server.fail_next("region_disabled")
    with pytest.raises(PermanentFailure) as caught:
        channel.send_sms(OutgoingSms(to="+15005550006", body="Hej", status_callback=None))
    assert caught.value.address_rejected is False
    assert "21408" in str(caught.value)


def test_rate_limit_is_transient_with_retry_after(channel, twilio_server):
    twilio_server.fail_next("rate_limited")

    with pytest.raises(TransientFailure) as caught:
        channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))

    assert caught.value.retry_after == 7.0
    assert "429" in str(caught.value)
    # The next one goes through.
    channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))
    assert len(twilio_server.wait_for(1)) == 1


def test_server_error_is_transient(channel, twilio_server):
    twilio_server.fail_next("server_error")
    with pytest.raises(TransientFailure, match="500"):
        channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))


def test_failures_for_one_number_leave_others_alone(channel, twilio_server):
    twilio_server.fail_for_number("+46700000001", "unsubscribed")
    with pytest.raises(PermanentFailure):
        channel.send_sms(OutgoingSms(to="+46700000001", body="Hej", status_callback=None))
    channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))
    assert [r.params["To"] for r in twilio_server.wait_for(1)] == [TO]


def test_server_down_is_transient(channel, twilio_server):
    channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))
    twilio_server.stop()

    with pytest.raises(TransientFailure, match="could not reach Twilio"):
        channel.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))


def test_wrong_auth_token_is_transient_and_names_the_settings(twilio_server):
    sender = TwilioSms(settings_for(twilio_server, TWILIO_AUTH_TOKEN="not-the-token"))
    with pytest.raises(TransientFailure) as caught:
        sender.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))
    assert "401" in str(caught.value)
    assert "TWILIO_AUTH_TOKEN" in str(caught.value)
    assert "not-the-token" not in str(caught.value)
    assert twilio_server.messages == []


class _SlowHandler(BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self):
        self.release.wait(5)

    def log_message(self, *args):
        pass


def test_a_gateway_that_does_not_answer_times_out_as_transient(twilio_server):
    slow = HTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=slow.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        settings = settings_for(twilio_server, TWILIO_API_BASE_URL=f"http://127.0.0.1:{slow.server_address[1]}")
        sender = TwilioSms(settings, timeout=0.2)
        with pytest.raises(TransientFailure, match="did not answer in time"):
            sender.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=None))
    finally:
        _SlowHandler.release.set()
        slow.shutdown()
        slow.server_close()


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Messages.json"),
        ("http://mock.local:4010/twilio", "http://mock.local:4010/twilio/2010-04-01/Accounts/AC1/Messages.json"),
        ("https://api.twilio.com", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"),
    ],
)
def test_base_url_replaces_scheme_and_host_of_twilio_api_urls(base_url, expected):
    client = _BaseUrlHttpClient(base_url, timeout=1)
    assert client._rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json") == expected


@pytest.mark.parametrize("sender", ["Krisrutin", "Kommun 1", "A", "Valfard2026", "+46766860001", "+15005550006"])
def test_valid_senders(sender):
    assert check_sender_id(sender) == sender


@pytest.mark.parametrize(
    "sender",
    ["", "Välfärd", "KrisrutinenX1", "12345", "0766860001", "+46-76-686", "Kris_rutin", "+0123456789"],
)
def test_invalid_sender_is_refused_at_construction_with_a_clear_message(twilio_server, sender):
    with pytest.raises(ValueError, match="TWILIO_FROM"):
        TwilioSms(settings_for(twilio_server, TWILIO_FROM=sender))


def test_status_callback_helper_posts_a_signature_twilio_would_accept(twilio_server):
    """The webhook tests rely on this: a signed callback, as Twilio sends it, to a real URL."""
    received = {}

    class Webhook(BaseHTTPRequestHandler):
        def do_POST(self):
            from urllib.parse import parse_qsl

            length = int(self.headers["Content-Length"])
            received["params"] = dict(parse_qsl(self.rfile.read(length).decode()))
            received["signature"] = self.headers["X-Twilio-Signature"]
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    webhook = HTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=webhook.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        sender = TwilioSms(settings_for(twilio_server))
        sender.send_sms(OutgoingSms(to=TO, body="Hej", status_callback=CALLBACK))
        (message,) = twilio_server.wait_for(1)
        url = f"http://127.0.0.1:{webhook.server_address[1]}/notifications/twilio/status/42"
        params = twilio_server.status_callback_params(message, "delivered")

        status, _ = twilio_server.post_status_callback(url, params)
    finally:
        webhook.shutdown()
        webhook.server_close()

    assert status == 204
    assert received["params"]["MessageSid"] == message.sid
    assert received["params"]["MessageStatus"] == "delivered"
    validator = RequestValidator(twilio_server.auth_token)
    assert validator.validate(url, received["params"], received["signature"])
    assert not RequestValidator("another-token").validate(url, received["params"], received["signature"])


def test_the_local_server_refuses_requests_without_basic_auth(twilio_server):
    import json
    import urllib.error
    import urllib.request

    url = f"{twilio_server.url}/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    request = urllib.request.Request(url, data=b"To=%2B46701740605&From=Krisrutin&Body=Hej", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    body = json.loads(caught.value.read())
    assert (caught.value.code, body["code"], body["status"]) == (401, 20003, 401)
    assert set(body) == {"code", "message", "more_info", "status"}

    token = base64.b64encode(f"{twilio_server.account_sid}:{twilio_server.auth_token}".encode()).decode()
    missing_body = urllib.request.Request(
        url, data=b"To=%2B46701740605&From=Krisrutin", method="POST", headers={"Authorization": f"Basic {token}"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(missing_body, timeout=5)
    assert json.loads(caught.value.read())["code"] == 21602
