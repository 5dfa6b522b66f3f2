"""The letter receipt records the provider's answer to "Har ni startat era lokala rutiner?"

The boolean ``local_routines_started`` (a pre-ticked box) becomes ``local_routines``: "yes",
"not_yet" or "not_needed", NULL when not asked (a receipt taken on the phone). Old rows: started
-> "yes", not started -> "not_yet" (nobody should read an unticked box as "not needed"); on the
way down "yes" -> true, the other answers -> false.

Revision ID: c4e2a7b19d03
Revises: d41c7e5a9f20
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "c4e2a7b19d03"
down_revision = "d41c7e5a9f20"
branch_labels = None
depends_on = None

receipts = sa.table(
    "letter_receipts",
    sa.column("local_routines_started", sa.Boolean()),
    sa.column("local_routines", sa.String(16)),
)


def upgrade():
    with op.batch_alter_table("letter_receipts") as batch:
        batch.add_column(sa.Column("local_routines", sa.String(length=16), nullable=True))
    started = receipts.c.local_routines_started
    op.execute(receipts.update().where(started.is_(True)).values(local_routines="yes"))
    op.execute(receipts.update().where(started.is_(False)).values(local_routines="not_yet"))
    with op.batch_alter_table("letter_receipts") as batch:
        batch.drop_column("local_routines_started")


def downgrade():
    with op.batch_alter_table("letter_receipts") as batch:
        batch.add_column(sa.Column("local_routines_started", sa.Boolean(), nullable=True))
    answer = receipts.c.local_routines
    op.execute(receipts.update().where(answer == "yes").values(local_routines_started=True))
    op.execute(receipts.update().where(answer.in_(("not_yet", "not_needed"))).values(local_routines_started=False))
    with op.batch_alter_table("letter_receipts") as batch:
        batch.drop_column("local_routines")
