"""The service as production runs it: gunicorn with the project's gunicorn.conf.py and
KRISRUTIN_ENV=production. No answer names the server software, and the error pages are Swedish."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from config.settings import ROOT
from tests.conftest import TEST_SECRET


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(sqlite_url, tmp_path):
    """Gunicorn (one worker) on a free port, started with the repository's configuration file."""
    port = _free_port()
    env = {
        **os.environ,
        "KRISRUTIN_ENV": "production",
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": sqlite_url,
        "PUBLIC_BASE_URL": "https://krisrutin.kommun.example.se",
        "TEAM_EMAIL": "valfardsteknik@kommun.example.se",
        "MAX_REQUEST_BYTES": "4096",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    command += ["-w", "1", "-b", f"127.0.0.1:{port}", "app:create_app()"]
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115  (closed below)
    process = subprocess.Popen(command, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "gunicorn.log").read_text(errors="replace")) from None
                time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def test_no_answer_names_the_server_software_and_errors_are_swedish(gunicorn):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answers = {
        "healthz": _request(gunicorn, "GET", "/healthz"),
        "not found": _request(gunicorn, "GET", "/finns-inte"),
        "wrong method": _request(gunicorn, "DELETE", "/login"),
        "too large": _request(gunicorn, "POST", "/login", b"password=" + b"p" * 5000, form),
        "api": _request(gunicorn, "GET", "/api/v1/finns-inte"),
    }
    for name, (_, headers, _) in answers.items():
        names = [header.lower() for header, _ in headers]
        assert "server" not in names, name
        assert not any("gunicorn" in value.lower() or "werkzeug" in value.lower() for _, value in headers), name
    assert answers["healthz"][0] == 200
    status, _, page = answers["not found"]
    assert status == 404 and "<h1>Sidan finns inte</h1>" in page and "valfardsteknik@kommun.example.se" in page
    assert answers["wrong method"][0] == 405 and "Sidan kan inte användas på det sättet" in answers["wrong method"][2]
    status, _, page = answers["too large"]
    assert status == 413 and "högst 4 kB åt gången" in page
    status, headers, body = answers["api"]
    assert status == 404 and dict(headers)["Content-Type"] == "application/json" and '"error"' in body
