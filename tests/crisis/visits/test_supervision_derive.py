"""Failures derived from an incident's window, through the scheduler tick with a fake clock: a GSM
outage from 22:00 to 03:00 for one area, clients of three providers on night rounds. Exactly the
supervisions inside the window become visits, each once; the window grows with the expected end;
the outage's end stops new visits and hands the later supervisions back to the alarm operator.

Runs on SQLite and PostgreSQL, except three nights of ~100 ticks each (a later expected end, the
outage's end, the spring-forward night) that run on SQLite only (``ON_SQLITE``): what they add is
the window's arithmetic in Python, the same on both databases, while each cost ~10 s on
PostgreSQL. The queries and the each-once guarantee stay covered on PostgreSQL by the other tests
here (the whole window, chosen providers, a reported failure meeting a derived one)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contacts import register
from contacts.register import Actor
from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent, IncidentProvider, IncidentStatus
from crisis.visits import clients as supervision_clients
from crisis.visits import supervision
from crisis.visits.models import SupervisedClient, SupervisionFailure, Visit, VisitEvent
from scheduling.service import tick

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ROUNDS = {
    "Hemtjänst Norr": ["23:00", "01:30", "04:00"],
    "Omsorg AB": ["21:30", "02:00"],
    "Vård i Väst": ["22:00", "03:00"],  # 22:00 is inside the window, 03:00 is not (half-open)
}


def local(day, hour, minute=0):
    return datetime.combine(day, datetime.min.time().replace(hour=hour, minute=minute), tzinfo=STOCKHOLM)


ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TUESDAY = date(2027, 1, 12)
WEDNESDAY = date(2027, 1, 13)
START, END = local(TUESDAY, 22), local(WEDNESDAY, 3)


@pytest.fixture
def created_visits(monkeypatch):
    calls = []

    def record(db_session, visits, now):
        calls.append([visit.id for visit in visits])

    monkeypatch.setattr("crisis.visits.service.visits_created", record)
    return calls


@pytest.fixture
def world(app, clock):
    """Three providers; 40 clients in Norr (mixed providers) and 10 in Söder; returns ids."""
    clock.set(local(TUESDAY, 12))
    with app.app_context():
        team = Actor("team")
        providers = {
            name: register.create_provider(
                db.session, {"name": name, "kind": "municipal"}, actor=team, now=clock.now()
            ).record.id
            for name in ROUNDS
        }
        names = list(ROUNDS)
        items = []
        for number in range(50):
            name = names[number % 3]
            items.append(
                {
                    "reference": f"K-{number:03d}",
                    "provider_id": providers[name],
                    "area": "Norr" if number < 40 else "Söder",
                    "schedules": [{"weekdays": "alla", "times": ROUNDS[name]}],
                }
            )
        supervision_clients.save_clients(db.session, items, now=clock.now())
        db.session.commit()
    return providers


def make_incident(clock, *, area="Norr", expected_end=END, providers=None):
    incident = Incident(
        title="GSM-avbrott i Norr",
        service="camera_supervision",
        planned=False,
        starts_at=START.astimezone(UTC),
        expected_end_at=expected_end.astimezone(UTC) if expected_end else None,
        all_providers=providers is None,
        area=area,
        status=IncidentStatus.OPEN.value,
        party="on_call",
        party_since=clock.now(),
        created_at=clock.now(),
    )
    db.session.add(incident)
    db.session.flush()
    for provider_id in providers or ():
        db.session.add(IncidentProvider(incident_id=incident.id, provider_id=provider_id))
    db.session.commit()
    return incident.id


def run(app, clock, at):
    clock.set(at)
    with app.app_context():
        report = tick(db_session=db.session, now=clock.now())
        db.session.remove()
    assert report.planner_errors == []


def run_every_five_minutes(app, clock, start, end):
    at = start
    while at <= end:
        run(app, clock, at)
        at += timedelta(minutes=5)


def expected(app, window_start, window_end, area="Norr", providers=None):
    """Every (reference, instant) scheduled in the window for the area's clients."""
    with app.app_context():
        policy = app.extensions["krisrutin.routine"]
        result = set()
        for client in db.session.scalars(select(SupervisedClient)):
            if client.area != area or (providers is not None and client.provider_id not in providers):
                continue
            for instant in supervision.supervisions_between(client, window_start, window_end, policy):
                result.add((client.reference, instant))
        return result


