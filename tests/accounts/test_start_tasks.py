"""The start page as a task list (core.todo, filled by incidents, visits and the monthly check):
each kind of task, the order (most urgent first, newest first within one urgency), the
acknowledge buttons on the rows that return to the start page, the empty state, for the team,
the on-call officer and the admin."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from accounts.models import User
from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck
from contacts.models import ContactPerson
from core.extensions import db
from crisis.incidents.models import Incident, Letter, LetterReceipt
from crisis.oncall.models import Handover, RosterMember
from crisis.visits.models import Visit, VisitAlert
from tests.conftest import csrf_token_from, log_in
from tests.crisis.incidents.test_letters_helpers import SETTINGS, local, make_incident, make_people
from tests.crisis.visits.test_visit_helpers import NORR, SODER, new_visits, provider_id

MONDAY = date(2026, 11, 23)  # the clock fixture: 10:00 local, office hours


@pytest.fixture
def app(make_app):
    return make_app(**SETTINGS)


@pytest.fixture(autouse=True)
def officer(app, make_user):
    """Someone on the on-call roster with a mobile number: nobody missing from tonight's watch."""
    user_id, _, _ = make_user("on_call", username="tib")
    with app.app_context():
        db.session.get(User, user_id).mobile = "+46701777777"
        db.session.add(RosterMember(user_id=user_id, position=0, is_active=True))
        db.session.commit()
    return user_id


@pytest.fixture
def people(app, clock):
    with app.app_context():
        return make_people(clock)


