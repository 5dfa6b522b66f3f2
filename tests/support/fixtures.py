"""Pytest fixtures for real protocol peers (an SMTP server, a Twilio-speaking HTTP server).

Loaded as a plugin from tests/conftest.py.
"""

from __future__ import annotations

import pytest

from tests.support.smtp_server import CertificateUnavailable, SmtpTestServer, make_self_signed_certificate
from tests.support.twilio_server import TwilioTestServer

MAIL_FROM = "valfardsteknik@kommun.example.se"
MAIL_REPLY_TO = "krisrutin-svar@kommun.example.se"
TWILIO_SENDER = "Krisrutin"
PUBLIC_BASE_URL = "https://krisrutin.kommun.example.se"


def pytest_configure(config):
    # aiosmtpd 1.4.6 warns on its own server thread about things the tests do on purpose:
    # a successful AUTH sets its deprecated Session.login_data, and AUTH without TLS is allowed
    # on the plain-text test server.
    config.addinivalue_line("filterwarnings", "ignore:Session.login_data is deprecated:DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def smtp_server():
    """A plain SMTP server on 127.0.0.1 (no TLS, no login), stopped after the test."""
    server = SmtpTestServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory):
    """(cert, key) for 127.0.0.1, made once per run; skips when it cannot be made."""
    try:
        return make_self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))
    except CertificateUnavailable as error:
        pytest.skip(str(error))


@pytest.fixture
def make_smtp_server(request):
    """Start an SMTP server with options: ``make_smtp_server(security="starttls", auth=("u", "p"))``
    (and SmtpTestServer's others: ``idle_timeout=0.5``, ``smtputf8=False``).
    With TLS the test is skipped when no certificate can be made."""
    servers: list[SmtpTestServer] = []

    def make(*, security="none", auth=None, **options):
        certificate = request.getfixturevalue("smtp_certificate") if security != "none" else None
        server = SmtpTestServer(security=security, auth=auth, certificate=certificate, **options)
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def twilio_server():
    """A Twilio Messages API on 127.0.0.1 with a fresh account SID and auth token, stopped after the test."""
    server = TwilioTestServer().start()
    yield server
    server.stop()


@pytest.fixture
def peer_settings(smtp_server, twilio_server):
    """Settings (environment names) that point create_app's channels at the two local peers."""
    return {
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_SECURITY": "none",
        "MAIL_FROM": MAIL_FROM,
        "MAIL_REPLY_TO": MAIL_REPLY_TO,
        "TWILIO_ACCOUNT_SID": twilio_server.account_sid,
        "TWILIO_AUTH_TOKEN": twilio_server.auth_token,
        "TWILIO_FROM": TWILIO_SENDER,
        "TWILIO_API_BASE_URL": twilio_server.url,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    }
