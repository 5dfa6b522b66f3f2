"""A fresh database for one benchmark run: a new SQLite file, or a PostgreSQL schema of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa


def fresh_database(url: str | None, workdir: Path) -> tuple[str, Callable[[], None]]:
    """``(database_url, drop)``: a SQLite file in ``workdir`` when ``url`` is None; for a
    PostgreSQL ``url`` a new schema (the returned URL's search path), which ``drop`` removes."""
    if url is None:
        return f"sqlite:///{workdir / 'bench.sqlite3'}", lambda: None
    if not url.startswith("postgresql"):
        return url, lambda: None
    url = url.replace("postgresql://", "postgresql+psycopg://", 1) if "+psycopg" not in url else url
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}", drop
