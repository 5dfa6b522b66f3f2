"""Outbox: phone calls as a channel of their own

``messages.channel`` may be ``call`` (a phone call through Twilio's Calls API, whose spoken text
is ``body_text``); the check constraint ``ck_messages_channel`` is widened. Downgrading deletes
the call messages (and their events), which the older schema cannot hold.

Revision ID: 08a968d20825
Revises: 5c2a9e7d41b3
Create Date: 2026-12-05 21:40:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "08a968d20825"
down_revision = "5c2a9e7d41b3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_channel"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_channel"), "channel IN ('email', 'sms', 'call')")


def downgrade():
    messages = sa.table("messages", sa.column("id", sa.Integer()), sa.column("channel", sa.String()))
    events = sa.table("message_events", sa.column("message_id", sa.Integer()))
    calls = sa.select(messages.c.id).where(messages.c.channel == "call")
    op.execute(events.delete().where(events.c.message_id.in_(calls)))
    op.execute(messages.delete().where(messages.c.channel == "call"))
    op.execute(sa.text("DELETE FROM channel_states WHERE channel = 'call'"))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_messages_channel"), type_="check")
        batch_op.create_check_constraint(op.f("ck_messages_channel"), "channel IN ('email', 'sms')")
