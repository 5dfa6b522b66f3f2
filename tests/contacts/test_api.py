"""The register's JSON API: who may do what, every change through the register's rules, and
answers that match the served OpenAPI description. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from contacts import register
from contacts.models import ContactPerson, Provider, RegisterChange
from contacts.register import Actor
from core.extensions import db
from tests.conftest import csrf_token_from, log_in
from tests.support.openapi import DOCUMENT_URL, assert_documented

PROVIDERS = "/api/v1/providers"
CONTACTS = "/api/v1/contacts"
ANNA = {"name": "Anna Lind", "role_title": "Enhetschef", "mobile": "070-174 06 05", "email": "anna@example.se"}


class Api:
    """A client that sends one user's API token and checks answers against the description."""

    def __init__(self, client, token: str | None, document: dict):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.document = document

    def call(self, method: str, url: str, template: str | None = None, **kwargs):
        response = self.client.open(url, method=method, headers=self.headers, **kwargs)
        if template is not None:
            assert_documented(self.document, response, method, template)
        return response

    def get(self, url, template=None, **kwargs):
        return self.call("GET", url, template, **kwargs)

    def post(self, url, body, template=None):
        return self.call("POST", url, template, json=body)

    def patch(self, url, body, template=None):
        return self.call("PATCH", url, template, json=body)


@pytest.fixture
def document(client):
    return client.get(DOCUMENT_URL).get_json()


@pytest.fixture
def api_as(client, make_user, make_token, document):
    """``api_as("team")``: an :class:`Api` acting as a new user with that role."""

    def make(role: str, **user):
        user_id, _, _ = make_user(role, **user)
        return Api(client, make_token(user_id), document)

    return make


@pytest.fixture
def team(api_as):
    return api_as("team")


@pytest.fixture
def seed(app, clock):
    """``seed(name, contacts=[...])``: a provider (and contacts) made through the register; returns ids."""

    def make(name="Hemtjänst Norr", kind="municipal", contacts=(), **extra):
        with app.app_context():
            provider = register.create_provider(
                db.session, {"name": name, "kind": kind, **extra}, actor=Actor("team"), now=clock.now()
            ).record
            contact_ids = [
                register.create_contact(db.session, provider, data, actor=Actor("team"), now=clock.now()).record.id
                for data in contacts
            ]
            db.session.commit()
            return provider.id, contact_ids

    return make


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _history_rows(app) -> int:
    return _count(app, RegisterChange)


def _provider_user(app, clock, provider_id: int, username: str) -> int:
    from accounts.service import create_user

    with app.app_context():
        user = create_user(
            db_session=db.session,
            username=username,
            display_name="Provider contact",
            role="provider",
            now=clock.now(),
            password=None,
            provider_id=provider_id,
        )
        db.session.commit()
        return user.id


# --- creating and reading -----------------------------------------------------------------------


def test_team_creates_a_provider_and_gets_it_back_with_its_flag_and_location(team, app):
    response = team.post(
        PROVIDERS,
        {"name": "Hemtjänst Östra", "kind": "private", "organisation_number": "2120000142"},
        "/api/v1/providers",
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "id": body["id"],
        "name": "Hemtjänst Östra",
        "organisation_number": "212000-0142",
        "kind": "private",
        "is_active": True,
        "has_active_contact": False,
        "created_at": "2026-11-23T09:00:00+00:00",
        "updated_at": "2026-11-23T09:00:00+00:00",
    }
    assert response.headers["Location"] == f"/api/v1/providers/{body['id']}"
    fetched = team.get(response.headers["Location"], "/api/v1/providers/{provider_id}")
    assert fetched.get_json() == body


