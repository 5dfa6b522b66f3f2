"""The on-call rotation: weekly shifts from the anchor at 07:45 local, across the changes to and
from summer time, with swaps and exceptions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.extensions import db
from crisis.oncall import roster
from crisis.oncall.models import RosterMember, RosterOverride
from tests.crisis.incidents.test_routing_helpers import local, local_text, put_on_roster, routing_app, staff


@pytest.fixture
def app(make_app):
    return routing_app(make_app, manager="chef")


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    ids |= staff(app, make_user, ["chef"], role="team", first=9)
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    return ids


def on_call(app, instant):
    with app.app_context():
        user = roster.on_call_at(db.session, instant)
        return user.username if user else None


def backup(app, instant):
    with app.app_context():
        user = roster.backup_at(db.session, instant)
        return user.username if user else None


def test_week_zero_belongs_to_the_first_member_and_weeks_change_monday_0745_local(app, people):
    monday = date(2026, 1, 5)
    assert on_call(app, local(monday, 7, 45)) == "anna"
    assert on_call(app, local(monday + timedelta(days=7), 7, 44)) == "anna"
    assert on_call(app, local(monday + timedelta(days=7), 7, 45)) == "bo"
    assert on_call(app, local(monday + timedelta(days=14), 8)) == "cia"
    assert on_call(app, local(monday + timedelta(days=21), 8)) == "anna"
    assert backup(app, local(monday + timedelta(days=7), 8)) == "cia"
    assert backup(app, local(monday + timedelta(days=14), 8)) == "anna"


@pytest.mark.parametrize(
    ("monday", "utc_start", "previous_hours"),
    [
        # Summer time began on Sunday 28 March 2027: the shift starts 07:45 CEST = 05:45 UTC and
        # the week before it was 167 hours long.
        (date(2027, 3, 29), datetime(2027, 3, 29, 5, 45, tzinfo=UTC), 167),
        # Summer time ended on Sunday 31 October 2027: 07:45 CET = 06:45 UTC, after 169 hours.
        (date(2027, 11, 1), datetime(2027, 11, 1, 6, 45, tzinfo=UTC), 169),
    ],
)
def test_a_shift_starts_at_0745_local_also_in_the_week_of_a_dst_change(app, people, monday, utc_start, previous_hours):
    with app.app_context():
        found = roster.shifts(db.session, local(monday - timedelta(days=1), 12), local(monday, 12))
    assert [local_text(s.starts_at) for s in found] == [
        f"{monday - timedelta(days=7)} 07:45",
        f"{monday} 07:45",
    ]
    assert found[1].starts_at == utc_start
    assert found[0].ends_at - found[0].starts_at == timedelta(hours=previous_hours)
    assert on_call(app, utc_start - timedelta(minutes=1)) != on_call(app, utc_start)


def test_a_swap_gives_a_whole_week_to_another_member_and_the_newest_override_wins(app, people, clock):
    week = local(date(2026, 11, 23), 7, 45)  # week 46: bo's week
    assert on_call(app, week + timedelta(days=2)) == "bo"
    with app.app_context():
        db.session.add(
            RosterOverride(
                user_id=people["cia"],
                starts_at=week,
                ends_at=week + timedelta(days=7),
                reason="byte",
                created_at=clock.now(),
            )
        )
        # An exception inside the swapped week: anna takes Wednesday night.
        db.session.add(
            RosterOverride(
                user_id=people["anna"],
                starts_at=local(date(2026, 11, 25), 17),
                ends_at=local(date(2026, 11, 26), 7, 45),
                reason="undantag",
                created_at=clock.now(),
            )
        )
        db.session.commit()
        found = roster.shifts(db.session, week, week + timedelta(days=6))
        names = {people[name]: name for name in ("anna", "bo", "cia")}
        summary = [(local_text(s.starts_at), local_text(s.ends_at), names[s.user_id]) for s in found]
    assert summary == [
        ("2026-11-23 07:45", "2026-11-25 17:00", "cia"),
        ("2026-11-25 17:00", "2026-11-26 07:45", "anna"),
        ("2026-11-26 07:45", "2026-11-30 07:45", "cia"),
    ]
    assert on_call(app, local(date(2026, 11, 25), 23)) == "anna"
    assert on_call(app, local(date(2026, 11, 27), 23)) == "cia"
    # The backup is the member after whoever is on call, never the officer themself.
    assert backup(app, local(date(2026, 11, 27), 23)) == "anna"
    assert backup(app, local(date(2026, 11, 25), 23)) == "bo"


def test_inactive_members_are_left_out_of_the_rotation_and_an_empty_roster_has_nobody(app, people):
    with app.app_context():
        member = db.session.query(RosterMember).filter_by(user_id=people["bo"]).one()
        member.is_active = False
        db.session.commit()
    # Two active members: weeks alternate anna, cia.
    assert on_call(app, local(date(2026, 1, 12), 8)) == "cia"
    assert on_call(app, local(date(2026, 1, 19), 8)) == "anna"
    assert backup(app, local(date(2026, 1, 19), 8)) == "cia"
    with app.app_context():
        db.session.query(RosterMember).delete()
        db.session.commit()
    assert on_call(app, local(date(2026, 1, 19), 8)) is None
    assert backup(app, local(date(2026, 1, 19), 8)) is None


def test_the_manager_is_found_by_the_configured_username(app, people):
    with app.app_context():
        assert roster.manager(db.session).username == "chef"
