"""The roster page (members, order, alert details, swaps and exceptions) and the iCalendar feeds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from accounts.models import User
from core.extensions import db
from crisis.oncall.models import RosterMember, RosterOverride
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_routing_helpers import local, put_on_roster, routing_app, staff


@pytest.fixture
def app(make_app):
    return routing_app(make_app)


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    ids |= staff(app, make_user, ["teamet"], role="team", first=8)
    put_on_roster(app, [ids["anna"], ids["bo"]])
    return ids


def logged_in(app, username):
    client = app.test_client()
    log_in(client, username)
    return client


def order(app) -> list[tuple[str, bool]]:
    with app.app_context():
        rows = db.session.scalars(select(RosterMember).order_by(RosterMember.position)).all()
        result = [(db.session.get(User, r.user_id).username, r.is_active) for r in rows]
        db.session.remove()
        return result


def test_the_team_adds_moves_and_deactivates_members(app, clock, people):
    client = logged_in(app, "teamet")
    page = client.get("/roster")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Test anna" in html and "Test bo" in html
    token = csrf_token_from(html)

    assert client.post("/roster/members", data={"user_id": people["cia"], "csrf_token": token}).status_code == 302
    assert order(app) == [("anna", True), ("bo", True), ("cia", True)]
    again = client.post("/roster/members", data={"user_id": people["cia"], "csrf_token": token})
    assert again.status_code == 400
    assert "finns redan" in again.get_data(as_text=True)

    with app.app_context():
        cia_member = db.session.scalars(select(RosterMember).where(RosterMember.user_id == people["cia"])).one().id
        anna_member = db.session.scalars(select(RosterMember).where(RosterMember.user_id == people["anna"])).one().id
    client.post(f"/roster/members/{cia_member}/move", data={"direction": "up", "csrf_token": token})
    assert order(app) == [("anna", True), ("cia", True), ("bo", True)]
    client.post(f"/roster/members/{anna_member}/active", data={"active": "0", "csrf_token": token})
    assert order(app) == [("anna", False), ("cia", True), ("bo", True)]


def test_alert_details_are_validated_and_stored_in_e164(app, people):
    client = logged_in(app, "teamet")
    token = csrf_token_from(client.get("/roster").get_data(as_text=True))
    with app.app_context():
        member = db.session.scalars(select(RosterMember).where(RosterMember.user_id == people["bo"])).one().id
    bad = client.post(
        f"/roster/members/{member}/contact", data={"email": "bo@", "mobile": "08-123 456", "csrf_token": token}
    )
    assert bad.status_code == 422
    text = bad.get_data(as_text=True)
    assert "Det finns ett problem" in text and "inte giltig" in text
    with app.app_context():
        assert db.session.get(User, people["bo"]).mobile == "+46701000002"
    good = client.post(
        f"/roster/members/{member}/contact",
        data={"email": "Bo.Ek@Kommun.example.se", "mobile": "070-174 06 05", "csrf_token": token},
    )
    assert good.status_code == 302
    with app.app_context():
        user = db.session.get(User, people["bo"])
        assert (user.mobile, user.email) == ("+46701740605", "Bo.Ek@kommun.example.se")


def test_a_swap_and_an_exception_change_who_is_on_call_and_can_be_deleted(app, clock, people):
    clock.set(local(date(2026, 11, 23), 10))  # week 46 of two members: anna; week 47: bo
    client = logged_in(app, "teamet")
    html = client.get("/roster").get_data(as_text=True)
    token = csrf_token_from(html)
    assert 'value="47"' in html  # next week can be chosen for a swap

    response = client.post(
        "/roster/overrides",
        data={"kind": "swap", "override_user_id": people["cia"], "week": "47", "reason": "byte", "csrf_token": token},
    )
    assert response.status_code == 302
    bad = client.post(
        "/roster/overrides",
        data={
            "kind": "exception",
            "override_user_id": people["bo"],
            "starts_at": "2026-12-24T17:00",
            "ends_at": "2026-12-24T08:00",
            "csrf_token": token,
        },
    )
    assert bad.status_code == 422
    assert "sluta efter" in bad.get_data(as_text=True)
    client.post(
        "/roster/overrides",
        data={
            "kind": "exception",
            "override_user_id": people["bo"],
            "starts_at": "2026-12-01T17:00",
            "ends_at": "2026-12-02T07:45",
            "csrf_token": token,
        },
    )
    with app.app_context():
        from crisis.oncall.roster import on_call_at

        overrides = db.session.scalars(select(RosterOverride).order_by(RosterOverride.id)).all()
        assert [(o.starts_at, o.ends_at) for o in overrides] == [
            (local(date(2026, 11, 30), 7, 45), local(date(2026, 12, 7), 7, 45)),
            (local(date(2026, 12, 1), 17), local(date(2026, 12, 2), 7, 45)),
        ]
        assert on_call_at(db.session, local(date(2026, 12, 1), 12)).username == "cia"
        assert on_call_at(db.session, local(date(2026, 12, 1), 23)).username == "bo"
        first = overrides[0].id
    assert client.post(f"/roster/overrides/{first}/delete", data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert db.session.scalars(select(RosterOverride)).all()[0].user_id == people["bo"]


def test_the_on_call_officer_reads_the_roster_but_may_not_change_it(app, people):
    client = logged_in(app, "bo")
    html = client.get("/roster").get_data(as_text=True)
    assert "Test anna" in html
    assert "Lägg till i beredskapslistan" not in html
    response = client.post("/roster/members", data={"user_id": people["cia"], "csrf_token": csrf_token_from(html)})
    assert response.status_code == 403


def unfold(text: str) -> list[str]:
    assert "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").split("\r\n")


def events_of(lines: list[str]) -> list[dict[str, str]]:
    found, current = [], None
    for line in lines:
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            found.append(current)
            current = None
        elif current is not None:
            name, _, value = line.partition(":")
            current[name] = value
    return found


def test_the_ical_feed_keeps_0745_local_across_the_dst_change_on_28_march_2027(app, clock, people):
    clock.set(local(date(2027, 3, 24), 12))
    client = logged_in(app, "teamet")
    html = client.get("/roster").get_data(as_text=True)
    team_feed = re.search(r"https?://[^\"<]+/roster/feed/(team-[A-Za-z0-9_-]+)\.ics", html)
    anna_feed = re.search(rf"https?://[^\"<]+/roster/feed/(u{people['anna']}-[A-Za-z0-9_-]+)\.ics", html)
    assert team_feed and anna_feed

    anonymous = app.test_client()
    response = anonymous.get(f"/roster/feed/{team_feed[1]}.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    raw = response.get_data(as_text=True)
    assert raw.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n") and raw.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in raw.split("\r\n"))
    events = events_of(unfold(raw))
    by_start = {e["DTSTART"]: e for e in events}
    # Week 63 (63 % 2 = 1: bo) starts 22 March 07:45 CET = 06:45 UTC and ends at
    # 07:45 CEST on 29 March = 05:45 UTC; week 64 then runs to 5 April 05:45 UTC.
    assert by_start["20270322T064500Z"]["DTEND"] == "20270329T054500Z"
    assert by_start["20270329T054500Z"]["DTEND"] == "20270405T054500Z"
    assert "bo" in by_start["20270322T064500Z"]["SUMMARY"]
    assert len({e["UID"] for e in events}) == len(events)
    # Two weeks back, twelve ahead.
    starts = sorted(datetime.strptime(s + "+0000", "%Y%m%dT%H%M%SZ%z") for s in by_start)
    assert starts[0] == datetime(2027, 3, 8, 6, 45, tzinfo=UTC) and starts[-1] >= datetime(
        2027, 6, 7, 5, 45, tzinfo=UTC
    )

    # The same UIDs on a later fetch; anna's own feed has only her weeks.
    again = events_of(unfold(anonymous.get(f"/roster/feed/{team_feed[1]}.ics").get_data(as_text=True)))
    assert [e["UID"] for e in again] == [e["UID"] for e in events]
    mine = events_of(unfold(anonymous.get(f"/roster/feed/{anna_feed[1]}.ics").get_data(as_text=True)))
    assert mine and all("anna" in e["SUMMARY"] for e in mine)
    assert "20270329T054500Z" in {e["DTSTART"] for e in mine}


def test_a_forged_or_old_feed_token_is_refused(app, people):
    client = logged_in(app, "teamet")
    html = client.get("/roster").get_data(as_text=True)
    token = re.search(rf"/roster/feed/(u{people['anna']}-[A-Za-z0-9_-]+)\.ics", html)[1]
    anonymous = app.test_client()
    assert anonymous.get(f"/roster/feed/{token}.ics").status_code == 200
    assert anonymous.get(f"/roster/feed/u{people['bo']}-{token.split('-', 1)[1]}.ics").status_code == 404
    assert anonymous.get("/roster/feed/nonsense.ics").status_code == 404
    with app.app_context():
        db.session.get(User, people["anna"]).session_version += 1  # a new password voids the feed
        db.session.commit()
    assert anonymous.get(f"/roster/feed/{token}.ics").status_code == 404


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "field", "words"),
    [
        ("2027-03-28T02:30", "2027-03-28T07:45", "starts_at", "02:00–03:00 finns inte den 28 mars 2027"),
        ("2027-10-30T17:00", "2027-10-31T02:30", "ends_at", "02:00–03:00 kommer två gånger den 31 oktober 2027"),
        ("9999-12-24T17:00", "9999-12-25T07:45", "starts_at", "Ange ett år mellan 1900 och 2200"),
    ],
)
def test_an_exception_at_a_time_that_does_not_exist_once_is_refused_and_nothing_is_stored(
    app, people, starts_at, ends_at, field, words
):
    client = logged_in(app, "teamet")
    token = csrf_token_from(client.get("/roster").get_data(as_text=True))
    data = {"kind": "exception", "override_user_id": people["bo"], "csrf_token": token}
    refused = client.post("/roster/overrides", data={**data, "starts_at": starts_at, "ends_at": ends_at})
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert words in html and f'id="{field}-error"' in html
    with app.app_context():
        assert db.session.scalars(select(RosterOverride)).all() == []