def test_a_contact_is_created_with_e164_mobile_and_english_service_keys_and_the_flag_follows(team, seed):
    provider_id, _ = seed()
    response = team.post(
        CONTACTS,
        {"provider_id": provider_id, **ANNA, "services": ["alarms", "camera_supervision"]},
        "/api/v1/contacts",
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["mobile"] == "+46701740605"
    assert body["services"] == ["camera_supervision", "alarms"]
    assert body["provider_id"] == provider_id and body["is_active"] is True
    assert body["mobile_failing_since"] is None
    assert response.headers["Location"] == f"/api/v1/contacts/{body['id']}"
    provider = team.get(f"{PROVIDERS}/{provider_id}", "/api/v1/providers/{provider_id}").get_json()
    assert provider["has_active_contact"] is True


def test_changes_made_through_the_api_are_recorded_with_the_user_and_source_api(team, app, seed):
    _, [contact_id] = seed(contacts=[ANNA])
    response = team.patch(
        f"{CONTACTS}/{contact_id}", {"role_title": "Verksamhetschef"}, "/api/v1/contacts/{contact_id}"
    )
    assert response.status_code == 200
    assert response.get_json()["role_title"] == "Verksamhetschef"
    history = team.get(f"{CONTACTS}/{contact_id}/history", "/api/v1/contacts/{contact_id}/history").get_json()
    newest = history["items"][0]
    assert newest["action"] == "updated" and newest["field"] == "role_title"
    assert (newest["old_value"], newest["new_value"]) == ("Enhetschef", "Verksamhetschef")
    assert newest["source"] == "api" and newest["changed_by_id"] is not None
    assert newest["changed_at"] == "2026-11-23T09:00:00+00:00"
    assert {item["source"] for item in history["items"][1:]} == {"team"}  # the seeded creation
    with app.app_context():
        from accounts.models import User

        assert db.session.get(User, newest["changed_by_id"]).role == "team"


def test_deactivating_by_patch_keeps_the_record_and_flags_the_provider(team, seed, clock):
    provider_id, [contact_id] = seed(contacts=[ANNA])
    clock.advance(minutes=5)
    response = team.patch(f"{CONTACTS}/{contact_id}", {"is_active": False}, "/api/v1/contacts/{contact_id}")
    assert response.status_code == 200
    assert response.get_json()["is_active"] is False
    assert response.get_json()["updated_at"] == "2026-11-23T09:05:00+00:00"
    history = team.get(f"{CONTACTS}/{contact_id}/history").get_json()["items"]
    assert (history[0]["action"], history[0]["field"], history[0]["new_value"]) == ("deactivated", "is_active", "nej")
    flagged = team.get(PROVIDERS, query_string={"has_active_contact": "false"}).get_json()["items"]
    assert [provider["id"] for provider in flagged] == [provider_id]


def test_there_is_no_hard_delete(team, app, seed):
    provider_id, [contact_id] = seed(contacts=[ANNA])
    for url in (f"{CONTACTS}/{contact_id}", f"{PROVIDERS}/{provider_id}"):
        response = team.call("DELETE", url)
        assert response.status_code == 405
        assert "error" in response.get_json()
    assert _count(app, ContactPerson) == 1 and _count(app, Provider) == 1


def test_a_provider_is_deactivated_and_renamed_by_patch_with_history(team, seed):
    provider_id, _ = seed()
    response = team.patch(
        f"{PROVIDERS}/{provider_id}", {"name": "Hemtjänst Nord", "is_active": False}, "/api/v1/providers/{provider_id}"
    )
    assert response.status_code == 200
    assert response.get_json()["is_active"] is False and response.get_json()["name"] == "Hemtjänst Nord"
    history = team.get(f"{PROVIDERS}/{provider_id}/history", "/api/v1/providers/{provider_id}/history").get_json()
    changed = {item["field"]: item["new_value"] for item in history["items"] if item["action"] == "updated"}
    assert changed == {"name": "Hemtjänst Nord", "is_active": "nej"}


def test_an_empty_patch_changes_nothing(team, app, seed):
    provider_id, [contact_id] = seed(contacts=[ANNA])
    before = _history_rows(app)
    assert team.patch(f"{CONTACTS}/{contact_id}", {}, "/api/v1/contacts/{contact_id}").status_code == 200
    assert team.patch(f"{PROVIDERS}/{provider_id}", {}, "/api/v1/providers/{provider_id}").status_code == 200
    assert _history_rows(app) == before


# --- lists, search and paging -------------------------------------------------------------------


def test_providers_are_searched_ignoring_case_and_swedish_letters_and_paged(team, seed):
    seed("Hemtjänst Östra", organisation_number="2120000142")
    seed("Hemtjänst Väst")
    seed("Omsorg AB", kind="private")
    found = team.get(PROVIDERS, "/api/v1/providers", query_string={"q": "ÖSTRA"}).get_json()
    assert [provider["name"] for provider in found["items"]] == ["Hemtjänst Östra"]
    by_number = team.get(PROVIDERS, query_string={"q": "2120000142"}).get_json()["items"]
    assert [provider["name"] for provider in by_number] == ["Hemtjänst Östra"]
    page = team.get(PROVIDERS, "/api/v1/providers", query_string={"q": "hemtjänst", "limit": 1, "offset": 1})
    assert page.get_json()["total"] == 2
    assert [provider["name"] for provider in page.get_json()["items"]] == ["Hemtjänst Väst"]
    everything = team.get(PROVIDERS, query_string={"limit": 2}).get_json()
    assert (everything["total"], len(everything["items"]), everything["limit"], everything["offset"]) == (3, 2, 2, 0)


def test_providers_filter_by_active(team, seed):
    seed("Aktiv")
    seed("Nedlagd", is_active=False)
    active = team.get(PROVIDERS, query_string={"active": "true"}).get_json()["items"]
    inactive = team.get(PROVIDERS, query_string={"active": "false"}).get_json()["items"]
    assert [p["name"] for p in active] == ["Aktiv"]
    assert [p["name"] for p in inactive] == ["Nedlagd"]


def test_contacts_filter_by_provider_activity_service_and_search_by_phone_as_written_in_sweden(team, seed):
    north, [anna, _] = seed(
        "Norr",
        contacts=[
            {**ANNA, "services": "camera_supervision"},
            {"name": "Bo Ek", "email": "bo@example.se", "is_active": False, "services": "alarms"},
        ],
    )
    _, [olle] = seed("Söder", contacts=[{"name": "Olle Åberg", "mobile": "+46701112233"}])
    listed = team.get(CONTACTS, "/api/v1/contacts", query_string={"provider_id": north, "active": "true"}).get_json()
    assert [contact["id"] for contact in listed["items"]] == [anna]
    assert [c["id"] for c in team.get(CONTACTS, query_string={"q": "070-174 06"}).get_json()["items"]] == [anna]
    assert [c["id"] for c in team.get(CONTACTS, query_string={"q": "åBERG"}).get_json()["items"]] == [olle]
    by_service = team.get(CONTACTS, query_string={"service": "camera_supervision"}).get_json()["items"]
    assert [c["id"] for c in by_service] == [anna]
    assert team.get(CONTACTS, query_string={"q": "nobody"}).get_json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }


