"""Personal paging rules: per staff member, the steps of an unacknowledged alert

``paging_steps``: (user, position) unique; the minute after the alert and its channels (SMS,
e-mail, call). No rows: the routine's default rules.

Revision ID: 9e4b7c2d1a6f
Revises: 08a968d20825
Create Date: 2026-12-05 21:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "9e4b7c2d1a6f"
down_revision = "08a968d20825"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "paging_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("sms", sa.Boolean(), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("call", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_paging_steps_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paging_steps")),
        sa.UniqueConstraint("user_id", "position", name=op.f("uq_paging_steps_user_id_position")),
    )
    with op.batch_alter_table("paging_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paging_steps_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("paging_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paging_steps_user_id"))
    op.drop_table("paging_steps")
