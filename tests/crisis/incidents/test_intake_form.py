"""The notice form for the team and the on-call officer, the handling party's corrections, and
the suppliers' pages with API access. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from contacts.models import Provider
from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent, IncidentProvider, Notice, Supplier
from tests.conftest import csrf_token_from, log_in

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def data(app, clock):
    """Telia, and two active providers and an inactive one; returns their ids."""
    with app.app_context():
        telia = Supplier(name="Telia", email="drift@telia.se", is_active=True, created_at=clock.now())
        providers = [
            Provider(name=name, kind="municipal", is_active=active, created_at=clock.now())
            for name, active in (("Hemtjänst Nord", True), ("Hemtjänst Syd", True), ("Nedlagd", False))
        ]
        db.session.add_all([telia, *providers])
        db.session.commit()
        return {"telia": telia.id, "providers": [p.id for p in providers]}


@pytest.fixture
def staff(client, make_user):
    def as_role(role="team"):
        _, username, password = make_user(role)
        log_in(client, username, password)
        return client

    return as_role


def _post_form(client, url, fields):
    token = csrf_token_from(client.get(url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **fields})


GOOD = {
    "title": "GSM-störning, trygghetskameror",
    "body": "Telia ringde 02:10.",
    "service": "camera_supervision",
    "starts_at": "2026-11-23T09:30",
    "expected_end": "2026-11-23T14:00",
    "providers": "all",
}


def test_the_on_call_officer_registers_a_notice_and_lands_on_the_incident(app, staff, data):
    client = staff("on_call")
    page = client.get("/incidents/new")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Nytt driftmeddelande" in html and 'for="title"' in html and "Hemtjänst Nord" in html
    assert "Nedlagd" not in html  # inactive providers cannot be chosen
    response = _post_form(client, "/incidents/new", {**GOOD, "supplier_id": str(data["telia"])})
    assert response.status_code == 302
    with app.app_context():
        incident = db.session.scalars(select(Incident)).one()
        assert response.headers["Location"].endswith(f"/incidents/{incident.id}")
        assert incident.supplier_id == data["telia"] and incident.party == "team"
        # Local (Stockholm) form times, stored in UTC.
        assert incident.starts_at == datetime(2026, 11, 23, 9, 30, tzinfo=STOCKHOLM)
        assert incident.expected_end_at == datetime(2026, 11, 23, 14, 0, tzinfo=STOCKHOLM)
        notice = db.session.scalars(select(Notice)).one()
        assert notice.source == "form" and notice.received_by_id is not None


def test_a_chosen_subset_of_providers_is_kept(app, staff, data):
    chosen = data["providers"][1]
    response = _post_form(staff("team"), "/incidents/new", {**GOOD, "providers": "chosen", "provider_ids": str(chosen)})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Incident.all_providers)).one() is False
        assert db.session.scalars(select(IncidentProvider.provider_id)).all() == [chosen]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"title": ""}, "title", "Skriv en rubrik"),
        ({"service": ""}, "service", "Välj en tjänst"),
        ({"supplier_id": "999999"}, "supplier", "ingen aktiv leverantör"),
        ({"starts_at": "igår"}, "starts_at", "Ange datum och tid"),
        ({"expected_end": "2026-11-23T08:00"}, "expected_end", "efter starten"),
        ({"planned": "on", "starts_at": ""}, "starts_at", "planerade arbetet börjar"),
        ({"providers": "chosen"}, "providers", "Välj minst en utförare"),
    ],
)
def test_a_refused_form_is_shown_again_with_400_and_nothing_saved(app, staff, data, fields, field, message):
    response = _post_form(staff("team"), "/incidents/new", {**GOOD, **fields})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Det finns ett problem" in html and message in html
    anchor = {"supplier": "supplier_id", "providers": "providers-all"}.get(field, field)
    assert f'href="#{anchor}"' in html  # the summary links to the field
    assert 'value="Telia ringde 02:10."' not in html and "Telia ringde 02:10." in html  # the text is kept
    assert count(app, Incident) == 0 and count(app, Notice) == 0 and count(app, IncidentEvent) == 0


def test_the_form_is_for_staff_only(app, client, make_user, make_token):
    for role in ("alarm_operator", "supplier"):
        _, username, password = make_user(role, password="a-long-test-password")
        log_in(client, username, password)
        assert client.get("/incidents/new").status_code == 403
        client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/").get_data(as_text=True))})


def _incident(app, client):
    response = _post_form(client, "/incidents/new", GOOD)
    assert response.status_code == 302
    with app.app_context():
        return db.session.scalars(select(Incident.id)).one()


def _steps(app, incident_id, kind):
    with app.app_context():
        return [
            e.detail
            for e in db.session.scalars(
                select(IncidentEvent).where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == kind)
            )
        ]


def test_the_handling_party_corrects_the_incident_and_each_change_is_on_the_timeline(app, staff, data):
    client = staff("team")
    incident_id = _incident(app, client)
    url = f"/incidents/{incident_id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert 'value="2026-11-23T14:00"' in page  # Stockholm time on the page
    chosen = data["providers"][0]
    fields = {
        "service": "alarms",
        "supplier_id": str(data["telia"]),
        "starts_at": "2026-11-23T09:30",
        "expected_end": "2026-11-23T18:00",
        "providers": "chosen",
        "provider_ids": str(chosen),
    }
    response = _post_form(client, url, fields)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/incidents/{incident_id}")
    with app.app_context():
        incident = db.session.get(Incident, incident_id)
        assert (incident.service, incident.supplier_id, incident.all_providers) == ("alarms", data["telia"], False)
        assert incident.expected_end_at == datetime(2026, 11, 23, 18, 0, tzinfo=STOCKHOLM)
    assert _steps(app, incident_id, "expected_end_changed") == [
        {"old": "2026-11-23T13:00:00+00:00", "new": "2026-11-23T17:00:00+00:00"}
    ]
    notes = _steps(app, incident_id, "note")
    assert len(notes) == 1 and notes[0]["fields"] == ["service", "supplier", "providers"]
    # The same values again change nothing and add no step.
    assert _post_form(client, url, fields).status_code == 302
    assert len(_steps(app, incident_id, "note")) == 1 and len(_steps(app, incident_id, "expected_end_changed")) == 1


def test_a_refused_correction_changes_nothing(app, staff, data):
    client = staff("on_call")
    incident_id = _incident(app, client)
    fields = {"service": "alarms", "starts_at": "2026-11-23T09:30", "expected_end": "2026-11-23T08:00"}
    response = _post_form(client, f"/incidents/{incident_id}/edit", {**fields, "providers": "all"})
    assert response.status_code == 400 and "efter starten" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Incident, incident_id).service == "camera_supervision"
    assert _steps(app, incident_id, "note") == [] and _steps(app, incident_id, "expected_end_changed") == []


def test_marking_it_planned_work_late_flags_it(app, staff, data):
    client = staff("team")
    incident_id = _incident(app, client)
    fields = {"service": "camera_supervision", "planned": "on", "starts_at": "2026-11-24T10:30", "providers": "all"}
    assert _post_form(client, f"/incidents/{incident_id}/edit", fields).status_code == 302
    with app.app_context():
        assert "mindre än 7 dagar" in db.session.get(Incident, incident_id).flag_reason
    assert len(_steps(app, incident_id, "flagged")) == 1


def test_the_original_of_a_form_notice_and_a_missing_one(app, staff, data):
    client = staff("team")
    incident_id = _incident(app, client)
    with app.app_context():
        notice_id = db.session.scalars(select(Notice.id)).one()
    original = client.get(f"/incidents/{incident_id}/notices/{notice_id}/original")
    assert original.status_code == 200 and original.get_json()["title"] == GOOD["title"]
    assert "csrf_token" not in original.get_json()
    assert client.get(f"/incidents/{incident_id + 1}/notices/{notice_id}/original").status_code == 404


# --- suppliers -----------------------------------------------------------------------------------


def test_the_team_adds_and_changes_suppliers(app, staff):
    client = staff("team")
    assert _post_form(client, "/suppliers/new", {"name": "Careium", "email": "NOC@careium.com"}).status_code == 302
    refused = _post_form(client, "/suppliers/new", {"name": "careium", "email": "not-an-address"})
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Det finns redan en leverantör med detta namn" in html and "Skriv en e-postadress" in html
    with app.app_context():
        supplier = db.session.scalars(select(Supplier)).one()
        assert supplier.email == "noc@careium.com"
    listing = client.get("/suppliers").get_data(as_text=True)
    assert "Careium" in listing and "noc@careium.com" in listing
    fields = {"name": "Careium AB", "email": "", "is_active": "on"}
    edited = _post_form(client, f"/suppliers/{supplier.id}/edit", fields)
    assert edited.status_code == 302
    with app.app_context():
        assert (db.session.get(Supplier, supplier.id).name, db.session.get(Supplier, supplier.id).email) == (
            "Careium AB",
            None,
        )


def test_api_access_gives_a_token_that_sends_notices_for_that_supplier(app, client, staff, data):
    staff("team")
    page = client.get("/suppliers").get_data(as_text=True)
    response = client.post(f"/suppliers/{data['telia']}/api-access", data={"csrf_token": csrf_token_from(page)})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    import re

    secret = re.search(r'<code id="api-token">([^<]+)</code>', response.get_data(as_text=True)).group(1)
    with app.app_context():
        supplier = db.session.get(Supplier, data["telia"])
        assert supplier.user_id is not None
    answer = client.post(
        "/api/v1/notices",
        json={"title": "Router byts", "service": "camera_supervision"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert answer.status_code == 201 and answer.get_json()["supplier"] == "Telia"
    # A second key for the same supplier user.
    again = client.post(f"/suppliers/{data['telia']}/api-access", data={"csrf_token": csrf_token_from(page)})
    assert again.status_code == 200
    with app.app_context():
        assert db.session.get(Supplier, data["telia"]).user_id == supplier.user_id


def test_suppliers_are_the_teams(client, staff):
    staff("on_call")
    assert client.get("/suppliers").status_code == 403


# --- local times the clocks skip or pass twice (core.local_time, the API's rule) ------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("starts_at", "2027-03-28T02:30", "Klockan 02:00–03:00 finns inte den 28 mars 2027: klockan ställs fram"),
        ("expected_end", "2027-03-28T02:30", "klockan ställs fram"),
        ("starts_at", "9999-12-31T10:00", "Ange ett år mellan 1900 och 2200"),
        ("starts_at", "2027-10-31T02:30", "Klockan 02:00–03:00 kommer två gånger den 31 oktober 2027"),
    ],
)
def test_a_form_time_that_does_not_exist_once_is_refused_with_its_reason_and_nothing_saved(
    app, staff, data, field, value, words
):
    fields = {**GOOD, "starts_at": "2027-03-27T22:00", "expected_end": "", field: value}
    response = _post_form(staff("team"), "/incidents/new", fields)
    assert response.status_code == 400
    assert words in response.get_data(as_text=True)
    assert count(app, Incident) == 0 and count(app, Notice) == 0


def test_the_repeated_autumn_hour_asks_which_and_takes_the_chosen_reading(app, staff, data):
    client = staff("on_call")
    fields = {**GOOD, "starts_at": "2027-10-31T02:30", "expected_end": ""}
    asked = _post_form(client, "/incidents/new", fields)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 400 and "Vilken gång menar du?" in html
    assert 'name="starts_at_offset" value="+02:00"' in html and 'name="starts_at_offset" value="+01:00"' in html
    chosen = _post_form(client, "/incidents/new", {**fields, "starts_at_offset": "+01:00"})
    assert chosen.status_code == 302
    with app.app_context():
        # the second 02:30, in winter time: 01:30 UTC
        assert db.session.scalars(select(Incident.starts_at)).one() == datetime(
            2027, 10, 31, 1, 30, tzinfo=timezone.utc
        )
