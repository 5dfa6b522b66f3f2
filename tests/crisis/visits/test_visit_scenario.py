"""A GSM outage from 22:00 to 03:00 for one area with 40 clients of three
providers on supervision schedules, through the API, the providers' links and the tick with a
fake clock: exactly the scheduled supervisions inside the window become visits, each provider is
alerted once with its own list only, the provider that never acknowledges is escalated to the
on-call officer, the outage's end stops new visits, and the report adds up."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from core.extensions import db
from crisis.incidents.models import Incident, LetterKind, Supplier
from crisis.visits.models import SupervisedClient, Visit
from crisis.visits.report import build_report
from tests.conftest import csrf_token_from
from tests.crisis.incidents.test_letters_helpers import SETTINGS, local, make_people, run_tick
from tests.crisis.visits.test_visit_helpers import (
    NORR,
    SODER,
    VAST,
    alerts,
    link_of,
    messages,
    on_call_officer,
    provider_id,
    timeline,
)

TUESDAY = date(2027, 1, 12)
START, END = local(TUESDAY, 22), local(TUESDAY + timedelta(days=1), 3)
ROUNDS = ["23:00", "01:30", "04:00"]
CLIENTS = {NORR: 15, SODER: 15, VAST: 10}  # in Ryd; and five more of Norr in Lambohov


@pytest.fixture
def world(make_app, make_user, make_token, clock):
    app = make_app(**SETTINGS)
    clock.set(local(TUESDAY, 12))
    with app.app_context():
        make_people(clock)
        db.session.add(Supplier(name="Telia", created_at=clock.now()))
        db.session.commit()
    on_call_officer(app, make_user)
    operator, _, _ = make_user(role="alarm_operator", username="larm")
    return app, make_token(operator)


def api(app, token, method, url, body):
    response = app.test_client().open(url, method=method, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.get_json()


def clients_payload() -> list[dict]:
    every_night = [{"weekdays": ["mån-sön"], "times": ROUNDS}]
    clients = [
        {"reference": f"{provider[:3].upper()}-{n:02d}", "provider": provider, "area": "Ryd", "schedules": every_night}
        for provider, count in CLIENTS.items()
        for n in range(count)
    ]
    clients += [
        {"reference": f"LAM-{n}", "provider": NORR, "area": "Lambohov", "schedules": every_night} for n in range(5)
    ]
    return clients


def test_a_night_of_gsm_outage_in_one_area_becomes_owned_visits(world, clock):
    app, token = world
    api(app, token, "PUT", "/api/v1/supervised-clients", {"clients": clients_payload()})

    # 21:50: the alarm centre reports the outage for Ryd, 22:00 to 03:00.
    clock.set(local(TUESDAY, 21, 50))
    notice = {
        "title": "GSM-nätet ur funktion i Ryd",
        "service": "camera_supervision",
        "supplier": "Telia",
        "area": "Ryd",
        "starts_at": START.isoformat(),
        "expected_end": END.isoformat(),
    }
    incident_id = api(app, token, "POST", "/api/v1/notices", notice)["incident_id"]
    run_tick(app, clock, local(TUESDAY, 21, 50))

    with app.app_context():
        visits = db.session.scalars(select(Visit).order_by(Visit.id)).all()
        made = {(v.client.reference, v.due_at) for v in visits}
        refs = {
            provider: set(
                db.session.scalars(
                    select(SupervisedClient.reference).where(SupervisedClient.provider_id == provider_id(provider))
                )
            )
            for provider in CLIENTS
        }
        db.session.remove()
    # Exactly the scheduled supervisions inside the window: 23:00 and 01:30 for the 40 in Ryd.
    wanted = {
        (reference, local(day, int(hhmm[:2]), int(hhmm[3:])))
        for provider in CLIENTS
        for reference in refs[provider]
        if not reference.startswith("LAM")
        for hhmm, day in (("23:00", TUESDAY), ("01:30", TUESDAY + timedelta(days=1)))
    }
    assert made == wanted and len(visits) == 80

    # Each provider is alerted once, by e-mail and SMS to each of its active contacts, with a link
    # that shows its own clients only.
    with app.app_context():
        alerted = sorted((m.to_address, m.channel) for m in messages("crisis.visit.alert"))
        links = {NORR: link_of("+46701000001"), SODER: link_of("+46701000003"), VAST: link_of("+46701000005")}
        db.session.remove()
    assert alerted == sorted(
        [
            ("anna@norr.se", "email"),
            ("+46701000001", "sms"),
            ("bo@norr.se", "email"),
            ("+46701000002", "sms"),
            ("cia@soder.se", "email"),
            ("+46701000003", "sms"),
            ("eva@vast.se", "email"),
            ("+46701000005", "sms"),
        ]
    )
    browser = app.test_client()
    for provider, link in links.items():
        page = browser.get(link).get_data(as_text=True)
        own = {r for r in refs[provider] if not r.startswith("LAM")}
        assert all(reference in page for reference in own)
        others = set().union(*(refs[p] for p in refs if p != provider))
        assert not any(reference in page for reference in others), f"{provider} sees another provider's client"

    def post(provider, suffix, data):
        csrf = csrf_token_from(browser.get(links[provider]).get_data(as_text=True))
        response = browser.post(links[provider] + suffix, data={"csrf_token": csrf, **data})
        assert response.status_code == 303, response.get_data(as_text=True)[-3000:]  # then the page, by GET
        assert browser.get(response.location).status_code == 200

    def open_visits(provider, before):
        with app.app_context():
            ids = [
                v.id
                for v in db.session.scalars(select(Visit).where(Visit.status == "open"))
                if v.provider_id == provider_id(provider) and v.due_at < before
            ]
            db.session.remove()
            return ids

    # Norr and Söder take their lists; Väst never reacts.
    clock.set(local(TUESDAY, 21, 58))
    post(NORR, "", {"name": "Anna Lind"})
    post(SODER, "", {"name": "Cia Berg"})

    night = local(TUESDAY, 21, 55)
    while night <= local(TUESDAY + timedelta(days=1), 5, 30):
        run_tick(app, clock, night)
        if night == local(TUESDAY, 23, 20):
            for provider, when in ((NORR, "2027-01-12T23:05"), (SODER, "2027-01-12T23:15")):
                post(
                    provider,
                    "/mark",
                    {
                        "visit": open_visits(provider, local(TUESDAY, 23, 30)),
                        "outcome": "done",
                        "done_at": when,
                        "name": "x",
                    },
                )
        if night == local(TUESDAY + timedelta(days=1), 1, 0):
            # The outage ends early: the officer's resolution closes the incident at 01:00.
            with app.app_context():
                from crisis.incidents.letters import send_letter

                incident = db.session.get(Incident, incident_id)
                for kind in (LetterKind.FIRST, LetterKind.RESOLUTION):
                    send_letter(
                        db.session,
                        incident,
                        kind=kind,
                        subject="GSM-nätet i Ryd",
                        body="Nätet fungerar igen." if kind is LetterKind.RESOLUTION else "Nätet är nere.",
                        apply_local_routines=True,
                        author_id=None,
                        party="on_call",
                        now=clock.now(),
                    )
                db.session.commit()
                db.session.remove()
        if night == local(TUESDAY + timedelta(days=1), 1, 50):
            post(
                NORR,
                "/mark",
                {"visit": open_visits(NORR, END), "outcome": "done", "done_at": "2027-01-13T01:40", "name": "x"},
            )
            rest = open_visits(SODER, END)
            post(SODER, "/mark", {"visit": rest[:-1], "outcome": "done", "done_at": "2027-01-13T01:45", "name": "x"})
            post(SODER, "/mark", {"visit": rest[-1:], "outcome": "not_done", "reason": "in_hospital", "name": "x"})
        night += timedelta(minutes=5)

    with app.app_context():
        # The end stops new visits: still the 80 of the window, the 04:00 round goes to the operator.
        assert db.session.scalar(select(db.func.count()).select_from(Visit)) == 80
        assert len(timeline(incident_id, "supervision_returned")) == 1
        # Väst, which never acknowledged, was escalated to the on-call officer's call list (night).
        escalated = sorted((m.to_address, m.channel) for m in messages("crisis.visit.escalation"))
        assert escalated == [("+46701777777", "sms"), ("tib@kommun.example.se", "email")]
        assert [alert.provider_id for alert in alerts() if alert.call_listed_at] == [provider_id(VAST)]
        # All night, Norr and Söder were alerted once; Väst once and again at 22:05.
        per_address = {}
        for message in messages("crisis.visit.alert"):
            per_address[message.to_address] = per_address.get(message.to_address, 0) + 1
        assert per_address == {
            "anna@norr.se": 1,
            "+46701000001": 1,
            "bo@norr.se": 1,
            "+46701000002": 1,
            "cia@soder.se": 1,
            "+46701000003": 1,
            "eva@vast.se": 2,
            "+46701000005": 2,
        }
        # The report adds up, per provider and in total.
        report = build_report(db.session, incident=db.session.get(Incident, incident_id))
        rows = {row.provider: (row.failures, row.visits, row.done, row.not_done, row.still_open) for row in report.rows}
        assert rows == {NORR: (30, 30, 30, 0, 0), SODER: (30, 30, 29, 1, 0), VAST: (20, 20, 0, 0, 20)}
        total = report.total
        assert (total.failures, total.visits, total.done + total.not_done + total.still_open) == (80, 80, 80)
        db.session.remove()
