"""The monthly check engine through the scheduler tick: the same messages once each however the
tick runs, batches, late openings, reminders across the change to summer time, contacts added,
changed or deactivated during the month."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

import contacts.checks as checks
from config.settings import DEFAULT_ROUTINE_FILE
from contacts import register
from contacts.check_links import InvalidLink, link_token, recipient_for_token, record_answer
from contacts.check_models import CheckRecipient, MonthlyCheck
from contacts.check_queries import call_list, check_for_month, month_summary
from contacts.models import ContactPerson
from core.extensions import db
from notifications.bulk import Outgoing, send_many
from notifications.models import Message, MessageEvent
from scheduling.models import ScheduledTask
from tests.conftest import TEST_SECRET
from tests.contacts.test_checks_helpers import TEAM, days, local, make_register, outbox, recipient_of, run_tick

BASE_URL = "https://krisrutin.kommun.example.se"
JUNE = "2026-06"
PEOPLE = {
    "anna": {"provider": "Hemtjänst Norr", "name": "Anna Lind", "mobile": "+46701000001", "email": "anna@norr.se"},
    "bo": {"provider": "Hemtjänst Norr", "name": "Bo Ek", "mobile": "+46701000002", "email": "bo@norr.se"},
    "cia": {"provider": "Omsorg Söder AB", "name": "Cia Berg", "email": "cia@soder.se"},
}


@pytest.fixture
def app(make_app):
    return make_app(PUBLIC_BASE_URL=BASE_URL)


@pytest.fixture
def people(app, clock):
    clock.set(local(date(2026, 5, 20), 9))
    with app.app_context():
        ids = make_register(clock, PEOPLE)
        db.session.remove()
        return ids


def answer(app, clock, month, contact_id, value, at, via="link"):
    clock.set(at)
    with app.app_context():
        record_answer(db.session, recipient_of(month, contact_id), value, via=via, now=clock.now())
        db.session.commit()
        db.session.remove()


def june_expected(ids) -> list[tuple[str, str, str, str]]:
    """June 2026: sent Monday 1 June 08:00, reminders 4 and 5 June 08:00. Anna answers on 2 June,
    Cia (e-mail only) on 4 June after the first reminder; Bo never answers."""
    a, b, c = ids["anna"], ids["bo"], ids["cia"]
    rows = [
        ("2026-06-01 08:00", f"check:2026-06:{a}:invite:email", "anna@norr.se", "check.invite"),
        ("2026-06-01 08:00", f"check:2026-06:{a}:invite:sms", "+46701000001", "check.invite"),
        ("2026-06-01 08:00", f"check:2026-06:{b}:invite:email", "bo@norr.se", "check.invite"),
        ("2026-06-01 08:00", f"check:2026-06:{b}:invite:sms", "+46701000002", "check.invite"),
        ("2026-06-01 08:00", f"check:2026-06:{c}:invite:email", "cia@soder.se", "check.invite"),
        ("2026-06-04 08:00", f"check:2026-06:{b}:reminder1:email", "bo@norr.se", "check.reminder"),
        ("2026-06-04 08:00", f"check:2026-06:{b}:reminder1:sms", "+46701000002", "check.reminder"),
        ("2026-06-04 08:00", f"check:2026-06:{c}:reminder1:email", "cia@soder.se", "check.reminder"),
        ("2026-06-05 08:00", f"check:2026-06:{b}:reminder2:email", "bo@norr.se", "check.reminder"),
        ("2026-06-05 08:00", f"check:2026-06:{b}:reminder2:sms", "+46701000002", "check.reminder"),
    ]
    return sorted(rows, key=lambda row: row[1])


def tick_instants(mode: str) -> list:
    """When the tick runs in June 2026, for each mode."""
    due = [local(date(2026, 6, 1), 8), local(date(2026, 6, 4), 8), local(date(2026, 6, 5), 8)]
    if mode == "due_instants":
        return due
    if mode == "twice":
        return [instant for instant in due for _ in range(2)]
    # Every minute from 07:45 to 08:15 local on the first eight days (around every due instant),
    # and every three hours for the rest of the month: about 500 ticks instead of 43,200, the
    # same coverage of the due instants, and ticks on every day between them.
    instants = []
    for day in days(date(2026, 6, 1), date(2026, 6, 30)):
        for hour in range(0, 24, 3):
            instants.append(local(day, hour))
        if day.day <= 8:
            instants += [local(day, 7, 45) + timedelta(minutes=m) for m in range(31)]
    return sorted(instants)
    return instants


# ~490 ticks every minute around the due instants: on SQLite; PostgreSQL's side of "once each"
# (INSERT ... ON CONFLICT, the same instant ticked twice) is the "twice" case, and two ticks at
# once are tests/scheduling/test_concurrent_ticks.py's. The PostgreSQL run of every_minute cost ~15 s.
@pytest.mark.parametrize(
    "database_url, mode",
    [
        ("sqlite", "every_minute"),
        ("sqlite", "due_instants"),
        ("postgres", "due_instants"),
        ("sqlite", "twice"),
        ("postgres", "twice"),
    ],
    indirect=["database_url"],
)
def test_the_tick_queues_the_same_messages_once_each_however_often_it_runs(app, clock, people, mode):
    answers = [
        (local(date(2026, 6, 2), 12), people["anna"], "yes"),
        (local(date(2026, 6, 4), 12), people["cia"], "yes"),
    ]
    events = sorted(
        [(instant, 0, None) for instant in tick_instants(mode)] + [(at, 1, (cid, v)) for at, cid, v in answers],
        key=lambda event: (event[0], event[1]),
    )
    for instant, _, action in events:
        if action is None:
            run_tick(app, clock, instant)
        else:
            answer(app, clock, JUNE, action[0], action[1], instant)

    assert outbox(app) == june_expected(people)
    with app.app_context():
        check = check_for_month(db.session, JUNE)
        assert (check.send_on, check.first_reminder_on, check.second_reminder_on, check.call_on) == (
            date(2026, 6, 1),
            date(2026, 6, 4),
            date(2026, 6, 5),
            date(2026, 6, 8),  # 6 June is the National Day (a Saturday too): Monday 8 June
        )
        assert check.closes_at == local(date(2026, 7, 1), 8)
        reminders = {r.contact_id: r.reminders_sent for r in db.session.scalars(select(CheckRecipient))}
        assert reminders == {people["anna"]: 0, people["bo"]: 2, people["cia"]: 1}
        assert db.session.scalar(select(func.count()).select_from(MonthlyCheck)) == 1


def test_a_large_register_is_invited_in_batches_each_contact_once(app, clock, monkeypatch):
    monkeypatch.setattr(checks, "BATCH_SIZE", 7)
    clock.set(local(date(2026, 5, 20), 9))
    with app.app_context():
        ids = make_register(
            clock,
            {
                f"p{n}": {"provider": f"Utförare {n % 4}", "name": f"Person {n}", "mobile": f"+467010000{n:02d}"}
                for n in range(30)
            },
        )
        db.session.remove()
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    run_tick(app, clock)
    with app.app_context():
        batches = db.session.scalars(
            select(ScheduledTask.key).where(ScheduledTask.kind == checks.KIND_BATCH).order_by(ScheduledTask.id)
        ).all()
        assert batches == [f"{JUNE}:invite:{n}" for n in range(5)]  # 7+7+7+7 and the open-ended rest
        keys = db.session.scalars(select(Message.idempotency_key)).all()
        assert sorted(keys) == sorted(f"check:{JUNE}:{cid}:invite:sms" for cid in ids.values())
        assert db.session.scalar(select(func.count()).select_from(CheckRecipient)) == 30
        events = db.session.scalars(select(MessageEvent.status)).all()
        assert events == ["queued"] * 30


def test_a_missed_send_instant_is_caught_up_without_sending_two_reminders_at_once(app, clock, people):
    # The service was down from before 1 June until Friday 5 June 09:00, after both reminders fell due.
    run_tick(app, clock, local(date(2026, 6, 5), 9))
    assert {row[3] for row in outbox(app)} == {"check.invite"}
    assert {row[0] for row in outbox(app)} == {"2026-06-05 09:00"}
    with app.app_context():
        tasks = dict(db.session.execute(select(ScheduledTask.key, ScheduledTask.status)).all())
        assert tasks[f"{JUNE}:1"] == tasks[f"{JUNE}:2"] == "done"
    for day in days(date(2026, 6, 6), date(2026, 6, 30)):
        run_tick(app, clock, local(day, 8))
    assert {row[3] for row in outbox(app)} == {"check.invite"}, "invited today: no reminder the same day"


def test_a_check_missed_until_the_call_day_is_skipped(app, clock, people):
    run_tick(app, clock, local(date(2026, 6, 8), 9))
    with app.app_context():
        assert check_for_month(db.session, JUNE) is None
    assert outbox(app) == []


def test_a_late_opening_still_reminds_those_invited_before_the_reminder_day(app, clock, people):
    run_tick(app, clock, local(date(2026, 6, 3), 10))
    run_tick(app, clock, local(date(2026, 6, 4), 8))
    reminded = {(row[1].split(":")[2], row[0]) for row in outbox(app, "check.reminder")}
    assert reminded == {(str(cid), "2026-06-04 08:00") for cid in people.values()}


def test_reminders_keep_to_local_send_time_across_the_change_to_summer_time(make_app, clock, tmp_path):
    routine = Path(DEFAULT_ROUTINE_FILE).read_text(encoding="utf-8").replace("send_day = 1", "send_day = 24")
    (tmp_path / "routine.toml").write_text(routine, encoding="utf-8")
    app = make_app(PUBLIC_BASE_URL=BASE_URL, ROUTINE_FILE=str(tmp_path / "routine.toml"))
    clock.set(local(date(2027, 3, 1), 9))
    with app.app_context():
        [anna] = make_register(clock, {"anna": PEOPLE["anna"]}).values()
        db.session.remove()
    for day in days(date(2027, 3, 20), date(2027, 4, 5)):
        for hour in (0, 6, 7, 8, 9, 12):  # every wall hour that exists on 28 March
            run_tick(app, clock, local(day, hour))
    # Sent Wednesday 24 March, reminders Saturday 27 and Sunday 28 March, the day summer time
    # starts: 08:00 CET is 07:00 UTC, 08:00 CEST is 06:00 UTC.
    with app.app_context():
        created = db.session.execute(
            select(Message.idempotency_key, Message.created_at).where(Message.channel == "sms").order_by(Message.id)
        ).all()
        assert [(key, at.isoformat()) for key, at in created] == [
            (f"check:2027-03:{anna}:invite:sms", "2027-03-24T07:00:00+00:00"),
            (f"check:2027-03:{anna}:reminder1:sms", "2027-03-27T07:00:00+00:00"),
            (f"check:2027-03:{anna}:reminder2:sms", "2027-03-28T06:00:00+00:00"),
        ]


def test_the_march_check_closes_at_local_send_time_of_april_in_summer_time(app, clock, people):
    run_tick(app, clock, local(date(2027, 3, 1), 8))
    with app.app_context():
        check = check_for_month(db.session, "2027-03")
        assert check.opened_at.isoformat() == "2027-03-01T07:00:00+00:00"  # 08:00 CET
        assert check.closes_at.isoformat() == "2027-04-01T06:00:00+00:00"  # 08:00 CEST


# --- contacts added, changed and deactivated during the month ---------------------------------------


def test_a_contact_added_during_the_month_gets_the_invitation_at_once(app, clock, people):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    clock.set(local(date(2026, 6, 2), 14, 30))
    with app.app_context():
        [dan] = make_register(
            clock,
            {"dan": {"provider": "Hemtjänst Norr", "name": "Dan Ny", "mobile": "+46701000009", "email": "dan@norr.se"}},
        ).values()
        recipient = recipient_of(JUNE, dan)
        assert (recipient.added_reason, recipient.added_at) == ("created", clock.now())
        db.session.remove()
    assert [row for row in outbox(app) if f":{dan}:" in row[1]] == [
        ("2026-06-02 14:30", f"check:{JUNE}:{dan}:invite:email", "dan@norr.se", "check.invite"),
        ("2026-06-02 14:30", f"check:{JUNE}:{dan}:invite:sms", "+46701000009", "check.invite"),
    ]
    for day in days(date(2026, 6, 3), date(2026, 6, 10)):
        run_tick(app, clock, local(day, 8))
    keys = [row[1] for row in outbox(app) if f":{dan}:" in row[1]]
    assert len(keys) == 6 and f"check:{JUNE}:{dan}:reminder2:sms" in keys


def test_a_contact_added_before_the_invitation_batches_ran_is_invited_once(app, clock, people, monkeypatch):
    # The check is open but its batches have not run yet (they run in later transactions).
    clock.set(local(date(2026, 6, 1), 8))
    with app.app_context():
        checks.open_check(db.session, ScheduledTask(payload={"month": JUNE}), clock.now())
        db.session.commit()
        [dan] = make_register(
            clock, {"dan": {"provider": "Hemtjänst Norr", "name": "Dan Ny", "email": "d@n.se"}}
        ).values()
        db.session.remove()
    run_tick(app, clock)
    assert [row[1] for row in outbox(app) if f":{dan}:" in row[1]] == [f"check:{JUNE}:{dan}:invite:email"]


def test_a_new_address_gets_a_fresh_link_unless_the_contact_has_answered(app, clock, people):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    with app.app_context():
        old_token = link_token(recipient_of(JUNE, people["bo"]), TEST_SECRET)
        clock.set(local(date(2026, 6, 2), 9))
        bo = db.session.get(ContactPerson, people["bo"])
        register.update_contact(db.session, bo, {"mobile": "+46709999999"}, actor=TEAM, now=clock.now())
        anna = db.session.get(ContactPerson, people["anna"])
        record_answer(db.session, recipient_of(JUNE, anna.id), "yes", via="link", now=clock.now())
        register.update_contact(db.session, anna, {"email": "anna.lind@norr.se"}, actor=TEAM, now=clock.now())
        db.session.commit()
        recipient = recipient_of(JUNE, people["bo"])
        with pytest.raises(InvalidLink) as caught:
            recipient_for_token(db.session, old_token, secret=TEST_SECRET, now=clock.now())
        assert caught.value.reason == "replaced"
        new_token = link_token(recipient, TEST_SECRET)
        assert recipient_for_token(db.session, new_token, secret=TEST_SECRET, now=clock.now()).id == recipient.id
        sms = db.session.scalars(
            select(Message).where(Message.idempotency_key == f"check:{JUNE}:{bo.id}:invite:{recipient.nonce}:sms")
        ).one()
        assert sms.to_address == "+46709999999" and new_token in sms.body_text
        db.session.remove()
    later = [row for row in outbox(app) if row[0].startswith("2026-06-02")]
    assert [(row[2], row[3]) for row in later] == [("bo@norr.se", "check.invite"), ("+46709999999", "check.invite")]


def test_a_contact_deactivated_mid_month_gets_no_reminders_and_is_not_on_the_call_list(app, clock, people):
    run_tick(app, clock, local(date(2026, 6, 1), 8))
    clock.set(local(date(2026, 6, 2), 9))
    with app.app_context():
        register.deactivate_contact(
            db.session, db.session.get(ContactPerson, people["bo"]), actor=TEAM, now=clock.now()
        )
        db.session.commit()
        db.session.remove()
    for day in days(date(2026, 6, 3), date(2026, 6, 8)):
        run_tick(app, clock, local(day, 8))
    assert not [row for row in outbox(app, "check.reminder") if f":{people['bo']}:" in row[1]]
    with app.app_context():
        check = check_for_month(db.session, JUNE)
        on_list = [r.contact.name for r in call_list(db.session, check)]
        assert on_list == ["Anna Lind", "Cia Berg"]
        summary = month_summary(db.session, check, today=date(2026, 6, 8))
        assert (summary.outstanding, summary.calls_to_make) == (3, 2), "the summary counts the calls the list shows"
        db.session.remove()
    clock.set(local(date(2026, 6, 9), 9))
    with app.app_context():
        register.update_contact(
            db.session, db.session.get(ContactPerson, people["bo"]), {"is_active": True}, actor=TEAM, now=clock.now()
        )
        db.session.commit()
        recipient = recipient_of(JUNE, people["bo"])
        assert recipient.added_reason == "start"
        assert f"check:{JUNE}:{people['bo']}:invite:{recipient.nonce}:sms" in {
            row[1] for row in outbox(app, "check.invite")
        }, "reactivated and silent: a fresh invitation"


# --- the bulk queueing ------------------------------------------------------------------------------


def test_send_many_queues_once_per_key_and_channel_and_leaves_out_missing_addresses(app, clock):
    items = [
        Outgoing("k1", {"name": "A", "link": "https://x.se/a"}, to_email="a@x.se", to_mobile="+46701000001"),
        Outgoing("k2", {"name": "B", "link": "https://x.se/b"}, to_email="b@x.se"),
    ]
    with app.app_context():
        first = send_many(
            db_session=db.session,
            kind="test.hello",
            items=items,
            channels=["email", "sms"],
            priority=9,
            now=clock.now(),
        )
        again = send_many(
            db_session=db.session,
            kind="test.hello",
            items=items,
            channels=["email", "sms"],
            priority=9,
            now=clock.now(),
        )
        db.session.commit()
        rows = db.session.execute(select(Message.idempotency_key, Message.to_address, Message.segments)).all()
        assert (first, again) == (3, 0)
        assert sorted(rows) == [
            ("k1:email", "a@x.se", None),
            ("k1:sms", "+46701000001", 1),
            ("k2:email", "b@x.se", None),
        ]
        assert db.session.scalar(select(func.count()).select_from(MessageEvent)) == 3
