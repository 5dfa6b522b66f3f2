"""A real SMTP server in the test process (aiosmtpd), recording what it receives.

It speaks SMTP on a TCP port like any mail server, so the SMTP channel is tested through
smtplib, sockets, STARTTLS and all. Tests steer it: refuse a recipient with 550 at RCPT, answer
451 to the next N DATA, require a login, stop and start again on the same port (a drill: the
server went away and came back), greet the next N connections with "421 too many connections",
close connections idle for ``idle_timeout`` seconds (aiosmtpd's own session timeout), offer
SMTPUTF8 or not.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

Security = Literal["none", "starttls", "ssl"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (aiosmtpd cannot be asked for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class CertificateUnavailable(RuntimeError):
    """Neither the cryptography package nor the openssl command is there to make a certificate."""


def make_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost, valid for a day; returns (cert, key)."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    try:
        _certificate_with_cryptography(cert, key)
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise CertificateUnavailable(
                "no self-signed certificate: neither the 'cryptography' package nor the 'openssl' command is installed"
            ) from None
        subprocess.run(
            [
                *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
                *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def _certificate_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage  # parsed with email.policy.default
    raw: bytes
    peer: tuple
    tls: bool
    login: str | None  # the user name the client logged in with, if it did
    mail_options: tuple[str, ...] = ()  # MAIL FROM's parameters, upper-cased (SMTPUTF8, BODY=8BITMIME, SIZE=…)


@dataclass
class _State:
    messages: list[ReceivedMessage] = field(default_factory=list)
    peers: list[tuple] = field(default_factory=list)  # one per EHLO/HELO
    rejected: dict[str, str] = field(default_factory=dict)  # lower-cased address -> reply at RCPT
    defer_data: int = 0  # how many of the next DATA get defer_reply
    defer_reply: str = "451 4.3.0 Temporary failure: try again later"
    timeout_mail: int = 0  # how many of the next MAIL FROM get 421 and a closed connection
    refuse_connections: int = 0  # how many of the next connections are greeted with 421 and closed
    quits: int = 0  # QUIT commands received


class RecordingHandler:
    """The aiosmtpd handler; its hooks run on the server's thread, so state is under a lock."""

    def __init__(self, *, implicit_tls: bool = False, pipelining: bool = True) -> None:
        self.implicit_tls = implicit_tls
        self.pipelining = pipelining  # offer RFC 2920 PIPELINING in the EHLO reply, as real relays do
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.state = _State()

    async def handle_HELO(self, server, session, envelope, hostname):
        with self.lock:
            self.state.peers.append(session.peer)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.state.peers.append(session.peer)
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_QUIT(self, server, session, envelope):
        with self.lock:
            self.state.quits += 1
        return "221 Bye"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            timed_out = self.state.timeout_mail > 0
            if timed_out:
                self.state.timeout_mail -= 1
        if timed_out:
            # What Postfix says when it ends an idle session; the connection closes after the reply.
            server.loop.call_soon(server.transport.close)
            return "421 4.4.2 smtp.test.invalid Error: timeout exceeded"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            refusal = self.state.rejected.get(address.lower())
        if refusal is not None:
            return refusal.format(address=address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.state.defer_data > 0:
                self.state.defer_data -= 1
                return self.state.defer_reply
        raw = envelope.original_content or envelope.content
        # Line ends as a mail store keeps them (LF), so that tests compare parts with plain strings.
        parsed = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
            peer=session.peer,
            tls=self.implicit_tls or session.ssl is not None,
            login=login,
            mail_options=tuple(envelope.mail_options),
        )
        with self.changed:
            self.state.messages.append(received)
            self.changed.notify_all()
        return "250 2.0.0 OK: queued"


BUSY_REPLY = "421 4.7.0 smtp.test.invalid Error: too many connections"


class _BusySMTP(SMTP):
    """A session refused at the greeting, as Postfix refuses one more client than its limit."""

    async def _handle_client(self) -> None:
        await self.push(BUSY_REPLY)
        self.transport.close()


