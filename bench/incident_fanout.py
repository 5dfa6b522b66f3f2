"""Incident fan-out: ``python -m bench.incident_fanout --providers 300 --contacts 3000 [--database-url URL]``.

The register holds P providers with C active contacts between them (all receiving information
about camera supervision), created with bulk inserts, not timed. A dispatcher runs with the real
SMTP and Twilio adapters against the local gateways (aiosmtpd and a Twilio-speaking HTTP server,
in child processes as in ``bench.fanout``). Timed: one ``POST /api/v1/notices`` by the on-call
officer's API token, with an immediate information letter to all providers using camera
supervision, through the WSGI application (Flask's test client: the request's whole path, no
socket), until the gateways have accepted every contact's e-mail and SMS.

``first_message_ms`` is from the start of the POST to the first gateway acceptance recorded
(``sent_at`` of the earliest message: an upper bound); ``seconds`` from the start of the POST
to the moment the gateways have received all 2·C messages and the outbox holds none queued or
being sent (the letter also goes to the supplier). The dispatcher's concurrency is the
configured one (``EMAIL_CONCURRENCY``/``SMS_CONCURRENCY`` from the environment, else the
application's defaults; printed with the result). Before issue 18 this script's own defaults
were 4 e-mail and 8 SMS workers; it now measures the defaults a deployment gets.

``--sms-latency-ms``, ``--smtp-latency-ms`` and ``--sms-max-concurrent`` give the peers a latency
and a cap (``bench.latency``, ``bench.peers``); the per-channel figures are from the start of the
POST.

Prints one JSON line last: contacts, providers, seconds, first_message_ms, ...
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench import latency
from bench.databases import fresh_database
from bench.peers import Peers

PASSWORD = "bench-lösenord-12345"

INSERT_CHUNK = 5000


LETTER_BODY = "Telias GSM-nät är ur funktion. Kameratillsyn kan inte utföras; gör fysiska tillsyner."


def _create_register(providers: int, contacts: int, now) -> None:
    from contacts.models import ContactPerson, Provider
    from core.extensions import db

    db.session.execute(
        sa.insert(Provider),
        [
            {"name": f"Bench Omsorg {number:05d}", "kind": "private", "is_active": True, "created_at": now}
            for number in range(providers)
        ],
    )
    ids = list(db.session.scalars(sa.select(Provider.id).order_by(Provider.id)))
    rows = [
        {
            "provider_id": ids[number % providers],
            "name": f"Kontakt Nummer {number}",
            "role_title": "Enhetschef",
            "mobile": f"+4670{number:07d}",
            "email": f"kontakt{number}@omsorg.example.se",
            "services": ["camera_supervision"],
            "is_active": True,
            "created_at": now,
        }
        for number in range(contacts)
    ]
    for start in range(0, contacts, INSERT_CHUNK):
        db.session.execute(sa.insert(ContactPerson), rows[start : start + INSERT_CHUNK])
    db.session.commit()


def _nothing_open(app) -> bool:
    """No message waits or is being sent: the letter's extra recipients (the supplier) are done too."""
    from core.extensions import db
    from notifications.models import Message, MessageStatus

    with app.app_context():
        return not db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Message)
            .where(Message.status.in_([MessageStatus.QUEUED.value, MessageStatus.SENDING.value]))
        )


def outage_notice(letter_body: str = LETTER_BODY) -> dict:
    """The notice the benches post: Telia's GSM network down for every provider, with a letter."""
    return {
        "title": "GSM-nätet ur funktion",
        "service": "camera_supervision",
        "supplier": "Telia",
        "planned": False,
        "starts_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
        "providers": "all",
        "body": "Telias GSM-nät är ur funktion i Linköping.",
        "letter": {"subject": "Driftstörning: kameratillsyn", "body": letter_body},
    }


