"""Whole months of the contact check, driven through the scheduler tick with a fixed clock, with
the real dispatcher sending to a real SMTP server and a Twilio-speaking HTTP server: exactly who
got what on which local date, answers by SMS and by link, the call list on the call day, and the
month's summary at the end.

The tick runs at 00:05, 08:00 (the configured send time) and 12:00 local on every day of the
month, and the dispatcher drains the outbox after every tick and every answer. Three months run
on SQLite, one of them also on PostgreSQL (see the parametrisation).
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from datetime import date, timedelta

import pytest

from contacts.check_links import link_token, recipient_for_token, record_answer
from contacts.check_queries import call_list, check_for_month, month_summary
from contacts.checks import open_check_at
from core.extensions import db
from notifications.dispatcher import Dispatcher
from notifications.service import oldest_due
from tests.conftest import csrf_token_from, log_in
from tests.contacts.test_checks_helpers import STOCKHOLM, days, local, make_register, recipient_of, run_tick
from tests.support.fixtures import PUBLIC_BASE_URL
from tests.support.twilio_server import signature
from worktime.calendar import check_plan

INBOUND_URL = PUBLIC_BASE_URL + "/webhooks/twilio/inbound"
OUR_NUMBER = "+46766861004"

PEOPLE = {
    "anna": {"provider": "Hemtjänst Norr", "name": "Anna Ålund", "mobile": "+46701000001", "email": "anna@norr.se"},
    "bertil": {"provider": "Hemtjänst Norr", "name": "Bertil Öst", "mobile": "+46701000002", "email": "bertil@norr.se"},
    "cecilia": {
        "provider": "Omsorg Söder AB",
        "name": "Cecilia Berg",
        "mobile": "+46701000003",
        "email": "cb@soder.se",
    },
    "david": {"provider": "Omsorg Söder AB", "name": "David Dahl", "email": "david@soder.se"},
}
ERIK = {"provider": "Vård Väst AB", "name": "Erik Ek", "mobile": "+46701000005", "email": "erik@vast.se"}


SENDER = "Välfärdsteknik: "  # every SMS names the organisation (ORGANISATION_NAME's default)


def _kind(text: str) -> str:
    for prefix, kind in (
        ("Stämmer dina kontaktuppgifter?", "invite"),
        ("Hej ", "invite"),
        ("Påminnelse", "reminder"),
        ("Tack! Ditt svar JA", "thanks"),
        ("Tack! Skriv vad", "correction link"),
        ("Svara JA om", "help"),
        ("Det finns ingen öppen kontroll", "closed"),
    ):
        if text.startswith(prefix):
            return kind
    raise AssertionError(f"unexpected message: {text[:60]!r}")


def _sms_kind(text: str) -> str:
    assert text.startswith(SENDER), f"an SMS without its sender: {text[:60]!r}"
    return _kind(text.removeprefix(SENDER))


class Sinks:
    """What arrived at the SMTP server and the Twilio server, by the local date it arrived."""

    def __init__(self, smtp_server, twilio_server, clock):
        self.smtp, self.twilio, self.clock = smtp_server, twilio_server, clock
        self.seen_mail = self.seen_sms = 0
        self.by_day: dict[date, list[tuple[str, str, str]]] = defaultdict(list)
        self.sms_bodies: dict[str, list[str]] = defaultdict(list)

    def collect(self) -> None:
        today = self.clock.now().astimezone(STOCKHOLM).date()
        mails = self.smtp.messages
        for mail in mails[self.seen_mail :]:
            self.by_day[today].append(("email", mail.message["To"], _kind(mail.message["Subject"])))
        self.seen_mail = len(mails)
        texts = self.twilio.messages
        for request in texts[self.seen_sms :]:
            self.by_day[today].append(("sms", request.params["To"], _sms_kind(request.params["Body"])))
            self.sms_bodies[request.params["To"]].append(request.params["Body"])
        self.seen_sms = len(texts)

    def day_log(self) -> dict[date, list[tuple[str, str, str]]]:
        return {day: sorted(rows) for day, rows in sorted(self.by_day.items())}


@pytest.fixture
def app(make_app, peer_settings):
    """One dispatcher worker per channel: the drain after each of the ~95 ticks and answers opens
    a connection per worker (2 + 4 by default), which on PostgreSQL was most of this test's time.
    Who gets what when does not depend on the number of workers (tests/notifications has the
    concurrent ones)."""
    return make_app(**peer_settings, EMAIL_CONCURRENCY="1", SMS_CONCURRENCY="1")


def test_plans_of_the_three_months():
    """The dates the whole-month tests rely on, from the calendar (checked here once, plainly)."""
    from config.routine import load_routine
    from config.settings import DEFAULT_ROUTINE_FILE

    policy = load_routine(DEFAULT_ROUTINE_FILE, timezone="Europe/Stockholm")
    plans = {(y, m): check_plan(y, m, policy) for y, m in ((2027, 1), (2027, 5), (2026, 6))}
    # 1 January 2027 is New Year's Day (a Friday), then a weekend: sent Monday 4 January.
    assert (plans[2027, 1].send_on, plans[2027, 1].reminders, plans[2027, 1].call_on) == (
        date(2027, 1, 4),
        (date(2027, 1, 7), date(2027, 1, 8)),
        date(2027, 1, 11),
    )
    # 1 May 2027 is a Saturday (and May Day): sent Monday 3 May; reminders on 6 May (Ascension
    # Day) and 7 May all the same, being calendar days; the call on Monday 10 May.
    assert (plans[2027, 5].send_on, plans[2027, 5].reminders, plans[2027, 5].call_on) == (
        date(2027, 5, 3),
        (date(2027, 5, 6), date(2027, 5, 7)),
        date(2027, 5, 10),
    )
    # 1 June 2026 is a Monday; day 5 is Saturday 6 June, the National Day: the call on 8 June.
    assert (plans[2026, 6].send_on, plans[2026, 6].reminders, plans[2026, 6].call_on) == (
        date(2026, 6, 1),
        (date(2026, 6, 4), date(2026, 6, 5)),
        date(2026, 6, 8),
    )


# Each month on SQLite; on PostgreSQL one of them: what the months differ in (holidays, weekends,
# the calendar's dates) is the same Python on both databases, and a month cost ~15 s on PostgreSQL.
# PostgreSQL's own concerns (concurrent ticks and dispatchers, locking) have tests of their own
# (tests/scheduling/test_concurrent_ticks.py, tests/notifications/test_concurrent_dispatchers.py).
@pytest.mark.parametrize(
    "database_url, year, month",
    [("sqlite", 2027, 1), ("postgres", 2027, 1), ("sqlite", 2027, 5), ("sqlite", 2026, 6)],
    indirect=["database_url"],
)
def test_a_whole_month_of_the_contact_check(app, client, clock, smtp_server, twilio_server, make_user, year, month):
    policy = app.extensions["krisrutin.routine"]
    plan = check_plan(year, month, policy)
    label = plan.month
    send_on, (first, second), call_on = plan.send_on, plan.reminders, plan.call_on
    last_day = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    sinks = Sinks(smtp_server, twilio_server, clock)
    dispatcher = Dispatcher(app, name="month-test", jitter=lambda: 1.0)

    def dispatch() -> None:
        # Most of the ~95 instants queue nothing; a drain then would only start and stop the
        # lanes (most of this test's time on a slow machine).
        with app.app_context():
            due = oldest_due(db_session=db.session, now=clock.now())
            db.session.remove()
        if due:
            dispatcher.run_until_idle(timeout=30)
        sinks.collect()

    clock.set(local(date(year, month, 1)) - timedelta(days=10))
    with app.app_context():
        ids = make_register(clock, PEOPLE)
        db.session.remove()

    sms_count = {"n": 0}

    def text(sender: str, body: str) -> None:
        sms_count["n"] += 1
        params = {
            "MessageSid": f"SM{sms_count['n']:032d}",
            "From": sender,
            "To": OUR_NUMBER,
            "Body": body,
            "AccountSid": twilio_server.account_sid,
        }
        headers = {"X-Twilio-Signature": signature(twilio_server.auth_token, INBOUND_URL, params)}
        response = client.post("/webhooks/twilio/inbound", data=params, headers=headers)
        assert response.status_code == 200

    def add_erik() -> None:
        with app.app_context():
            ids.update(make_register(clock, {"erik": ERIK}))
            db.session.remove()

    def cecilia_answers_by_link() -> None:
        with app.app_context():
            recipient = recipient_of(label, ids["cecilia"])
            token = link_token(recipient, app.config["SECRET_KEY"])
            found = recipient_for_token(db.session, token, secret=app.config["SECRET_KEY"], now=clock.now())
            record_answer(db.session, found, "yes", via="link", now=clock.now())
            db.session.commit()
            db.session.remove()

    def call_day() -> None:
        with app.app_context():
            check = check_for_month(db.session, label)
            rows = [(r.provider.name, r.contact.name, r.contact.mobile) for r in call_list(db.session, check)]
            assert rows == [("Omsorg Söder AB", "David Dahl", None), ("Vård Väst AB", "Erik Ek", "+46701000005")]
            summary = month_summary(db.session, check, today=call_on)
            assert (summary.outstanding, summary.calls_to_make, summary.calls_made) == (2, 2, 0)
            # The team phones David and cannot reach him (recorded as the call page would).
            david = recipient_of(label, ids["david"])
            david.call_outcome, david.called_at = "not_reached", clock.now()
            db.session.commit()
            db.session.remove()

    actions = {
        local(send_on, 9, 30): lambda: text("+46701000001", " Ja! "),
        local(send_on + timedelta(days=1), 10): lambda: text("+46701000002", "nej tack"),
        local(send_on + timedelta(days=1), 11): add_erik,
        local(send_on + timedelta(days=2), 12, 30): lambda: text("+46701000005", "Hej, vem är det här?"),
        local(first, 13): cecilia_answers_by_link,
        local(call_on, 9): call_day,
    }
    instants = sorted(
        [
            local(day, hour, minute)
            for day in days(date(year, month, 1), last_day)
            for hour, minute in ((0, 5), (8, 0), (12, 0))
        ]
        + list(actions)
    )
    for instant in instants:
        clock.set(instant)
        if instant in actions:
            actions[instant]()
        else:
            run_tick(app, clock)
        dispatch()

    a, b, c, d, e = "anna@norr.se", "bertil@norr.se", "cb@soder.se", "david@soder.se", "erik@vast.se"
    anna, bertil, cecilia, erik = "+46701000001", "+46701000002", "+46701000003", "+46701000005"
    expected = {
        send_on: sorted(
            [("email", x, "invite") for x in (a, b, c, d)]
            + [("sms", x, "invite") for x in (anna, bertil, cecilia)]
            + [("sms", anna, "thanks")]
        ),
        send_on + timedelta(days=1): sorted(
            [("sms", bertil, "correction link"), ("email", e, "invite"), ("sms", erik, "invite")]
        ),
        send_on + timedelta(days=2): [("sms", erik, "help")],
        first: sorted(
            [("email", x, "reminder") for x in (c, d, e)] + [("sms", x, "reminder") for x in (cecilia, erik)]
        ),
        second: sorted([("email", x, "reminder") for x in (d, e)] + [("sms", erik, "reminder")]),
    }
    assert sinks.day_log() == expected

    # Bertil's "NEJ" brought him the link to the correction form, which opens his own answer.
    [correction] = [body for body in sinks.sms_bodies[bertil] if body.startswith(SENDER + "Tack! Skriv")]
    token = re.search(r"/k/([A-Za-z0-9_-]+-[A-Za-z0-9_-]+-[A-Za-z0-9_-]+)/korrigera", correction).group(1)
    with app.app_context():
        recipient = recipient_for_token(db.session, token, secret=app.config["SECRET_KEY"], now=clock.now())
        assert (recipient.contact_id, recipient.answer, recipient.answered_via) == (ids["bertil"], "no", "sms")
        check = check_for_month(db.session, label)
        summary = month_summary(db.session, check, today=last_day)
        assert summary.month == label
        assert (summary.recipients, summary.answered_yes, summary.answered_no, summary.outstanding) == (5, 2, 1, 2)
        # David was not reached: still a call to make ("Inte nådd" is not done).
        assert (summary.corrections_waiting, summary.calls_to_make, summary.calls_made) == (0, 2, 1)
        # 9 invitations, 3 replies, 5 first and 3 second reminders: every one accepted by a gateway.
        assert (summary.messages_sent, summary.messages_delivered, summary.messages_failed) == (20, 0, 0)
        answers = {r.contact.name: (r.answer, r.answered_via, r.reminders_sent) for r in check.recipients}
        assert answers == {
            "Anna Ålund": ("yes", "sms", 0),
            "Bertil Öst": ("no", "sms", 0),
            "Cecilia Berg": ("yes", "link", 1),
            "David Dahl": (None, None, 2),
            "Erik Ek": (None, None, 2),
        }
        closes_at = check.closes_at
        db.session.remove()

    # The month's report, as the team downloads it at the end of the month: one row per contact.
    _, username, password = make_user(role="team")
    log_in(client, username, password)
    response = client.get(f"/checks/{label}/report.csv")
    assert response.status_code == 200
    rows = list(
        csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig").split("\r\n\r\n")[0]), delimiter=";")
    )
    report = {row["Kontaktperson"]: (row["Svar"], row["Svar via"], row["Påminnelser"], row["Samtal"]) for row in rows}
    assert report == {
        "Anna Ålund": ("ja", "sms", "0", ""),
        "Bertil Öst": ("nej", "sms", "0", ""),
        "Cecilia Berg": ("ja", "länk", "1", ""),
        "David Dahl": ("", "", "2", "inte nådd"),
        "Erik Ek": ("", "", "2", ""),
    }
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/").get_data(as_text=True))})

    # After the check has closed (and before the next one opened), a late "JA" gets a clear reply.
    clock.set(closes_at + timedelta(minutes=30))
    text("+46701000005", "JA")
    dispatch()
    assert sinks.day_log()[closes_at.astimezone(STOCKHOLM).date()] == [("sms", erik, "closed")]
    with app.app_context():
        assert open_check_at(db.session, clock.now()) is None
        assert recipient_of(label, ids["erik"]).answer is None
        db.session.remove()
