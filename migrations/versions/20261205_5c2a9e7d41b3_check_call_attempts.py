"""Monthly check: every call to a contact kept as an attempt

``check_recipients.call_attempts`` (JSON, null before the first call): each recorded call with
when, by whom and its outcome, so that a contact not reached stays on the call list with the
attempts shown. A recipient called before this migration gets its one recorded call as the first
attempt.

Revision ID: 5c2a9e7d41b3
Revises: c4e2a7b19d03
Create Date: 2026-12-05 01:50:00

"""

from datetime import UTC

from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "5c2a9e7d41b3"
down_revision = "c4e2a7b19d03"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("check_recipients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_attempts", sa.JSON(), nullable=True))
    if context.is_offline_mode():  # a script for an empty database: no calls recorded yet
        return
    recipients = sa.table(
        "check_recipients",
        sa.column("id", sa.Integer()),
        sa.column("call_outcome", sa.String()),
        sa.column("called_at", sa.DateTime()),
        sa.column("called_by_id", sa.Integer()),
        sa.column("call_attempts", sa.JSON()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(recipients.c.id, recipients.c.call_outcome, recipients.c.called_at, recipients.c.called_by_id).where(
            recipients.c.call_outcome.is_not(None)
        )
    ).all()
    for row in rows:
        at = row.called_at
        if at is not None:
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)  # SQLite: naive UTC
        attempt = {
            "at": at.isoformat() if at is not None else None,
            "by": row.called_by_id,
            "outcome": row.call_outcome,
        }
        connection.execute(recipients.update().where(recipients.c.id == row.id).values(call_attempts=[attempt]))


def downgrade():
    with op.batch_alter_table("check_recipients", schema=None) as batch_op:
        batch_op.drop_column("call_attempts")
