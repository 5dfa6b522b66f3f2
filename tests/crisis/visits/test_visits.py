"""Providers are alerted about their visits once, with their own list; escalation when nobody
reacts (again + call list of the party responsible by the calendar), overdue visits once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.extensions import db
from crisis.incidents.models import Incident
from crisis.visits.models import Visit, VisitAlert
from crisis.visits.service import VisitError, acknowledge, mark_visits, visits_created
from notifications.models import Priority
from tests.crisis.visits.test_visit_helpers import (
    NORR,
    SETTINGS,
    SODER,
    TEAM_EMAIL,
    TEAM_MOBILE,
    TUESDAY,
    alerts,
    link_in,
    local,
    make_incident,
    make_people,
    messages,
    new_visits,
    on_call_officer,
    provider_id,
    references,
    run_tick,
    sent_to,
    timeline,
    visit_events,
)

NIGHT = local(TUESDAY, 22, 50)  # a weekday evening: the on-call officer is responsible
OFFICE = local(TUESDAY, 9, 50)  # office hours: the team is responsible


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture
def people(app, clock):
    clock.set(NIGHT)
    with app.app_context():
        make_people(clock)


def _batch(app, clock, *, incident=False):
    """Three visits of Norr and two of Söder, in one batch (one call of visits_created)."""
    with app.app_context():
        incident_id = make_incident(clock) if incident else None
        norr_due = [local(TUESDAY, 23, 0), local(TUESDAY, 23, 30), local(TUESDAY, 23, 0) + timedelta(hours=2)]
        norr = new_visits(clock, NORR, norr_due, incident_id=incident_id, announce=False)
        soder_due = [local(TUESDAY, 23, 15), local(TUESDAY, 23, 45)]
        soder = new_visits(clock, SODER, soder_due, incident_id=incident_id, announce=False)
        visits_created(db.session, [db.session.get(Visit, vid) for vid in norr + soder], clock.now())
        db.session.commit()
        return incident_id, norr, soder


def test_each_provider_is_alerted_once_with_its_own_list(app, clock, people):
    _, norr, soder = _batch(app, clock)
    with app.app_context():
        assert sent_to("crisis.visit.alert") == sorted(
            [
                ("email", "anna@norr.se"),
                ("sms", "+46701000001"),
                ("email", "bo@norr.se"),
                ("sms", "+46701000002"),
                ("email", "cia@soder.se"),
                ("sms", "+46701000003"),
            ]
        )  # Dan is inactive, Larmgruppen Väst has no visits
        by_address = {m.to_address: m for m in messages("crisis.visit.alert")}
        anna = by_address["+46701000001"].body_text
        cia = by_address["+46701000003"].body_text
        assert "Hemtjänst Norr behöver göra 3 fysiska besök, första 24 november 2026 kl. 23:00" in anna
        assert "Omsorg Söder AB behöver göra 2 fysiska besök, första 24 november 2026 kl. 23:15" in cia
        assert {m.priority for m in messages("crisis.visit.alert")} == {int(Priority.URGENT)}
        assert all(m.ref_type == "visit_alert" for m in messages("crisis.visit.alert"))
        norr_alert, soder_alert = alerts()
        assert (norr_alert.provider_id, sorted(norr_alert.visit_ids)) == (provider_id(NORR), sorted(norr))
        assert (soder_alert.provider_id, sorted(soder_alert.visit_ids)) == (provider_id(SODER), sorted(soder))
        assert link_in(by_address["+46701000001"]) == link_in(by_address["anna@norr.se"])
        assert link_in(by_address["+46701000001"]) != link_in(by_address["+46701000003"])
        assert {(e.provider_id, e.detail["contacts"]) for e in visit_events("alerted")} == {
            (provider_id(NORR), 2),
            (provider_id(SODER), 1),
        }
        assert {m.language for m in messages("crisis.visit.alert")} == {"sv"}


def test_new_visits_within_the_acknowledgement_time_join_the_unacknowledged_alert(app, clock, people):
    with app.app_context():
        first = new_visits(clock, NORR, [local(TUESDAY, 23, 0)])
        clock.advance(minutes=5)
        more = new_visits(clock, NORR, [local(TUESDAY, 23, 30), local(TUESDAY, 23, 45)])
        assert len(alerts()) == 1
        assert sorted(alerts()[0].visit_ids) == sorted(first + more)
        assert len(messages("crisis.visit.alert")) == 4  # Anna and Bo once, e-mail and SMS
        assert len(visit_events("added_to_alert")) == 1
        clock.advance(minutes=11)  # 16 minutes after the first alert: a new alert
        later = new_visits(clock, NORR, [local(TUESDAY, 23, 50)])
        assert len(alerts()) == 2 and alerts()[1].visit_ids == later
        assert len(messages("crisis.visit.alert")) == 8
        # once acknowledged, the next visits get a new alert at once
        acknowledge(db.session, provider_id(NORR), name="Anna Lind", now=clock.now())
        db.session.commit()
        clock.advance(minutes=1)
        new_visits(clock, NORR, [local(TUESDAY, 23, 55)])
        assert len(alerts()) == 3


def test_acknowledging_stops_the_escalation(app, clock, make_user, people):
    on_call_officer(app, make_user)
    incident_id, norr, soder = _batch(app, clock, incident=True)
    clock.advance(minutes=10)
    with app.app_context():
        done = acknowledge(db.session, provider_id(NORR), name="Anna Lind", now=clock.now())
        db.session.commit()
        assert len(done) == 1
        assert all(db.session.get(Visit, vid).acknowledged_at is not None for vid in norr)
        assert all(db.session.get(Visit, vid).acknowledged_at is None for vid in soder)
    run_tick(app, clock, NIGHT + timedelta(minutes=16))
    with app.app_context():
        norr_alert, soder_alert = alerts()
        assert norr_alert.realerted_at is None and norr_alert.call_listed_at is None
        assert soder_alert.realerted_at is not None and soder_alert.call_listed_at is not None
        again = [m for m in messages("crisis.visit.alert") if m.idempotency_key.endswith(":again:sms")]
        assert [m.to_address for m in again] == ["+46701000003"]
        assert "EJ KVITTERAT" in again[0].body_text
        assert len(timeline(incident_id, "visits_escalated")) == 1


def test_no_acknowledgement_at_night_calls_lists_with_the_on_call_officer(app, clock, make_user, people):
    on_call_officer(app, make_user)
    clock.set(local(TUESDAY, 23, 0))
    with app.app_context():
        incident_id = make_incident(clock)
        norr = new_visits(clock, NORR, [local(TUESDAY, 23, 0), local(TUESDAY, 23, 30)], incident_id=incident_id)
    run_tick(app, clock, local(TUESDAY, 23, 14))
    with app.app_context():
        assert alerts()[0].realerted_at is None
    run_tick(app, clock, local(TUESDAY, 23, 15))
    with app.app_context():
        alert = alerts()[0]
        assert alert.realerted_at == local(TUESDAY, 23, 15) and alert.call_listed_at == local(TUESDAY, 23, 15)
        assert sent_to("crisis.visit.escalation") == [("email", "tib@kommun.example.se"), ("sms", "+46701777777")]
        sms = next(m for m in messages("crisis.visit.escalation") if m.channel == "sms")
        assert "Hemtjänst Norr har inte kvitterat 2 fysiska besök" in sms.body_text
        assert "https://krisrutin.kommun.example.se/visits/calls" in sms.body_text
        again = sorted(m.to_address for m in messages("crisis.visit.alert") if ":again" in m.idempotency_key)
        assert again == ["+46701000001", "+46701000002", "anna@norr.se", "bo@norr.se"]
        (step,) = timeline(incident_id, "visits_escalated")
        assert step.party == "on_call" and step.detail["provider_id"] == provider_id(NORR)
        assert {e.kind for e in visit_events()} >= {"alerted", "realerted", "call_listed"}
        assert len(norr) == 2
    run_tick(app, clock, local(TUESDAY, 23, 40))  # nothing twice
    with app.app_context():
        assert len(messages("crisis.visit.escalation")) == 2


def test_no_acknowledgement_in_office_hours_call_lists_with_the_team(app, clock, make_user, people):
    on_call_officer(app, make_user)
    clock.set(OFFICE)
    with app.app_context():
        new_visits(clock, SODER, [local(TUESDAY, 10, 0)])
    run_tick(app, clock, OFFICE + timedelta(minutes=15))
    with app.app_context():
        assert sent_to("crisis.visit.escalation") == [("email", TEAM_EMAIL), ("sms", TEAM_MOBILE)]
        assert visit_events("call_listed")[0].detail["party"] == "team"


def test_visits_all_marked_before_the_deadline_are_not_chased(app, clock, make_user, people):
    on_call_officer(app, make_user)
    with app.app_context():
        ids = new_visits(clock, NORR, [local(TUESDAY, 22, 45)])
        clock.advance(minutes=5)
        mark_visits(
            db.session,
            provider_id(NORR),
            ids,
            outcome="done",
            done_at=clock.now(),
            reason=None,
            comment=None,
            by="Bo Ek",
            now=clock.now(),
        )
        db.session.commit()
    run_tick(app, clock, NIGHT + timedelta(minutes=20))
    with app.app_context():
        assert alerts()[0].call_listed_at is None
        assert messages("crisis.visit.escalation") == []


def test_overdue_visits_are_reported_once_per_provider(app, clock, make_user, people):
    on_call_officer(app, make_user)
    _, norr, soder = _batch(app, clock)
    with app.app_context():
        acknowledge(db.session, provider_id(NORR), name="Anna", now=clock.now())
        acknowledge(db.session, provider_id(SODER), name="Cia", now=clock.now())
        db.session.commit()
    # 00:00: Norr's 23:00 visit is overdue; 00:15: Söder's 23:15; 00:30: Norr's 23:30 (marked done before)
    run_tick(app, clock, local(TUESDAY, 23, 59))
    with app.app_context():
        assert messages("crisis.visit.overdue") == []
        mark_visits(
            db.session,
            provider_id(NORR),
            [norr[1]],
            outcome="done",
            done_at=clock.now(),
            reason=None,
            comment=None,
            by="Bo",
            now=clock.now(),
        )
        db.session.commit()
    run_tick(app, clock, local(TUESDAY, 23, 59) + timedelta(minutes=50))  # 00:49
    with app.app_context():
        overdue = messages("crisis.visit.overdue")
        # one message for Norr (23:00) and one for Söder (23:15 and 23:45: both overdue at 00:49)
        assert sorted((m.channel, m.to_address) for m in overdue) == [
            ("email", "tib@kommun.example.se"),
            ("email", "tib@kommun.example.se"),
            ("sms", "+46701777777"),
            ("sms", "+46701777777"),
        ]
        norr_sms = next(m for m in overdue if m.channel == "sms" and "Hemtjänst Norr" in m.body_text)
        soder_sms = next(m for m in overdue if m.channel == "sms" and "Omsorg Söder" in m.body_text)
        assert "1 försenat besök (kl. 23:00)" in norr_sms.body_text
        assert "2 försenade besök (kl. 23:15, 23:45)" in soder_sms.body_text
        soder_mail = next(m for m in overdue if m.channel == "email" and "Omsorg Söder" in m.body_text)
        assert all(ref in soder_mail.body_text for ref in references(soder))
        assert not any(ref in soder_mail.body_text for ref in references(norr))
        assert db.session.get(Visit, norr[0]).overdue_alerted_at is not None
        assert db.session.get(Visit, norr[1]).overdue_alerted_at is None  # done in time
        assert len(visit_events("overdue")) == 3
    run_tick(app, clock, local(TUESDAY, 23, 0) + timedelta(hours=4))  # Norr's 01:00 visit now
    with app.app_context():
        overdue = messages("crisis.visit.overdue")
        assert len(overdue) == 6  # one more message (e-mail + SMS) for Norr's third visit only
        last_sms = next(m for m in reversed(overdue) if m.channel == "sms")
        assert "Hemtjänst Norr har 1 försenat besök (kl. 01:00)" in last_sms.body_text


def test_marking_validates_everything_and_changes_nothing_on_error(app, clock, people):
    with app.app_context():
        norr = new_visits(clock, NORR, [local(TUESDAY, 23, 0), local(TUESDAY, 23, 30)])
        soder = new_visits(clock, SODER, [local(TUESDAY, 23, 0)])
        pid = provider_id(NORR)
        now = clock.now()
        cases = [
            (dict(visit_ids=[], outcome="done", done_at=now), {"visits": "visits_none"}),
            (dict(visit_ids=norr + soder, outcome="done", done_at=now), {"visits": "visits_unknown"}),
            (dict(visit_ids=norr, outcome="done", done_at=now + timedelta(minutes=10)), {"done_at": "done_at_future"}),
            (dict(visit_ids=norr, outcome="done", done_at=None), {"done_at": "done_at_missing"}),
            (
                dict(visit_ids=norr, outcome="done", done_at=local(TUESDAY, 23, 0) - timedelta(hours=25)),
                {"done_at": "done_at_early"},
            ),
            (dict(visit_ids=norr, outcome="not_done", reason="sleeping"), {"reason": "reason_missing"}),
            (dict(visit_ids=norr, outcome="not_done", reason="other"), {"comment": "comment_missing"}),
            (dict(visit_ids=norr, outcome="maybe"), {"outcome": "outcome_missing"}),
            (dict(visit_ids=norr, outcome="done", done_at=now, by=""), {"name": "name_missing"}),
        ]
        for arguments, expected in cases:
            arguments = {"done_at": None, "reason": None, "comment": None, "by": "Anna", **arguments}
            with pytest.raises(VisitError) as raised:
                mark_visits(db.session, pid, arguments.pop("visit_ids"), now=now, **arguments)
            assert raised.value.errors == expected, arguments
        db.session.rollback()
        assert {db.session.get(Visit, vid).status for vid in norr + soder} == {"open"}
        mark_visits(
            db.session,
            pid,
            norr,
            outcome="not_done",
            done_at=None,
            reason="other",
            comment="Hämtad av anhörig",
            by="Anna",
            now=now,
        )
        db.session.commit()
        assert [(v.status, v.not_done_reason, v.comment) for v in map(lambda i: db.session.get(Visit, i), norr)] == [
            ("not_done", "other", "Hämtad av anhörig")
        ] * 2
        with pytest.raises(VisitError) as raised:  # already marked
            mark_visits(db.session, pid, norr, outcome="done", done_at=now, reason=None, comment=None, by="A", now=now)
        assert raised.value.errors == {"visits": "visits_closed"}
        assert len(visit_events("marked")) == 2
        assert db.session.get(VisitAlert, alerts()[0].id).acknowledged_at is None


def test_a_night_of_forty_clients_of_three_providers(app, client, clock, make_user, people):
    """40 clients (15 Norr, 15 Söder, 10 Väst) supervised at 23:00 and 01:30 fail in one batch:
    each provider is alerted once with its own list; Norr and Söder take theirs and mark them
    through the link, Väst never reacts: alerted again and call-listed with the on-call officer
    at 22:15, its visits reported overdue once per check; the report adds up."""
    from crisis.visits.report import build_report
    from tests.conftest import csrf_token_from
    from tests.crisis.visits.test_visit_helpers import VAST, link_of

    on_call_officer(app, make_user)
    clock.set(local(TUESDAY, 22, 0))
    due = [local(TUESDAY, 23, 0), local(TUESDAY, 23, 0) + timedelta(hours=2, minutes=30)]
    with app.app_context():
        incident_id = make_incident(clock)
        ids = {}
        for name, clients in ((NORR, 15), (SODER, 15), (VAST, 10)):
            ids[name] = new_visits(clock, name, due * clients, incident_id=incident_id, announce=False)
        visits_created(db.session, [db.session.get(Visit, v) for vids in ids.values() for v in vids], clock.now())
        db.session.commit()
        links = {NORR: link_of("+46701000001"), SODER: link_of("+46701000003"), VAST: link_of("+46701000005")}
        refs = {name: set(references(vids)) for name, vids in ids.items()}
        assert len(messages("crisis.visit.alert")) == 8  # Anna, Bo, Cia, Eva: e-mail and SMS, once each
    pages = {name: client.get(path).get_data(as_text=True) for name, path in links.items()}
    for name, html in pages.items():
        assert all(ref in html for ref in refs[name])
        assert not any(ref in html for other in refs if other != name for ref in refs[other])
        assert f"Besök att göra ({len(ids[name])})" in html

    def post(name, suffix, data):
        token = csrf_token_from(client.get(links[name]).get_data(as_text=True))
        response = client.post(links[name] + suffix, data={"csrf_token": token, **data})
        assert response.status_code == 303, response.get_data(as_text=True)[-6000:]  # then the page, by GET
        assert client.get(response.location).status_code == 200

    clock.set(local(TUESDAY, 22, 10))
    post(NORR, "", {"name": "Anna Lind"})
    post(SODER, "", {"name": "Cia Berg"})
    for minute in range(0, 6 * 60, 5):  # 22:00 to 03:55, a tick every five minutes
        now = local(TUESDAY, 22, 0) + timedelta(minutes=minute)
        run_tick(app, clock, now)
        if now == local(TUESDAY, 23, 20):
            with app.app_context():
                first = {
                    name: [v for v in vids if db.session.get(Visit, v).due_at == due[0]] for name, vids in ids.items()
                }
            post(NORR, "/mark", {"visit": first[NORR], "outcome": "done", "done_at": "2026-11-24T23:10", "name": "Bo"})
            post(
                SODER, "/mark", {"visit": first[SODER], "outcome": "done", "done_at": "2026-11-24T23:20", "name": "Cia"}
            )
        if now == local(TUESDAY, 23, 0) + timedelta(hours=3, minutes=10):
            with app.app_context():
                rest = {
                    name: [v for v in vids if db.session.get(Visit, v).status == "open"] for name, vids in ids.items()
                }
            post(NORR, "/mark", {"visit": rest[NORR], "outcome": "done", "done_at": "2026-11-25T01:40", "name": "Bo"})
            post(
                SODER,
                "/mark",
                {"visit": rest[SODER][:14], "outcome": "done", "done_at": "2026-11-25T02:00", "name": "Cia"},
            )
            post(
                SODER, "/mark", {"visit": rest[SODER][14:], "outcome": "not_done", "reason": "not_home", "name": "Cia"}
            )
    with app.app_context():
        vast = provider_id(VAST)
        assert [(a.provider_id, a.call_listed_at) for a in alerts() if a.call_listed_at] == [
            (vast, local(TUESDAY, 22, 15))
        ]
        assert sent_to("crisis.visit.escalation") == [("email", "tib@kommun.example.se"), ("sms", "+46701777777")]
        again = [m for m in messages("crisis.visit.alert") if ":again" in m.idempotency_key]
        assert sorted(m.to_address for m in again) == ["+46701000005", "eva@vast.se"]
        overdue = [m for m in messages("crisis.visit.overdue") if m.channel == "sms"]
        assert [m.body_text.split(" (")[0] for m in overdue] == [
            "Välfärdsteknik: Larmgruppen Väst har 10 försenade besök",
            "Välfärdsteknik: Larmgruppen Väst har 10 försenade besök",
        ]  # 23:00 + 60 min and 01:30 + 60 min: once per check, only Väst
        assert len(timeline(incident_id, "visits_escalated")) == 3  # call list + two overdue checks
        report = build_report(db.session, incident=db.session.get(Incident, incident_id))
        rows = {row.provider: (row.failures, row.visits, row.done, row.not_done, row.still_open) for row in report.rows}
        assert rows == {NORR: (30, 30, 30, 0, 0), SODER: (30, 30, 29, 1, 0), VAST: (20, 20, 0, 0, 20)}
        assert (report.total.visits, report.total.done, report.total.not_done, report.total.still_open) == (
            80,
            59,
            1,
            20,
        )
        assert report.total.delay_max == timedelta(minutes=30)  # Söder's 01:30 visits done at 02:00