def visits(app):
    with app.app_context():
        rows = db.session.execute(select(SupervisedClient.reference, Visit).join(Visit.client)).all()
        return [(ref, visit.due_at, visit.provider_id, visit.created_at, visit.incident_id) for ref, visit in rows]


def timeline(app, incident_id, kind):
    with app.app_context():
        return [
            event.detail
            for event in db.session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == kind)
                .order_by(IncidentEvent.id)
            )
        ]


def test_exactly_the_supervisions_inside_the_window_become_visits_each_once(app, clock, world, created_visits):
    with app.app_context():
        incident_id = make_incident(clock)
    run_every_five_minutes(app, clock, local(TUESDAY, 20), local(WEDNESDAY, 6))
    made = visits(app)
    wanted = expected(app, START, END)
    assert {(reference, due) for reference, due, *_ in made} == wanted
    assert len(made) == len(wanted)  # each once, however many ticks
    # The window 22:00-03:00: 40 clients in Norr, about 14 per provider, one to two rounds each.
    per_provider = Counter(provider for _, _, provider, _, _ in made)
    assert set(per_provider) == set(world.values())
    assert all(incident == incident_id for *_, incident in made)
    assert not any(due >= END for _, due, *_ in made) and not any(due < START for _, due, *_ in made)
    # Nobody in Söder.
    assert not any(int(reference[2:]) >= 40 for reference, *_ in made)
    # The whole known window at once, at the first tick (each provider plans its night from one
    # alert), never more than the horizon before they are due.
    assert {created for _, _, _, created, _ in made} == {local(TUESDAY, 20)}
    assert all(due - created <= supervision.HORIZON for _, due, _, created, _ in made)
    # visits_created got every new visit exactly once.
    handed = [visit_id for batch in created_visits for visit_id in batch]
    assert len(handed) == len(set(handed)) == len(made)
    # The timeline says when visits were created, for whom.
    steps = timeline(app, incident_id, "visits_created")
    assert sum(step["count"] for step in steps) == len(made)
    assert set().union(*(step["providers"] for step in steps)) == set(world.values())
    with app.app_context():
        events = db.session.scalars(select(VisitEvent).where(VisitEvent.kind == "created")).all()
        assert len(events) == len(made) and {e.detail["source"] for e in events} == {"incident"}


@ON_SQLITE
def test_a_later_expected_end_derives_more_visits(app, clock, world, created_visits):
    with app.app_context():
        incident_id = make_incident(clock)
    run_every_five_minutes(app, clock, local(TUESDAY, 21, 30), local(WEDNESDAY, 2, 30))
    before = len(visits(app))
    assert before == len(expected(app, START, END))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        incident.expected_end_at = local(WEDNESDAY, 5).astimezone(UTC)
        db.session.commit()
    run_every_five_minutes(app, clock, local(WEDNESDAY, 2, 35), local(WEDNESDAY, 6))
    made = visits(app)
    assert {(reference, due) for reference, due, *_ in made} == expected(app, START, local(WEDNESDAY, 5))
    assert len(made) > before  # the 03:00 and 04:00 rounds


def test_without_an_expected_end_the_window_grows_an_hour_ahead_of_now(app, clock, world, created_visits):
    with app.app_context():
        make_incident(clock, expected_end=None)
    run(app, clock, local(TUESDAY, 22, 30))
    made = visits(app)
    assert {(reference, due) for reference, due, *_ in made} == expected(app, START, local(TUESDAY, 23, 30))


@ON_SQLITE
def test_the_end_of_the_outage_stops_new_visits_and_returns_later_supervisions(app, clock, world, created_visits):
    with app.app_context():
        incident_id = make_incident(clock, expected_end=None)
    run_every_five_minutes(app, clock, local(TUESDAY, 21, 30), local(WEDNESDAY, 0, 55))
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        incident.status = IncidentStatus.RESOLVED.value
        incident.resolved_at = local(WEDNESDAY, 1).astimezone(UTC)
        db.session.commit()
    before = visits(app)
    run_every_five_minutes(app, clock, local(WEDNESDAY, 1, 5), local(WEDNESDAY, 6))
    after = visits(app)
    assert after == before  # already created visits stay; nothing new
    # Visits due after the end exist only because they were created ahead, before the end.
    assert all(created < local(WEDNESDAY, 1) for _, due, _, created, _ in after if due >= local(WEDNESDAY, 1))
    assert {(reference, due) for reference, due, *_ in after} == expected(app, START, local(WEDNESDAY, 1, 55))
    returned = timeline(app, incident_id, "supervision_returned")
    assert len(returned) == 1  # once, however many ticks
    # The 01:30 round had been created ahead; at the first tick after the end (01:05) the 02:00
    # round, within the next hour, goes back to the operator.
    assert returned[0]["count"] == len(expected(app, local(WEDNESDAY, 1, 55), local(WEDNESDAY, 2, 1)))
    assert returned[0]["count"] > 0


