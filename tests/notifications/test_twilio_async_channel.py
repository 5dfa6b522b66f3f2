"""The asynchronous Twilio SMS channel (issue 18), through the real twilio library's async path and
aiohttp, against the local Twilio-speaking server (and bench.peers' capped one for concurrency).

Each test runs its own event loop with ``asyncio.run`` and builds the adapter inside it, as the
lane does; the server's records are read after the loop has finished."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bench.peers import _latency_twilio
from notifications.channels.base import OutgoingSms, PermanentFailure, TransientFailure
from notifications.channels.twilio_sms_async import AsyncTwilioSms
from tests.notifications.test_twilio_channel import CALLBACK, TO, settings_for


def run(settings, scenario, *, max_in_flight: int = 10, timeout: float = 5.0):
    """``await scenario(sender)`` in a new event loop, the adapter built in it and closed after."""

    async def main():
        sender = AsyncTwilioSms(settings, max_in_flight=max_in_flight, timeout=timeout)
        try:
            return await scenario(sender)
        finally:
            await sender.aclose()

    return asyncio.run(main())


def send(settings, sms: OutgoingSms, **options) -> str:
    return run(settings, lambda sender: sender.send_sms(sms), **options)


def sms(to: str = TO, body: str = "Hej", status_callback: str | None = None) -> OutgoingSms:
    return OutgoingSms(to=to, body=body, status_callback=status_callback)


def send_all(settings, messages: list[OutgoingSms], **options) -> list:
    """Every message sent at once; each one's SID or failure, in order."""

    async def scenario(sender):
        return await asyncio.gather(*(sender.send_sms(m) for m in messages), return_exceptions=True)

    return run(settings, scenario, **options)


# -- one message ---------------------------------------------------------------------------------


def test_sms_arrives_with_to_from_body_and_status_callback_as_sent(twilio_server):
    body = "Hej! Larmtjänsten är nere. Svara JA om ni har läst. €"

    sid = send(settings_for(twilio_server), sms(body=body, status_callback=CALLBACK))

    (request,) = twilio_server.wait_for(1)
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.params == {"To": TO, "From": "Krisrutin", "Body": body, "StatusCallback": CALLBACK}
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.auth == (twilio_server.account_sid, twilio_server.auth_token)
    assert sid == request.sid
    assert sid.startswith("SM") and len(sid) == 34


def test_no_status_callback_parameter_when_none_is_given(twilio_server):
    send(settings_for(twilio_server), sms())
    (request,) = twilio_server.wait_for(1)
    assert "StatusCallback" not in request.params


def test_the_sdks_request_log_names_no_recipient(twilio_server, caplog):
    """The SDK's own request lines, for whoever turns them on (the service keeps them off)."""
    twilio_server.fail_next("invalid_number")  # Twilio's answer quotes the number
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="twilio")

    async def scenario(sender):
        with pytest.raises(PermanentFailure):
            await sender.send_sms(sms(body="Hej Anna"))
        await sender.send_sms(sms(body="Hej Anna"))

    run(settings_for(twilio_server), scenario)

    assert "Messages.json" in caplog.text  # the SDK did log its requests
    assert TO not in caplog.text
    assert "Hej Anna" not in caplog.text
    assert twilio_server.auth_token not in caplog.text


def test_the_service_does_not_log_the_sdks_nine_lines_per_request(app, twilio_server, caplog):
    """With the service's logging at INFO (``app``: create_app configured it), an SMS costs no
    "-- BEGIN Twilio API Request --", URL and header lines: 27,000 of them for a big letter."""
    caplog.set_level(logging.INFO)
    send(settings_for(twilio_server), sms())
    assert twilio_server.wait_for(1)
    assert not [record for record in caplog.records if record.name.startswith("twilio")]


