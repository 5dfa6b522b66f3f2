"""TOTP recovery codes: digests of a user's unused one-time codes

Revision ID: b3f19a0c6d57
Revises: 5e0c7d21a9b3
Create Date: 2026-11-24 02:40:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "b3f19a0c6d57"
down_revision = "5e0c7d21a9b3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_recovery", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("totp_recovery")
