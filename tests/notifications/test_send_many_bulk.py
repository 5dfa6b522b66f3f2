"""send_many's bulk path (issue 18) stores what one send per recipient stores: the same columns
for the same recipients, the same "queued" events, in Swedish and English, by e-mail and SMS;
asking again creates nothing; a row another transaction made first is left alone. Runs on
SQLite and PostgreSQL (the PostgreSQL path inserts through psycopg's own executemany)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from core.extensions import db
from notifications.bulk import Outgoing, insert_rows, send_many
from notifications.models import Message, MessageEvent, Priority
from notifications.service import send
from tests.crisis.incidents.test_letters_helpers import make_people
from tests.notifications.test_render_many import letter_shared

KIND = "crisis.letter"
REF = ("letter", 7)
COLUMNS = [column.name for column in Message.__table__.columns if column.name not in ("id", "idempotency_key")]


def personal(short: str) -> dict:
    """Personal strings that HTML must escape, so that escaping differences would show."""
    names = {"anna": "Anna <Lind> & co", "bo": 'Bo "Ek"', "cia": "Cia  Berg", "eva": "Eva Holm"}
    link = f"https://krisrutin.example.se/d/{short}?a=1&b=2"
    return {"name": names[short], "provider": f"Omsorg & {short.title()} <AB>", "link": link}


def recipients(ids: dict[str, int]) -> list[SimpleNamespace]:
    """Four contacts: Bo without an e-mail address, Eva without a mobile."""
    return [
        SimpleNamespace(short="anna", id=ids["anna"], email="anna@norr.se", mobile="+46701000001"),
        SimpleNamespace(short="bo", id=ids["bo"], email=None, mobile="+46701000002"),
        SimpleNamespace(short="cia", id=ids["cia"], email="cia@soder.se", mobile="+46701000003"),
        SimpleNamespace(short="eva", id=ids["eva"], email="eva@vast.se", mobile=None),
    ]


def stored(prefix: str) -> dict[str, tuple]:
    """The messages whose key starts with ``prefix``, by the rest of the key, with their events."""
    messages = db.session.scalars(sa.select(Message).where(Message.idempotency_key.like(f"{prefix}%"))).all()
    events = db.session.execute(
        sa.select(MessageEvent.message_id, MessageEvent.at, MessageEvent.status, MessageEvent.detail)
    ).all()
    return {
        message.idempotency_key.removeprefix(prefix): (
            tuple(getattr(message, name) for name in COLUMNS),
            sorted(tuple(event[1:]) for event in events if event.message_id == message.id),
        )
        for message in messages
    }


def queue_both_ways(people, clock, *, language: str, shared: dict) -> int:
    """One send per recipient (keys "one:…") and one send_many for all (keys "many:…")."""
    for person in people:
        send(
            db_session=db.session,
            kind=KIND,
            context={**shared, **personal(person.short)},
            channels=["email", "sms"],
            priority=Priority.URGENT,
            idempotency_key=f"one:{person.short}",
            now=clock.now(),
            contact=person,
            language=language,
            ref=REF,
        )
    return send_many(
        db_session=db.session,
        kind=KIND,
        items=[
            Outgoing(f"many:{p.short}", personal(p.short), contact_id=p.id, to_email=p.email, to_mobile=p.mobile)
            for p in people
        ],
        channels=["email", "sms"],
        priority=Priority.URGENT,
        now=clock.now(),
        language=language,
        ref=REF,
        shared_context=shared,
        links=("link",),
    )


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_bulk_path_stores_what_one_send_per_recipient_stores(app, clock, language):
    with app.app_context():
        people = recipients(make_people(clock))
        created = queue_both_ways(people, clock, language=language, shared=letter_shared())
        db.session.commit()
        one, many = stored("one:"), stored("many:")
        assert created == 6, "four contacts, two channels, less Bo's e-mail and Eva's SMS"
        assert (
            sorted(one)
            == sorted(many)
            == [
                "anna:email",
                "anna:sms",
                "bo:sms",
                "cia:email",
                "cia:sms",
                "eva:email",
            ]
        )
        assert many == one
        # The comparison has teeth: the copies differ per recipient, in the language asked for.
        row = dict(zip(COLUMNS, many["anna:email"][0], strict=True))
        assert row["language"] == language and row["contact_id"] == people[0].id
        assert "Anna &lt;Lind&gt; &amp; co" in row["body_html"] and "Anna <Lind> & co" in row["body_text"]
        assert many["cia:sms"][0] != many["anna:sms"][0]
        assert [status for _, status, _ in many["bo:sms"][1]] == ["queued"]


def test_a_reminder_in_the_bulk_path_is_stored_as_send_stores_it(app, clock):
    with app.app_context():
        people = recipients(make_people(clock))
        queue_both_ways(people, clock, language="sv", shared=letter_shared(office_hours=True, reminder=True))
        db.session.commit()
        assert stored("many:") == stored("one:")
        assert stored("many:")["anna:sms"][0][COLUMNS.index("body_text")].count("Påminnelse") == 1


def test_asking_again_queues_nothing_more(app, clock):
    with app.app_context():
        people = recipients(make_people(clock))
        queue_both_ways(people, clock, language="sv", shared=letter_shared())
        db.session.commit()
        before = stored("many:")
        clock.advance(minutes=5)
        again = queue_both_ways(people, clock, language="sv", shared=letter_shared(reminder=True))
        db.session.commit()
        assert again == 0
        assert stored("many:") == before, "the messages and their events are left as they were"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageEvent)) == 2 * 6


def test_a_row_another_transaction_inserted_first_is_skipped_and_not_returned(app, clock):
    """What a concurrent send_many meets after its key lookup: ON CONFLICT DO NOTHING, and only
    the rows this call inserted come back (they alone get an event)."""
    now = clock.now()

    def row(key: str) -> dict:
        return {
            "idempotency_key": key,
            "kind": KIND,
            "channel": "sms",
            "priority": 1,
            "contact_id": None,
            "to_address": "+46701000001",
            "language": "sv",
            "subject": None,
            "body_text": f"Text {key}",
            "body_html": None,
            "segments": 1,
            "ref_type": None,
            "ref_id": None,
            "status": "queued",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }

    with app.app_context():
        first = insert_rows(
            db.session, Message.__table__, [row("k1")], conflict_key="idempotency_key", returning=("id",)
        )
        db.session.commit()
        second = insert_rows(
            db.session,
            Message.__table__,
            [row("k0"), {**row("k1"), "body_text": "another text"}, row("k2")],
            conflict_key="idempotency_key",
            returning=("id", "idempotency_key"),
        )
        db.session.commit()
        assert len(first) == 1
        assert sorted(key for _, key in second) == ["k0", "k2"]
        texts = dict(db.session.execute(sa.select(Message.idempotency_key, Message.body_text)).all())
        assert texts == {"k0": "Text k0", "k1": "Text k1", "k2": "Text k2"}


def test_a_naive_instant_is_refused_on_the_bulk_path_too(app, clock):
    with app.app_context():
        with pytest.raises(Exception, match="timezone-aware"):
            insert_rows(
                db.session,
                MessageEvent.__table__,
                [{"message_id": 1, "at": clock.now().replace(tzinfo=None), "status": "queued", "detail": None}],
            )
        db.session.rollback()
