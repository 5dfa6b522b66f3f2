"""Alert fatigue at night: the overdue visits of a provider already on the call list fold into one
message per provider per ``visit_overdue_fold_minutes``; every overdue visit is still reported."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from core.extensions import db
from crisis.visits.models import Visit
from tests.crisis.visits.test_visit_helpers import (
    NORR,
    SETTINGS,
    TUESDAY,
    alerts,
    local,
    make_people,
    messages,
    new_visits,
    on_call_officer,
    run_tick,
)

EVENING = local(TUESDAY, 22, 0)


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


def _night(app, clock, make_user, fold_minutes: int) -> list[str]:
    """19 visits of Norr due every 15 minutes from 23:00 to 03:30, never acknowledged (so Norr is
    on the call list from 22:15), none marked; the tick every five minutes until 05:00. Returns
    the overdue SMS texts, in order."""
    policy = app.extensions["krisrutin.routine"]
    app.extensions["krisrutin.routine"] = replace(
        policy, crisis=replace(policy.crisis, visit_overdue_fold_minutes=fold_minutes)
    )
    on_call_officer(app, make_user)
    clock.set(EVENING)
    with app.app_context():
        make_people(clock)
        new_visits(clock, NORR, [local(TUESDAY, 23, 0) + timedelta(minutes=15 * n) for n in range(19)])
    for minute in range(0, 7 * 60 + 1, 5):
        run_tick(app, clock, EVENING + timedelta(minutes=minute))
    with app.app_context():
        assert [a.call_listed_at for a in alerts()] == [local(TUESDAY, 22, 15)]
        # Every visit was reported overdue, none twice.
        visits = list(db.session.query(Visit))
        assert len(visits) == 19 and all(v.overdue_alerted_at is not None for v in visits)
        sms = [m.body_text for m in messages("crisis.visit.overdue") if m.channel == "sms"]
        emails = [m for m in messages("crisis.visit.overdue") if m.channel == "email"]
        assert len(emails) == len(sms)
        return sms


def _counts(texts: list[str]) -> list[int]:
    """How many visits each overdue SMS names ("... 4 försenade besök (kl. 23:15, ...)")."""
    return [int(re.search(r"(\d+) försena", text).group(1)) for text in texts]


def test_a_provider_on_the_call_list_gets_one_overdue_message_per_interval(app, clock, make_user):
    sms = _night(app, clock, make_user, fold_minutes=60)
    # Before: 19 messages, one per visit. Now: at 00:00 the first, then at most one an hour.
    # 00:00: 23:00; 01:00: 23:15-00:00; 02:00, 03:00, 04:00 four each; 05:00: 03:15 and 03:30.
    assert _counts(sms) == [1, 4, 4, 4, 4, 2]
    assert all("Hemtjänst Norr" in text for text in sms)


def test_the_fold_interval_is_the_routines(app, clock, make_user):
    sms = _night(app, clock, make_user, fold_minutes=150)
    # 00:00 one, 02:30 the ten overdue since, 05:00 the last eight.
    assert _counts(sms) == [1, 10, 8]
