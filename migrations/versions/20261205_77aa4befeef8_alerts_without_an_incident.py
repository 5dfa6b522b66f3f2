"""Alerts without an incident: a staff alert about visits (a provider on the call list, overdue
visits) is an ``alerts`` row too, so that it can be acknowledged like any other alert (by the page,
an SMS reply, a key pressed on a call).

``alerts.incident_id`` becomes nullable; ``subject_type`` and ``subject_id`` name what such an
alert is about (``("visit_alert", id)``, ``("provider", id)``), unique per (subject, reason, step)
as incident alerts are per (incident, reason, step). On the way down the alerts without an
incident are deleted (the old schema cannot hold them).

Revision ID: 77aa4befeef8
Revises: 9e4b7c2d1a6f
Create Date: 2026-12-05 21:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "77aa4befeef8"
down_revision = "9e4b7c2d1a6f"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_type", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
        batch_op.alter_column("incident_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_unique_constraint(
            batch_op.f("uq_alerts_subject_type_subject_id_reason_step"), ["subject_type", "subject_id", "reason", "step"]
        )


def downgrade():
    alerts = sa.table("alerts", sa.column("incident_id", sa.Integer()))
    op.execute(alerts.delete().where(alerts.c.incident_id.is_(None)))
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_alerts_subject_type_subject_id_reason_step"), type_="unique")
        batch_op.alter_column("incident_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("subject_id")
        batch_op.drop_column("subject_type")
