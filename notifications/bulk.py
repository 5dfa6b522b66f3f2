"""Queueing one message kind for many recipients at once: a letter to 3,000 contacts, the
monthly check's 50,000 (issue 18: the POST that queues a big letter returns within a second).

:func:`send_many` keeps every rule of :func:`notifications.service.send` (read its docstring):
nothing commits, so the messages exist exactly when the caller's change does; one message per
channel keyed ``f"{idempotency_key}:{channel}"``, and an existing key is left as it is, also
when another transaction creates it at the same time (``ON CONFLICT DO NOTHING``: only the rows
this call inserted get their "queued" event and count); no unsendable text; the dispatchers are
woken when the transaction commits. What differs is how, for speed, and nothing of what is stored:

- The existing keys are looked up a chunk at a time, not one by one.
- The templates run once for all recipients when the caller says what they share
  (``shared_context``; :func:`notifications.rendering.render_many` fills in each recipient's
  personal strings), and an SMS's segments are counted once per distinct text.
- The rows and their events go in as bulk inserts, not ORM objects (:func:`insert_rows`). On
  SQLite that is SQLAlchemy's executemany (multi-row ``INSERT … RETURNING``). On PostgreSQL the
  rows are copied (``COPY``) into a temporary table and inserted from it with one ``INSERT …
  SELECT … ON CONFLICT DO NOTHING RETURNING``: SQLAlchemy's multi-row ``VALUES`` for 1,000 rows
  of 18 columns is a statement psycopg parses anew each time (its cache holds statements of up
  to 4 kB), which made the inserts of a 3,000-contact letter take 2 s of a 2.6 s POST; psycopg's
  own executemany (pipeline mode) took 0.48 s for a letter's 6,000 messages and their events on
  this machine, ``COPY`` 0.31 s.
- Few round trips to the database: while the dispatchers' threads run in the same process (the
  bench, a small deployment), a thread that waited for the database waits again for the GIL
  after each answer, so a call's cost grows with its round trips more than with its rows.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from core.database import dialect_insert
from notifications import rendering
from notifications.models import Channel, Message, MessageEvent, MessageStatus, Priority
from notifications.segments import count_segments
from notifications.service import _refuse_unsendable
from notifications.wakeup import wake_on_commit

log = logging.getLogger(__name__)

_MESSAGES = Message.__table__
_EVENTS = MessageEvent.__table__


@dataclass(frozen=True)
class Outgoing:
    """One recipient of :func:`send_many`: its idempotency key, template context (with
    ``shared_context``, only its personal values), recipient key (``contact_id``, as a
    :class:`~notifications.recipients.Recipient`'s ``id``) and addresses."""

    idempotency_key: str
    context: dict
    contact_id: int | None = None
    to_email: str | None = None
    to_mobile: str | None = None


_KEY_CHUNK = 500  # keys per IN (...) lookup
_INSERT_CHUNK = 1000  # rows per multi-row INSERT (SQLite)


def send_many(
    *,
    db_session: Session,
    kind: str,
    items: Iterable[Outgoing],
    channels: Iterable[Channel | str],
    priority: Priority | int,
    now: datetime,
    language: str = "sv",
    ref: tuple[str, object] | None = None,
    shared_context: dict | None = None,
    links: Collection[str] = (),
) -> int:
    """Queue ``kind`` for many recipients at once (the monthly check's 50,000 contacts, a
    letter's 3,000); does not commit. The same rules as :func:`send` — one message per channel
    keyed ``f"{idempotency_key}:{channel}"``, an existing key is left unchanged, a channel
    without an address is left out, no unsendable text, the dispatchers woken at commit — but
    existing keys are looked up in chunks and the rows and their "queued" events are inserted
    with multi-row INSERTs (executemany), not as ORM objects. Returns how many messages were
    created.

    Without ``shared_context`` each recipient's message is rendered from its ``context``. With
    it, the context is ``{**shared_context, **item.context}`` and the templates run once for all
    (:func:`notifications.rendering.render_many`: the items' contexts then hold only the personal
    strings, such as a name and a link; ``links`` names those shown as links). What is stored is
    the same either way."""
    wanted = list(dict.fromkeys(Channel(channel) for channel in channels))
    if not wanted:
        raise ValueError("send_many needs at least one channel")
    if Channel.CALL in wanted:
        raise ValueError("send_many does not place calls: a call is urgent and personal, queue it with send")
    items = list(items)
    for item in items:
        if not item.idempotency_key or len(item.idempotency_key) > 240:
            raise ValueError("idempotency_key must be 1 to 240 characters")
    ref_type, ref_id = (ref[0], str(ref[1])) if ref is not None else (None, None)

    planned: list[tuple[Outgoing, list[tuple[Channel, str, str]]]] = []
    for item in items:
        addresses = {Channel.EMAIL: item.to_email, Channel.SMS: item.to_mobile}
        targets = [
            (channel, addresses[channel], f"{item.idempotency_key}:{channel.value}")
            for channel in wanted
            if addresses[channel]
        ]
        if targets:
            planned.append((item, targets))
    all_keys = [key for _, targets in planned for _, _, key in targets]
    existing: set[str] = set()
    for start in range(0, len(all_keys), _KEY_CHUNK):
        chunk = all_keys[start : start + _KEY_CHUNK]
        existing.update(
            db_session.scalars(select(_MESSAGES.c.idempotency_key).where(_MESSAGES.c.idempotency_key.in_(chunk)))
        )

    waiting = [(item, [t for t in targets if t[2] not in existing]) for item, targets in planned]
    waiting = [(item, missing) for item, missing in waiting if missing]
    contexts = [item.context for item, _ in waiting]
    if shared_context is None:
        texts = [rendering.render(kind, language, context) for context in contexts]
    else:
        texts = rendering.render_many(kind, language, shared_context, contexts, links=links)
    segments: dict[str, int] = {}  # SMS text -> segments: a letter's SMS is the same for a provider's contacts
    rows: list[dict] = []
    for (item, missing), rendered in zip(waiting, texts, strict=True):
        for channel, address, key in missing:
            if channel is Channel.EMAIL:
                if rendered.subject is None:
                    raise ValueError(f"the message {kind!r} has no e-mail")
                content = {"subject": rendered.subject, "body_text": rendered.text, "body_html": rendered.html}
                content["segments"] = None
            else:
                if not rendered.sms:
                    raise ValueError(f"the message {kind!r} has no SMS text")
                if rendered.sms not in segments:
                    segments[rendered.sms] = count_segments(rendered.sms).segments
                content = {
                    "subject": None,
                    "body_text": rendered.sms,
                    "body_html": None,
                    "segments": segments[rendered.sms],
                }
            _refuse_unsendable(kind, channel, address, content)
            rows.append(
                {
                    "idempotency_key": key,
                    "kind": kind,
                    "channel": channel.value,
                    "priority": int(priority),
                    "contact_id": item.contact_id,
                    "to_address": address,
                    "language": rendered.language,
                    "ref_type": ref_type,
                    "ref_id": ref_id,
                    "status": MessageStatus.QUEUED.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                    **content,
                }
            )

    created = insert_rows(
        db_session, _MESSAGES, rows, conflict_key="idempotency_key", returning=("id", "channel")
    )  # rows only for those inserted
    if created:
        detail = f"priority {int(priority)}"
        events = [
            {"message_id": message_id, "at": now, "status": MessageStatus.QUEUED.value, "detail": detail}
            for message_id, _ in created
        ]
        insert_rows(db_session, _EVENTS, events)
        wake_on_commit(db_session, sorted({channel for _, channel in created}))
    skipped = len(items) * len(wanted) - len(all_keys)
    if skipped:
        log.info("messages left out on channels without an address", extra={"kind": kind, "channels": skipped})
    return len(created)


def insert_rows(
    db_session: Session,
    table: Table,
    rows: Sequence[dict],
    *,
    conflict_key: str | None = None,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in the session's transaction,
    skipping a row whose ``conflict_key`` is taken when one is named; returns the ``returning``
    columns of the rows inserted (in no promised order). Values pass through the columns' types
    (a naive datetime in a ``UTCDateTime`` is refused) as with any SQLAlchemy insert."""
    if not rows:
        return []
    connection = db_session.connection()
    columns = list(rows[0])
    if connection.dialect.name != "postgresql":
        statement = dialect_insert(db_session, table)
        if conflict_key is not None:
            statement = statement.on_conflict_do_nothing(index_elements=[conflict_key])
        if not returning:
            for start in range(0, len(rows), _INSERT_CHUNK):
                db_session.execute(statement, rows[start : start + _INSERT_CHUNK])
            return []
        statement = statement.returning(*(table.c[name] for name in returning))
        found: list[tuple] = []
        for start in range(0, len(rows), _INSERT_CHUNK):
            found.extend(tuple(row) for row in db_session.execute(statement, rows[start : start + _INSERT_CHUNK]))
        return found

    return _copy_and_insert(connection, table, rows, columns, conflict_key, returning)


def _copy_and_insert(connection, table: Table, rows, columns, conflict_key, returning) -> list[tuple]:
    """PostgreSQL: ``COPY`` the rows into a temporary table of the session (its columns those of
    ``table``), then one ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``. The temporary
    table is emptied before each use and at every commit (``ON COMMIT DELETE ROWS``), so no
    message text or address stays in it past the transaction; a rollback takes its rows (and, in
    the transaction that made it, the table) with it."""
    from psycopg import sql  # only on PostgreSQL: identifiers quoted by the driver

    dialect = connection.dialect
    names = sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    target = sql.Identifier(*([table.schema] if table.schema else []), table.name)
    # One staging table per table and column list: another caller may insert other columns.
    staging = sql.Identifier(f"bulk_{table.name}_{zlib.crc32(','.join(columns).encode()):08x}")
    processors = {name: table.c[name].type.bind_processor(dialect) for name in columns}
    processors = {name: processor for name, processor in processors.items() if processor is not None}
    insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, names, names, staging)
    if conflict_key is not None:
        insert += sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(sql.Identifier(conflict_key))
    if returning:
        insert += sql.SQL(" RETURNING {}").format(sql.SQL(", ").join(sql.Identifier(name) for name in returning))
    # Made once per connection, emptied before each use (one round trip for both: each costs
    # the request the GIL back while the dispatchers run, see the module docstring).
    prepare = sql.SQL(
        "CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA; TRUNCATE {}"
    ).format(staging, names, target, staging)
    cursor = connection.connection.cursor()  # the session's own DBAPI connection and transaction
    try:
        cursor.execute(prepare)
        with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, names)) as copy:
            for row in rows:
                values = {**row, **{name: processor(row[name]) for name, processor in processors.items()}}
                copy.write_row(tuple(values[name] for name in columns))
        cursor.execute(insert)
        return [tuple(row) for row in cursor.fetchall()] if returning else []
    finally:
        cursor.close()
