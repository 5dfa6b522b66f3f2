"""bench.peers' Twilio peer with a cap: above N requests in flight it answers as Twilio does (429,
error 20429, Retry-After: 1) and processes nothing, while the admitted requests wait their latency
side by side, not one after another; and the peers' own answer times, latency included."""

from __future__ import annotations

import base64
import json
import smtplib
import threading
import urllib.error
import urllib.parse
import urllib.request

from bench.peers import _latency_smtp, _latency_twilio


def _post(server, results: list, start: threading.Barrier) -> None:
    request = urllib.request.Request(
        f"{server.url}/2010-04-01/Accounts/{server.account_sid}/Messages.json",
        data=urllib.parse.urlencode({"To": "+46701740605", "From": "Krisrutin", "Body": "Kamerorna är nere"}).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{server.account_sid}:{server.auth_token}".encode()).decode()
        },
    )
    start.wait()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            results.append((response.status, response.headers.get("Retry-After"), json.load(response)))
    except urllib.error.HTTPError as error:
        results.append((error.code, error.headers.get("Retry-After"), json.load(error)))


def test_requests_above_the_cap_get_twilios_429_and_the_rest_wait_their_latency_together():
    """Six at once to a peer capped at three. The admitted ones start their latency when all six
    have come (the peer's ``hold_until``), so that a slow machine, on which the sixth request may come
    after the first's 500 ms, cannot make the test pass fewer refusals."""
    server, gauge = _latency_twilio(latency_ms=500, max_concurrent=3, hold_until=6)
    server.start()
    try:
        results: list = []
        start = threading.Barrier(6)
        threads = [threading.Thread(target=_post, args=(server, results, start)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()

    accepted = [body for status, _, body in results if status == 201]
    refused = [(retry_after, body) for status, retry_after, body in results if status == 429]
    assert len(accepted) == 3 and len(refused) == 3
    assert all(retry_after == "1" and body["code"] == 20429 for retry_after, body in refused)
    assert len(server.messages) == 3  # the refused ones were never processed
    assert gauge.max_in_flight == 3  # the three admitted waited at once; the cap was never exceeded
    assert gauge.refused == 3 and len(gauge.accepted_at) == 3
    # Each admitted request's answer time at the peer is its latency (plus a little of its own work).
    assert len(gauge.answer_seconds) == 3 and all(0.5 <= seconds < 1.5 for seconds in gauge.answer_seconds)


def test_the_smtp_peer_reports_its_own_answer_time_latency_included():
    """bench.latency reports the peer's answer times, so that a run bound by the peer's own
    queue (an answer well above the latency) can be told from one bound by the dispatcher."""
    server, gauge = _latency_smtp(latency_ms=300)
    server.start()
    try:
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            for number in range(2):
                client.sendmail("a@example.se", ["b@example.se"], f"Subject: {number}\r\n\r\nHej\r\n")
    finally:
        server.stop()
    assert len(server.messages) == 2 and len(gauge.accepted_at) == 2
    assert all(0.3 <= seconds < 1.3 for seconds in gauge.answer_seconds)