def tasks(html: str) -> list[str]:
    """The task rows' texts, in the page's order (tags and spacing removed)."""
    listing = re.search(r'<ol class="todo-list">(.*?)</ol>', html, re.S)
    if listing is None:
        return []
    rows = re.findall(r'<p class="todo-text"[^>]*>(.*?)</p>', listing.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


def start_page(client, make_user, role: str) -> str:
    _, username, password = make_user(role)
    log_in(client, username, password)
    response = client.get("/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def new_incident(clock, *, party: str, title: str, at: datetime, status: str = "new") -> int:
    """An incident routed to ``party`` at ``at`` (made with the model: intake is another part)."""
    incident = Incident(
        title=title, service="alarms", planned=False, party=party, party_since=at, status=status, created_at=at
    )
    db.session.add(incident)
    db.session.commit()
    return incident.id


@pytest.mark.parametrize("role", ["team", "on_call"])
def test_nothing_to_do_is_said_plainly(app, client, make_user, role):
    html = start_page(client, make_user, role)
    assert "Inget att göra just nu." in html
    assert tasks(html) == []
    assert "Ansvarar just nu:" in html and "Välfärdsteknikteamet" in html  # the calendar, small
    assert "Tjänsteman i beredskap från måndag 23 november kl. 17:00: Test tib." in html


def test_a_gap_in_the_on_call_roster_is_a_task(app, client, clock, make_user, officer):
    with app.app_context():
        db.session.get(User, officer).mobile = None  # nothing to alert the officer on
        db.session.commit()
    html = start_page(client, make_user, "team")
    assert tasks(html) == [
        "Ingen tjänsteman i beredskap kan larmas från måndag 23 november kl. 17:00. Lägg till någon i beredskapen."
    ]
    assert 'href="/roster"' in html
    clock.set(local(MONDAY, 18, 0))  # uncovered now: below the incident to acknowledge
    with app.app_context():
        new_incident(clock, party="on_call", title="Kvällens störning", at=local(MONDAY, 17, 50))
    client.post("/logout", data={"csrf_token": csrf_token_from(html)})
    assert tasks(start_page(client, make_user, "on_call")) == [
        "Ny störning, inte kvitterad: Kvällens störning kl. 17:50",
        "Ingen tjänsteman i beredskap kan larmas nu. Lägg till någon i beredskapen.",
    ]


def test_the_team_sees_its_new_incident_and_acknowledges_it_on_the_row(app, client, clock, make_user):
    with app.app_context():
        mine = new_incident(clock, party="team", title="Larmen tysta", at=local(MONDAY, 9, 40))
        new_incident(clock, party="on_call", title="Nattens störning", at=local(MONDAY, 2, 0))
    html = start_page(client, make_user, "team")
    assert tasks(html) == ["Ny störning, inte kvitterad: Larmen tysta kl. 09:40"]
    action = f'action="/incidents/{mine}/acknowledge?next=start"'
    assert action in html
    response = client.post(f"/incidents/{mine}/acknowledge?next=start", data={"csrf_token": csrf_token_from(html)})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    html = client.get("/").get_data(as_text=True)
    assert "Du har kvitterat störningen." in html
    assert "Inget att göra just nu." in html
    with app.app_context():
        assert db.session.get(Incident, mine).acknowledged_at is not None


def test_the_on_call_officer_sees_the_officers_incidents_and_handovers_to_the_officer(app, client, clock, make_user):
    clock.set(local(MONDAY, 17, 30))
    with app.app_context():
        night = new_incident(clock, party="on_call", title="Kameror nere", at=local(MONDAY, 17, 20))
        handed = new_incident(clock, party="on_call", title="GSM nere", at=local(MONDAY, 9, 0), status="open")
        new_incident(clock, party="team", title="Teamets egen", at=local(MONDAY, 16, 0))
        db.session.add(
            Handover(
                incident_id=handed,
                boundary_at=local(MONDAY, 17, 0),
                from_party="team",
                to_party="on_call",
                summary={},
                created_at=local(MONDAY, 17, 0),
            )
        )
        db.session.commit()
        handover_id = db.session.scalars(select(Handover.id)).one()
    html = start_page(client, make_user, "on_call")
    assert tasks(html) == [
        "Ny störning, inte kvitterad: Kameror nere kl. 17:20",
        "Överlämning till dig, inte kvitterad: GSM nere kl. 17:00",
    ]
    assert f'action="/incidents/{night}/acknowledge?next=start"' in html
    response = client.post(
        f"/handovers/{handover_id}/acknowledge?next=start", data={"csrf_token": csrf_token_from(html)}
    )
    assert response.headers["Location"] == "/"
    assert tasks(client.get("/").get_data(as_text=True)) == ["Ny störning, inte kvitterad: Kameror nere kl. 17:20"]


def _letter(incident_id: int, provider_ids, *, number: int, sent_at, call_listed: set[int] = frozenset()) -> None:
    letter = Letter(
        incident_id=incident_id,
        number=number,
        kind="first" if number == 1 else "update",
        party="team",
        subject="Driftstörning",
        body="…",
        urgent=True,
        sent_at=sent_at,
    )
    db.session.add(letter)
    db.session.flush()
    for pid in provider_ids:
        listed = sent_at + timedelta(minutes=30) if pid in call_listed else None
        db.session.add(LetterReceipt(letter_id=letter.id, provider_id=pid, nonce="n", call_listed_at=listed))
    db.session.commit()


def test_providers_to_call_and_providers_not_acknowledged_are_one_row_each_per_incident(
    app, client, clock, make_user, people
):
    with app.app_context():
        incident = make_incident(clock, party="team", title="GSM nere", acknowledged_at=clock.now())
        norr, soder = provider_id(NORR), provider_id(SODER)
        _letter(incident, [norr, soder], number=1, sent_at=local(MONDAY, 8, 0), call_listed={norr})
        _letter(incident, [norr, soder], number=2, sent_at=local(MONDAY, 9, 0))  # Norr twice: still one call
    html = start_page(client, make_user, "team")
    assert tasks(html) == [
        "Ring 1 utförare som inte har kvitterat brevet om GSM nere kl. 08:30",
        "1 utförare har inte kvitterat brevet om GSM nere kl. 09:00",
    ]
    assert 'href="/incidents/calls"' in html
    # the on-call officer does not handle the team's incident
    client.post("/logout", data={"csrf_token": csrf_token_from(html)})
    assert tasks(start_page(client, make_user, "on_call")) == []


def test_a_missed_visit_shows_at_once_and_folds_per_provider(app, client, clock, make_user, people):
    """Three visits of Norr were due 08:00-08:50 (overdue after 60 minutes), Norr is on the call
    list; Söder has not acknowledged its alert yet (due 09:50, not overdue)."""
    with app.app_context():
        due = [local(MONDAY, 8, 0), local(MONDAY, 8, 30), local(MONDAY, 8, 50)]
        norr = new_visits(clock, NORR, due, announce=False)
        soder = new_visits(clock, SODER, [local(MONDAY, 9, 50)], announce=False)
        for provider, ids, listed in ((NORR, norr, clock.now()), (SODER, soder, None)):
            alert = VisitAlert(
                provider_id=provider_id(provider),
                nonce="n",
                visit_ids=ids,
                created_at=local(MONDAY, 7, 55),
                call_listed_at=listed,
            )
            db.session.add(alert)
            db.session.flush()
            for visit_id in ids:
                db.session.get(Visit, visit_id).alert_id = alert.id
        db.session.commit()
    for role in ("on_call", "team"):
        html = start_page(client, make_user, role)
        assert tasks(html) == [
            "3 försenade besök hos Hemtjänst Norr kl. 09:50",
            "Ring Hemtjänst Norr: har inte kvitterat besöken kl. 10:00",
            "Omsorg Söder AB har inte kvitterat besökslarmet kl. 07:55",
        ]
        assert 'href="/visits/calls"' in html
        client.post("/logout", data={"csrf_token": csrf_token_from(html)})


def _check(app, clock, people) -> None:
    """November's check: Anna answered yes, Bo and Cia have not answered; Cia sent a correction."""
    with app.app_context():
        check = MonthlyCheck(
            month="2026-11",
            send_on=date(2026, 11, 2),
            first_reminder_on=date(2026, 11, 5),
            second_reminder_on=date(2026, 11, 6),
            call_on=date(2026, 11, 9),
            opened_at=local(date(2026, 11, 2), 8, 0),
            closes_at=local(date(2026, 12, 1), 8, 0),
            created_at=local(date(2026, 11, 2), 8, 0),
        )
        db.session.add(check)
        db.session.flush()
        rows = {}
        for short in ("anna", "bo", "cia"):
            contact = db.session.get(ContactPerson, people[short])
            rows[short] = CheckRecipient(
                check_id=check.id,
                contact_id=contact.id,
                provider_id=contact.provider_id,
                added_at=check.opened_at,
                added_reason="start",
                nonce="n",
                answer="yes" if short == "anna" else None,
                answered_at=check.opened_at if short == "anna" else None,
            )
            db.session.add(rows[short])
        db.session.flush()
        db.session.add(
            CheckCorrection(
                recipient_id=rows["anna"].id,
                kind="correction",
                contact_id=people["anna"],
                provider_id=rows["anna"].provider_id,
                proposed={"mobile": "+46701000009"},
                status="pending",
                submitted_at=local(date(2026, 11, 20), 14, 5),
                submitted_via="link",
            )
        )
        db.session.commit()


def test_the_team_sees_the_check_calls_the_corrections_and_the_months_state(app, client, clock, make_user, people):
    _check(app, clock, people)
    html = start_page(client, make_user, "team")
    assert tasks(html) == [
        "Ring 2 kontaktpersoner som inte har svarat på månadskontrollen 9 november",
        "1 rättelse från månadskontrollen att granska 20 november kl. 14:05",
    ]
    assert 'href="/checks/2026-11/calls"' in html and 'href="/checks/review"' in html
    assert "Månadskontrollen november 2026: 1 av 3 kontaktpersoner har svarat." in html
    client.post("/logout", data={"csrf_token": csrf_token_from(html)})
    # the on-call officer sees the month's state but not the team's calls and review
    html = start_page(client, make_user, "on_call")
    assert tasks(html) == [] and "Inget att göra just nu." in html
    assert "Månadskontrollen november 2026: 1 av 3 kontaktpersoner har svarat." in html


def test_the_admin_sees_every_partys_tasks_most_urgent_first_newest_first(app, client, clock, make_user, people):
    _check(app, clock, people)
    with app.app_context():
        new_incident(clock, party="on_call", title="Natt", at=local(MONDAY, 2, 0))
        new_incident(clock, party="team", title="Förmiddag", at=local(MONDAY, 9, 30))
        new_visits(clock, NORR, [local(MONDAY, 8, 0)], announce=False)
    html = start_page(client, make_user, "admin")
    assert tasks(html) == [
        "Ny störning, inte kvitterad: Förmiddag kl. 09:30",
        "Ny störning, inte kvitterad: Natt kl. 02:00",
        "1 försenat besök hos Hemtjänst Norr kl. 09:00",
        "Ring 2 kontaktpersoner som inte har svarat på månadskontrollen 9 november",
        "1 rättelse från månadskontrollen att granska 20 november kl. 14:05",
    ]
    assert "Aktivera tvåstegsverifiering" in html


def test_the_task_list_speaks_english(app, client, clock, make_user):
    with app.app_context():
        new_incident(clock, party="team", title="Larmen tysta", at=local(MONDAY, 9, 40))
    start_page(client, make_user, "team")
    html = client.get("/?lang=en").get_data(as_text=True)
    assert tasks(html) == ["New incident, not acknowledged: Larmen tysta at 09:40"]
    assert ">Acknowledge</button>" in html


def test_an_update_due_after_acknowledgement_is_on_the_start_page(app, client, clock, make_user):
    """After the incident is acknowledged the update reminder goes by e-mail only (alert fatigue),
    so the start page is where it is seen: a row linking to the update's form, for the handling
    party only, and none before the interval has passed."""
    with app.app_context():
        due = new_incident(clock, party="team", title="Larmen tysta", at=local(MONDAY, 7, 0), status="open")
        fresh = new_incident(clock, party="team", title="Kameror sega", at=local(MONDAY, 9, 30), status="open")
        for incident_id in (due, fresh):
            db.session.get(Incident, incident_id).acknowledged_at = local(MONDAY, 9, 45)
        db.session.commit()
    html = start_page(client, make_user, "team")
    rows = tasks(html)
    assert len(rows) == 1 and rows[0].startswith("Dags att skicka en uppdatering till utförarna: Larmen tysta")
    assert f'href="/incidents/{due}/letters/new?kind=update"' in html
    assert "Kameror sega" not in " ".join(rows)  # created 09:30: an update is due at 11:30
    client.post("/logout", data={"csrf_token": csrf_token_from(html)})
    assert "Larmen tysta" not in " ".join(tasks(start_page(client, make_user, "on_call")))