@pytest.mark.parametrize(
    ("url", "query", "field"),
    [
        (PROVIDERS, {"limit": "0"}, "limit"),
        (PROVIDERS, {"limit": "501"}, "limit"),
        (PROVIDERS, {"limit": "ten"}, "limit"),
        (PROVIDERS, {"offset": "-1"}, "offset"),
        (PROVIDERS, {"active": "yes"}, "active"),
        (PROVIDERS, {"activ": "true"}, "activ"),
        (CONTACTS, {"provider_id": "abc"}, "provider_id"),
        (CONTACTS, {"provider_id": "99999999999"}, "provider_id"),
        (CONTACTS, {"service": "Kameratillsyn"}, "service"),
        (f"{CONTACTS}/1/history", {"limit": "-5"}, "limit"),
        (f"{CONTACTS}/1", {"fields": "name"}, "fields"),
    ],
)
def test_bad_query_parameters_are_refused_with_the_parameter_named(team, seed, url, query, field):
    seed(contacts=[ANNA])
    response = team.get(url, query_string=query)
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert field in response.get_json()["error"]


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 123, "kind": "municipal"}, "name"),
        ({"name": "X", "kind": "Kommunal"}, "kind"),
        ({"name": "X", "kind": "municipal", "is_active": "ja"}, "is_active"),
        ({"name": "X", "kind": "municipal", "organisation_number": 2120000142}, "organisation_number"),
        ({"name": "X"}, "kind"),
        ({"kind": "private"}, "name"),
        ({"name": "X", "kind": "private", "id": 7}, "id"),
        ({"name": "X", "kind": "private", "has_active_contact": True}, "has_active_contact"),
        ({"name": "X", "kind": "private", "colour": "red"}, "colour"),
        ({"name": "X\x00Y", "kind": "private"}, "name"),
    ],
)
def test_a_provider_body_that_does_not_match_the_schema_is_refused_and_nothing_is_stored(team, app, body, field):
    response = team.post(PROVIDERS, body, "/api/v1/providers")
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert _count(app, Provider) == 0 and _history_rows(app) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Anna", "email": "a@example.se"}, "provider_id"),
        ({"provider_id": True, "name": "Anna", "email": "a@example.se"}, "provider_id"),
        ({"provider_id": "1", "name": "Anna", "email": "a@example.se"}, "provider_id"),
        ({"provider_id": 2**40, "name": "Anna", "email": "a@example.se"}, "provider_id"),
        ({"provider_id": 1.5, "name": "Anna", "email": "a@example.se"}, "provider_id"),
        ({"provider_id": 1, "name": "Anna", "mobile": 46701740605}, "mobile"),
        ({"provider_id": 1, "name": "Anna", "email": "a@example.se", "services": "alarms"}, "services"),
        ({"provider_id": 1, "name": "Anna", "email": "a@example.se", "services": ["Larm"]}, "services"),
        ({"provider_id": 1, "name": "Anna", "email": "a@example.se", "role_title": None}, "role_title"),
        ({"provider_id": 1, "name": "An\ud800na", "email": "a@example.se"}, "name"),
        ({"provider_id": 1, "name": "Anna", "email": "a@example.se", "created_at": "2026-01-01"}, "created_at"),
    ],
)
def test_a_contact_body_that_does_not_match_the_schema_is_refused_and_nothing_is_stored(team, app, seed, body, field):
    seed()
    before = _history_rows(app)
    response = team.post(CONTACTS, body, "/api/v1/contacts")
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert _count(app, ContactPerson) == 0 and _history_rows(app) == before


