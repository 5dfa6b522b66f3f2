"""claim index on PostgreSQL holds only open messages

On PostgreSQL ``ix_messages_claim`` becomes a partial index: only rows whose status is
``queued`` or ``sending`` (the claim, the lease recovery and the open-messages view ask for no
other). Both updates of a message change its status, so neither is a HOT update: before, the
``sent`` update inserted one more entry for every message into this five-column index, which also
kept every message ever sent. SQLite keeps the full index: its planner uses a partial index only
when the query repeats the index's condition, and ``status = 'queued'`` does not repeat
``status IN ('queued', 'sending')``.

Revision ID: 5d1c0a9e7b42
Revises: 8e3b1f6a2c57
Create Date: 2026-12-06 13:45:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "5d1c0a9e7b42"
down_revision = "8e3b1f6a2c57"
branch_labels = None
depends_on = None

COLUMNS = ["status", "channel", "priority", "next_attempt_at", "id"]


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_messages_claim", table_name="messages")
    op.create_index(
        "ix_messages_claim", "messages", COLUMNS, postgresql_where=sa.text("status IN ('queued', 'sending')")
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_messages_claim", table_name="messages")
    op.create_index("ix_messages_claim", "messages", COLUMNS)