def test_one_adapter_sends_one_message_after_another(twilio_server):
    async def scenario(sender):
        return [await sender.send_sms(sms(body=f"Meddelande {n}")) for n in range(5)]

    sids = run(settings_for(twilio_server), scenario)

    assert len(set(sids)) == 5
    assert [r.sid for r in twilio_server.wait_for(5)] == sids


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["invalid_number", "unsubscribed", "not_mobile"])
def test_recipient_errors_are_permanent_and_reject_the_address(twilio_server, kind):
    twilio_server.fail_next(kind)

    with pytest.raises(PermanentFailure) as caught:
        send(settings_for(twilio_server), sms())

    assert caught.value.address_rejected is True
    assert TO not in str(caught.value)  # Twilio's own message names the number; ours must not


def test_region_not_enabled_is_permanent_but_not_the_addresses_fault(twilio_server):
    twilio_server.fail_next("region_disabled")
    with pytest.raises(PermanentFailure) as caught:
        send(settings_for(twilio_server), sms(to="+15005550006"))
    assert caught.value.address_rejected is False
    assert "21408" in str(caught.value)
    assert "+15005550006" not in str(caught.value)


def test_rate_limit_is_transient_with_retry_after_and_not_retried_by_the_adapter(twilio_server):
    twilio_server.fail_next("rate_limited")

    async def scenario(sender):
        with pytest.raises(TransientFailure) as caught:
            await sender.send_sms(sms())
        return caught.value, await sender.send_sms(sms())

    failure, sid = run(settings_for(twilio_server), scenario)

    assert failure.rate_limited is True
    assert failure.retry_after == 7.0
    assert "429" in str(failure)
    # One request for the refused send (the dispatcher decides retries), then the next one went through.
    assert [r.status for r in twilio_server.requests] == [429, 201]
    assert twilio_server.messages[0].sid == sid


def test_server_error_is_transient_and_not_retried_by_the_adapter(twilio_server):
    twilio_server.fail_next("server_error")
    with pytest.raises(TransientFailure, match="500") as caught:
        send(settings_for(twilio_server), sms())
    assert caught.value.rate_limited is False
    assert [r.status for r in twilio_server.requests] == [500]


def test_wrong_auth_token_is_transient_and_names_the_settings(twilio_server):
    settings = settings_for(twilio_server, TWILIO_AUTH_TOKEN="not-the-token")
    with pytest.raises(TransientFailure) as caught:
        send(settings, sms())
    assert "401" in str(caught.value)
    assert "TWILIO_AUTH_TOKEN" in str(caught.value)
    assert "not-the-token" not in str(caught.value)
    assert twilio_server.messages == []


def test_server_gone_after_a_send_is_transient(twilio_server):
    """The first send leaves a keep-alive connection in the pool; the server then goes away."""

    async def scenario(sender):
        await sender.send_sms(sms())
        twilio_server.stop()
        with pytest.raises(TransientFailure, match="could not reach Twilio") as caught:
            await sender.send_sms(sms())
        return caught.value

    failure = run(settings_for(twilio_server), scenario)
    assert TO not in str(failure)


def test_server_that_refuses_connections_is_transient(twilio_server):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings_for(twilio_server, TWILIO_API_BASE_URL=f"http://127.0.0.1:{port}")

    with pytest.raises(TransientFailure, match="could not reach Twilio") as caught:
        send(settings, sms())
    assert TO not in str(caught.value)


