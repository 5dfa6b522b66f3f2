"""Shared fixtures: a real database (SQLite file, and PostgreSQL when reachable), a fixed clock.

Database tests take the ``app`` fixture, which is parametrised over both databases. PostgreSQL
tests run in a schema of their own that is dropped afterwards, so parallel runs do not collide.
With REQUIRE_POSTGRES=1 an unreachable server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from app import create_app
from core.clock import FixedClock
from core.extensions import db
from tests.support import speedups
from tests.support.server_like_client import ServerLikeClient

pytest_plugins = ["tests.support.fixtures", "tests.support.imap_server"]

speedups.install()  # shared URL builders, SQLite without fsync: see tests/support/speedups.py

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"

_pg_state: dict[str, bool] = {}


def postgres_reachable() -> bool:
    if "ok" not in _pg_state:
        try:
            engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            engine.dispose()
            _pg_state["ok"] = True
        except sa.exc.OperationalError:
            _pg_state["ok"] = False
    return _pg_state["ok"]


def require_postgres_or_skip() -> None:
    if postgres_reachable():
        return
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but {POSTGRES_URL} is unreachable")
    pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")


def _with_search_path(url: str, schema: str, *, durable: bool = False) -> str:
    """The URL with ``schema`` as its default schema, and commits that do not wait for the disk
    (tests/support/speedups.py) unless ``durable``."""
    separator = "&" if "?" in url else "?"
    options = " ".join((f"-csearch_path={schema}", *(() if durable else speedups.POSTGRES_OPTIONS)))
    return f"{url}{separator}options={quote(options)}"


# Migrated schemas of this worker process, emptied after their test and handed to the next one:
# building the schema (~45 tables, indexes, triggers) cost ~0.3 s per PostgreSQL test, emptying it
# a few milliseconds. A schema goes back to the pool only if its structure is still exactly that
# of a freshly migrated one (the fingerprint below), so a test that changes the schema or leaves
# it half-built never passes that on; such a schema is dropped as before.
_clean_schemas: list[str] = []
_migrated_urls: set[str] = set()

_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
    SELECT c.relname || ':' || CAST(c.relkind AS text) AS item
    FROM pg_class c WHERE c.relnamespace = CAST(:schema AS regnamespace)
    UNION ALL
    SELECT c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod) || CAST(a.attnotnull AS text)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = CAST(:schema AS regnamespace) AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT t.tgname || ':' || c.relname || ':' || CAST(t.tgenabled AS text)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = CAST(:schema AS regnamespace) AND NOT t.tgisinternal
    UNION ALL
    SELECT p.proname || ':' || md5(p.prosrc) FROM pg_proc p WHERE p.pronamespace = CAST(:schema AS regnamespace)
) AS items
"""


def _schema_fingerprint(connection, schema: str) -> str:
    version = connection.execute(sa.text(f"SELECT string_agg(version_num, ',') FROM \"{schema}\".alembic_version"))
    return connection.execute(sa.text(_FINGERPRINT), {"schema": schema}).scalar() + (version.scalar() or "")


def _empty_for_reuse(admin, schema: str) -> bool:
    """Delete every row (triggers off, as for a restore) and restart the sequences; True when the
    schema is then as a freshly migrated one."""
    expected = _schema_templates.get("postgresql-fingerprint")
    if expected is None:
        return False
    with admin.begin() as connection:
        if not connection.execute(sa.text("SELECT to_regclass(:t)"), {"t": f'"{schema}".alembic_version'}).scalar():
            return False
        if _schema_fingerprint(connection, schema) != expected:
            return False
        tables = _schema_templates.get("postgresql-tables") or _tables(connection, schema)
        statements = ["SET LOCAL session_replication_role = replica"]
        statements += [f'DELETE FROM "{schema}"."{table}"' for table in tables]
        connection.exec_driver_sql(";\n".join(statements))
        connection.execute(sa.text(_RESTART_USED_SEQUENCES), {"schema": schema})
    return True


