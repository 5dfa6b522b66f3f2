"""The supplier mailbox: inbound e-mails, and suppliers' sender addresses

``inbound_emails``: every message read from the supplier mailbox over IMAP (unique by folder,
UIDVALIDITY and UID), what became of it (a notice, the triage list, dismissed) and why.
``suppliers.sender_addresses``: the addresses a supplier's notices come from, one a line.

Revision ID: 8e3b1f6a2c57
Revises: 77aa4befeef8
Create Date: 2026-12-05 21:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "8e3b1f6a2c57"
down_revision = "77aa4befeef8"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sender_addresses", sa.Text(), nullable=True))
    op.create_table(
        "inbound_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox_key", sa.String(length=400), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("sender", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("server_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("raw_is_headers", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("reason_text", sa.String(length=500), nullable=True),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dismiss_reason", sa.String(length=500), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], name=op.f("fk_inbound_emails_notice_id_notices"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_inbound_emails_incident_id_incidents"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], name=op.f("fk_inbound_emails_decided_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_emails")),
        sa.UniqueConstraint("mailbox_key", name=op.f("uq_inbound_emails_mailbox_key")),
    )
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_emails_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_emails_status"), ["status"], unique=False)


def downgrade():
    op.drop_table("inbound_emails")
    with op.batch_alter_table("suppliers", schema=None) as batch_op:
        batch_op.drop_column("sender_addresses")