def test_an_incident_for_chosen_providers_derives_only_their_clients(app, clock, world, created_visits):
    chosen = world["Omsorg AB"]
    with app.app_context():
        make_incident(clock, providers=[chosen])
    run_every_five_minutes(app, clock, local(WEDNESDAY, 0), local(WEDNESDAY, 3))
    made = visits(app)
    assert made and {provider for _, _, provider, _, _ in made} == {chosen}
    # Ticking from midnight catches up the evening's supervisions since 22:00.
    assert {(reference, due) for reference, due, *_ in made} == expected(app, START, END, providers={chosen})


def test_an_incident_for_every_area_covers_every_client(app, clock, world, created_visits):
    with app.app_context():
        make_incident(clock, area=None)
    run(app, clock, local(TUESDAY, 23, 5))
    references = {reference for reference, *_ in visits(app)}
    assert any(int(reference[2:]) >= 40 for reference in references)


def test_a_reported_failure_and_a_derived_one_are_one_visit(app, clock, world, created_visits):
    with app.app_context():
        reported = supervision.report_failures(
            db.session,
            [{"reference": "K-000", "scheduled_at": local(TUESDAY, 23).isoformat(), "reason": "Ingen bild"}],
            now=local(TUESDAY, 22, 30).astimezone(UTC),
        )
        db.session.commit()
        assert reported[0].created
        make_incident(clock)
    run_every_five_minutes(app, clock, local(TUESDAY, 22), local(TUESDAY, 23, 30))
    with app.app_context():
        failures = db.session.scalars(select(SupervisionFailure).join(SupervisedClient)).all()
        assert len([f for f in failures if f.client_id == 1 and f.scheduled_at == local(TUESDAY, 23)]) == 1
    assert len(visits(app)) == len(expected(app, START, END))  # the known window: 22:00-03:00


def test_a_camera_incident_without_clients_or_of_another_service_derives_nothing(app, clock, created_visits):
    with app.app_context():
        make_incident(clock)
        other = Incident(
            title="Larm",
            service="alarms",
            starts_at=START,
            all_providers=True,
            status="open",
            party="team",
            party_since=clock.now(),
            created_at=clock.now(),
        )
        db.session.add(other)
        db.session.commit()
    run(app, clock, local(TUESDAY, 23))
    assert visits(app) == [] and created_visits == []


@ON_SQLITE
def test_on_the_spring_forward_night_the_missing_time_is_visited_at_the_end_of_the_gap(
    app, clock, world, created_visits
):
    # 28 March 2027: 02:00 becomes 03:00. Omsorg AB's 02:00 round does not exist that night: it
    # is due at 03:00 summer time (01:00 UTC), once.
    saturday, sunday = date(2027, 3, 27), date(2027, 3, 28)
    clock.set(local(saturday, 21))
    with app.app_context():
        incident = Incident(
            title="GSM-avbrott",
            service="camera_supervision",
            starts_at=local(saturday, 22).astimezone(UTC),
            expected_end_at=local(sunday, 5).astimezone(UTC),
            all_providers=True,
            area="Norr",
            status="open",
            party="on_call",
            party_since=clock.now(),
            created_at=clock.now(),
        )
        db.session.add(incident)
        db.session.commit()
    run_every_five_minutes(app, clock, local(saturday, 21), local(sunday, 6))
    omsorg = {due for _, due, provider, _, _ in visits(app) if provider == world["Omsorg AB"]}
    assert omsorg == {datetime(2027, 3, 28, 1, 0, tzinfo=UTC)}
    vast = {due for _, due, provider, _, _ in visits(app) if provider == world["Vård i Väst"]}
    assert vast == {datetime(2027, 3, 27, 21, 0, tzinfo=UTC), datetime(2027, 3, 28, 1, 0, tzinfo=UTC)}
