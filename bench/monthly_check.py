"""Monthly check benchmark: ``python -m bench.monthly_check --contacts 50000 [--database-url URL]``.

Creates N active contacts (one provider per ten contacts) with bulk inserts, not timed, on a
fresh database (a SQLite file, or a fresh schema of the PostgreSQL database given). Then, timed:
the scheduler tick at the send instant of January 2027's check, repeated until no task is left,
which opens the check, adds a recipient per contact and queues an e-mail and an SMS with each
contact's personal link. Nothing is sent (no dispatcher runs): the figure is the check's own work.

Prints one JSON line last: contacts, seconds, messages, recipients, ticks.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.databases import fresh_database

PROVIDER_SIZE = 10
INSERT_CHUNK = 5000


def _create_register(count: int, now) -> None:
    from contacts.models import ContactPerson, Provider
    from core.extensions import db

    providers = [
        {"name": f"Bench Omsorg {number:05d}", "kind": "private", "is_active": True, "created_at": now}
        for number in range((count + PROVIDER_SIZE - 1) // PROVIDER_SIZE)
    ]
    db.session.execute(sa.insert(Provider), providers)
    ids = list(db.session.scalars(sa.select(Provider.id).order_by(Provider.id)))
    contacts = [
        {
            "provider_id": ids[number // PROVIDER_SIZE],
            "name": f"Kontakt Nummer {number}",
            "role_title": "Enhetschef",
            "mobile": f"+4670{number:07d}",
            "email": f"kontakt{number}@omsorg.example.se",
            "services": ["camera_supervision"],
            "is_active": True,
            "created_at": now,
        }
        for number in range(count)
    ]
    for start in range(0, count, INSERT_CHUNK):
        db.session.execute(sa.insert(ContactPerson), contacts[start : start + INSERT_CHUNK])
    db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=50000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from app import create_app
    from contacts.check_models import CheckRecipient
    from core.clock import FixedClock
    from core.extensions import db
    from notifications.models import Message
    from scheduling.service import tick
    from worktime.calendar import check_plan, send_at

    workdir = Path(tempfile.mkdtemp(prefix="krisrutin-check-"))
    database_url, drop = fresh_database(args.database_url, workdir)
    try:
        clock = FixedClock(datetime(2027, 1, 1, tzinfo=UTC))  # set to the send instant below
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "KRISRUTIN_ENV": "testing",
                "SECRET_KEY": "bench-" * 8,
                "LOG_LEVEL": "WARNING",
                "PUBLIC_BASE_URL": "https://krisrutin.kommun.example.se",
            },
            clock=clock,
        )
        policy = app.extensions["krisrutin.routine"]
        instant = send_at(check_plan(2027, 1, policy), policy)
        clock.set(instant)
        with app.app_context():
            upgrade()
            _create_register(args.contacts, instant - timedelta(days=30))

            started = time.perf_counter()
            ticks = 0
            while True:
                report = tick(db_session=db.session, now=clock.now())
                ticks += 1
                if not report.more_due and report.ran == 0:
                    break
            seconds = time.perf_counter() - started

            messages = db.session.scalar(sa.select(sa.func.count()).select_from(Message))
            recipients = db.session.scalar(sa.select(sa.func.count()).select_from(CheckRecipient))
            db.session.remove()
            db.engine.dispose()
        result = {
            "contacts": args.contacts,
            "seconds": round(seconds, 2),
            "messages": messages,
            "recipients": recipients,
            "ticks": ticks,
            "database": database_url.split(":", 1)[0],
        }
        print(json.dumps(result))
    finally:
        drop()


if __name__ == "__main__":
    main()
