"""Register import benchmark: ``python -m bench.register_import --contacts 5000 [--database-url URL]``.

Generates a good CSV file of N contacts (ten per provider, Swedish letters, both addresses,
services), imports it into a fresh database through :func:`contacts.register_csv.import_csv`
(validation of every row, then one transaction with history), and imports it again (which must
change nothing). SQLite by default; a PostgreSQL URL gets a fresh schema of its own, dropped
afterwards. The target is under 10 seconds for 5,000 contacts.

Prints one JSON line last: contacts, seconds (the first import, commit included),
reimport_seconds, history_rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.databases import fresh_database

HEADER = "Utförare;Organisationsnummer;Utförartyp;Namn;Roll;Mobil;E-post;Tjänster;Aktiv"


def generate(contacts: int) -> bytes:
    """A file as Excel writes it: UTF-8 with BOM, ``;``, CRLF."""
    lines = [HEADER]
    for number in range(contacts):
        provider = number // 10
        kind = "Kommunal" if provider % 3 == 0 else "Privat"
        lines.append(
            f"Hemtjänst Område {provider:05d} Västerås;;{kind};Åsa Öberg {number:06d};Enhetschef;"
            f"070-{1000000 + number:07d};person{number}@example.se;Kameratillsyn, Trygghetslarm;ja"
        )
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def run(contacts: int, database_url: str | None) -> dict:
    from flask_migrate import upgrade

    from app import create_app
    from contacts import register_csv
    from contacts.models import ContactPerson, RegisterChange
    from contacts.register import Actor
    from core.clock import current_clock
    from core.extensions import db

    data = generate(contacts)
    with tempfile.TemporaryDirectory() as workdir:
        url, drop = fresh_database(database_url, Path(workdir))
        try:
            app = create_app(
                {
                    "DATABASE_URL": url,
                    "KRISRUTIN_ENV": "testing",
                    "SECRET_KEY": "bench-" + "x" * 40,
                    "LOG_LEVEL": "WARNING",
                }
            )
            with app.app_context():
                upgrade()
                started = time.perf_counter()
                summary = register_csv.import_csv(db.session, data, actor=Actor("import"), now=current_clock().now())
                db.session.commit()
                seconds = time.perf_counter() - started
                assert summary.created == contacts, summary
                db.session.expire_all()
                started = time.perf_counter()
                again = register_csv.import_csv(db.session, data, actor=Actor("import"), now=current_clock().now())
                db.session.commit()
                reimport_seconds = time.perf_counter() - started
                assert again.unchanged == contacts and not again.changed, again
                stored = db.session.scalar(sa.select(sa.func.count()).select_from(ContactPerson))
                history_rows = db.session.scalar(sa.select(sa.func.count()).select_from(RegisterChange))
                assert stored == contacts
                db.session.remove()
                db.engine.dispose()
        finally:
            drop()
    return {
        "contacts": contacts,
        "seconds": round(seconds, 2),
        "reimport_seconds": round(reimport_seconds, 2),
        "history_rows": history_rows,
        "database": "postgresql" if database_url and database_url.startswith("postgresql") else "sqlite",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (a fresh schema is used); default SQLite")
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.contacts, arguments.database_url)))


if __name__ == "__main__":
    main()
