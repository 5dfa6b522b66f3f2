"""The team's and the on-call officer's visit pages: the dashboard (due now, overdue,
unacknowledged, per provider), the call list with the call's outcome, and the report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.extensions import db
from crisis.visits.models import Visit
from crisis.visits.service import acknowledge, mark_visits
from crisis.visits.views import dashboard_data
from tests.conftest import csrf_token_from, log_in
from tests.crisis.visits.test_visit_helpers import (
    NORR,
    SETTINGS,
    SODER,
    TUESDAY,
    alerts,
    local,
    make_incident,
    make_people,
    new_visits,
    provider_id,
    references,
    run_tick,
    visit_events,
)

EVENING = local(TUESDAY, 22, 0)
WEDNESDAY = TUESDAY + timedelta(days=1)


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def people(app, clock):
    clock.set(EVENING)
    with app.app_context():
        make_people(clock)


def _staff(client, make_user, role="on_call"):
    _, username, _ = make_user(role=role)
    log_in(client, username)


def _mark(pid, ids, clock, **fields):
    values = {"outcome": "done", "done_at": None, "reason": None, "comment": None, "by": "Bo", **fields}
    mark_visits(db.session, pid, ids, now=clock.now(), **values)
    db.session.commit()


@pytest.fixture
def board(app, clock, people):
    """At 00:30 on Wednesday: Norr 23:00 (overdue), 00:15 and 01:20 (now), 02:00 (later), nothing
    acknowledged; Söder 23:20 (overdue, acknowledged) and 23:40 (done)."""
    with app.app_context():
        norr = new_visits(
            clock, NORR, [local(TUESDAY, 23, 0), local(WEDNESDAY, 0, 15), local(WEDNESDAY, 1, 20), local(WEDNESDAY, 2)]
        )
        soder = new_visits(clock, SODER, [local(TUESDAY, 23, 20), local(TUESDAY, 23, 40)])
        acknowledge(db.session, provider_id(SODER), name="Cia", now=clock.now())
        db.session.commit()
        clock.set(local(WEDNESDAY, 0, 10))
        _mark(provider_id(SODER), [soder[1]], clock, done_at=local(TUESDAY, 23, 50))
        clock.set(local(WEDNESDAY, 0, 30))
        data = {"norr": norr, "soder": soder, "norr_refs": references(norr), "soder_refs": references(soder)}
        db.session.remove()
    return data


def test_the_dashboard_counts_due_now_overdue_unacknowledged_and_per_provider(app, client, clock, make_user, board):
    with app.app_context():
        data = dashboard_data(db.session, clock.now())
        assert [v.id for v in data["overdue"]] == [board["norr"][0], board["soder"][0]]
        assert [v.id for v in data["due_now"]] == [board["norr"][1], board["norr"][2]]
        assert [a.provider_id for a in data["alerts"]] == [provider_id(NORR)]
        counts = {
            row.provider.name: (row.open, row.unacknowledged, row.overdue, row.closed_recently)
            for row in data["counts"]
        }
        assert counts == {NORR: (4, 4, 1, 0), SODER: (1, 0, 1, 1)}
    _staff(client, make_user)
    response = client.get("/visits")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    # No automatic reload (WCAG 2.2.1): the time it was read and a link that reads it again; no
    # script of its own (the menu's static/js/nav.js, on every page, is the only one).
    assert 'http-equiv="refresh"' not in html
    assert html.count("<script") == 1 and '<script src="/static/js/nav.js">' in html
    assert 'Senast uppdaterad kl. <time datetime="2026-11-24T23:30:00+00:00">00:30</time>' in html
    assert 'href="/visits">Uppdatera</a>' in html
    assert all(ref in html for ref in board["norr_refs"][:3]) and board["soder_refs"][0] in html
    assert board["norr_refs"][3] not in html  # 02:00: neither now nor overdue
    assert "Hemtjänst Norr" in html and "Omsorg Söder AB" in html


def test_the_call_list_shows_the_providers_that_did_not_acknowledge_and_records_the_call(
    app, client, clock, make_user, people
):
    with app.app_context():
        new_visits(clock, NORR, [local(TUESDAY, 23, 0)])
        new_visits(clock, SODER, [local(TUESDAY, 23, 0)])
        acknowledge(db.session, provider_id(SODER), name="Cia", now=clock.now())
        db.session.commit()
    run_tick(app, clock, EVENING + timedelta(minutes=15))
    _staff(client, make_user)
    html = client.get("/visits/calls").get_data(as_text=True)
    assert "Hemtjänst Norr" in html and "+46701000001" in html and "+46701000002" in html
    assert "Omsorg Söder AB" not in html and "+46701000003" not in html
    token = csrf_token_from(html)
    norr_alert = next(a.id for a in _alerts(app) if a.call_listed_at is not None)
    response = client.post(f"/visits/calls/{norr_alert}", data={"csrf_token": token, "outcome": "maybe"})
    assert response.status_code == 400 and "Välj hur samtalet gick." in response.get_data(as_text=True)
    response = client.post(f"/visits/calls/{norr_alert}", data={"csrf_token": token, "outcome": "not_reached"})
    assert response.status_code == 303
    assert "Senaste samtal" in client.get("/visits/calls").get_data(as_text=True)
    response = client.post(
        f"/visits/calls/{norr_alert}", data={"csrf_token": token, "outcome": "reached", "note": "Bo åker nu"}
    )
    assert response.status_code == 303
    assert "Ingen behöver ringas just nu." in client.get("/visits/calls").get_data(as_text=True)
    with app.app_context():
        alert = next(a for a in alerts() if a.id == norr_alert)
        assert alert.call_outcome == "reached: Bo åker nu" and alert.acknowledged_by == "Per telefon"
        assert [e.detail["outcome"] for e in visit_events("called")] == ["not_reached", "reached"]
    assert client.post("/visits/calls/9999", data={"csrf_token": token, "outcome": "reached"}).status_code == 404


def _alerts(app):
    with app.app_context():
        found = alerts()
        db.session.expunge_all()
        return found


@pytest.mark.parametrize("role", ["provider", "alarm_operator", "supplier"])
def test_only_staff_reach_the_dashboard_the_call_list_and_the_report(app, client, clock, make_user, people, role):
    if role == "provider":
        from tests.crisis.visits.test_visit_helpers import provider_user

        log_in(client, provider_user(app, clock, NORR))
    else:
        _staff(client, make_user, role)
    for path in ("/visits", "/visits/calls", "/visits/report", "/visits/report?month=2026-11&format=csv"):
        assert client.get(path).status_code == 403, path
    token = csrf_token_from(client.get("/visits/mine").get_data(as_text=True)) if role == "provider" else None
    if token:
        assert client.post("/visits/calls/1", data={"csrf_token": token, "outcome": "reached"}).status_code == 403


@pytest.fixture
def reported(app, clock, people):
    """An incident: Norr 4 visits (done after 10 and 30 minutes, in hospital, other), Söder 2
    (refused, open); and an operator-reported Norr visit in December (outside the incident)."""
    with app.app_context():
        incident_id = make_incident(clock)
        norr = new_visits(
            clock,
            NORR,
            [local(TUESDAY, 23, 0), local(TUESDAY, 23, 30), local(TUESDAY, 23, 45), local(WEDNESDAY, 0, 30)],
            incident_id=incident_id,
        )
        soder = new_visits(clock, SODER, [local(TUESDAY, 23, 15), local(WEDNESDAY, 1, 0)], incident_id=incident_id)
        clock.set(local(WEDNESDAY, 2, 0))
        norr_id, soder_id = provider_id(NORR), provider_id(SODER)
        _mark(norr_id, [norr[0]], clock, done_at=local(TUESDAY, 23, 10))
        _mark(norr_id, [norr[1]], clock, done_at=local(WEDNESDAY, 0, 0))
        _mark(norr_id, [norr[2]], clock, outcome="not_done", reason="in_hospital")
        _mark(norr_id, [norr[3]], clock, outcome="not_done", reason="other", comment="Hos anhörig")
        _mark(soder_id, [soder[0]], clock, outcome="not_done", reason="refused")
        clock.set(local(TUESDAY + timedelta(days=10), 22, 0))
        new_visits(clock, NORR, [local(TUESDAY + timedelta(days=10), 23, 0)])
        db.session.remove()
    return incident_id


def test_the_report_per_incident_adds_up(app, client, clock, make_user, reported):
    _staff(client, make_user, "team")
    response = client.get(f"/visits/report?incident={reported}&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    lines = text.removeprefix("\ufeff").split("\r\n")
    assert lines[0] == (
        "Utförare;Missade tillsyner;Besök;Gjorda;Fördröjning median (min);Fördröjning max (min);Inte gjorda;"
        "Inte gjort: Brukaren var inte hemma;Inte gjort: Brukaren är på sjukhus;"
        "Inte gjort: Brukaren tackade nej till besöket;Inte gjort: Brukaren har flyttat;Inte gjort: Annat;Öppna"
    )
    assert lines[1] == "Hemtjänst Norr;4;4;2;20;30;2;0;1;0;0;1;0"
    assert lines[2] == "Omsorg Söder AB;2;2;0;;;1;0;0;1;0;0;1"
    assert lines[3] == "Alla utförare;6;6;2;20;30;3;0;1;1;0;1;1"
    assert "Hemtjänst Norr;HEMT-" in text and ";2026-11-24 23:00;Gjort;2026-11-24 23:10;10;" in text
    assert "Störning;" in text
    html = client.get(f"/visits/report?incident={reported}").get_data(as_text=True)
    assert "Hemtjänst Norr" in html and "20 min" in html and "30 min" in html and "Brukaren är på sjukhus: 1" in html


def test_the_report_per_month_and_bad_parameters(app, client, clock, make_user, reported):
    _staff(client, make_user, "on_call")
    november = client.get("/visits/report?month=2026-11&format=csv").get_data(as_text=True).split("\r\n")
    assert november[3] == "Alla utförare;6;6;2;20;30;3;0;1;1;0;1;1"
    december = client.get("/visits/report?month=2026-12&format=csv").get_data(as_text=True).split("\r\n")
    assert december[1] == "Hemtjänst Norr;1;1;0;;;0;0;0;0;0;0;1"
    assert client.get("/visits/report?month=2026-11").status_code == 200
    assert client.get("/visits/report").status_code == 200
    assert client.get("/visits/report?month=2026-13").status_code == 400
    assert client.get("/visits/report?incident=abc").status_code == 400
    assert client.get("/visits/report?incident=99999").status_code == 404


def test_the_visits_marked_early_have_a_negative_delay(app, clock, people):
    with app.app_context():
        (vid,) = new_visits(clock, NORR, [local(TUESDAY, 23, 0)])
        clock.set(local(TUESDAY, 22, 40))
        _mark(provider_id(NORR), [vid], clock, done_at=local(TUESDAY, 22, 30))
        from crisis.visits.report import build_report

        report = build_report(db.session, month=TUESDAY.replace(day=1), tz=app.extensions["krisrutin.routine"].timezone)
        assert report.total.delay_median == timedelta(minutes=-30)
        assert db.session.get(Visit, vid).status == "done"


MONDAY = TUESDAY + timedelta(days=6)  # 30 November 2026
SATURDAY = MONDAY + timedelta(days=5)  # 5 December 2026


def _calls(client) -> str:
    return client.get("/visits/calls").get_data(as_text=True)


def test_the_call_list_has_one_entry_per_provider_and_drops_what_is_closed(app, client, clock, make_user, people):
    # Monday 08:00: Norr's two visits are alerted; nobody acknowledges: on the call list at 08:15.
    clock.set(local(MONDAY, 8, 0))
    with app.app_context():
        monday = new_visits(clock, NORR, [local(MONDAY, 8, 30), local(MONDAY, 9, 0)])
    run_tick(app, clock, local(MONDAY, 8, 40))
    _staff(client, make_user)
    html = _calls(client)
    assert html.count('class="call-item"') == 1
    assert "2 öppna besök" in html and "Larmad kl. 08:00" in html and "På ringlistan sedan kl. 08:40" in html
    # The provider marks both visits (without acknowledging the list): nothing left to call about.
    clock.set(local(MONDAY, 9, 30))
    with app.app_context():
        _mark(provider_id(NORR), monday, clock, done_at=local(MONDAY, 9, 10))
    assert "Ingen behöver ringas just nu." in _calls(client)

    # Friday 23:00 and Saturday 02:00: two new alerts for Norr, neither acknowledged.
    clock.set(local(SATURDAY - timedelta(days=1), 23, 0))
    with app.app_context():
        new_visits(clock, NORR, [local(SATURDAY - timedelta(days=1), 23, 30)])
    run_tick(app, clock, local(SATURDAY - timedelta(days=1), 23, 20))
    clock.set(local(SATURDAY, 2, 0))
    with app.app_context():
        new_visits(clock, NORR, [local(SATURDAY, 2, 30), local(SATURDAY, 3, 0)])
        new_visits(clock, SODER, [local(SATURDAY, 2, 30)])
    run_tick(app, clock, local(SATURDAY, 2, 40))
    html = _calls(client)
    # One entry per provider, with its state now; Monday's closed entry is gone; a time not today
    # carries its day.
    assert html.count('class="call-item"') == 2
    assert html.count("Hemtjänst Norr</h2>") == 1 and html.count("Omsorg Söder AB</h2>") == 1
    norr = html[html.index("Hemtjänst Norr</h2>") : html.index("Omsorg Söder AB</h2>")]
    assert "3 öppna besök, 1 försenat" in norr
    assert "Larmad 2 gånger, första gången fre 4 dec kl. 23:00" in norr
    assert "mån 30 nov" not in html and "08:00" not in html

    # A call not reached stays on the list, in words; reached resolves the provider's entry.
    token = csrf_token_from(html)
    newest = max(a.id for a in _alerts(app) if a.provider_id == _provider(app, NORR))
    assert (
        client.post(f"/visits/calls/{newest}", data={"csrf_token": token, "outcome": "not_reached"}).status_code == 303
    )
    html = _calls(client)
    assert "Senaste samtal kl. 02:40: Inte nådd</p>" in html
    assert client.post(f"/visits/calls/{newest}", data={"csrf_token": token, "outcome": "reached"}).status_code == 303
    html = _calls(client)
    assert "Hemtjänst Norr" not in html and html.count('class="call-item"') == 1


def _provider(app, name):
    with app.app_context():
        return provider_id(name)
