"""Ids and numbers from outside (core.numbers): only ASCII digits within the columns' range are
read. A path with anything else is 404; a form or query value is refused (400/422) with the field
named, and nothing is stored. Runs on SQLite and PostgreSQL, whose 32-bit INTEGER columns refuse
a 20-digit id."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select
from werkzeug.routing.converters import NumberConverter

from accounts.models import ApiToken
from contacts.models import Provider
from core.extensions import db
from core.numbers import MAX_ID, IdConverter, month_start, page_number, record_id, whole_number
from crisis.incidents.models import Incident, Supplier
from crisis.oncall.models import RosterMember, RosterOverride
from tests.conftest import csrf_token_from, log_in

TWENTY_DIGITS = "99999999999999999999"
A_NOTICE = {"title": "GSM-störning", "body": "Telia ringde.", "service": "camera_supervision"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        (" 7 ", 7),
        ("007", 7),
        (str(MAX_ID), MAX_ID),
        (str(MAX_ID + 1), None),
        ("0", None),
        ("-1", None),
        ("²", None),  # "²".isdigit() is True, int("²") raises
        ("٣", None),  # int("٣") is 3
        ("1\x00", None),
        (TWENTY_DIGITS, None),
        ("9" * 10_240, None),  # int() refuses more than 4,300 digits
        ("", None),
        (None, None),
    ],
)
def test_an_id_is_ascii_digits_from_1_to_the_integer_columns_maximum(text, expected):
    assert record_id(text) == expected


def test_a_negative_number_is_read_only_where_the_range_allows_one():
    assert whole_number("-3", low=-10, high=10) == -3
    assert whole_number("-3", low=0, high=10) is None
    assert whole_number("11", low=-10, high=10) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11", date(2026, 11, 1)),
        ("1900-01", date(1900, 1, 1)),
        ("2200-12", date(2200, 12, 1)),
        ("1899-12", None),
        ("9999-12", None),  # the report's "next month" link would not fit in a date
        ("2026-13", None),
        ("2026-1", None),
        ("٢٠٢٦-11", None),
        ("2026-11-01", None),
        ("", None),
    ],
)
def test_a_month_is_yyyy_mm_within_the_calendars_years(text, expected):
    assert month_start(text) == expected


def test_a_page_number_outside_the_list_is_its_first_or_last_page():
    assert page_number("3", last=10) == 3
    assert page_number(TWENTY_DIGITS, last=10) == 10
    assert page_number("²", last=10) == page_number("0", last=10) == page_number(None, last=10) == 1


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("1", True),
        ("999999999", True),
        ("1999999999", True),
        ("2147483639", True),
        (str(MAX_ID), True),
        (str(MAX_ID + 1), False),
        ("2147483650", False),
        ("2200000000", False),
        ("9999999999", False),
        ("0", False),
        ("007", False),
        ("٣", False),
    ],
)
def test_the_path_pattern_of_an_id_is_1_to_the_maximum_itself(text, matches):
    assert bool(re.fullmatch(IdConverter.regex, text)) is matches


def test_every_int_argument_of_every_route_is_read_by_the_id_converter(app):
    numbers = [
        c for rule in app.url_map.iter_rules() for c in rule._converters.values() if isinstance(c, NumberConverter)
    ]
    assert len(numbers) >= 30
    assert all(type(c) is IdConverter for c in numbers)


# --- through the application ---------------------------------------------------------------------


@pytest.fixture
def data(app, clock):
    """A supplier, an active provider and an open incident; returns their ids."""
    with app.app_context():
        supplier = Supplier(name="Telia", email="drift@telia.se", is_active=True, created_at=clock.now())
        provider = Provider(name="Hemtjänst Nord", kind="municipal", is_active=True, created_at=clock.now())
        db.session.add_all([supplier, provider])
        db.session.flush()
        incident = Incident(
            title="GSM-störning",
            service="camera_supervision",
            status="open",
            party="team",
            party_since=clock.now(),
            planned=False,
            all_providers=True,
            created_at=clock.now(),
        )
        db.session.add(incident)
        db.session.commit()
        return {"supplier": supplier.id, "provider": provider.id, "incident": incident.id}


@pytest.fixture
def team(app, client, make_user):
    _, username, password = make_user("admin")
    log_in(client, username, password)
    return client


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _post(client, url, form_url, fields):
    token = csrf_token_from(client.get(form_url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **fields})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/register/providers/%C2%B2"),
        ("GET", "/register/contacts/%C2%B2/extract"),
        ("GET", "/register/contacts/%D9%A3/extract.json"),
        ("GET", f"/incidents/{TWENTY_DIGITS}"),
        ("GET", f"/incidents/{TWENTY_DIGITS}/print"),
        ("GET", f"/handovers/{TWENTY_DIGITS}"),
        ("POST", f"/incidents/calls/{TWENTY_DIGITS}"),
        ("POST", f"/links/letter-receipts/{TWENTY_DIGITS}/renew"),
        ("POST", f"/roster/members/{TWENTY_DIGITS}/active"),
        ("GET", f"/suppliers/{TWENTY_DIGITS}/edit"),
        ("POST", f"/incidents/{TWENTY_DIGITS}/acknowledge"),
        ("GET", f"/incidents/{MAX_ID + 1}"),
        ("GET", "/incidents/-1"),
        ("GET", "/incidents/007"),
        # Rules of the same path for other methods: still 404, not 405.
        ("PATCH", "/api/v1/contacts/0"),
        ("POST", f"/incidents/{MAX_ID + 1}"),
        ("GET", f"/api/v1/providers/{TWENTY_DIGITS}"),
    ],
)
def test_an_id_in_a_path_that_is_not_one_is_404(team, method, path):
    token = csrf_token_from(team.get("/roster").get_data(as_text=True))
    response = team.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
    assert response.status_code == 404, (path, response.status_code)


def test_a_provider_id_that_is_not_an_id_is_refused_at_its_field_and_no_incident_is_made(app, team, data):
    fields = {**A_NOTICE, "providers": "chosen", "provider_ids": [str(data["provider"]), "²"]}
    response = _post(team, "/incidents/new", "/incidents/new", fields)
    assert response.status_code == 400
    assert "lista med utförarnas id" in response.get_data(as_text=True)
    assert _count(app, Incident) == 1  # only the fixture's


@pytest.mark.parametrize("value", ["²", "٣", TWENTY_DIGITS, "-1"])
def test_a_user_id_that_is_not_an_id_makes_no_token(app, team, value):
    response = _post(team, "/admin/tokens", "/admin/tokens", {"user_id": value, "name": "prometheus"})
    assert response.status_code == 400
    assert "Välj en aktiv användare." in response.get_data(as_text=True)
    assert _count(app, ApiToken) == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "swap", "override_user_id": "²", "week": "47"},
        {"kind": "swap", "override_user_id": "{user}", "week": "999999"},
        {"kind": "swap", "override_user_id": "{user}", "week": "٤٧"},
        {"kind": "swap", "override_user_id": "{user}", "week": "-999999"},
    ],
)
def test_an_odd_person_or_week_in_a_roster_swap_is_refused_at_its_field(app, team, make_user, fields):
    user_id, _, _ = make_user("on_call")
    fields = {k: v.replace("{user}", str(user_id)) for k, v in fields.items()}
    response = _post(team, "/roster/overrides", "/roster", fields)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Välj vem som har beredskap." in html or "Välj vilken vecka som byts." in html
    assert _count(app, RosterOverride) == 0


def test_an_odd_person_is_not_added_to_the_roster(app, team):
    response = _post(team, "/roster/members", "/roster", {"user_id": "²"})
    assert response.status_code == 400
    assert _count(app, RosterMember) == 0


@pytest.mark.parametrize("value", ["²", "٣", TWENTY_DIGITS, "-1", "0"])
def test_an_odd_incident_in_the_visit_report_is_400_naming_the_field(team, value):
    response = team.get("/visits/report", query_string={"incident": value})
    assert response.status_code == 400
    assert "Störning (incident): ange ett id" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/incidents/report", "/visits/report", "/incidents"])
@pytest.mark.parametrize("month", ["9999-12", "1899-12", "٢٠٢٦-11"])
def test_a_month_outside_the_calendar_is_refused_with_a_message(team, url, month):
    response = team.get(url, query_string={"month": month})
    assert response.status_code == 400
    assert "Ange månaden som ÅÅÅÅ-MM" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/register/", "/audit"])
def test_a_page_number_beyond_the_list_shows_its_last_page(team, url):
    assert team.get(url, query_string={"page": TWENTY_DIGITS}).status_code == 200


def test_a_date_outside_the_calendar_in_the_audit_filter_is_refused(team):
    response = team.get("/audit", query_string={"to": "9999-12-31"})
    assert response.status_code == 400
    assert "Ange datumet som ÅÅÅÅ-MM-DD." in response.get_data(as_text=True)


def test_a_supplier_id_written_with_other_digits_is_refused_in_a_notice(app, team, data):
    fields = {**A_NOTICE, "providers": "all", "supplier_id": "²"}
    response = _post(team, "/incidents/new", "/incidents/new", fields)
    assert response.status_code == 400
    assert "Ange leverantörens id som ett heltal" in response.get_data(as_text=True)
    assert _count(app, Incident) == 1


@pytest.mark.parametrize("number", ["55667788²0", "٥٥٦٦٧٧٨٨٩٩"])
def test_an_organisation_number_with_other_digits_is_refused(app, team, number):
    response = _post(
        team,
        "/register/providers/new",
        "/register/providers/new",
        {"name": "Ny", "kind": "private", "organisation_number": number},
    )
    assert response.status_code in (400, 422)
    assert "Organisationsnumret ska ha tio siffror" in response.get_data(as_text=True)
    assert _count(app, Provider) == 0
