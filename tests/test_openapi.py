"""The served OpenAPI description: valid OpenAPI 3.1, and exactly the /api/v1 routes that exist."""

import re

import pytest
from openapi_spec_validator import validate

from tests.conftest import build_app
from tests.support.openapi import DOCUMENT_URL, assert_documented, build_document

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def app(sqlite_url, clock):
    """The description needs no database: one application on SQLite is enough here."""
    return build_app(sqlite_url, clock)


@pytest.fixture
def document(app):
    return app.test_client().get(DOCUMENT_URL).get_json()


def test_the_description_is_served_to_anyone_as_json(app):
    response = app.test_client().get(DOCUMENT_URL)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json()["openapi"] == "3.1.0"
    assert response.headers["Cache-Control"] == "public, max-age=300"


def test_the_description_is_valid_openapi_3_1(document):
    validate(document)  # raises with the offending part on any violation of the 3.1 meta-schema


def _routes_in_the_url_map(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def _routes_in_the_document(document) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS}


def test_every_api_route_and_method_is_documented_and_nothing_else(app, document):
    served, documented = _routes_in_the_url_map(app), _routes_in_the_document(document)
    assert served - documented == set(), "routes missing from the OpenAPI description"
    assert documented - served == set(), "the OpenAPI description lists routes that do not exist"
    assert ("/api/v1/providers", "post") in served  # the walk sees the register API at all


def test_the_walk_notices_a_route_the_description_lacks(sqlite_url, clock):
    from flask import Blueprint

    from accounts.access import public

    extra = Blueprint("undocumented", __name__)

    @extra.get("/api/v1/undocumented/<int:thing_id>")
    @public
    def undocumented(thing_id):
        return {}

    app = build_app(sqlite_url, clock)
    app.register_blueprint(extra)
    assert _routes_in_the_url_map(app) - _routes_in_the_document(build_document()) == {
        ("/api/v1/undocumented/{thing_id}", "get")
    }


def test_public_endpoints_are_exactly_those_the_description_marks_public(app, document):
    from accounts.access import access_rule_for

    public_in_map = {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and access_rule_for(app, rule.endpoint).public
    }
    public_in_document = {
        path
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS and operation.get("security") == []
    }
    assert public_in_map == public_in_document
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "krt_...",
        "description": "An API token of a user; the user's role decides what it may do.",
    }


def test_every_protected_operation_documents_401_403_and_the_error_shape(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or operation.get("security") == []:
                continue
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
            if method in ("post", "patch"):
                assert {"400", "422"} <= set(operation["responses"]), (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert set(error["properties"]) == {"error", "fields"}


def test_the_calendar_endpoints_document_their_parameters(document):
    responsible = document["paths"]["/api/v1/calendar/responsible"]["get"]
    assert [parameter["name"] for parameter in responsible["parameters"]] == ["at"]
    check_plan = document["paths"]["/api/v1/calendar/check-plan"]["get"]
    assert [parameter["name"] for parameter in check_plan["parameters"]] == ["month"]
    for operation in (responsible, check_plan):
        assert operation["responses"]["400"] == {"$ref": "#/components/responses/BadRequest"}


def test_the_enums_are_the_codes_own(document):
    from contacts.models import SERVICES

    schemas = document["components"]["schemas"]
    assert schemas["Contact"]["properties"]["services"]["items"]["enum"] == list(SERVICES)
    assert schemas["Provider"]["properties"]["kind"]["enum"] == ["municipal", "private"]


@pytest.mark.parametrize(
    ("url", "template", "status"),
    [
        ("/api/v1/calendar/responsible?at=2026-12-24T10:00:00%2B01:00", "/api/v1/calendar/responsible", 200),
        ("/api/v1/calendar/responsible", "/api/v1/calendar/responsible", 200),
        ("/api/v1/calendar/responsible?at=tomorrow", "/api/v1/calendar/responsible", 400),
        ("/api/v1/calendar/check-plan?month=2027-01", "/api/v1/calendar/check-plan", 200),
        ("/api/v1/calendar/check-plan?month=2027-13", "/api/v1/calendar/check-plan", 400),
        (DOCUMENT_URL, DOCUMENT_URL, 200),
    ],
)
def test_the_public_endpoints_answer_as_documented(app, document, url, template, status):
    response = app.test_client().get(url)
    assert response.status_code == status
    assert_documented(document, response, "GET", template)


@pytest.mark.parametrize(
    "month", ["1900-01", "2026-11", "2200-12", "1899-12", "2201-01", "0000-00", "2026-13", "2026-00"]
)
def test_the_check_plan_month_pattern_admits_exactly_the_months_answered(app, document, month):
    """A month the description's pattern admits is answered 200, any other 400 (the pattern
    admitted 0000-00 and 2026-13 until tests/api/test_fuzz.py found the mismatch)."""
    parameter = document["paths"]["/api/v1/calendar/check-plan"]["get"]["parameters"][0]
    admitted = re.search(parameter["schema"]["pattern"], month) is not None
    response = app.test_client().get(f"/api/v1/calendar/check-plan?month={month}")
    assert response.status_code == (200 if admitted else 400)


def test_a_notice_update_needs_a_field(document):
    """The server refuses an empty PATCH with 400; the description says so in its schema."""
    assert document["components"]["schemas"]["NoticeUpdate"]["minProperties"] == 1
