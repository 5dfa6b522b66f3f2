"""Web load: ``python -m bench.web_load [--seconds 60] [--clients 20] [--database-url URL]``.

The service runs under gunicorn (``--workers``/``--threads``, default 4×4) on a PostgreSQL schema
of its own (created in the database given, default the local ``test`` database, and dropped at
the end), seeded with bulk inserts, not timed: 1,000 providers, 5,000 contacts, 200 open
incidents (20 of them affecting every provider, the others ten chosen providers each; one
notice, a few timeline events and one information letter with its receipts each) and 2,000 open
visits (four each for 500 providers, one visit alert per provider).

Then C clients (threads, one keep-alive ``requests.Session`` each; each logs in through the real
``/login`` form with its CSRF token as a team member of its own) loop for S seconds over three
pages in turn: the start page a team member sees first (``/``), an incident page
(``/incidents/<id>`` of the open incidents in turn) and a provider's visit list (``/v/<token>``
of the providers with visits in turn). The clients run in this process and share the machine's
cores with gunicorn and PostgreSQL.

Progress goes to stderr; one JSON line last on stdout: seconds, clients, requests, rps and per
page rps, p50/p95/p99 in ms and errors (any answer but 200, or a failed request).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.databases import fresh_database
from bench.incident_fanout import _create_register
from bench.latency import percentile

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-lösenord-12345"
SECRET_KEY = "bench-web-load-" * 4
PAGES = ("dashboard", "incident", "visits")
INSERT_CHUNK = 5000


def log(text: str) -> None:
    print(f"[web_load {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chunks(rows: list[dict], size: int = INSERT_CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def seed(
    *, providers: int, contacts: int, incidents: int, visits: int, clients: int, now: datetime, secret: str = SECRET_KEY
) -> dict:
    """Bulk-insert the data set (in an app context); returns what the clients need (visit links
    signed with ``secret``, the server's SECRET_KEY)."""
    from accounts.roles import Role
    from accounts.service import create_user
    from contacts.models import Provider
    from core.extensions import db
    from core.signed_links import new_nonce
    from crisis.incidents.models import (
        Incident,
        IncidentEvent,
        IncidentProvider,
        Letter,
        LetterReceipt,
        Notice,
        Supplier,
    )
    from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitAlert
    from crisis.visits.service import link_token

    _create_register(providers, contacts, now - timedelta(days=60))
    provider_ids = list(db.session.scalars(sa.select(Provider.id).order_by(Provider.id)))
    supplier = Supplier(name="Telia", email="drift@telia.example.se", is_active=True, created_at=now)
    db.session.add(supplier)
    db.session.flush()

    users = []
    for number in range(clients):
        user = create_user(
            db_session=db.session,
            username=f"team{number:02d}",
            display_name=f"Teamet Nummer {number}",
            role=Role.TEAM,
            now=now,
            password=PASSWORD,
        )
        users.append(user)
    db.session.flush()
    user_ids = [user.id for user in users]

    # Incidents: every tenth affects all providers, the others ten chosen ones.
    incident_rows = []
    for number in range(incidents):
        opened = now - timedelta(hours=1 + number % 48, minutes=number % 60)
        incident_rows.append(
            {
                "title": f"Störning nummer {number}: GSM-nätet ur funktion",
                "service": "camera_supervision",
                "supplier_id": supplier.id,
                "planned": False,
                "starts_at": opened,
                "all_providers": number % 10 == 0,
                "status": "open" if number % 2 else "new",
                "party": "team",
                "party_since": opened,
                "handler_user_id": user_ids[number % len(user_ids)],
                "acknowledged_at": opened + timedelta(minutes=5) if number % 2 else None,
                "acknowledged_by_id": user_ids[number % len(user_ids)] if number % 2 else None,
                "last_letter_at": opened + timedelta(minutes=20),
                "created_at": opened,
            }
        )
    db.session.execute(sa.insert(Incident), incident_rows)
    incident_ids = list(db.session.scalars(sa.select(Incident.id).order_by(Incident.id)))
    chosen: dict[int, list[int]] = {}
    links = []
    for index, incident_id in enumerate(incident_ids):
        if index % 10 == 0:
            chosen[incident_id] = provider_ids
        else:
            start = (index * 10) % len(provider_ids)
            chosen[incident_id] = [provider_ids[(start + k) % len(provider_ids)] for k in range(10)]
            links.extend({"incident_id": incident_id, "provider_id": pid} for pid in chosen[incident_id])
    for rows in _chunks(links):
        db.session.execute(sa.insert(IncidentProvider), rows)
    db.session.execute(
        sa.insert(Notice),
        [
            {
                "incident_id": incident_id,
                "source": "api",
                "supplier_id": supplier.id,
                "external_id": f"bench-{incident_id}",
                "subject": "GSM-nätet ur funktion",
                "body": "Telias GSM-nät är ur funktion i Linköping.",
                "received_at": row["created_at"],
            }
            for incident_id, row in zip(incident_ids, incident_rows, strict=True)
        ],
    )
    db.session.execute(
        sa.insert(Letter),
        [
            {
                "incident_id": incident_id,
                "number": 1,
                "kind": "first",
                "party": "team",
                "author_id": row["handler_user_id"],
                "subject": "Driftstörning: kameratillsyn",
                "body": "Kameratillsyn kan inte utföras; gör fysiska tillsyner.",
                "apply_local_routines": True,
                "urgent": True,
                "sent_at": row["last_letter_at"],
                "recipients": len(chosen[incident_id]) * (contacts // providers),
            }
            for incident_id, row in zip(incident_ids, incident_rows, strict=True)
        ],
    )
    letter_of = dict(db.session.execute(sa.select(Letter.incident_id, Letter.id)).all())
    receipts = []
    for index, incident_id in enumerate(incident_ids):
        for k, pid in enumerate(chosen[incident_id]):
            acknowledged = (index + k) % 3 == 0
            receipts.append(
                {
                    "letter_id": letter_of[incident_id],
                    "provider_id": pid,
                    "nonce": new_nonce(),
                    "acknowledged_at": incident_rows[index]["last_letter_at"] + timedelta(minutes=7)
                    if acknowledged
                    else None,
                    "acknowledged_by": "Anna Andersson" if acknowledged else None,
                    "local_routines": "yes" if acknowledged else None,
                }
            )
    for rows in _chunks(receipts):
        db.session.execute(sa.insert(LetterReceipt), rows)
    events = []
    for incident_id, row in zip(incident_ids, incident_rows, strict=True):
        at = row["created_at"]
        events += [
            {"incident_id": incident_id, "at": at, "kind": "notice_received", "party": "team", "detail": {}},
            {"incident_id": incident_id, "at": at, "kind": "routed", "party": "team", "detail": {"party": "team"}},
            {
                "incident_id": incident_id,
                "at": at + timedelta(minutes=20),
                "kind": "letter_sent",
                "party": "team",
                "actor_user_id": row["handler_user_id"],
                "detail": {"letter_id": letter_of[incident_id], "number": 1, "kind": "first"},
            },
            {
                "incident_id": incident_id,
                "at": at + timedelta(minutes=30),
                "kind": "note",
                "party": "team",
                "actor_user_id": row["handler_user_id"],
                "detail": {"text": "Telia felsöker."},
            },
        ]
    for rows in _chunks(events):
        db.session.execute(sa.insert(IncidentEvent), rows)

    # Visits: four per provider for the first visits/4 providers, one alert each.
    per_provider = 4
    visiting = provider_ids[: visits // per_provider]
    db.session.execute(
        sa.insert(SupervisedClient),
        [
            {
                "reference": f"BENCH-{number:05d}",
                "provider_id": visiting[number // per_provider],
                "area": "Norr",
                "is_active": True,
                "created_at": now - timedelta(days=30),
            }
            for number in range(visits)
        ],
    )
    client_ids = list(db.session.scalars(sa.select(SupervisedClient.id).order_by(SupervisedClient.id)))
    due = [now + timedelta(minutes=30 * (number % 16) - 60) for number in range(visits)]
    db.session.execute(
        sa.insert(SupervisionFailure),
        [
            {
                "client_id": client_ids[number],
                "provider_id": visiting[number // per_provider],
                "scheduled_at": due[number],
                "reason": "GSM nere",
                "source": "incident",
                "incident_id": incident_ids[number % len(incident_ids)],
                "created_at": now - timedelta(hours=2),
            }
            for number in range(visits)
        ],
    )
    failure_ids = list(db.session.scalars(sa.select(SupervisionFailure.id).order_by(SupervisionFailure.id)))
    db.session.execute(
        sa.insert(VisitAlert),
        [
            {"provider_id": pid, "incident_id": None, "nonce": new_nonce(), "visit_ids": [], "created_at": now}
            for pid in visiting
        ],
    )
    alerts = list(db.session.scalars(sa.select(VisitAlert).order_by(VisitAlert.id)))
    alert_of = {alert.provider_id: alert.id for alert in alerts}
    db.session.execute(
        sa.insert(Visit),
        [
            {
                "failure_id": failure_ids[number],
                "client_id": client_ids[number],
                "provider_id": visiting[number // per_provider],
                "incident_id": incident_ids[number % len(incident_ids)],
                "due_at": due[number],
                "status": "open",
                "alert_id": alert_of[visiting[number // per_provider]],
                "created_at": now - timedelta(hours=2),
            }
            for number in range(visits)
        ],
    )
    for alert in alerts:
        alert.visit_ids = list(
            db.session.scalars(sa.select(Visit.id).where(Visit.alert_id == alert.id).order_by(Visit.id))
        )
    db.session.commit()
    return {
        "usernames": [f"team{number:02d}" for number in range(clients)],
        "incident_ids": incident_ids,
        "visit_tokens": [link_token(alert, secret) for alert in alerts],
    }


def start_gunicorn(database_url: str, port: int, workers: int, threads: int, logfile: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KRISRUTIN_ENV": "development",
        "SECRET_KEY": SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"127.0.0.1:{port}",
        "--keep-alive",
        "75",
        "app:create_app()",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=logfile.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}; see {logfile}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"gunicorn did not become ready; see {logfile}")


def log_in(session: requests.Session, base: str, username: str) -> None:
    page = session.get(f"{base}/login", timeout=30)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if not match:
        raise RuntimeError("the login page has no CSRF token")
    answer = session.post(
        f"{base}/login",
        data={"username": username, "password": PASSWORD, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise RuntimeError(f"login of {username} answered {answer.status_code}")


class Client(threading.Thread):
    def __init__(self, number: int, base: str, username: str, data: dict, stop: threading.Event, start_at):
        super().__init__(daemon=True)
        self.number = number
        self.base = base
        self.username = username
        self.data = data
        self.stop = stop
        self.start_at = start_at
        self.times: dict[str, list[float]] = {page: [] for page in PAGES}
        self.errors: dict[str, int] = dict.fromkeys(PAGES, 0)
        self.error_samples: list[str] = []

    def run(self) -> None:
        session = requests.Session()
        log_in(session, self.base, self.username)
        self.start_at.wait()
        incidents = self.data["incident_ids"]
        tokens = self.data["visit_tokens"]
        turn = self.number * 7919
        while not self.stop.is_set():
            turn += 1
            for page, path in (
                ("dashboard", "/"),
                ("incident", f"/incidents/{incidents[turn % len(incidents)]}"),
                ("visits", f"/v/{tokens[turn % len(tokens)]}"),
            ):
                if self.stop.is_set():
                    break
                started = time.perf_counter()
                try:
                    answer = session.get(self.base + path, timeout=30, allow_redirects=False)
                    ok = answer.status_code == 200
                    if not ok and len(self.error_samples) < 3:
                        self.error_samples.append(f"{path}: {answer.status_code}")
                except requests.RequestException as error:
                    ok = False
                    if len(self.error_samples) < 3:
                        self.error_samples.append(f"{path}: {type(error).__name__}")
                elapsed = time.perf_counter() - started
                if self.stop.is_set():
                    break  # answered after the end: not counted
                if ok:
                    self.times[page].append(elapsed * 1000)
                else:
                    self.errors[page] += 1


def run_load(base: str, data: dict, clients: int, seconds: float) -> dict:
    stop = threading.Event()
    start_at = threading.Event()
    threads = [Client(n, base, data["usernames"][n], data, stop, start_at) for n in range(clients)]
    for thread in threads:
        thread.start()
    log(f"{clients} clients logging in")
    time.sleep(0.5)
    start_at.set()
    started = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            break
        time.sleep(min(10.0, seconds - elapsed))
        done = sum(len(t.times[p]) for t in threads for p in PAGES)
        log(f"{time.perf_counter() - started:5.1f} s: {done} requests, {done / (time.perf_counter() - started):.1f}/s")
    stop.set()
    duration = time.perf_counter() - started
    for thread in threads:
        thread.join(35)
    pages = {}
    total = 0
    for page in PAGES:
        values = [v for t in threads for v in t.times[page]]
        errors = sum(t.errors[page] for t in threads)
        total += len(values)
        pages[page] = {
            "requests": len(values),
            "rps": round(len(values) / duration, 1),
            "p50_ms": round(percentile(values, 50), 1),
            "p95_ms": round(percentile(values, 95), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "errors": errors,
        }
    samples = [sample for t in threads for sample in t.error_samples][:5]
    if samples:
        log(f"error samples: {samples}")
    return {
        "seconds": round(duration, 1),
        "clients": clients,
        "requests": total,
        "rps": round(total / duration, 1),
        "pages": pages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--visits", type=int, default=2000)
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a PostgreSQL database; the bench works in a schema of its own there",
    )
    args = parser.parse_args()

    from flask_migrate import upgrade

    from app import create_app
    from core.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="krisrutin-web-"))
    database_url, drop = fresh_database(args.database_url, workdir)
    server = None
    try:
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "KRISRUTIN_ENV": "testing",
                "SECRET_KEY": SECRET_KEY,
                "LOG_LEVEL": "WARNING",
            }
        )
        started = time.perf_counter()
        with app.app_context():
            upgrade()
            data = seed(
                providers=args.providers,
                contacts=args.contacts,
                incidents=args.incidents,
                visits=args.visits,
                clients=args.clients,
                now=datetime.now(UTC),
            )
            db.session.remove()
            db.engine.dispose()
        log(f"seeded in {time.perf_counter() - started:.1f} s ({database_url.split('?')[0]})")
        port = free_port()
        logfile = workdir / "gunicorn.log"
        server = start_gunicorn(database_url, port, args.workers, args.threads, logfile)
        log(f"gunicorn -w {args.workers} --threads {args.threads} on port {port} (log {logfile})")
        result = run_load(f"http://127.0.0.1:{port}", data, args.clients, args.seconds)
        result["workers"] = args.workers
        result["threads"] = args.threads
        result["load_average"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        drop()


if __name__ == "__main__":
    main()
