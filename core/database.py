"""Database connection settings that must hold on every connection."""

from sqlalchemy import event
from sqlalchemy.engine import Engine


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: enforce foreign keys, and use WAL so the scheduler and web process can share the file."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def dialect_insert(db_session, table):
    """An INSERT for ``table`` in the session's dialect, so that callers can add
    ``on_conflict_do_nothing``/``on_conflict_do_update`` (SQLite and PostgreSQL spell them alike)."""
    from sqlalchemy.dialects import postgresql, sqlite

    name = db_session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"no upsert for the {name} dialect")