class _Controller(Controller):
    """aiosmtpd's Controller that also knows its open connections, so that stop() really closes them.

    Controller.stop() only stops the event loop: the listening socket and the clients' sockets
    stay open (a client would wait for a reply until its timeout, and the port could not be
    bound again), so we close them on the loop first.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.protocols: list[SMTP] = []

    def factory(self):
        with self.handler.lock:
            busy = self.handler.state.refuse_connections > 0
            if busy:
                self.handler.state.refuse_connections -= 1
        protocol = _BusySMTP(self.handler, **self.SMTP_kwargs) if busy else super().factory()
        self.protocols.append(protocol)
        return protocol

    async def _close_everything(self) -> None:
        if self.server is not None:
            self.server.close()
        for protocol in self.protocols:
            for transport in (getattr(protocol, "_original_transport", None), protocol.transport):
                if transport is not None and not transport.is_closing():
                    transport.abort()
        for _ in range(3):  # let the transports' connection_lost callbacks run
            await asyncio.sleep(0)

    def stop(self, no_assert: bool = False):
        if self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._close_everything(), self.loop).result(timeout=5)
        super().stop(no_assert=no_assert)
        self.loop.close()


class SmtpTestServer:
    """An SMTP server on 127.0.0.1 for one test; ``start()``/``stop()`` may be repeated (same port)."""

    def __init__(
        self,
        *,
        security: Security = "none",
        certificate: tuple[Path, Path] | None = None,
        auth: tuple[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        idle_timeout: float | None = None,
        smtputf8: bool = True,
        pipelining: bool = True,
    ) -> None:
        if security != "none" and certificate is None:
            raise ValueError("STARTTLS and SSL need a certificate (make_self_signed_certificate)")
        self.security = security
        self.certificate = certificate
        self.auth = auth
        self.host = host
        self.port = port or free_port(host)
        self.idle_timeout = idle_timeout  # None: aiosmtpd's default, 300 s
        self.smtputf8 = smtputf8
        self.handler = RecordingHandler(implicit_tls=security == "ssl", pipelining=pipelining)
        self._controller: _Controller | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def _server_tls_context(self) -> ssl.SSLContext:
        assert self.certificate is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, self.certificate))
        return context

    def client_tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and only it)."""
        assert self.certificate is not None
        return ssl.create_default_context(cafile=str(self.certificate[0]))

    def start(self) -> SmtpTestServer:
        if self._controller is not None:
            return self
        options: dict = {
            "hostname": self.host,
            "port": self.port,
            "server_hostname": "smtp.test.invalid",
            "enable_SMTPUTF8": self.smtputf8,
        }
        if self.idle_timeout is not None:
            options["timeout"] = self.idle_timeout
        if self.security == "starttls":
            options["tls_context"] = self._server_tls_context()
        elif self.security == "ssl":
            options["ssl_context"] = self._server_tls_context()
        if self.auth is not None:
            options["authenticator"] = self._authenticate
            options["auth_required"] = True
            # With STARTTLS, AUTH only after it; aiosmtpd does not see implicit TLS ("ssl") as TLS,
            # and a server without TLS (tests only) takes the password in the clear.
            options["auth_require_tls"] = self.security == "starttls"
        controller = _Controller(self.handler, **options)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def restart(self) -> None:
        """Stop (closing every open connection) and start again on the same port."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        expected = self.auth
        ok = (
            expected is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == expected
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False: aiosmtpd answers 535 itself (with handled=True it would answer nothing).
        return AuthResult(success=False, handled=False)

    # -- steering --------------------------------------------------------------------------------

    def reject_recipient(
        self,
        address: str,
        reply: str = "550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table",
    ) -> None:
        """Refuse this address at RCPT from now on (by default 550 5.1.1, naming the address as
        real servers do: the channel must keep it out of its failure messages)."""
        with self.handler.lock:
            self.handler.state.rejected[address.lower()] = reply

    def defer_next_data(self, count: int = 1, reply: str = "451 4.3.0 Temporary failure: try again later") -> None:
        """Answer ``reply`` (451 unless given) to the next ``count`` DATA commands (the message is
        not kept)."""
        with self.handler.lock:
            self.handler.state.defer_data = count
            self.handler.state.defer_reply = reply

    def time_out_next_session(self, count: int = 1) -> None:
        """Answer the next ``count`` MAIL FROM with 421 and close the connection, as a server does
        whose idle timeout struck while the client was not looking."""
        with self.handler.lock:
            self.handler.state.timeout_mail = count

    def refuse_next_connections(self, count: int = 1) -> None:
        """Greet the next ``count`` connections with ``421 4.7.0 … too many connections`` and close
        them (set it after start(): starting makes one connection of its own)."""
        with self.handler.lock:
            self.handler.state.refuse_connections = count

    # -- what arrived ----------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self.handler.lock:
            return list(self.handler.state.messages)

    @property
    def connections(self) -> int:
        """How many SMTP sessions greeted the server (distinct client sockets that sent EHLO/HELO)."""
        with self.handler.lock:
            return len(set(self.handler.state.peers))

    @property
    def quits(self) -> int:
        """How many QUIT commands the server received."""
        with self.handler.lock:
            return self.handler.state.quits

    @property
    def open_connections(self) -> int:
        """Client connections the server holds open right now."""
        controller = self._controller
        if controller is None:
            return 0
        return sum(1 for protocol in list(controller.protocols) if protocol.transport is not None)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; returns them, or fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.handler.changed:
            while len(self.handler.state.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} message(s) within {timeout} s, got {len(self.handler.state.messages)}"
                    )
                self.handler.changed.wait(min(remaining, 0.05))
            return list(self.handler.state.messages)
