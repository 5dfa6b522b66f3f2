"""The migration that cuts link secrets out of the audit log's existing paths: it changes exactly
those paths, to what the service now writes, and leaves the log append-only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from core import audit
from core.extensions import db
from tests.conftest import build_app

BEFORE = "b3f19a0c6d57"
MAC = "lGbeZRzAr4pPn2j1DqCLkw"
# (path as stored before, path after the migration)
PATHS = [
    (f"/d/7-bjVOZiPeO6-{MAC}", "/d/7-…"),
    (f"/v/12-KJ5ZwDkId_-{MAC}", "/v/12-…"),
    (f"/v/12-KJ5ZwDkId_-{MAC}/mark", "/v/12-…/mark"),
    (f"/k/3-nonce-anna-{MAC}", "/k/3-…"),
    (f"/k/3-nonce-anna-{MAC}/korrigera", "/k/3-…/korrigera"),
    ("/k/3-…", "/k/3-…"),
    ("/d/abc", "/d/…"),
    (f"/d/1234567890123-n-{MAC}", "/d/…"),
    (f"/roster/feed/u3-{MAC}.ics", "/roster/feed/u3-….ics"),
    (f"/roster/feed/team-{MAC}.ics", "/roster/feed/team-….ics"),
    ("/register/contacts/5/edit", "/register/contacts/5/edit"),
    ("/visits/mine", "/visits/mine"),
    (None, None),
]


def _rows(connection) -> list[tuple]:
    return [
        tuple(row)
        for row in connection.execute(
            sa.text(
                "SELECT id, at, actor_kind, actor_id, action, entity, entity_id, ip, path FROM audit_log ORDER BY id"
            )
        )
    ]


def test_the_migration_cuts_link_secrets_from_existing_paths_and_the_log_stays_append_only(database_url, clock):
    app = build_app(database_url, clock)
    with app.app_context():
        upgrade()
        downgrade(revision=BEFORE)
        at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
        with db.engine.begin() as connection:
            for number, (path, _) in enumerate(PATHS):
                connection.execute(
                    sa.insert(audit.AuditEntry.__table__).values(
                        at=at,
                        actor_kind="link",
                        actor_id=f"letter:{number}",
                        action="view",
                        entity="letter_receipt",
                        entity_id=str(number),
                        detail={},
                        ip="198.51.100.4",
                        path=path,
                    )
                )
            before = _rows(connection)
        upgrade()
        with db.engine.connect() as connection:
            after = _rows(connection)
        assert [row[-1] for row in after] == [cut for _, cut in PATHS]
        assert [row[:-1] for row in after] == [row[:-1] for row in before]  # nothing else changed
        for statement in ("UPDATE audit_log SET path = '/d/x'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as connection:
                connection.execute(sa.text(statement))
        db.engine.dispose()


def test_the_migration_cuts_paths_as_the_service_does(url_map_app):
    for path, cut in PATHS[:-1]:
        with url_map_app.test_request_context(path, method="POST" if path.endswith("/mark") else "GET"):
            assert audit.logged_path() == cut, path


@pytest.fixture
def url_map_app(sqlite_url, clock):
    return build_app(sqlite_url, clock)