def test_a_gateway_that_does_not_answer_times_out_as_transient(twilio_server):
    release = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_POST(self):
            release.wait(5)

        def log_message(self, *args):
            pass

    silent = HTTPServer(("127.0.0.1", 0), Silent)
    thread = threading.Thread(target=silent.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        settings = settings_for(twilio_server, TWILIO_API_BASE_URL=f"http://127.0.0.1:{silent.server_address[1]}")
        with pytest.raises(TransientFailure, match="did not answer in time") as caught:
            send(settings, sms(), timeout=0.2)
    finally:
        release.set()
        silent.shutdown()
        silent.server_close()
    assert TO not in str(caught.value)


# -- many at once --------------------------------------------------------------------------------


def test_fifty_concurrent_sends_each_get_the_sid_of_their_own_message(twilio_server):
    messages = [sms(to=f"+467017406{n:02d}", body=f"Meddelande {n}") for n in range(50)]

    sids = send_all(settings_for(twilio_server), messages, max_in_flight=50)

    assert all(isinstance(sid, str) for sid in sids), [type(sid).__name__ for sid in sids]
    assert len(set(sids)) == 50
    created = {r.sid: (r.params["To"], r.params["Body"]) for r in twilio_server.wait_for(50)}
    assert [created[sid] for sid in sids] == [(m.to, m.body) for m in messages]


def test_each_rate_limited_send_among_concurrent_successes_gets_its_own_retry_after(twilio_server):
    limited = {f"+467017407{n:02d}": n + 1 for n in range(10)}  # number -> its Retry-After
    for number, seconds in limited.items():
        twilio_server.fail_for_number(number, "rate_limited", retry_after=seconds)
    numbers = [f"+467017406{n:02d}" for n in range(40)] + list(limited)
    numbers = [numbers[(n * 7) % 50] for n in range(50)]  # the refused ones among the others

    results = send_all(settings_for(twilio_server), [sms(to=number) for number in numbers], max_in_flight=50)

    for number, result in zip(numbers, results, strict=True):
        if number in limited:
            assert isinstance(result, TransientFailure) and result.rate_limited
            assert result.retry_after == float(limited[number])
        else:
            assert isinstance(result, str) and result.startswith("SM")
    assert len(twilio_server.wait_for(40)) == 40


def test_requests_above_the_gateways_cap_are_rate_limited_while_the_admitted_ones_succeed():
    """Fifty at once to a gateway that holds thirty: thirty accepted, twenty refused with their
    Retry-After. The admitted ones answer when all fifty have come (not after a latency, which a
    busy machine may outlast before the last request is sent: CI saw none refused so)."""
    server, gauge = _latency_twilio(latency_ms=0, max_concurrent=30, hold_until=50)
    server.start()
    try:
        messages = [sms(to=f"+467017406{n:02d}") for n in range(50)]
        results = send_all(settings_for(server), messages, max_in_flight=50)
    finally:
        server.stop()

    sids = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(sids) == 30 and len(refused) == 20
    assert gauge.max_in_flight == 30
    assert all(isinstance(r, TransientFailure) and r.rate_limited and r.retry_after == 1.0 for r in refused)
    assert sorted(sids) == sorted(m.sid for m in server.messages)
    assert gauge.refused == len(refused)


def test_never_more_requests_in_flight_than_max_in_flight():
    """20 sends at once through an adapter allowed 5, to a gateway that refuses a 6th: none refused."""
    server, gauge = _latency_twilio(latency_ms=100, max_concurrent=5)
    server.start()
    try:
        results = send_all(settings_for(server), [sms(body=f"Meddelande {n}") for n in range(20)], max_in_flight=5)
    finally:
        server.stop()

    assert all(isinstance(r, str) for r in results), [type(r).__name__ for r in results]
    assert len(set(results)) == 20
    assert gauge.refused == 0
    assert gauge.max_in_flight == 5


# -- construction --------------------------------------------------------------------------------


def test_must_be_built_inside_a_running_event_loop(twilio_server):
    with pytest.raises(RuntimeError, match="event loop"):
        AsyncTwilioSms(settings_for(twilio_server), max_in_flight=10)


@pytest.mark.parametrize(
    "overrides",
    [{"TWILIO_FROM": "Kris_rutin"}, {"TWILIO_AUTH_TOKEN": ""}],
)
def test_wrong_settings_are_refused_at_construction(twilio_server, overrides):
    async def build():
        AsyncTwilioSms(settings_for(twilio_server, **overrides), max_in_flight=10)

    with pytest.raises(ValueError, match="TWILIO_"):
        asyncio.run(build())
