"""The provider's visit list: by the signed link (no login) and after login; all the provider's
open visits and never another provider's; acknowledging and marking many visits at once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.extensions import db
from crisis.visits.models import Visit
from tests.conftest import csrf_token_from, log_in
from tests.crisis.visits.test_visit_helpers import (
    NORR,
    SETTINGS,
    SODER,
    TUESDAY,
    alerts,
    link_of,
    local,
    make_people,
    new_visits,
    provider_user,
    references,
    run_tick,
    visit_events,
)

NIGHT = local(TUESDAY, 22, 50)
ANNA = "+46701000001"
CIA = "+46701000003"


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def setup(app, clock):
    """Norr: two visits in one alert and a later one in another; Söder: one visit."""
    clock.set(NIGHT)
    with app.app_context():
        make_people(clock)
        norr = new_visits(clock, NORR, [local(TUESDAY, 23, 30), local(TUESDAY, 23, 0)])
        soder = new_visits(clock, SODER, [local(TUESDAY, 23, 15)])
        clock.advance(minutes=20)  # a second alert for Norr
        norr += new_visits(clock, NORR, [local(TUESDAY, 23, 45)])
        data = {
            "norr": norr,
            "soder": soder,
            "norr_refs": references(norr),
            "soder_refs": references(soder),
            "norr_link": link_of(ANNA),
            "soder_link": link_of(CIA),
        }
        db.session.remove()
    return data


def _page(client, path):
    response = client.get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _assert_only(html, own, other):
    assert all(ref in html for ref in own)
    assert not any(ref in html for ref in other)


def test_the_link_shows_all_open_visits_of_its_provider_sorted_and_only_those(client, setup):
    html = _page(client, setup["norr_link"])
    _assert_only(html, setup["norr_refs"], setup["soder_refs"])
    # sorted by due time: 23:00, 23:30, 23:45 (the first link also shows the later alert's visit)
    r2300, r2330, r2345 = setup["norr_refs"][1], setup["norr_refs"][0], setup["norr_refs"][2]
    assert html.index(r2300) < html.index(r2330) < html.index(r2345)
    assert ">23:00<" in html and ">23:45<" in html  # local times
    assert "Vi tar dessa" in html and 'name="viewport"' in html and "<script" not in html and "style=" not in html
    assert "Treserva" in html and "SOS 112" in html and "extra resurser för fysiska nattbesök" in html
    assert "verksamhetschefen" in html
    _assert_only(_page(client, setup["soder_link"]), setup["soder_refs"], setup["norr_refs"])


@pytest.mark.parametrize("change", ["mac", "id", "nonce", "garbage", "letter_link"])
def test_a_forged_or_altered_link_gets_404(client, setup, change):
    token = setup["norr_link"].removeprefix("/v/")
    # The nonce and the signature may contain "-": split by the layout (id, "-", nonce, "-", 22-character MAC).
    alert_id, rest = token.split("-", 1)
    nonce, mac = rest[:-23], rest[-22:]
    forged = {
        "mac": f"{alert_id}-{nonce}-{'A' * 22}",
        "id": f"{int(alert_id) + 1}-{nonce}-{mac}",  # Söder's alert id with Norr's nonce and mac
        "nonce": f"{alert_id}-{'x' * len(nonce)}-{mac}",
        "garbage": "not-a-token",
        "letter_link": f"{alert_id}-{nonce}-{mac[:-1]}B",
    }[change]
    for response in (client.get(f"/v/{forged}"), client.post(f"/v/{forged}/mark", data={"visit": setup["soder"]})):
        assert response.status_code in (400, 404)
        _assert_only(response.get_data(as_text=True), [], setup["norr_refs"] + setup["soder_refs"])
    response = client.get(f"/v/{forged}")
    assert response.status_code == 404 and "Länken fungerar inte" in response.get_data(as_text=True)


def test_acknowledging_through_the_link_takes_only_this_providers_visits(app, client, clock, setup):
    path = setup["norr_link"]
    token = csrf_token_from(_page(client, path))
    response = client.post(path, data={"csrf_token": token, "name": "  "})
    assert response.status_code == 400 and "Skriv ditt namn." in response.get_data(as_text=True)
    response = client.post(path, data={"csrf_token": token, "name": "Anna Lind"})
    assert (response.status_code, response.location) == (303, f"{path}?klart=kvitterat")  # a reload never resends
    html = _page(client, response.location)
    assert "Tack! Ni har kvitterat besöken." in html and "Vi tar dessa" not in html
    with app.app_context():
        assert [(a.acknowledged_by is not None) for a in alerts()] == [True, False, True]  # Norr, Söder, Norr
        assert all(db.session.get(Visit, vid).acknowledged_at for vid in setup["norr"])
        assert not db.session.get(Visit, setup["soder"][0]).acknowledged_at
        assert [e.actor for e in visit_events("acknowledged")] == ["Anna Lind", "Anna Lind"]
    assert "Kvitterat av Anna Lind" in _page(client, path)
    assert "Vi tar dessa" in _page(client, setup["soder_link"])
    # the acknowledgement stops Norr's escalation; Söder's goes on
    run_tick(app, clock, NIGHT + timedelta(minutes=40))
    with app.app_context():
        norr1, soder, norr2 = alerts()
        assert norr1.call_listed_at is None and norr2.call_listed_at is None
        assert soder.call_listed_at is not None


def _mark(client, path, token, **data):
    return client.post(f"{path}/mark", data={"csrf_token": token, **data})


def test_marking_many_visits_at_once_done_and_not_done(app, client, clock, setup):
    path = setup["norr_link"]
    token = csrf_token_from(_page(client, path))
    first, second, third = setup["norr"]
    response = _mark(
        client, path, token, visit=[first, second], outcome="done", done_at="2026-11-24T23:10", name="Bo Ek"
    )
    assert (response.status_code, response.location) == (303, f"{path}?klart=markerat")  # a reload never resends
    html = _page(client, response.location)
    assert "Tack! Besöken är markerade." in html and "Markerade det senaste dygnet" in html
    assert 'name="name" value="Bo Ek"' in html  # the name is kept for the next marking
    assert "Tack!" not in _page(client, path)  # the plain address: no thanks
    response = _mark(client, path, token, visit=[third], outcome="not_done", reason="in_hospital", name="Bo Ek")
    assert response.status_code == 303
    html = _page(client, response.location)
    assert "Inga besök att göra just nu." in html and "Brukaren är på sjukhus" in html
    with app.app_context():
        marked = [db.session.get(Visit, vid) for vid in setup["norr"]]
        assert [v.status for v in marked] == ["done", "done", "not_done"]
        assert marked[0].done_at == local(TUESDAY, 23, 10) and marked[0].marked_by == "Bo Ek"
        assert marked[2].not_done_reason == "in_hospital" and marked[2].done_at is None
        assert all(v.acknowledged_at is not None for v in marked)  # marking takes them
        assert db.session.get(Visit, setup["soder"][0]).status == "open"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"outcome": "done", "done_at": "2026-11-24T23:10"}, "Välj minst ett besök."),
        ({"visit": "own", "outcome": "done", "done_at": "2026-11-25T02:00"}, "kan inte vara i framtiden"),
        ({"visit": "own", "outcome": "done", "done_at": "igår"}, "Skriv när besöket gjordes"),
        ({"visit": "own", "outcome": "not_done", "reason": "other"}, "Beskriv varför besöket inte gjordes."),
        ({"visit": "own", "outcome": "not_done", "reason": ""}, "Välj varför besöket inte gjordes."),
        ({"visit": "own"}, "Välj om besöken är gjorda eller inte gjorda."),
        ({"visit": "other", "outcome": "done", "done_at": "2026-11-24T23:10"}, "finns inte i er lista"),
        ({"visit": "x", "outcome": "done", "done_at": "2026-11-24T23:10"}, "finns inte i er lista"),
        ({"visit": "own", "outcome": "done", "done_at": "2026-11-24T23:10", "name": ""}, "Skriv ditt namn."),
    ],
)
def test_bad_marks_get_400_with_the_message_and_change_nothing(app, client, clock, setup, data, message):
    path = setup["norr_link"]
    token = csrf_token_from(_page(client, path))
    visits = {"own": setup["norr"], "other": [setup["norr"][0], setup["soder"][0]], "x": ["abc"]}
    data = {"name": "Bo Ek", **data}
    if "visit" in data:
        data["visit"] = visits[data["visit"]]
    response = _mark(client, path, token, **data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in html and "Det finns ett problem" in html and "Inget har sparats." in html
    _assert_only(html, setup["norr_refs"], setup["soder_refs"])
    with app.app_context():
        assert {db.session.get(Visit, vid).status for vid in setup["norr"] + setup["soder"]} == {"open"}
        assert visit_events("marked") == []


@pytest.mark.parametrize(
    ("done_at", "words"),
    [
        ("2026-03-29T02:30", "Klockan 02:00–03:00 finns inte den 29 mars 2026: klockan ställs fram"),
        ("2026-10-25T02:30", "Klockan 02:00–03:00 kommer två gånger den 25 oktober 2026"),
    ],
)
def test_a_visit_time_the_clocks_skip_or_pass_twice_is_refused_with_its_reason(app, client, setup, done_at, words):
    path = setup["norr_link"]
    token = csrf_token_from(_page(client, path))
    response = _mark(client, path, token, visit=setup["norr"][:1], outcome="done", done_at=done_at, name="Bo Ek")
    assert response.status_code == 400 and words in response.get_data(as_text=True)
    with app.app_context():
        assert visit_events("marked") == []


def test_a_post_without_the_csrf_token_changes_nothing(app, client, setup):
    path = setup["norr_link"]
    response = client.post(f"{path}/mark", data={"visit": setup["norr"], "outcome": "not_done", "reason": "refused"})
    assert response.status_code == 400
    assert client.post(path, data={"name": "Anna"}).status_code == 400
    with app.app_context():
        assert visit_events("marked") == [] and visit_events("acknowledged") == []


def test_a_provider_user_sees_and_marks_only_its_own_providers_visits(app, client, clock, setup):
    log_in(client, provider_user(app, clock, SODER))
    html = _page(client, "/visits/mine")
    _assert_only(html, setup["soder_refs"], setup["norr_refs"])
    assert 'name="name"' not in html  # no name asked: the account says who
    token = csrf_token_from(html)
    # another provider's visit: refused, nothing changed
    response = client.post(
        "/visits/mine/mark",
        data={"csrf_token": token, "visit": [setup["norr"][0]], "outcome": "not_done", "reason": "refused"},
    )
    assert response.status_code == 400 and "finns inte i er lista" in response.get_data(as_text=True)
    _assert_only(response.get_data(as_text=True), setup["soder_refs"], setup["norr_refs"])
    # its own, and the acknowledgement, work
    response = client.post("/visits/mine", data={"csrf_token": token})
    assert (response.status_code, response.location) == (303, "/visits/mine?klart=kvitterat")
    assert "Tack! Ni har kvitterat besöken." in _page(client, response.location)
    response = client.post(
        "/visits/mine/mark",
        data={"csrf_token": token, "visit": setup["soder"], "outcome": "done", "done_at": "2026-11-24T23:05"},
    )
    assert (response.status_code, response.location) == (303, "/visits/mine?klart=markerat")
    _assert_only(_page(client, response.location), setup["soder_refs"], setup["norr_refs"])
    with app.app_context():
        assert db.session.get(Visit, setup["soder"][0]).status == "done"
        assert db.session.get(Visit, setup["soder"][0]).marked_by.endswith(")")  # "<name> (user:<id>)"
        assert {db.session.get(Visit, vid).status for vid in setup["norr"]} == {"open"}
        soder_id = db.session.get(Visit, setup["soder"][0]).provider_id
        assert {a.provider_id for a in alerts() if a.acknowledged_at} == {soder_id}


def test_a_provider_user_cannot_reach_the_staff_pages(client, clock, app, setup):
    log_in(client, provider_user(app, clock, SODER))
    for path in ("/visits", "/visits/calls", "/visits/report", "/visits/report?format=csv"):
        response = client.get(path)
        assert response.status_code == 403, path
        _assert_only(response.get_data(as_text=True), [], setup["norr_refs"] + setup["soder_refs"])


def test_a_provider_user_without_a_provider_and_staff_get_403_on_mine(app, client, clock, make_user, setup):
    username = provider_user(app, clock, NORR)
    with app.app_context():
        from sqlalchemy import select

        from accounts.models import User

        db.session.scalars(select(User).where(User.username == username)).one().provider_id = None
        db.session.commit()
    log_in(client, username)
    assert client.get("/visits/mine").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/").get_data(as_text=True))})
    _, team, _ = make_user(role="team")
    log_in(client, team)
    assert client.get("/visits/mine").status_code == 403