def test_a_whole_number_written_with_a_fraction_is_an_integer(team, seed):
    """JSON Schema counts 1.0 as an integer, so the description allows it (found by
    tests/api/test_fuzz.py: provider_id 44600.0 was refused with 400)."""
    provider_id, _ = seed()
    created = team.post(CONTACTS, {"provider_id": float(provider_id), "name": "Anna", "email": "a@example.se"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["provider_id"] == provider_id


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        ("name=X&kind=private", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        ('{"name": "X", "kind": "private"}', "text/plain", "Content-Type: application/json"),
        ('{"name": "X", "kind": ', "application/json", "not valid JSON"),
        ("", "application/json", "not valid JSON"),
        ('{"name": NaN, "kind": "private"}', "application/json", "not valid JSON"),
        (b'{"name": "\xff", "kind": "private"}', "application/json", "UTF-8"),
        ("[1, 2]", "application/json", "must be a JSON object"),
        ('"Hemtjänst"', "application/json", "must be a JSON object"),
        ("null", "application/json", "must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "application/json", "not valid JSON"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused_with_a_clear_message(team, app, data, content_type, message):
    response = team.call("POST", PROVIDERS, "/api/v1/providers", data=data, content_type=content_type)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert _count(app, Provider) == 0


def test_the_registers_rules_answer_422_with_every_field_in_swedish_and_nothing_is_stored(team, app, seed):
    provider_id, _ = seed()
    before = _history_rows(app)
    response = team.post(
        CONTACTS,
        {"provider_id": provider_id, "name": " ", "mobile": "08-123 456 78", "email": "anna.at.example.se"},
        "/api/v1/contacts",
    )
    assert response.status_code == 422
    fields = response.get_json()["fields"]
    assert set(fields) == {"name", "mobile", "email"}
    assert "mobilnummer" in fields["mobile"]
    assert _count(app, ContactPerson) == 0 and _history_rows(app) == before


def test_a_duplicate_provider_name_ignoring_case_is_refused(team, app, seed):
    seed("Hemtjänst Östra")
    response = team.post(PROVIDERS, {"name": "HEMTJÄNST  östra", "kind": "private"}, "/api/v1/providers")
    assert response.status_code == 422
    assert "Hemtjänst Östra" in response.get_json()["fields"]["name"]
    assert _count(app, Provider) == 1


def test_an_invalid_organisation_number_is_refused(team):
    response = team.post(
        PROVIDERS, {"name": "X", "kind": "private", "organisation_number": "212000-0143"}, "/api/v1/providers"
    )
    assert response.status_code == 422
    assert "organisation_number" in response.get_json()["fields"]


def test_a_contact_cannot_lose_both_its_mobile_and_its_email(team, app, seed):
    _, [contact_id] = seed(contacts=[ANNA])
    before = _history_rows(app)
    response = team.patch(f"{CONTACTS}/{contact_id}", {"mobile": None, "email": None}, "/api/v1/contacts/{contact_id}")
    assert response.status_code == 422
    assert "mobile" in response.get_json()["fields"]
    contact = team.get(f"{CONTACTS}/{contact_id}").get_json()
    assert (contact["mobile"], contact["email"]) == ("+46701740605", "anna@example.se")
    assert _history_rows(app) == before


def test_a_half_valid_patch_changes_nothing(team, app, seed):
    _, [contact_id] = seed(contacts=[ANNA])
    before = _history_rows(app)
    response = team.patch(f"{CONTACTS}/{contact_id}", {"role_title": "Chef", "email": "no-at-sign"})
    assert response.status_code == 422
    assert team.get(f"{CONTACTS}/{contact_id}").get_json()["role_title"] == "Enhetschef"
    assert _history_rows(app) == before


def test_a_contact_cannot_move_to_another_provider(team, seed):
    _, [contact_id] = seed(contacts=[ANNA])
    other, _ = seed("Söder")
    response = team.patch(f"{CONTACTS}/{contact_id}", {"provider_id": other}, "/api/v1/contacts/{contact_id}")
    assert response.status_code == 400
    assert "provider_id" in response.get_json()["fields"]


def test_a_contact_for_a_provider_that_does_not_exist_is_refused(team, app):
    response = team.post(CONTACTS, {"provider_id": 4711, **ANNA}, "/api/v1/contacts")
    assert response.status_code == 422
    assert response.get_json()["fields"] == {"provider_id": "no provider with this id"}
    assert _count(app, ContactPerson) == 0


@pytest.mark.parametrize(
    ("method", "url", "template"),
    [
        ("GET", f"{PROVIDERS}/4711", "/api/v1/providers/{provider_id}"),
        ("GET", f"{PROVIDERS}/99999999999999999999", "/api/v1/providers/{provider_id}"),
        ("PATCH", f"{PROVIDERS}/4711", "/api/v1/providers/{provider_id}"),
        ("GET", f"{PROVIDERS}/4711/history", "/api/v1/providers/{provider_id}/history"),
        ("GET", f"{CONTACTS}/4711", "/api/v1/contacts/{contact_id}"),
        ("GET", f"{CONTACTS}/99999999999999999999", "/api/v1/contacts/{contact_id}"),
        ("PATCH", f"{CONTACTS}/4711", "/api/v1/contacts/{contact_id}"),
        ("GET", f"{CONTACTS}/4711/history", "/api/v1/contacts/{contact_id}/history"),
    ],
)
def test_an_unknown_id_is_a_json_404(team, method, url, template):
    kwargs = {"json": {"name": "X"}} if method == "PATCH" else {}
    response = team.call(method, url, template, **kwargs)
    assert response.status_code == 404
    # An id beyond the id columns' range does not match the route at all (core.numbers): the
    # router's 404, in JSON, rather than the view's "no provider with id ...".
    error = response.get_json()["error"]
    assert error.startswith("no ") or ("99999999999999999999" in url and error)


# --- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", PROVIDERS), ("POST", PROVIDERS), ("GET", f"{CONTACTS}/1"), ("PATCH", f"{CONTACTS}/1")],
)
def test_anonymous_requests_get_a_json_401(client, app, method, url):
    response = client.open(url, method=method, json={"name": "X", "kind": "private"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="krisrutin"'
    assert "error" in response.get_json()
    assert _count(app, Provider) == 0


def test_an_unknown_token_gets_a_json_401(client, document):
    response = Api(client, "krt_not-a-real-token", document).get(PROVIDERS, "/api/v1/providers")
    assert response.status_code == 401


def test_the_on_call_officer_reads_but_may_not_write(api_as, app, seed):
    _, [contact_id] = seed(contacts=[ANNA])
    on_call = api_as("on_call")
    assert on_call.get(PROVIDERS, "/api/v1/providers").status_code == 200
    assert on_call.get(f"{CONTACTS}/{contact_id}/history").status_code == 200
    refused = on_call.post(PROVIDERS, {"name": "X", "kind": "private"}, "/api/v1/providers")
    assert refused.status_code == 403
    assert on_call.patch(f"{CONTACTS}/{contact_id}", {"is_active": False}).status_code == 403
    assert _count(app, Provider) == 1


def test_admin_writes_like_the_team(api_as):
    response = api_as("admin").post(PROVIDERS, {"name": "X", "kind": "private"}, "/api/v1/providers")
    assert response.status_code == 201


def test_the_alarm_operator_is_refused(api_as, seed):
    seed(contacts=[ANNA])
    operator = api_as("alarm_operator")
    for url in (PROVIDERS, CONTACTS):
        response = operator.get(url, url)
        assert response.status_code == 403


def test_a_provider_account_reads_only_its_own_provider_and_contacts(app, clock, client, make_token, document, seed):
    own, [own_contact] = seed("Norr", contacts=[ANNA])
    other, [other_contact] = seed("Söder", contacts=[{"name": "Olle", "email": "olle@example.se"}])
    provider_api = Api(client, make_token(_provider_user(app, clock, own, "norr-kontakt")), document)

    providers = provider_api.get(PROVIDERS, "/api/v1/providers").get_json()
    assert [p["id"] for p in providers["items"]] == [own] and providers["total"] == 1
    contacts = provider_api.get(CONTACTS, "/api/v1/contacts").get_json()["items"]
    assert [c["id"] for c in contacts] == [own_contact]
    # Asking for the other provider's contacts by filter finds nothing rather than leaking them.
    assert provider_api.get(CONTACTS, query_string={"provider_id": other}).get_json()["items"] == []
    assert provider_api.get(f"{CONTACTS}/{own_contact}", "/api/v1/contacts/{contact_id}").status_code == 200
    assert provider_api.get(f"{PROVIDERS}/{own}/history").status_code == 200
    for url in (f"{PROVIDERS}/{other}", f"{CONTACTS}/{other_contact}", f"{CONTACTS}/{other_contact}/history"):
        assert provider_api.get(url).status_code == 404, url
    assert provider_api.patch(f"{CONTACTS}/{own_contact}", {"is_active": False}).status_code == 403
    assert provider_api.post(PROVIDERS, {"name": "Y", "kind": "private"}).status_code == 403


def test_a_staff_session_may_use_the_api_but_writes_need_the_csrf_token(client, app, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    assert client.get(PROVIDERS).status_code == 200
    refused = client.post(PROVIDERS, json={"name": "X", "kind": "private"})
    assert refused.status_code == 400
    assert _count(app, Provider) == 0
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    accepted = client.post(PROVIDERS, json={"name": "X", "kind": "private"}, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201
    with app.app_context():
        change = db.session.scalar(select(RegisterChange).where(RegisterChange.field == "name"))
        assert change.source == "api"


def test_odd_bodies_never_cause_a_server_error(team, seed):
    provider_id, [contact_id] = seed(contacts=[ANNA])
    odd_values = [None, True, 0, -1, 1.5, "", " ", "x" * 10_000, [], {}, ["x"], {"a": 1}, "\u202e", "😀"]
    fields = ["name", "role_title", "mobile", "email", "services", "is_active", "kind", "organisation_number"]
    for field in fields:
        for value in odd_values:
            body = json.dumps({field: value})
            for method, url in (("PATCH", f"{CONTACTS}/{contact_id}"), ("PATCH", f"{PROVIDERS}/{provider_id}")):
                response = team.call(method, url, data=body, content_type="application/json")
                assert response.status_code in (200, 400, 422), (method, url, field, value, response.status_code)
                assert response.mimetype == "application/json"


def _sample(schema: dict, document: dict) -> str:
    if "$ref" in schema:
        return _sample(document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], document)
    if "enum" in schema:
        return str(schema["enum"][-1])
    if schema.get("type") == "integer":
        return str(schema.get("default", schema.get("minimum", 1)))
    return "a"


def test_every_documented_query_parameter_is_accepted(team, seed, document):
    seed(contacts=[ANNA])
    checked = 0
    for template, item in document["paths"].items():
        if not template.startswith(("/api/v1/providers", "/api/v1/contacts")):
            continue
        url = template.replace("{provider_id}", "1").replace("{contact_id}", "1")
        for parameter in item["get"]["parameters"]:
            if "$ref" in parameter:
                parameter = document["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
            if parameter["in"] != "query":
                continue
            value = _sample(parameter["schema"], document)
            response = team.get(url, template, query_string={parameter["name"]: value})
            assert response.status_code == 200, (template, parameter["name"], value, response.get_json())
            checked += 1
    assert checked >= 12
