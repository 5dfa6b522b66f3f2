"""The JSON API's one reader of request bodies (core.text.load_json through
contacts.api_input.json_object): a key given twice is refused on every JSON endpoint, and every
string passes the text boundary with its path (``letter.body``) before any rule sees it. The
reproductions of a lone surrogate that broke the incident page for good, and of NUL in a letter,
run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contacts.models import Provider
from core.extensions import db
from crisis.incidents.models import Incident, IncidentEvent, Letter, Notice, Supplier
from notifications.models import Message
from tests.conftest import log_in
from tests.crisis.incidents.test_letters_helpers import make_people

NOTICES = "/api/v1/notices"
GSM = {"title": "GSM-störning hos Telia", "service": "camera_supervision", "supplier": "Telia"}


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def api(app, clock, make_user, make_token):
    """``api(method, url, raw_body, role="team")``: a JSON call with a role's token."""
    with app.app_context():
        db.session.add(Supplier(name="Telia", email="drift@telia.se", is_active=True, created_at=clock.now()))
        db.session.commit()
    tokens = {}

    def call(method, url, body, role="team"):
        if role not in tokens:
            tokens[role] = make_token(make_user(role)[0])
        text = body if isinstance(body, str) else json.dumps(body)
        return app.test_client().open(
            url,
            method=method,
            data=text.encode("utf-8", "surrogatepass"),
            content_type="application/json",
            headers={"Authorization": f"Bearer {tokens[role]}"},
        )

    return call


def test_a_lone_surrogate_in_a_comment_is_refused_and_the_incident_page_keeps_working(app, client, api, make_user):
    created = api("POST", NOTICES, GSM)
    assert created.status_code == 201
    notice_id, incident_id = created.get_json()["id"], created.get_json()["incident_id"]
    events_before = _count(app, IncidentEvent)
    refused = api("PATCH", f"{NOTICES}/{notice_id}", '{"comment": "K\\ud800"}')
    assert refused.status_code == 400
    assert "U+D800" in refused.get_json()["fields"]["comment"]
    assert _count(app, IncidentEvent) == events_before
    _, username, password = make_user("team")
    log_in(client, username, password)
    assert client.get(f"/incidents/{incident_id}").status_code == 200
    assert client.get(f"/incidents/{incident_id}/print").status_code == 200


@pytest.mark.parametrize(
    ("letter", "field", "code"),
    [
        ('{"subject": "Störning", "body": "Kameror nere K\\ud800"}', "letter.body", "U+D800"),
        ('{"subject": "Störning\\u0000", "body": "Kameror nere"}', "letter.subject", "U+0000"),
        ('{"subject": "Störning", "body": "Kameror\\u0000 nere"}', "letter.body", "U+0000"),
        ('{"subject": "\\u202eGninrots", "body": "Kameror nere"}', "letter.subject", "U+202E"),
    ],
)
def test_a_letter_with_a_refused_character_refuses_the_whole_notice_and_nothing_is_stored(
    app, api, clock, letter, field, code
):
    with app.app_context():
        make_people(clock)
    body = json.dumps(GSM)[:-1] + f', "letter": {letter}}}'
    response = api("POST", NOTICES, body)
    assert response.status_code == 400, response.get_json()
    assert code in response.get_json()["fields"][field]
    assert [_count(app, model) for model in (Incident, Notice, Letter, Message)] == [0, 0, 0, 0]


def test_strings_in_a_json_body_are_stored_in_nfc(app, api):
    name = unicodedata.normalize("NFD", "Omsorg Åsa AB")
    assert api("POST", "/api/v1/providers", {"name": name, "kind": "private"}).status_code == 201
    with app.app_context():
        assert db.session.scalars(select(Provider.name)).all() == ["Omsorg Åsa AB"]


def test_a_key_given_twice_is_refused_naming_it_also_inside_an_object(app, api):
    refused = api("POST", "/api/v1/providers", '{"name": "Omsorg AB", "kind": "private", "kind": "municipal"}')
    assert refused.status_code == 400 and refused.get_json()["fields"] == {"kind": "given more than once"}
    nested = '{"title": "GSM", "service": "alarms", "letter": {"subject": "a", "body": "b", "body": "c"}}'
    refused = api("POST", NOTICES, nested)
    assert refused.status_code == 400 and "body" in refused.get_json()["fields"]
    assert _count(app, Provider) == 0 and _count(app, Incident) == 0


def test_every_json_endpoint_refuses_a_key_given_twice(app, api, clock):
    """Every operation of the JSON API that takes a body, as a role that may use it."""
    from tests.test_route_roles import ROUTE_ROLES

    with app.app_context():
        make_people(clock)
    notice_id = api("POST", NOTICES, GSM).get_json()["id"]
    seen = 0
    for rule in app.url_map.iter_rules():
        methods = rule.methods & {"POST", "PUT", "PATCH"}
        if not rule.rule.startswith("/api/") or not methods or rule.rule.endswith("/email"):
            continue
        role = "team" if "team" in ROUTE_ROLES[rule.endpoint] else sorted(ROUTE_ROLES[rule.endpoint])[0]
        url = re.sub(r"<int:\w+>", lambda m: str(notice_id if "notice" in m.group(0) else 1), rule.rule)
        for method in methods:
            response = api(method, url, '{"area": "Norr", "comment": "a", "area": "Syd"}', role=role)
            assert response.status_code == 400, (method, rule.rule, response.status_code)
            assert response.get_json()["fields"] == {"area": "given more than once"}, rule.rule
            seen += 1
    assert seen >= 7


def test_no_view_reads_a_request_body_as_json_but_through_the_one_reader():
    root = Path(__file__).resolve().parent.parent
    readers = re.compile(r"request\.(get_json|json\b)|json\.loads\(\s*request")
    found = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if not ({"tests", ".venv", "node_modules", "bench", "tools"} & set(path.relative_to(root).parts))
        and readers.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_api_description_states_the_boundarys_rule_for_text():
    """The description's ``pattern`` for text fields (core.openapi_document.TEXT) accepts exactly
    the characters core.text accepts, so a client can check its text before sending it."""
    from core.openapi_document import TEXT
    from core.text import first_forbidden

    pattern = re.compile(TEXT["pattern"])
    for code in range(0x3000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        assert bool(pattern.match(f"a{char}b")) == (first_forbidden(char) is None), hex(code)
