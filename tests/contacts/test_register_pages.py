"""The team's register pages: who may do what, forms with field errors, search, history, CSV."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from contacts import register
from contacts.models import ContactPerson, Provider, RegisterChange
from contacts.register import Actor
from core.extensions import db
from tests.conftest import csrf_token_from, log_in

HEADER = "Utförare;Organisationsnummer;Utförartyp;Namn;Roll;Mobil;E-post;Tjänster;Aktiv"


@pytest.fixture
def team_client(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    return client


def _token(client, url="/register/") -> str:
    return csrf_token_from(client.get(url).get_data(as_text=True))


def _seed(app, clock, providers=(("Hemtjänst Västerås", "kommunal"),), contacts=()):
    with app.app_context():
        ids = {}
        for name, kind in providers:
            ids[name] = register.create_provider(
                db.session, {"name": name, "kind": kind}, actor=Actor("team"), now=clock.now()
            ).record.id
        for provider_name, data in contacts:
            provider = db.session.get(Provider, ids[provider_name])
            register.create_contact(db.session, provider, data, actor=Actor("team"), now=clock.now())
        db.session.commit()
        return ids


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_anonymous_visitors_are_sent_to_log_in_and_provider_accounts_are_refused(app, client, clock):
    from accounts.service import create_user
    from tests.conftest import DEFAULT_PASSWORD

    assert client.get("/register/").status_code == 302
    assert client.get("/register/export.csv").status_code == 302
    ids = _seed(app, clock)
    with app.app_context():
        create_user(
            db_session=db.session,
            username="kontakt1",
            display_name="Kontakt",
            role="provider",
            now=clock.now(),
            password=DEFAULT_PASSWORD,
            provider_id=ids["Hemtjänst Västerås"],
        )
        db.session.commit()
    log_in(client, "kontakt1")
    assert client.get("/register/").status_code == 403
    assert client.get("/register/export.csv").status_code == 403
    token = _token(client, "/login")
    response = client.post("/register/import", data={"csrf_token": token})
    assert response.status_code == 403
    assert client.get(f"/register/providers/{ids['Hemtjänst Västerås']}/history").status_code == 403


def test_the_on_call_officer_may_read_but_not_change_the_register(app, client, make_user, clock):
    ids = _seed(app, clock, contacts=[("Hemtjänst Västerås", {"name": "Åsa Öberg", "email": "asa@example.se"})])
    _, username, password = make_user("on_call")
    log_in(client, username, password)
    page = client.get("/register/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Åsa Öberg" in html and "Ny utförare" not in html
    assert "Kontaktregister" in html  # the menu link
    provider_page = client.get(f"/register/providers/{ids['Hemtjänst Västerås']}").get_data(as_text=True)
    assert "Inaktivera" not in provider_page and "Ändra" not in provider_page
    token = csrf_token_from(html)
    assert client.get("/register/providers/new").status_code == 403
    refused = client.post("/register/providers/new", data={"name": "X", "kind": "privat", "csrf_token": token})
    assert refused.status_code == 403
    assert client.get("/register/import").status_code == 403
    assert client.get("/register/export.csv").status_code == 200
    assert _count(app, Provider) == 1


def test_a_provider_form_with_errors_shows_them_beside_the_fields_and_stores_nothing(app, team_client):
    token = _token(team_client, "/register/providers/new")
    response = team_client.post(
        "/register/providers/new",
        data={"name": " ", "organisation_number": "212000-0143", "kind": "", "csrf_token": token},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html
    assert 'aria-describedby="organisation_number-hint organisation_number-error"' in html
    assert re.search(r'id="organisation_number-error">.*kontrollsiffran', html)
    assert re.search(r'id="name-error">.*Ange utförarens namn', html)
    assert 'href="#kind"' in html
    assert _count(app, Provider) == 0


def test_the_team_creates_edits_and_deactivates_and_the_history_says_who_and_when(app, team_client, clock):
    token = _token(team_client, "/register/providers/new")
    created = team_client.post(
        "/register/providers/new",
        data={"name": "Hemtjänst Norr", "organisation_number": "2120000142", "kind": "municipal", "csrf_token": token},
    )
    assert created.status_code == 302
    provider_url = created.headers["Location"]
    provider_id = int(provider_url.rstrip("/").rsplit("/", 1)[1])
    flagged = team_client.get(provider_url).get_data(as_text=True)
    assert "Ingen aktiv kontaktperson" in flagged

    bad = team_client.post(
        f"/register/providers/{provider_id}/contacts/new",
        data={"name": "Anna Lind", "mobile": "08-123 456 78", "email": "", "csrf_token": token},
    )
    assert bad.status_code == 400
    assert re.search(r'id="mobile-error">.*[Mm]obilnummer', bad.get_data(as_text=True))
    assert _count(app, ContactPerson) == 0

    added = team_client.post(
        f"/register/providers/{provider_id}/contacts/new",
        data={
            "name": "Anna Lind",
            "mobile": "070-174 06 05",
            "email": "anna@example.se",
            "services": ["camera_supervision", "alarms"],
            "csrf_token": token,
        },
    )
    assert added.status_code == 302
    with app.app_context():
        contact_id = db.session.scalar(select(ContactPerson.id))
    assert "Ingen aktiv kontaktperson" not in team_client.get(provider_url).get_data(as_text=True)

    clock.advance(hours=2)  # 11:00 UTC is 12:00 in Stockholm in November
    edited = team_client.post(
        f"/register/contacts/{contact_id}/edit",
        data={"name": "Anna Lind", "mobile": "070-174 06 06", "email": "anna@example.se", "csrf_token": token},
    )
    assert edited.status_code == 302
    assert (
        team_client.post(f"/register/contacts/{contact_id}/deactivate", data={"csrf_token": token}).status_code == 302
    )

    history = team_client.get(f"/register/contacts/{contact_id}/history").get_data(as_text=True)
    assert "2026-11-23 12:00" in history and "2026-11-23 10:00" in history
    assert "070-174 06 05" in history and "070-174 06 06" in history
    assert "Test team" in history  # the user's display name
    assert "Registersidan" in history and "Inaktiverad" in history
    assert "Kameratillsyn, Trygghetslarm" in history  # services removed by the edit, by name
    provider_history = team_client.get(f"/register/providers/{provider_id}/history").get_data(as_text=True)
    assert "212000-0142" in provider_history and "Anna Lind" in provider_history
    assert "Ingen aktiv kontaktperson" in team_client.get(provider_url).get_data(as_text=True)

    reactivated = team_client.post(f"/register/contacts/{contact_id}/reactivate", data={"csrf_token": token})
    assert reactivated.status_code == 302
    with app.app_context():
        assert db.session.get(ContactPerson, contact_id).is_active is True


def test_a_duplicate_provider_name_is_refused_beside_the_name(app, team_client, clock):
    _seed(app, clock)
    token = _token(team_client, "/register/providers/new")
    response = team_client.post(
        "/register/providers/new", data={"name": "HEMTJÄNST VÄSTERÅS", "kind": "privat", "csrf_token": token}
    )
    assert response.status_code == 400
    assert re.search(r'id="name-error">.*finns redan', response.get_data(as_text=True))
    assert _count(app, Provider) == 1


def test_search_ignores_case_and_swedish_letters_and_finds_phone_numbers_and_addresses(app, team_client, clock):
    _seed(
        app,
        clock,
        providers=(("Hemtjänst Västerås", "kommunal"), ("Omsorg Öst AB", "privat")),
        contacts=[
            ("Hemtjänst Västerås", {"name": "Åsa Öberg", "mobile": "070-174 06 05", "email": "asa@example.se"}),
            ("Hemtjänst Västerås", {"name": "Bo Ek", "email": "bo@vasteras.example.se"}),
            ("Omsorg Öst AB", {"name": "Eva Ström", "mobile": "070-174 06 07"}),
        ],
    )

    def names(query):
        html = team_client.get("/register/", query_string={"q": query}).get_data(as_text=True)
        return {name for name in ("Åsa Öberg", "Bo Ek", "Eva Ström") if name in html}

    assert names("ÅSA") == {"Åsa Öberg"}
    assert names("öberg") == {"Åsa Öberg"}
    assert names("070-174 06 07") == {"Eva Ström"}
    assert names("+46701740605") == {"Åsa Öberg"}
    assert names("vasteras.example") == {"Bo Ek"}
    assert names("västerÅs") == {"Åsa Öberg", "Bo Ek"}  # the provider's name: all its contacts
    assert names("ingen sådan") == set()


def test_filters_show_inactive_records_and_problems(app, team_client, clock):
    _seed(
        app,
        clock,
        providers=(("Aktiv AB", "privat"), ("Tom AB", "privat")),
        contacts=[
            ("Aktiv AB", {"name": "Utan Mobil", "email": "um@example.se"}),
            ("Aktiv AB", {"name": "Slutat", "email": "s@example.se", "is_active": "nej"}),
            ("Aktiv AB", {"name": "Komplett", "email": "k@example.se", "mobile": "070-174 06 05"}),
        ],
    )
    active = team_client.get("/register/").get_data(as_text=True)
    assert "Utan Mobil" in active and "Slutat" not in active
    assert "Mobilnummer saknas" in active
    inactive = team_client.get("/register/?status=inactive").get_data(as_text=True)
    assert "Slutat" in inactive and "Komplett" not in inactive and "Tom AB" not in inactive
    problems = team_client.get("/register/?problems=1").get_data(as_text=True)
    assert "Utan Mobil" in problems and "Komplett" not in problems
    assert "Tom AB" in problems  # no active contact at all
    assert "1 utförare saknar aktiv kontaktperson" in problems


def test_the_list_is_paged(app, team_client, clock):
    _seed(app, clock, providers=[(f"Utförare {number:02d}", "privat") for number in range(30)])
    first = team_client.get("/register/").get_data(as_text=True)
    assert "Utförare 00" in first and "Utförare 24" in first and "Utförare 25" not in first
    assert "Sida 1 av 2" in first
    second = team_client.get("/register/?page=2").get_data(as_text=True)
    assert "Utförare 25" in second and "Utförare 29" in second and "Utförare 00" not in second
    assert team_client.get("/register/?page=x").status_code == 200


def test_import_page_shows_a_summary_or_a_report_of_every_bad_row(app, team_client, clock):
    from io import BytesIO

    token = _token(team_client, "/register/import")
    rows = [
        "Hemtjänst Norr;;Kommunal;Anna Lind;Enhetschef;070-174 06 05;anna@example.se;Kameratillsyn;ja",
        "Hemtjänst Norr;;Kommunal;Bo Ek;;;bo.at.example.se;;ja",
        "Hemtjänst Syd;;Offentlig;Eva;;070-174 06 07;;;kanske",
    ]
    bad = ("\ufeff" + "\r\n".join([HEADER, *rows])).encode()
    response = team_client.post(
        "/register/import",
        data={"csrf_token": token, "file": (BytesIO(bad), "register.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    report = re.findall(r'<th scope="row" data-label="Rad">(\d+)</th><td data-label="Kolumn">([^<]+)</td>', html)
    assert report == [("3", "E-post"), ("4", "Utförartyp"), ("4", "Aktiv")]
    assert "Ingenting importerades" in html
    assert _count(app, ContactPerson) == 0 and _count(app, RegisterChange) == 0

    good = ("\r\n".join([HEADER, rows[0]])).encode()
    response = team_client.post(
        "/register/import",
        data={"csrf_token": token, "file": (BytesIO(good), "register.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    summary = response.get_data(as_text=True)
    assert re.search(r"Nya kontaktpersoner</dt><dd>1</dd>", summary)
    with app.app_context():
        change = db.session.scalar(select(RegisterChange).where(RegisterChange.entity == "contact").limit(1))
        assert change.source == "import" and change.changed_by_id is not None

    missing = team_client.post("/register/import", data={"csrf_token": token}, content_type="multipart/form-data")
    assert missing.status_code == 400 and "Välj en CSV-fil" in missing.get_data(as_text=True)


def test_export_downloads_a_csv_excel_opens_with_swedish_letters(app, team_client, clock):
    _seed(app, clock, contacts=[("Hemtjänst Västerås", {"name": "Åsa Öberg", "email": "asa@example.se"})])
    response = team_client.get("/register/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="kontaktregister-2026-11-23.csv"' in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf" + HEADER.encode())
    assert "Hemtjänst Västerås;;Kommunal;Åsa Öberg;;;asa@example.se;;ja" in response.data.decode()


def test_demo_data_goes_through_the_register_with_history_and_loads_once(app):
    from core.demo import load_demo_data

    with app.app_context():
        load_demo_data()
        counts = (
            db.session.scalar(select(func.count()).select_from(ContactPerson)),
            db.session.scalar(select(func.count()).select_from(RegisterChange)),
        )
        load_demo_data()
        assert counts[0] == 4
        assert (
            db.session.scalar(select(func.count()).select_from(ContactPerson)),
            db.session.scalar(select(func.count()).select_from(RegisterChange)),
        ) == counts
        assert set(db.session.scalars(select(RegisterChange.source))) == {"demo"}


def test_unknown_or_malformed_record_addresses_answer_not_found(app, team_client):
    for url in (
        "/register/providers/999",
        "/register/providers/abc",
        "/register/contacts/7/edit",
        "/register/contacts/-1/history",
    ):
        response = team_client.get(url)
        assert response.status_code == 404, url
        assert "Sidan finns inte" in response.get_data(as_text=True)