# The sequences the test used, back at their start as in a fresh schema (pg_sequences shows no
# last_value for one never used, nor after setval(..., false)). ALTER SEQUENCE ... RESTART on all
# ~40 of them took ~35 ms per test, as each gets a new file; setval changes the value in place.
_RESTART_USED_SEQUENCES = """
SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)
FROM pg_sequences WHERE schemaname = :schema AND last_value IS NOT NULL
"""


def _tables(connection, schema: str) -> list[str]:
    """The tables (but alembic_version) of a freshly migrated schema; kept once known, as every
    schema with the same fingerprint has the same ones."""
    tables = connection.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :schema AND tablename <> 'alembic_version'"),
        {"schema": schema},
    ).scalars()
    _schema_templates["postgresql-tables"] = sorted(tables)
    return _schema_templates["postgresql-tables"]


_admin: list[sa.Engine] = []


def _admin_engine() -> sa.Engine:
    """One connection of this worker process for creating, emptying and dropping test schemas
    (a new connection per test cost a few milliseconds each time), committing without waiting
    for the disk as the tests' own connections do (tests/support/speedups.py)."""
    if not _admin:
        options = " ".join(speedups.POSTGRES_OPTIONS)
        _admin.append(
            sa.create_engine(
                POSTGRES_URL, pool_size=1, pool_pre_ping=True, connect_args={"options": options} if options else {}
            )
        )
    return _admin[0]


@pytest.fixture
def postgres_url(request):
    """A PostgreSQL URL whose default schema is private to this test: fresh, or emptied after an
    earlier test of this worker (see ``_clean_schemas``). Its commits do not wait for the disk,
    unless the test is marked ``durable_commits`` (a test of the server's own setting)."""
    require_postgres_or_skip()
    admin = _admin_engine()
    if _clean_schemas:
        schema = _clean_schemas.pop()
    else:
        schema = f"t_{uuid.uuid4().hex[:16]}"
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = _with_search_path(
        POSTGRES_URL, schema, durable=request.node.get_closest_marker("durable_commits") is not None
    )
    try:
        yield url
    finally:
        _migrated_urls.discard(url)
        try:
            reusable = _empty_for_reuse(admin, schema)
        except sa.exc.DBAPIError:
            reusable = False
        if reusable:
            _clean_schemas.append(schema)
            _migrated_urls.add(url)
        else:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def pytest_sessionfinish(session):
    """Drop this worker's pooled schemas and its SQLite template file."""
    if _clean_schemas:
        with _admin_engine().begin() as connection:
            for schema in _clean_schemas:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        _clean_schemas.clear()
    for engine in _admin:
        engine.dispose()
    template = _schema_templates.pop("sqlite", None)
    if template:
        import shutil

        shutil.rmtree(os.path.dirname(template), ignore_errors=True)


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'krisrutin-test.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    """Each database test runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(name)


@pytest.fixture
def clock():
    """Monday 23 November 2026, 10:00 in Stockholm (09:00 UTC): office hours."""
    return FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))


