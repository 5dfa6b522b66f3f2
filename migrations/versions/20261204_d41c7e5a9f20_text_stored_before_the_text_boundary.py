"""Text stored before the text boundary: refused characters become U+FFFD

Before core.text every entry point stored what it was given: a NUL or a right-to-left override in
a provider's name, a lone surrogate in a timeline note (JSON keeps it as "\\ud800", and the
incident page then failed for good). This replaces each character the boundary now refuses —
lone surrogates, C0 and C1 controls but tab and line breaks, DEL, the bidirectional embeddings,
overrides and isolates — with U+FFFD in every text and JSON column, so that no page, export or
message meets one and the team can see where something was removed. Replaced, not removed, so
that two unique names cannot become one.

Not touched: the audit log (append-only; it holds no free text) and a notice's ``original``, kept
byte for byte as received (a Latin-1 e-mail holds C1 characters legitimately). The rule is
copied here, not imported, so that this migration means the same later.

Revision ID: d41c7e5a9f20
Revises: 518e50e5e55f
Create Date: 2026-12-04 22:30:00

"""

import re

from alembic import context, op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "d41c7e5a9f20"
down_revision = "518e50e5e55f"
branch_labels = None
depends_on = None

REFUSED = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
UNTOUCHED_TABLES = {"alembic_version", "audit_log"}
UNTOUCHED_COLUMNS = {("notices", "original")}
BATCH = 500


def _cleaned(value):
    if isinstance(value, str):
        return REFUSED.sub("\ufffd", value)
    if isinstance(value, list):
        return [_cleaned(item) for item in value]
    if isinstance(value, dict):
        return {_cleaned(key): _cleaned(item) for key, item in value.items()}
    return value


def upgrade():
    if context.is_offline_mode():  # a script for an empty database: nothing stored yet
        return
    bind = op.get_bind()
    metadata = sa.MetaData()
    metadata.reflect(bind=bind)
    for table in metadata.sorted_tables:
        if table.name in UNTOUCHED_TABLES or not table.primary_key.columns:
            continue
        columns = [
            column
            for column in table.columns
            if isinstance(column.type, (sa.String, sa.Text, sa.JSON))
            and (table.name, column.name) not in UNTOUCHED_COLUMNS
            and not column.primary_key
        ]
        if not columns:
            continue
        keys = list(table.primary_key.columns)
        changes = []
        rows = bind.execute(sa.select(*keys, *columns).execution_options(yield_per=BATCH))
        for row in rows:
            values = row._mapping
            cleaned = {column.name: _cleaned(values[column.name]) for column in columns}
            changed = {name: value for name, value in cleaned.items() if value != values[name]}
            if changed:
                changes.append(({key.name: values[key.name] for key in keys}, changed))
        for key_values, changed in changes:
            condition = sa.and_(*(key == key_values[key.name] for key in keys))
            bind.execute(table.update().where(condition).values(**changed))


def downgrade():
    # The characters removed are not kept anywhere: there is nothing to restore.
    pass
