"""Audit log purge: rows older than the retention period may be deleted, by the retention run only

The append-only triggers stay for UPDATE; DELETE is allowed only for rows older than a cutoff that
the retention run writes into ``audit_log_purge`` in the same transaction (and removes again).
Nothing else in the service writes that table, so the log still cannot be edited through the
service, and a purge can only take what is older than the configured period.

Revision ID: 5e0c7d21a9b3
Revises: 49342dfb0ab0
Create Date: 2026-11-24 02:20:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "5e0c7d21a9b3"
down_revision = "49342dfb0ab0"
branch_labels = None
depends_on = None

_REFUSE_ALL_PG = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
)
_PURGE_PG = (
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP = 'DELETE' AND OLD.at < (SELECT max(cutoff) FROM audit_log_purge) THEN RETURN OLD; END IF; "
    "RAISE EXCEPTION 'audit_log is append-only'; "
    "END $$"
)


def upgrade():
    op.create_table(
        "audit_log_purge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log_purge")),
    )
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute(_PURGE_PG)
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "WHEN NOT coalesce(OLD.at < (SELECT max(cutoff) FROM audit_log_purge), 0) "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )


def downgrade():
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute(_REFUSE_ALL_PG)
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
        )
    op.drop_table("audit_log_purge")
