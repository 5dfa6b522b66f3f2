"""Audit log: paths without link secrets (a link's token cut to its kind and row id)

Until now the audit log stored the full path of a signed link page (``/d/<id>-<nonce>-<mac>``,
likewise ``/v/…`` with ``/mark``, ``/k/…`` with ``/korrigera``), so whoever read or exported the
log could open that provider's page. The service now stores ``/d/<id>-…``; this migration rewrites
the rows written before, and calendar-feed paths (``/roster/feed/<u<id>|team>-<mac>.ics``) the
same way, should any exist. Only the ``path`` of those rows changes; rows already cut stay as
they are, so running it again changes nothing.

The table refuses UPDATE (triggers). The guard is lifted for this migration's own statement only
and restored before its transaction ends: PostgreSQL disables and re-enables the trigger inside
the migration's transaction (the ALTER TABLE locks the table until commit, so no other session
writes it meanwhile, and a failure rolls the whole back with the trigger in force); SQLite drops
and re-creates its UPDATE trigger inside a savepoint (a failure rolls back to it, trigger
included; the write lock keeps other connections out). Both are plain SQL, so ``--sql`` renders
them too.

Downgrade changes nothing: the cut-off secrets are gone, which is the point.

Revision ID: 518e50e5e55f
Revises: 280eb6e26c89
Create Date: 2026-11-25 09:00:00

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "518e50e5e55f"
down_revision = "280eb6e26c89"
branch_labels = None
depends_on = None

# PostgreSQL: the row id (1 to 12 digits before the first "-") is kept, the rest of the token
# becomes "…"; a feed keeps whose feed it is ("team-" or "u<id>-").
_LINK_PG = r"regexp_replace(path, '^/([dvk])/(([0-9]{1,12})-)?[^/]*', '/\1/\2…')"
_FEED_PG = r"regexp_replace(path, '^/roster/feed/(team-|u[0-9]{1,12}-)?[^/]*\.ics$', '/roster/feed/\1….ics')"

# SQLite has no regular expressions: the same cut with string functions. ``token`` is the path's
# third segment, ``tail`` what follows it ("/mark", "/korrigera"), ``dash`` the first "-".
_LINK_SQLITE = """
UPDATE audit_log SET path = cut.path FROM (
    SELECT id, head || CASE
            WHEN dash BETWEEN 2 AND 13 AND substr(token, 1, dash - 1) NOT GLOB '*[^0-9]*'
            THEN substr(token, 1, dash) ELSE '' END || '…' || tail AS path
    FROM (
        SELECT id, head, token, tail, instr(token, '-') AS dash FROM (
            SELECT id, substr(path, 1, 3) AS head,
                CASE WHEN instr(substr(path, 4), '/') > 0
                    THEN substr(path, 4, instr(substr(path, 4), '/') - 1) ELSE substr(path, 4) END AS token,
                CASE WHEN instr(substr(path, 4), '/') > 0
                    THEN substr(path, 3 + instr(substr(path, 4), '/')) ELSE '' END AS tail
            FROM audit_log WHERE path GLOB '/[dvk]/*'
        )
    )
) AS cut
WHERE audit_log.id = cut.id AND audit_log.path <> cut.path
"""
_FEED_SQLITE = """
UPDATE audit_log SET path = cut.path FROM (
    SELECT id, '/roster/feed/' || CASE
            WHEN token GLOB 'team-*' THEN 'team-'
            WHEN dash BETWEEN 3 AND 14 AND token GLOB 'u*' AND substr(token, 2, dash - 2) NOT GLOB '*[^0-9]*'
            THEN substr(token, 1, dash) ELSE '' END || '….ics' AS path
    FROM (
        SELECT id, token, instr(token, '-') AS dash FROM (
            SELECT id, substr(path, 14, length(path) - 17) AS token
            FROM audit_log WHERE path GLOB '/roster/feed/?*.ics' AND substr(path, 14) NOT GLOB '*/*'
        )
    )
) AS cut
WHERE audit_log.id = cut.id AND audit_log.path <> cut.path
"""
# As created by revision 4a1f2caa22f2 (the purge migration changed only the DELETE trigger).
_SQLITE_UPDATE_GUARD = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
)


def upgrade():
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        op.execute(f"UPDATE audit_log SET path = {_LINK_PG} WHERE path ~ '^/[dvk]/' AND path <> {_LINK_PG}")
        op.execute(f"UPDATE audit_log SET path = {_FEED_PG} WHERE path ~ '^/roster/feed/' AND path <> {_FEED_PG}")
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    elif dialect == "sqlite":
        op.execute("SAVEPOINT audit_log_paths")
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute(_LINK_SQLITE)
        op.execute(_FEED_SQLITE)
        op.execute(_SQLITE_UPDATE_GUARD)
        op.execute("RELEASE audit_log_paths")
    else:
        raise NotImplementedError(f"no rewrite of the audit log's paths for {dialect}")


def downgrade():
    pass
