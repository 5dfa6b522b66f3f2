"""A real IMAP server for the mailbox tests: Debian's Dovecot, started unprivileged in a temporary
folder with its own configuration, plain IMAP on a free port of 127.0.0.1, maildir storage and a
password file (``{PLAIN}`` passwords).

One server per test session (:func:`imap_server`); each test gets its own user and so its own
mailbox (:func:`imap_mailbox`), so the tests need not clean up after each other. Messages are
delivered with IMAP APPEND, as a mail server's delivery would leave them.

Run as root (CI, this machine), Dovecot refuses root for its login and mail processes: those run
as ``nobody``, which owns the mail folder; the master runs as the current user. Without Dovecot
the tests skip, unless ``REQUIRE_IMAP=1`` (CI), which makes that a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
PASSWORD = "hemligt-test"

_CONFIG = """\
listen = 127.0.0.1
protocols = imap
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u/Maildir
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"""


USERS = 400  # made before the server starts: Dovecot may not see a password file changed within a second


@dataclass
class ImapServer:
    host: str
    port: int
    root: Path
    users: list[str]
    tls_port: int | None = None  # IMAP over TLS (IMAP_SECURITY=ssl), when started with a certificate

    def take_user(self) -> str:
        if not self.users:
            raise RuntimeError(f"more than {USERS} mailboxes asked of one test session's Dovecot")
        return self.users.pop()


@dataclass
class ImapMailbox:
    """One user's mailbox on the server: its settings for the service, and a way to deliver mail."""

    server: ImapServer
    username: str

    @property
    def settings(self) -> dict[str, str]:
        return {
            "IMAP_HOST": self.server.host,
            "IMAP_PORT": str(self.server.port),
            "IMAP_SECURITY": "none",
            "IMAP_USERNAME": self.username,
            "IMAP_PASSWORD": PASSWORD,
            "IMAP_FOLDER": "INBOX",
            "IMAP_DONE_FOLDER": "Krisrutin/Klart",
        }

    def client(self) -> IMAPClient:
        client = IMAPClient(self.server.host, port=self.server.port, ssl=False, timeout=10)
        client.login(self.username, PASSWORD)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            client.append(folder, raw)
        finally:
            client.logout()

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """The messages in ``folder`` (``Krisrutin.Klart``: the server's name of the done folder)."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [data[uid][b"BODY[]"] for uid in sorted(data)]
        finally:
            client.logout()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(port: int, process: subprocess.Popen, log: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot stopped: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
                if connection.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dovecot did not answer in time")


def start_dovecot(certificate: tuple[Path, Path] | None = None) -> tuple[ImapServer, subprocess.Popen]:
    """Dovecot on free ports of 127.0.0.1: plain IMAP (STARTTLS too when ``certificate``, a
    (cert, key) pair, is given, with IMAP over TLS on a second port)."""
    root = Path(tempfile.mkdtemp(prefix="krisrutin-imap-"))
    root.chmod(0o755)  # the login and mail processes (another user when we are root) go through it
    me = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:
        login_user, mail_user, mail_group = "nobody", "nobody", "nogroup"
        internal_user, internal_group = "root", "root"
    else:
        login_user = mail_user = internal_user = me
        mail_group = internal_group = str(os.getgid())
    (root / "mail").mkdir()
    if os.getuid() == 0:
        entry = pwd.getpwnam(mail_user)
        os.chown(root / "mail", entry.pw_uid, entry.pw_gid)
    names = [f"u{uuid.uuid4().hex[:12]}" for _ in range(USERS)]
    users = root / "users"
    users.write_text("".join(f"{name}:{{PLAIN}}{PASSWORD}\n" for name in names), encoding="ascii")
    users.chmod(0o644)
    port = _free_port()
    tls_port = _free_port() if certificate else 0
    tls = f"ssl = yes\nssl_cert = <{certificate[0]}\nssl_key = <{certificate[1]}" if certificate else "ssl = no"
    config = root / "dovecot.conf"
    config.write_text(
        _CONFIG.format(
            root=root,
            port=port,
            tls_port=tls_port,
            ssl=tls,
            login_user=login_user,
            internal_user=internal_user,
            internal_group=internal_group,
            mail_user=mail_user,
            mail_group=mail_group,
        ),
        encoding="ascii",
    )
    process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=root
    )
    try:
        _wait_for(port, process, root / "dovecot.log")
    except BaseException:
        process.kill()
        process.wait()
        shutil.rmtree(root, ignore_errors=True)
        raise
    server = ImapServer(host="127.0.0.1", port=port, root=root, users=names, tls_port=tls_port or None)
    return server, process


def stop_dovecot(server: ImapServer, process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def imap_server():
    """Dovecot for the whole test session (skipped without it, unless REQUIRE_IMAP=1)."""
    if DOVECOT is None:
        if os.environ.get("REQUIRE_IMAP") == "1":
            pytest.fail("Dovecot is required (REQUIRE_IMAP=1) but not installed: apt-get install dovecot-imapd")
        pytest.skip("Dovecot (dovecot-imapd) is not installed")
    server, process = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(server, process)


@pytest.fixture(scope="session")
def imap_tls_server(smtp_certificate):
    """A second Dovecot with a self-signed certificate for 127.0.0.1 (STARTTLS and IMAP over TLS),
    for the tests of IMAP_SECURITY; started only by the tests that ask for it."""
    if DOVECOT is None:
        if os.environ.get("REQUIRE_IMAP") == "1":
            pytest.fail("Dovecot is required (REQUIRE_IMAP=1) but not installed: apt-get install dovecot-imapd")
        pytest.skip("Dovecot (dovecot-imapd) is not installed")
    server, process = start_dovecot(certificate=smtp_certificate)
    try:
        yield server
    finally:
        stop_dovecot(server, process)


@pytest.fixture
def imap_mailbox(imap_server) -> ImapMailbox:
    """A new user on the session's Dovecot: an empty mailbox of this test's own."""
    return ImapMailbox(server=imap_server, username=imap_server.take_user())