def build_world(app, providers: int, contacts: int) -> str:
    """The register, the supplier and the on-call officer (also bench.service_fanout's); returns
    the officer's API token."""
    from flask_migrate import upgrade

    from accounts.roles import Role
    from accounts.service import create_token, create_user
    from core.extensions import db
    from crisis.incidents.models import Supplier

    with app.app_context():
        upgrade()
        now = datetime.now(UTC)
        _create_register(providers, contacts, now)
        db.session.add(Supplier(name="Telia", email="drift@telia.example.se", is_active=True, created_at=now))
        officer = create_user(
            db_session=db.session,
            username="tib",
            display_name="Tove I Beredskap",
            role=Role.ON_CALL,
            now=now,
            password=PASSWORD,
        )
        db.session.flush()
        _row, token = create_token(db_session=db.session, user=officer, name="bench", now=now)
        db.session.commit()
        db.session.remove()
    return token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=300)
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    latency.add_arguments(parser)
    args = parser.parse_args()

    from app import create_app
    from core.extensions import db
    from notifications.dispatcher import Dispatcher
    from notifications.models import Message, MessageStatus

    peers = Peers(**latency.peer_options(args))
    info = peers.info
    workdir = Path(tempfile.mkdtemp(prefix="krisrutin-incident-"))
    database_url, drop = fresh_database(args.database_url, workdir)
    concurrency = {name: os.environ[name] for name in ("EMAIL_CONCURRENCY", "SMS_CONCURRENCY") if name in os.environ}
    try:
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "KRISRUTIN_ENV": "testing",
                "SECRET_KEY": "bench-" * 8,
                "LOG_LEVEL": "WARNING",
                "SMTP_HOST": info["smtp_host"],
                "SMTP_PORT": info["smtp_port"],
                "SMTP_SECURITY": "none",
                "MAIL_FROM": "valfardsteknik@example.se",
                "TWILIO_ACCOUNT_SID": info["account_sid"],
                "TWILIO_AUTH_TOKEN": info["auth_token"],
                "TWILIO_FROM": "Krisrutin",
                "TWILIO_API_BASE_URL": info["twilio_url"],
                "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
                **concurrency,
            }
        )
        settings = app.extensions["krisrutin.settings"]
        token = build_world(app, args.providers, args.contacts)

        dispatcher = Dispatcher(app, name="bench")
        dispatcher.start()
        expected = 2 * args.contacts
        smtp_before, twilio_before = peers.counts()
        gauges_before = peers.gauges()
        client = app.test_client()
        body = outage_notice()
        load_before = latency.load_average()
        posted_at = datetime.now(UTC)
        start_wall = time.time()
        cpu_before = time.process_time()
        started = time.perf_counter()
        response = client.post("/api/v1/notices", json=body, headers={"Authorization": f"Bearer {token}"})
        response.get_data()  # the whole answer, as a client reads it
        post_ms = (time.perf_counter() - started) * 1000
        response.close()  # as a WSGI server does next: the letter's rest is queued after the answer
        if response.status_code != 201:
            raise SystemExit(f"POST /api/v1/notices answered {response.status_code}: {response.get_data(as_text=True)}")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            smtp_count, twilio_count = peers.counts()
            if (smtp_count - smtp_before) + (twilio_count - twilio_before) >= expected and _nothing_open(app):
                break
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_before
        load_after = latency.load_average()
        dispatcher.stop()
        with app.app_context():
            first_sent = db.session.scalar(sa.select(sa.func.min(Message.sent_at)))
            queued = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
            failed = db.session.scalar(
                sa.select(sa.func.count()).select_from(Message).where(Message.status == MessageStatus.FAILED.value)
            )
            per_channel = dict(
                db.session.execute(sa.select(Message.channel, sa.func.count()).group_by(Message.channel)).all()
            )
        smtp_after, twilio_after = peers.counts()
        result = {
            "contacts": args.contacts,
            "providers": args.providers,
            "database": database_url.split(":", 1)[0],
            "email_workers": settings.email_concurrency,
            "sms_workers": settings.sms_concurrency,
            "post_ms": round(post_ms, 1),
            "messages_queued": queued,
            "arrived_at_gateways": (smtp_after - smtp_before) + (twilio_after - twilio_before),
            "failed": failed,
            "seconds": round(seconds, 2),
            "first_message_ms": round((first_sent - posted_at).total_seconds() * 1000, 1) if first_sent else None,
            "load_average": [load_before, load_after],
            **latency.figures(
                args=args,
                settings=settings,
                peers=peers,
                gauges_before=gauges_before,
                counts_before=(smtp_before, twilio_before),
                queued={"email": per_channel.get("email", 0), "sms": per_channel.get("sms", 0)},
                start_wall=start_wall,
                cpu_seconds=cpu_seconds,
            ),
        }
        latency.print_summary(result)
        print(json.dumps(result))
    finally:
        peers.stop()
        drop()


if __name__ == "__main__":
    main()
