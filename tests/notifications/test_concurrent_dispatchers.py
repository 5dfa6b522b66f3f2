"""Two dispatchers on one queue never send a message twice (PostgreSQL: FOR UPDATE SKIP LOCKED;
SQLite: the claiming UPDATE holds the write lock), claiming one message at a time or in batches."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from core.extensions import db
from notifications.dispatcher import Dispatcher
from notifications.models import Message, MessageEvent, Priority
from tests.conftest import build_app, create_schema
from tests.notifications.dispatcher_app import Recorder, queue_many

MESSAGES = 500


@pytest.mark.parametrize("batch_size", [1, 10])
def test_two_dispatchers_on_one_queue_send_every_message_exactly_once(database_url, clock, batch_size):
    app = build_app(database_url, clock, EMAIL_CONCURRENCY=4, SMS_CONCURRENCY=4)
    create_schema(app)
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="mail", count=MESSAGES // 2, channel="email", priority=Priority.BULK)
        ids += queue_many(now=clock.now(), prefix="sms", count=MESSAGES // 2, channel="sms", priority=Priority.BULK)
    recorder = Recorder()  # the two dispatchers' sends, in one list
    # A gateway taking 5 ms per message (as real ones take longer) keeps the first dispatcher busy
    # long enough for the second to take part, so the overlap the test is about really happens.
    recorder.delay = {"email": 0.005, "sms": 0.005}
    dispatchers = [
        Dispatcher(app, name=name, channels=recorder.setup(), poll_seconds=0.05, batch_size=batch_size)
        for name in ("first", "second")
    ]

    for dispatcher in dispatchers:
        dispatcher.start()
    try:
        recorder.wait_for(lambda r: len(r.sent) >= MESSAGES, timeout=60, what="every message")
    finally:
        for dispatcher in dispatchers:
            dispatcher.stop()

    sends = Counter(recorder.sent_ids())
    assert sorted(sends) == sorted(ids)
    assert set(sends.values()) == {1}, "no message was sent twice"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Message.status == "sent")) == MESSAGES
        claims = db.session.scalars(sa.select(MessageEvent.detail).where(MessageEvent.status == "sending")).all()
        claimers = Counter(detail.rpartition(" by ")[2] for detail in claims)
        db.session.remove()
        db.engine.dispose()
    assert sum(claimers.values()) == MESSAGES, "one claim per message"
    assert claimers["first"] > 0 and claimers["second"] > 0, "both dispatchers took part"


def test_two_dispatchers_place_every_queued_call_exactly_once(postgres_url, clock):
    """The call lane has the outbox's guarantees too: on PostgreSQL two dispatchers (two call
    workers each) place each of 40 calls once, and every one ends 'sent'."""
    calls = 40
    app = build_app(postgres_url, clock, CALL_CONCURRENCY=2, CALL_RATE_PER_SECOND=0)
    create_schema(app)
    with app.app_context():
        ids = queue_many(now=clock.now(), prefix="call", count=calls, channel="call", priority=Priority.URGENT)
    recorder = Recorder()
    recorder.delay = {"email": 0.0, "sms": 0.0, "call": 0.005}
    dispatchers = [Dispatcher(app, name=name, channels=recorder.setup(), poll_seconds=0.05) for name in ("a", "b")]
    for dispatcher in dispatchers:
        dispatcher.start()
    try:
        recorder.wait_for(lambda r: len(r.sent) >= calls, timeout=30, what="every call")
    finally:
        for dispatcher in dispatchers:
            dispatcher.stop()

    sends = Counter(recorder.sent_ids("call"))
    assert sorted(sends) == sorted(ids) and set(sends.values()) == {1}, "each call placed once"
    with app.app_context():
        statuses = db.session.scalars(sa.select(Message.status).where(Message.channel == "call")).all()
        db.session.remove()
        db.engine.dispose()
    assert statuses == ["sent"] * calls
