"""Follow-ups through the scheduler tick: re-sending unacknowledged urgent letters, the call list,
update reminders, the expected end passing, the planned-work reminder, and nothing after the
resolution letter."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.extensions import db
from crisis.incidents.followups import planned_reminder_at, previous_working_day
from crisis.incidents.letters import acknowledge, send_letter
from crisis.incidents.models import Incident, LetterKind
from notifications import rendering
from tests.crisis.incidents.test_letters_helpers import (
    SETTINGS,
    addresses,
    events,
    letters,
    local,
    make_incident,
    make_people,
    messages,
    receipts,
    run_tick,
)

NIGHT = local(date(2026, 11, 24), 2, 10)  # Tuesday 02:10: the on-call officer's


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def notified(monkeypatch):
    """What ``crisis.incidents.routing.notify_handler`` was asked to tell the handling party (the routing
    part owns the alerting itself); each message kind is rendered to prove its templates work."""
    calls = []

    def record(db_session, incident, *, reason, kind, context, now, channels=None):
        rendered = rendering.render(kind, "sv", {**context, "incident": incident, "link": "https://x.se/i/1"})
        calls.append((reason, kind, rendered.sms))
        return []

    monkeypatch.setattr("crisis.incidents.routing.notify_handler", record)
    return calls


def _send(incident_id, clock, kind=LetterKind.FIRST, party="on_call"):
    letter = send_letter(
        db.session,
        db.session.get(Incident, incident_id),
        kind=kind,
        subject="Kameratillsyn fungerar inte",
        body="GSM-nätet är nere.",
        apply_local_routines=kind != LetterKind.RESOLUTION,
        author_id=None,
        party=party,
        now=clock.now(),
    )
    db.session.commit()
    return letter.id


@pytest.fixture
def outage(app, clock):
    """An unplanned outage at 02:10 with a first letter at once; expected end far away."""
    clock.set(NIGHT)
    with app.app_context():
        people = make_people(clock)
        incident_id = make_incident(clock, party="on_call", expected_end_at=NIGHT + timedelta(days=2))
        letter_id = _send(incident_id, clock)
        db.session.remove()
    return people, incident_id, letter_id


def _ack(app, clock, letter_id, provider_index=0):
    with app.app_context():
        receipt = receipts(letter_id)[provider_index]
        acknowledge(db.session, receipt, name="Anna Lind", local_routines="yes", now=clock.now())
        db.session.commit()
        return receipt.provider_id


def test_an_unacknowledged_urgent_letter_is_resent_at_30_minutes_only_to_those_who_did_not_answer(
    app, clock, outage, notified
):
    _, incident_id, letter_id = outage
    clock.set(NIGHT + timedelta(minutes=10))
    _ack(app, clock, letter_id, 0)  # Hemtjänst Norr (Anna, Bo) acknowledges
    run_tick(app, clock, NIGHT + timedelta(minutes=29))
    with app.app_context():
        assert addresses(key_contains=":resend") == []
    run_tick(app, clock, NIGHT + timedelta(minutes=30))
    run_tick(app, clock, NIGHT + timedelta(minutes=31))
    with app.app_context():
        assert addresses(key_contains=":resend") == [("email", "cia@soder.se"), ("sms", "+46701000003")]
        norr, soder = receipts(letter_id)
        assert (norr.resent_at, soder.resent_at) == (None, NIGHT + timedelta(minutes=30))
        assert [e.detail["providers"] for e in events(incident_id, "letter_resent")] == [[soder.provider_id]]
    assert notified == []


def test_still_unacknowledged_at_60_minutes_the_provider_goes_on_the_call_list(app, clock, outage, notified):
    _, incident_id, letter_id = outage
    run_tick(app, clock, NIGHT + timedelta(minutes=30))
    clock.set(NIGHT + timedelta(minutes=45))
    _ack(app, clock, letter_id, 0)
    run_tick(app, clock, NIGHT + timedelta(minutes=59))
    with app.app_context():
        assert events(incident_id, "call_listed") == []
    run_tick(app, clock, NIGHT + timedelta(minutes=60))
    run_tick(app, clock, NIGHT + timedelta(minutes=61))
    with app.app_context():
        norr, soder = receipts(letter_id)
        assert (norr.call_listed_at, soder.call_listed_at) == (None, NIGHT + timedelta(minutes=60))
        assert len(events(incident_id, "call_listed")) == 1
    assert [(reason, kind) for reason, kind, _ in notified] == [(f"call_list:{letter_id}", "crisis.followup.call_list")]


def test_the_call_list_page_shows_the_unacknowledged_provider_and_records_the_call(
    app, client, clock, outage, notified, make_user
):
    from tests.conftest import csrf_token_from, log_in

    _, _incident_id, letter_id = outage
    run_tick(app, clock, NIGHT + timedelta(minutes=60))
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    page = client.get("/incidents/calls")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Omsorg Söder AB" in html and "+46701000003" in html and "Hemtjänst Norr" in html
    with app.app_context():
        soder = receipts(letter_id)[1]
    token = csrf_token_from(html)
    bad = client.post(f"/incidents/calls/{soder.id}", data={"csrf_token": token, "outcome": "maybe"})
    assert bad.status_code == 400
    response = client.post(f"/incidents/calls/{soder.id}", data={"csrf_token": token, "outcome": "reached"})
    assert response.status_code == 303
    with app.app_context():
        soder = receipts(letter_id)[1]
        assert soder.call_outcome == "reached" and soder.acknowledged_at is not None
    assert "Omsorg Söder AB" not in client.get("/incidents/calls").get_data(as_text=True)


def test_a_provider_with_several_letters_not_acknowledged_is_one_entry_on_the_call_list(
    app, client, clock, make_user, outage, notified
):
    from tests.conftest import csrf_token_from, log_in

    # A second outage at 02:30 with its own first letter (a newer letter of one incident replaces
    # the older on the call list; two incidents' letters are two letters to call about).
    _, _incident_id, first_id = outage
    clock.set(NIGHT + timedelta(minutes=20))
    with app.app_context():
        second = make_incident(
            clock, party="on_call", expected_end_at=NIGHT + timedelta(days=2), title="Larm nere", supplier="Careium"
        )
        update_id = _send(second, clock)
        db.session.remove()
    run_tick(app, clock, NIGHT + timedelta(minutes=90))  # both letters' call-list times passed
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    html = client.get("/incidents/calls").get_data(as_text=True)
    # One entry per provider (Norr and Söder), each naming the two letters it has not acknowledged.
    assert html.count('class="call-item"') == 2
    assert html.count("Omsorg Söder AB</h2>") == 1 and html.count("Hemtjänst Norr</h2>") == 1
    assert html.count("2 brev inte kvitterade:") == 2
    assert "skickat kl. 02:10" in html and "skickat kl. 02:30" in html
    with app.app_context():
        soder_receipts = [receipts(first_id)[1], receipts(update_id)[1]]
        soder_provider = soder_receipts[0].provider_id
    token = csrf_token_from(html)
    newest = soder_receipts[1].id
    response = client.post(f"/incidents/calls/{newest}", data={"csrf_token": token, "outcome": "not_reached"})
    assert response.status_code == 303
    html = client.get("/incidents/calls").get_data(as_text=True)
    assert "Omsorg Söder AB</h2>" in html and "Senaste samtal kl. 03:40: Inte nådd</p>" in html
    # Reached: every letter of the entry is acknowledged and the provider leaves the list.
    response = client.post(f"/incidents/calls/{newest}", data={"csrf_token": token, "outcome": "reached"})
    assert response.status_code == 303
    with app.app_context():
        acknowledged = [receipts(first_id)[1].acknowledged_at, receipts(update_id)[1].acknowledged_at]
        assert all(at is not None for at in acknowledged)
        assert receipts(first_id)[1].provider_id == soder_provider
    html = client.get("/incidents/calls").get_data(as_text=True)
    assert "Omsorg Söder AB" not in html and html.count('class="call-item"') == 1


def test_an_update_is_due_after_two_hours_without_a_letter_once_per_interval(app, clock, outage, notified):
    _, incident_id, _ = outage
    run_tick(app, clock, NIGHT + timedelta(hours=2) - timedelta(minutes=1))
    assert [r for r, _, _ in notified if r.startswith("update_due")] == []
    run_tick(app, clock, NIGHT + timedelta(hours=2))
    run_tick(app, clock, NIGHT + timedelta(hours=2, minutes=1))
    run_tick(app, clock, NIGHT + timedelta(hours=3))
    assert [r for r, _, _ in notified if r.startswith("update_due")] == ["update_due:1.1"]
    assert "ingen uppdatering" in notified[-1][2] and "02:10" in notified[-1][2]
    with app.app_context():
        assert len(events(incident_id, "update_due")) == 1
    # An update at 04:30 starts the interval again.
    clock.set(NIGHT + timedelta(hours=2, minutes=20))
    with app.app_context():
        _send(incident_id, clock, kind=LetterKind.UPDATE)
    run_tick(app, clock, NIGHT + timedelta(hours=4, minutes=10))
    assert [r for r, _, _ in notified if r.startswith("update_due")] == ["update_due:1.1"]
    run_tick(app, clock, NIGHT + timedelta(hours=4, minutes=20))
    assert [r for r, _, _ in notified if r.startswith("update_due")] == ["update_due:1.1", "update_due:2.1"]


def test_expected_end_passed_asks_the_supplier_by_email_once(app, clock, notified):
    clock.set(NIGHT)
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, party="on_call", supplier_email="drift@telia.example.se")
        _send(incident_id, clock)
        expected = db.session.get(Incident, incident_id).expected_end_at
        db.session.remove()
    run_tick(app, clock, expected - timedelta(minutes=1))
    with app.app_context():
        assert messages("crisis.estimate.request") == []
    for minutes in (0, 1, 30):
        run_tick(app, clock, expected + timedelta(minutes=minutes))
    with app.app_context():
        asked = messages("crisis.estimate.request")
        assert [(m.channel, m.to_address) for m in asked] == [("email", "drift@telia.example.se")]
        assert "24 november 2026 kl. 06:10" in asked[0].body_text
        assert [e.detail["asked"] for e in events(incident_id, "estimate_requested")] == [["email"]]
        # A new estimate that passes too is asked about again.
        incident = db.session.get(Incident, incident_id)
        incident.expected_end_at = expected + timedelta(hours=3)
        db.session.commit()
    run_tick(app, clock, expected + timedelta(hours=3))
    with app.app_context():
        assert len(messages("crisis.estimate.request")) == 2
    expected_end_reasons = [r for r, _, _ in notified if r.startswith("expected_end")]
    assert len(expected_end_reasons) == 2


def test_resolution_closes_the_incident_and_stops_the_followups(app, clock, outage, notified):
    _, incident_id, _letter_id = outage
    clock.set(NIGHT + timedelta(minutes=20))
    with app.app_context():
        _send(incident_id, clock, kind=LetterKind.RESOLUTION)
        assert db.session.get(Incident, incident_id).status == "resolved"
    for hours in (0.5, 1, 3, 50):
        run_tick(app, clock, NIGHT + timedelta(hours=hours))
    with app.app_context():
        assert addresses(key_contains=":resend") == []
        assert events(incident_id, "call_listed") == []
        assert events(incident_id, "update_due") == []
        assert events(incident_id, "estimate_requested") == []
    assert notified == []


def test_the_working_day_before_a_tuesday_after_easter_monday_is_the_thursday(app):
    policy = app.extensions["krisrutin.routine"]
    assert previous_working_day(date(2026, 4, 7), policy) == date(2026, 4, 2)
    assert planned_reminder_at(local(date(2026, 4, 7), 10), policy) == local(date(2026, 4, 2), 8)


def test_planned_work_gets_a_reminder_letter_at_8_on_the_working_day_before(app, clock, notified):
    clock.set(local(date(2026, 3, 20), 10))  # Friday, more than 7 days ahead
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(
            clock,
            planned=True,
            starts_at=local(date(2026, 4, 7), 10),
            expected_end_at=local(date(2026, 4, 7), 12),
        )
        _send(incident_id, clock, party="team")
        db.session.remove()
    run_tick(app, clock, local(date(2026, 4, 2), 7, 59))
    with app.app_context():
        assert [x.kind for x in letters(incident_id)] == ["first"]
    run_tick(app, clock, local(date(2026, 4, 2), 8))
    run_tick(app, clock, local(date(2026, 4, 2), 9))
    with app.app_context():
        sent = letters(incident_id)
        assert [(x.kind, x.urgent, x.recipients) for x in sent] == [("first", False, 3), ("planned_reminder", False, 3)]
        reminder = [m for m in messages() if m.idempotency_key.startswith(f"letter:{sent[1].id}:")]
        assert sorted((m.channel, m.to_address) for m in reminder) == sorted(
            (m.channel, m.to_address) for m in messages() if m.idempotency_key.startswith(f"letter:{sent[0].id}:")
        )
        email = next(m for m in reminder if m.channel == "email")
        assert "Påminnelse: arbetet startar 7 april 2026 kl. 10:00." in email.body_text
        # Before the work starts nobody is told that an update is due: the reminder is the update.
        assert events(incident_id, "update_due") == []
    run_tick(app, clock, local(date(2026, 4, 8), 10))  # 24 hours after the start, still open
    with app.app_context():
        assert len(events(incident_id, "update_due")) == 1


def test_no_planned_reminder_without_a_first_letter(app, clock, notified):
    clock.set(local(date(2026, 3, 20), 10))
    with app.app_context():
        make_people(clock)
        incident_id = make_incident(clock, planned=True, starts_at=local(date(2026, 4, 7), 10))
        db.session.remove()
    run_tick(app, clock, local(date(2026, 4, 2), 8))
    with app.app_context():
        assert letters(incident_id) == []