def build_app(database_url: str, clock: FixedClock, **overrides):
    config = {"DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET, "KRISRUTIN_ENV": "testing", **overrides}
    application = create_app(config, clock=clock)
    application.jinja_env.bytecode_cache = speedups.TEMPLATE_CODE  # compiled once per process
    application.test_client_class = ServerLikeClient  # closes answers as a server does
    return application


def create_schema(app) -> None:
    """Build the schema by the migrations, as production does, once per test session and kind of
    database; each test then gets a copy (running ~10 migrations per test cost the suite minutes).

    SQLite: the migrations run online into a template file, copied for each test's empty file.
    PostgreSQL: Alembic renders the migrations as SQL (offline mode, the same migration scripts),
    which runs in the test's empty schema. A database that already has tables is upgraded
    normally. tests/test_migrations.py runs the migrations themselves, online, on both databases,
    and checks that the copied schema is the same as the migrated one.
    """
    from flask_migrate import upgrade

    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite" and _sqlite_is_empty(engine.url.database):
            engine.dispose()
            _copy_sqlite_template(engine.url.database)
            return
        if engine.dialect.name == "postgresql" and app.config["SQLALCHEMY_DATABASE_URI"] in _migrated_urls:
            return  # an emptied, migrated schema from the pool
        if engine.dialect.name == "postgresql" and not sa.inspect(engine).get_table_names():
            with engine.begin() as connection:
                connection.exec_driver_sql(_postgres_script())
                if "postgresql-fingerprint" not in _schema_templates:
                    schema = connection.execute(sa.text("SELECT current_schema()")).scalar()
                    _schema_templates["postgresql-fingerprint"] = _schema_fingerprint(connection, schema)
            return
        upgrade()


_schema_templates: dict[str, str] = {}


def _sqlite_is_empty(path: str | None) -> bool:
    import sqlite3

    if not path or path == ":memory:":
        return False
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return True
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0
    finally:
        connection.close()


def _copy_sqlite_template(path: str) -> None:
    import shutil
    import tempfile

    from flask_migrate import upgrade

    template = _schema_templates.get("sqlite")
    if template is None:
        template = os.path.join(tempfile.mkdtemp(prefix="krisrutin-schema-"), "template.sqlite3")
        application = build_app(f"sqlite:///{template}", FixedClock(datetime(2026, 1, 1, tzinfo=timezone.utc)))
        with application.app_context():
            upgrade()
            db.engine.dispose()
        _schema_templates["sqlite"] = template
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    shutil.copyfile(template, path)


def _postgres_script() -> str:
    """The migrations as one SQL script for PostgreSQL (without its BEGIN/COMMIT)."""
    import contextlib
    import io

    from flask_migrate import upgrade

    script = _schema_templates.get("postgresql")
    if script is None:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            upgrade(sql=True)
        lines = [line for line in output.getvalue().splitlines() if line.strip() not in ("BEGIN;", "COMMIT;")]
        script = _schema_templates["postgresql"] = "\n".join(lines)
    return script


@pytest.fixture
def make_app(database_url, clock):
    """Applications on this test's fresh, migrated database, with extra settings if given
    (``make_app(MESSAGE_MAX_ATTEMPTS=2)``); each is disposed of after the test."""
    apps = []

    def make(**overrides):
        application = build_app(database_url, clock, **overrides)
        create_schema(application)
        apps.append(application)
        return application

    yield make
    for application in apps:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    """The application on a fresh, migrated database. No app context is left pushed:
    tests open ``with app.app_context():`` where they touch the database directly."""
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


DEFAULT_PASSWORD = "a-long-test-password"


@pytest.fixture
def make_user(app, clock):
    """Create a user with a role; returns (id, username, password)."""
    from accounts.service import create_user

    counter = {"n": 0}

    def make(role="team", username=None, password=DEFAULT_PASSWORD):
        counter["n"] += 1
        name = username or f"{role.replace('_', '-')}{counter['n']}"
        with app.app_context():
            user = create_user(
                db_session=db.session,
                username=name,
                display_name=f"Test {name}",
                role=role,
                now=clock.now(),
                password=password,
            )
            db.session.commit()
            return user.id, name, password

    return make


@pytest.fixture
def make_token(app, clock):
    """Create an API token for a user id; returns the secret."""
    from accounts.models import User
    from accounts.service import create_token

    def make(user_id, name="test"):
        with app.app_context():
            _, secret = create_token(
                db_session=db.session, user=db.session.get(User, user_id), name=name, now=clock.now()
            )
            db.session.commit()
            return secret

    return make


def csrf_token_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def log_in(client, username, password=DEFAULT_PASSWORD):
    page = client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})
