"""The incident list and the incident page: what staff see of a disruption and its timeline.

Incidents, notices, events and letters are made directly with the models (the intake, routing
and letters parts build the flows that make them in production).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from accounts.service import create_user
from contacts import register
from core.extensions import db
from crisis.incidents import timeline
from crisis.incidents.models import Incident, Letter, Notice, Supplier
from notifications.models import Channel, Message, MessageStatus, Priority
from tests.conftest import DEFAULT_PASSWORD, log_in


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# --- factories (used by the export and report tests too) ---------------------------------------


def make_supplier(name: str, email: str | None = None) -> int:
    supplier = Supplier(name=name, email=email, is_active=True, created_at=utc(2026, 1, 1))
    db.session.add(supplier)
    db.session.flush()
    return supplier.id


def make_provider(name: str, contacts=(), services=("camera_supervision",)) -> tuple[int, list[int]]:
    """A provider with contacts ``[(name, email, mobile)]``; returns (provider id, contact ids)."""
    actor = register.Actor("team")
    now = utc(2026, 1, 1)
    provider = register.create_provider(db.session, {"name": name, "kind": "municipal"}, actor=actor, now=now).record
    ids = []
    for person, email, mobile in contacts:
        contact = register.create_contact(
            db.session,
            provider,
            {"name": person, "email": email, "mobile": mobile, "services": list(services)},
            actor=actor,
            now=now,
        ).record
        ids.append(contact.id)
    db.session.flush()
    return provider.id, ids


def make_incident(
    title: str,
    *,
    notice_at: datetime,
    service: str = "camera_supervision",
    supplier_id: int | None = None,
    planned: bool = False,
    status: str = "new",
    starts_at: datetime | None = None,
    resolved_at: datetime | None = None,
    party: str = "team",
    handler_id: int | None = None,
    flag_reason: str | None = None,
    subject: str | None = None,
    original: str | None = None,
) -> int:
    """An incident with one notice received at ``notice_at`` and its ``notice_received`` step."""
    incident = Incident(
        title=title,
        service=service,
        supplier_id=supplier_id,
        planned=planned,
        status=status,
        starts_at=starts_at,
        resolved_at=resolved_at,
        party=party,
        party_since=notice_at,
        handler_user_id=handler_id,
        flag_reason=flag_reason,
        created_at=notice_at,
    )
    db.session.add(incident)
    db.session.flush()
    add_notice(incident.id, notice_at, subject or f"Avisering: {title}", original=original, supplier_id=supplier_id)
    return incident.id


def add_notice(incident_id, at, subject, *, original=None, supplier_id=None) -> int:
    notice = Notice(
        incident_id=incident_id,
        source="email" if original else "form",
        supplier_id=supplier_id,
        subject=subject,
        body="Text från leverantören.",
        original=original,
        original_type="message/rfc822" if original else None,
        received_at=at,
    )
    db.session.add(notice)
    db.session.flush()
    timeline.record(db.session, incident_id, "notice_received", at, notice_id=notice.id, source=notice.source)
    return notice.id


def add_letter(incident_id, at, *, number=1, kind="first", party="team", author_id=None, subject=None) -> int:
    letter = Letter(
        incident_id=incident_id,
        number=number,
        kind=kind,
        party=party,
        author_id=author_id,
        subject=subject or f"Information nr {number}",
        body="Kameratillsynen fungerar inte. Gör fysiska besök.",
        apply_local_routines=True,
        urgent=True,
        sent_at=at,
        recipients=0,
    )
    db.session.add(letter)
    db.session.flush()
    timeline.record(
        db.session,
        incident_id,
        "letter_sent",
        at,
        actor_id=author_id,
        party=party,
        letter_id=letter.id,
        number=number,
        letter_kind=kind,
        recipients=0,
    )
    return letter.id


def queue_letter_message(letter_id, contact_id, channel, at, *, status="queued", delivered_at=None) -> int:
    """One message of the letter to a contact, in the state given (as the dispatcher leaves it)."""
    from contacts.models import ContactPerson

    message = _raw_message(letter_id, db.session.get(ContactPerson, contact_id), channel, at)
    message.status = status
    if status in ("sent", "delivered"):
        message.sent_at = at + timedelta(seconds=5)
        message.gateway = "console"
    if delivered_at is not None:
        message.delivered_at = delivered_at
    db.session.flush()
    return message.id


def _raw_message(letter_id, contact, channel, at) -> Message:
    message = Message(
        idempotency_key=f"test-letter:{letter_id}:{contact.id}:{channel}",
        kind="crisis.letter",
        channel=channel,
        priority=int(Priority.URGENT),
        contact_id=contact.id,
        to_address=contact.email if channel == Channel.EMAIL.value else contact.mobile,
        language="sv",
        subject="Information" if channel == Channel.EMAIL.value else None,
        body_text="Kameratillsynen fungerar inte.",
        ref_type="letter",
        ref_id=str(letter_id),
        status=MessageStatus.QUEUED.value,
        attempts=0,
        next_attempt_at=at,
        created_at=at,
        updated_at=at,
    )
    db.session.add(message)
    db.session.flush()
    return message


def staff_client(app, make_user, role="team"):
    _, username, password = make_user(role)
    client = app.test_client()
    log_in(client, username, password)
    return client


# --- the list ----------------------------------------------------------------------------------


def _titles(html: str) -> list[str]:
    return re.findall(r'<a href="/incidents/\d+">([^<]+)</a>', html)


def test_open_incidents_come_first_and_new_ones_are_highlighted(app, make_user):
    with app.app_context():
        telia = make_supplier("Telia")
        make_incident("Gammal kvitterad", notice_at=utc(2026, 11, 20, 8), status="open", supplier_id=telia)
        make_incident("Kvitterad i dag", notice_at=utc(2026, 11, 23, 8, 30), status="open")
        make_incident(
            "Löst nyligen", notice_at=utc(2026, 11, 23, 7), status="resolved", resolved_at=utc(2026, 11, 23, 8)
        )
        make_incident("Inte relevant", notice_at=utc(2026, 11, 22, 7), status="not_relevant")
        make_incident(
            "Ny i natt",
            notice_at=utc(2026, 11, 22, 2),
            status="new",
            planned=True,
            flag_reason="Planerat arbete aviserat mindre än 7 dagar i förväg",
        )
        db.session.commit()
    client = staff_client(app, make_user, "on_call")
    html = client.get("/incidents").get_data(as_text=True)
    assert _titles(html) == ["Ny i natt", "Kvitterad i dag", "Gammal kvitterad", "Löst nyligen", "Inte relevant"]
    open_part, closed_part = html.split('id="closed-title"')
    assert "Ny i natt" in open_part and "Löst nyligen" in closed_part
    new_row = re.search(r'<tr class="incident-new">(.*?)</tr>', html, re.S).group(1)
    assert "Ny i natt" in new_row and "Ny, inte kvitterad" in new_row
    assert "Planerat" in new_row and "Planerat arbete aviserat mindre än 7 dagar i förväg" in new_row
    assert html.count('class="incident-new"') == 1


def test_the_list_shows_local_times_who_handles_and_the_last_letter(app, make_user):
    officer, _, _ = make_user("on_call", username="tor")
    with app.app_context():
        # 2027-03-28 01:30 UTC is 03:30 in Stockholm: summer time began at 02:00 that night.
        incident = make_incident(
            "GSM nere",
            notice_at=utc(2027, 3, 28, 0, 10),
            starts_at=utc(2027, 3, 28, 0, 5),
            status="open",
            party="on_call",
            handler_id=officer,
        )
        add_letter(incident, utc(2027, 3, 28, 1, 30), party="on_call")
        db.session.commit()
    html = staff_client(app, make_user).get("/incidents").get_data(as_text=True)
    row = re.search(r"<tr[^>]*>\s*<th scope=\"row\">\s*<a href=\"/incidents/\d+\">GSM nere.*?</tr>", html, re.S).group(
        0
    )
    assert "Tjänsteman i beredskap" in row and "Test tor" in row
    assert ">2027-03-28 01:05<" in row  # the start, still winter time (UTC+1)
    assert ">2027-03-28 03:30<" in row  # the last letter, summer time (UTC+2)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "open"}, {"Kamera Telia oktober", "Larm Careium november"}),
        ({"status": "closed"}, {"Kamera Telia november löst"}),
        ({"status": "resolved"}, {"Kamera Telia november löst"}),
        ({"service": "alarms"}, {"Larm Careium november"}),
        ({"supplier": "telia"}, {"Kamera Telia oktober", "Kamera Telia november löst"}),
        ({"month": "2026-10"}, {"Kamera Telia oktober"}),
        ({"month": "2026-11", "status": "open"}, {"Larm Careium november"}),
    ],
)
def test_filters_by_status_service_supplier_and_month(app, make_user, query, expected):
    with app.app_context():
        telia, careium = make_supplier("Telia"), make_supplier("Careium")
        # First notice on 31 October 23:30 local time (22:30 UTC): an October incident.
        make_incident("Kamera Telia oktober", notice_at=utc(2026, 10, 31, 22, 30), status="open", supplier_id=telia)
        make_incident(
            "Kamera Telia november löst",
            notice_at=utc(2026, 11, 2, 9),
            status="resolved",
            resolved_at=utc(2026, 11, 2, 12),
            supplier_id=telia,
        )
        make_incident("Larm Careium november", notice_at=utc(2026, 11, 3, 9), service="alarms", supplier_id=careium)
        db.session.commit()
    if query.get("supplier") == "telia":
        query = {**query, "supplier": str(telia)}
    response = staff_client(app, make_user).get("/incidents", query_string=query)
    assert response.status_code == 200
    assert set(_titles(response.get_data(as_text=True))) == expected


def test_a_malformed_filter_is_refused_with_a_message_beside_the_field(app, make_user):
    client = staff_client(app, make_user)
    response = client.get("/incidents", query_string={"month": "mars", "status": "bortglömd"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'class="error-summary"' in html
    assert "Ange månaden som ÅÅÅÅ-MM, till exempel 2027-03." in html
    assert "Välj en status i listan." in html
    assert 'id="month-error"' in html


def test_staff_see_the_disruptions_link_in_the_menu(app, make_user):
    for role in ("team", "on_call", "admin"):
        html = staff_client(app, make_user, role).get("/").get_data(as_text=True)
        assert 'href="/incidents">Störningar</a>' in html, role


# --- one incident ------------------------------------------------------------------------------


def test_the_incident_page_shows_its_header_notices_and_affected_providers(app, make_user):
    officer, _, _ = make_user("on_call", username="tor")
    with app.app_context():
        telia = make_supplier("Telia", "drift@telia.example.se")
        make_provider("Hemtjänst Norr", [("Karin", "karin@example.se", "+46701740605")])
        make_provider("Larmbolaget", [("Omar", "omar@example.se", None)], services=("alarms",))
        incident = make_incident(
            "GSM-avbrott norra kommundelen",
            notice_at=utc(2026, 11, 21, 1, 10),
            starts_at=utc(2026, 11, 21, 1, 0),
            supplier_id=telia,
            party="on_call",
            handler_id=officer,
            subject="Driftstörning GSM",
        )
        db.session.get(Incident, incident).expected_end_at = utc(2026, 11, 21, 5, 0)
        db.session.commit()
    html = staff_client(app, make_user).get(f"/incidents/{incident}").get_data(as_text=True)
    assert "<h1>GSM-avbrott norra kommundelen</h1>" in html
    for text in (
        "Kameratillsyn",
        "Telia",
        "Oplanerad störning",
        "Ny, inte kvitterad",
        "Tjänsteman i beredskap",
        "Test tor",
        "Driftstörning GSM",
        "Hemtjänst Norr",
        "Inte kvitterad ännu",
    ):
        assert text in html, text
    assert "Larmbolaget" not in html  # uses alarms only: not affected by a camera outage
    assert ">2026-11-21 02:00<" in html and ">2026-11-21 06:00<" in html  # start and expected end, local
    assert ">2026-11-21 02:10<" in html  # the notice received


def test_the_timeline_is_in_order_and_in_local_time_across_the_change_to_summer_time(app, make_user):
    officer, _, _ = make_user("on_call", username="tor")
    with app.app_context():
        incident = make_incident("Natt till påskdagen", notice_at=utc(2027, 3, 28, 0, 30), party="on_call")
        timeline.record(db.session, incident, "routed", utc(2027, 3, 28, 0, 30), party="on_call", user_id=officer)
        timeline.record(
            db.session, incident, "acknowledged", utc(2027, 3, 28, 1, 30), actor_id=officer, party="on_call"
        )
        timeline.record(
            db.session,
            incident,
            "handover",
            utc(2027, 3, 29, 5, 45),
            party="team",
            handover_id=1,
            from_party="on_call",
            to_party="team",
        )
        db.session.commit()
    html = staff_client(app, make_user).get(f"/incidents/{incident}").get_data(as_text=True)
    steps = re.findall(
        r'<p class="timeline-when"><time datetime="([^"]+)">([^<]+)</time></p>\s*<p class="timeline-what">([^<]+)</p>',
        html,
    )
    assert [(when, what) for _, when, what in steps] == [
        ("2027-03-28 01:30:00", "Avisering mottagen: Formulär"),
        ("2027-03-28 01:30:00", "Tilldelad: Tjänsteman i beredskap, Test tor"),
        ("2027-03-28 03:30:00", "Kvitterad av den som hanterar störningen"),
        ("2027-03-29 07:45:00", "Överlämnad: Tjänsteman i beredskap → Välfärdsteknikteamet"),
    ]
    assert steps[2][0].startswith("2027-03-28T01:30:00")  # machine-readable in UTC
    assert "Test tor, Tjänsteman i beredskap" in html  # who took the step, and for which party


def test_each_letter_step_shows_the_delivery_state_per_recipient(app, make_user):
    with app.app_context():
        _, (karin, omar) = make_provider(
            "Hemtjänst Norr",
            [("Karin Exempel", "karin@example.se", "+46701740605"), ("Omar Demo", "omar@example.se", None)],
        )
        incident = make_incident("GSM nere", notice_at=utc(2026, 11, 23, 8), status="open")
        letter = add_letter(incident, utc(2026, 11, 23, 8, 20), subject="Kameratillsynen ligger nere")
        queue_letter_message(letter, karin, "email", utc(2026, 11, 23, 8, 20), status="sent")
        queue_letter_message(
            letter, karin, "sms", utc(2026, 11, 23, 8, 20), status="delivered", delivered_at=utc(2026, 11, 23, 8, 21)
        )
        queue_letter_message(letter, omar, "email", utc(2026, 11, 23, 8, 20), status="failed")
        db.session.commit()
    html = staff_client(app, make_user).get(f"/incidents/{incident}").get_data(as_text=True)
    step = html.split('class="timeline-step timeline-letter_sent"')[1].split("</details>")[0]
    assert "Brev skickat: nr 1, Informationsbrev" in step
    assert "Kameratillsynen ligger nere" in step
    karin_part, omar_part = step.split("Karin Exempel")[1].split("Omar Demo")
    assert 'SMS: <strong class="tag tag-delivered">Levererat</strong>' in karin_part
    assert ">2026-11-23 09:21<" in karin_part  # delivered, local time
    assert 'E-post: <strong class="tag tag-sent">Skickat</strong>' in karin_part
    assert 'E-post: <strong class="tag tag-failed">Misslyckades</strong>' in omar_part
    assert "Hemtjänst Norr" in step


def test_the_original_is_linked_only_when_the_notices_part_serves_it(app, make_user):
    with app.app_context():
        incident = make_incident(
            "Med original", notice_at=utc(2026, 11, 23, 8), original="From: a@b.example\r\n\r\nText"
        )
        db.session.commit()
    html = staff_client(app, make_user).get(f"/incidents/{incident}").get_data(as_text=True)
    assert ("Visa originalet" in html) is ("notices.original" in app.view_functions)
    assert "Med original" in html


def test_an_unknown_incident_is_not_found(app, make_user):
    client = staff_client(app, make_user)
    for url in ("/incidents/999", "/incidents/999/export.json", "/incidents/999/print"):
        assert client.get(url).status_code == 404, url


def test_providers_alarm_operators_and_suppliers_are_refused(app, make_user):
    with app.app_context():
        provider, _ = make_provider("Hemtjänst Norr")
        incident = make_incident("GSM nere", notice_at=utc(2026, 11, 23, 8))
        create_user(
            db_session=db.session,
            username="kontakt",
            display_name="Kontakt",
            role="provider",
            now=utc(2026, 11, 23),
            password=DEFAULT_PASSWORD,
            provider_id=provider,
        )
        db.session.commit()
    urls = (
        "/incidents",
        f"/incidents/{incident}",
        f"/incidents/{incident}/export.json",
        f"/incidents/{incident}/print",
        "/incidents/report",
        "/incidents/report?format=csv",
    )
    clients = [app.test_client()]
    log_in(clients[0], "kontakt")
    for role in ("alarm_operator", "supplier"):
        _, username, password = make_user(role)
        client = app.test_client()
        log_in(client, username, password)
        clients.append(client)
    for client in clients:
        for url in urls:
            assert client.get(url).status_code in (403,), url
        assert 'href="/incidents"' not in client.get("/").get_data(as_text=True)


# --- the demo ----------------------------------------------------------------------------------


def test_demo_data_has_suppliers_a_roster_and_one_open_incident_and_loads_once(app):
    from accounts.models import User
    from core.demo import load_demo_data
    from crisis.incidents.models import IncidentEvent
    from crisis.oncall.models import RosterMember

    def snapshot():
        return (
            sorted((s.name, s.email) for s in db.session.scalars(select(Supplier))),
            [(m.user_id, m.position) for m in db.session.scalars(select(RosterMember))],
            [(i.title, i.status, i.service, i.planned, i.all_providers) for i in db.session.scalars(select(Incident))],
            len(db.session.scalars(select(Notice)).all()),
            sorted(e.kind for e in db.session.scalars(select(IncidentEvent))),
        )

    with app.app_context():
        load_demo_data()
        first = snapshot()
        load_demo_data()
        assert snapshot() == first
        suppliers, roster, incidents, notices, kinds = first
        assert ("Telia", "driftinfo@telia.example.se") in suppliers and "Careium" in [name for name, _ in suppliers]
        officer = db.session.scalar(select(User).where(User.username == "tib"))
        assert roster == [(officer.id, 0)]
        assert officer.email and officer.mobile and officer.mobile.startswith("+4670174")
        ((title, status, service, planned, everyone),) = incidents
        assert "GSM" in title and status in ("new", "open") and service == "camera_supervision"
        assert planned is False and everyone is True
        assert notices == 1 and "notice_received" in kinds and "routed" in kinds


def test_flask_demo_load_twice_leaves_one_demo_incident(app, runner):
    for _ in range(2):
        result = runner.invoke(args=["demo", "load"])
        assert result.exit_code == 0, result.output
    with app.app_context():
        assert len(db.session.scalars(select(Incident)).all()) == 1
        assert len(db.session.scalars(select(Supplier)).all()) == 2


def test_the_demo_incident_page_opens_for_the_demo_officer(app):
    from core.demo import load_demo_data

    with app.app_context():
        load_demo_data()
        incident = db.session.scalar(select(Incident.id))
    client = app.test_client()
    log_in(client, "tib", "demo-tib-lösenord")
    html = client.get(f"/incidents/{incident}").get_data(as_text=True)
    assert "GSM" in html and "Hemtjänst Exempelstad Norr (demo)" in html and "Telia" in html


def test_an_alert_step_shows_whether_the_officer_got_the_sms(app, make_user):
    from crisis.oncall.models import Alert

    officer, _, _ = make_user("on_call", username="tor")
    with app.app_context():
        incident = make_incident("GSM nere", notice_at=utc(2026, 11, 21, 1, 10), party="on_call")
        alert = Alert(
            incident_id=incident,
            reason="routed",
            step=0,
            party="on_call",
            user_id=officer,
            sent_at=utc(2026, 11, 21, 1, 10),
        )
        db.session.add(alert)
        db.session.flush()
        timeline.record(
            db.session,
            incident,
            "alerted",
            utc(2026, 11, 21, 1, 10),
            party="on_call",
            alert_id=alert.id,
            reason="routed",
            step=0,
            user_id=officer,
        )
        message = Message(
            idempotency_key=f"alert:{alert.id}:sms",
            kind="crisis.alert",
            channel="sms",
            priority=0,
            to_address="+46701740609",
            body_text="Ny störning",
            ref_type="alert",
            ref_id=str(alert.id),
            status="delivered",
            attempts=1,
            next_attempt_at=utc(2026, 11, 21, 1, 10),
            created_at=utc(2026, 11, 21, 1, 10),
            updated_at=utc(2026, 11, 21, 1, 11),
            sent_at=utc(2026, 11, 21, 1, 10),
            delivered_at=utc(2026, 11, 21, 1, 11),
        )
        db.session.add(message)
        db.session.commit()
    html = staff_client(app, make_user).get(f"/incidents/{incident}").get_data(as_text=True)
    step = html.split('class="timeline-step timeline-alerted"')[1].split("</details>")[0]
    assert "Larmad: Tjänsteman i beredskap, Test tor" in step
    assert "070-174 06 09" in step and 'SMS: <strong class="tag tag-delivered">Levererat</strong>' in step
    assert ">2026-11-21 02:11<" in step


def test_the_demo_clients_become_visits_of_the_demo_outage_at_the_first_tick(app, clock):
    """`make run` shows the visits side too: the demo's camera-supervised clients (three of each
    of two providers, hourly at half past) get visits inside the demo outage's window, loaded once."""
    from core.demo import load_demo_data
    from crisis.visits.demo import DEMO_CLIENTS_PER_PROVIDER
    from crisis.visits.models import SupervisedClient, Visit
    from scheduling.service import tick

    with app.app_context():
        load_demo_data()
        load_demo_data()
        assert len(db.session.scalars(select(SupervisedClient)).all()) == 2 * DEMO_CLIENTS_PER_PROVIDER
        tick(db_session=db.session, now=clock.now())
        visits = db.session.scalars(select(Visit)).all()
        incident = db.session.scalar(select(Incident))
        # Every client is supervised hourly at half past; the window runs from 15 minutes before
        # the load to 3 hours after it: three or four half-pasts, whatever the minute.
        half_pasts, moment = 0, incident.starts_at.replace(minute=30, second=0, microsecond=0)
        while moment < incident.expected_end_at:
            half_pasts += moment >= incident.starts_at
            moment += timedelta(hours=1)
        assert half_pasts in (3, 4)
        assert len(visits) == 2 * DEMO_CLIENTS_PER_PROVIDER * half_pasts
        assert all(incident.starts_at <= v.due_at < incident.expected_end_at for v in visits)
