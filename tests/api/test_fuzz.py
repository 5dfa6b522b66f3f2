"""Schemathesis against the real application: every /api/v1 operation in the served OpenAPI
description, called in-process (WSGI) on a SQLite file seeded through the API (providers,
contacts, suppliers, a notice, supervised clients, a failed supervision), with the API token of
each role that uses it: the team (register, calendar, notices with letters), a provider
contact's account (reads of its own provider), the supplier (notices) and the alarm operator
(camera supervision).

Every answer must not be a 5xx and must be documented: status code, content type, headers and
body. Requests that break the description must be refused (4xx), requests that match it must not
be refused as malformed (400), an undocumented method gets 405 with Allow, and no operation may
answer without the token. Generated data is positive and negative (schemathesis's default), with few
examples per operation and derandomized, so a run is quick and the same in CI every time.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from schemathesis.config import PositiveDataAcceptanceConfig

from core.clock import FixedClock
from core.extensions import db
from tests.conftest import DEFAULT_PASSWORD, build_app, create_schema
from tests.support.openapi import DOCUMENT_URL, build_document

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,  # what breaks the description is refused (4xx)
    positive_data_acceptance,  # what matches it is not refused as malformed (400)
    unsupported_method,  # an undocumented method: 405 with Allow
    ignored_auth,
]
# A request that matches the description may still be refused by the register's rules (422), or
# name a record that does not exist (404) or that conflicts (409); never 400.
ACCEPTED = ["2xx", "401", "403", "404", "409", "422"]
# `at` is a date-time of the years 1900-2200, a range the description can only say in words:
# other years are answered 400 as documented.
YEAR_RANGE_IN_WORDS = {("GET", "/api/v1/calendar/responsible")}
# Few examples per operation and role keep the run quick; FUZZ_EXAMPLES=300 digs deeper locally.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@schemathesis.serializer("message/rfc822")
def _rfc822(ctx, value):
    """The raw e-mail of POST /api/v1/notices/email: the generated text as bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def _seed(app, clock) -> dict[str, str]:
    """Users with tokens, suppliers, and register, notice and supervision data made through the
    API itself; returns {role: token}."""
    from accounts.models import User
    from accounts.service import create_token, create_user
    from crisis.incidents.models import Supplier

    tokens = {}
    with app.app_context():
        for role in ("team", "alarm_operator", "supplier"):
            user = create_user(
                db_session=db.session,
                username=f"fuzz-{role.replace('_', '-')}",
                display_name=f"Fuzz {role}",
                role=role,
                now=clock.now(),
                password=DEFAULT_PASSWORD if role == "team" else None,
            )
            db.session.flush()
            _, tokens[role] = create_token(
                db_session=db.session, user=db.session.get(User, user.id), name="fuzz", now=clock.now()
            )
        db.session.add_all(
            [
                Supplier(
                    name="Telia",
                    email="drift@telia.se",
                    is_active=True,
                    created_at=clock.now(),
                    user_id=db.session.scalar(db.select(User.id).where(User.username == "fuzz-supplier")),
                ),
                Supplier(name="Careium", email="noc@careium.com", is_active=True, created_at=clock.now()),
            ]
        )
        db.session.commit()

    client = app.test_client()

    def call(role, method, url, body):
        response = client.open(url, method=method, json=body, headers={"Authorization": f"Bearer {tokens[role]}"})
        assert response.status_code in (200, 201), (method, url, response.get_json())
        return response.get_json()

    for index, name in enumerate(("Solgläntans hemtjänst", "Kommunens hemtjänst", "Björkens omsorg"), start=1):
        provider = call("team", "POST", "/api/v1/providers", {"name": name, "kind": "private"})
        call(
            "team",
            "POST",
            "/api/v1/contacts",
            {
                "provider_id": provider["id"],
                "name": f"Kontakt {index}",
                "role_title": "Enhetschef",
                "mobile": f"070-123 45 6{index}",
                "email": f"kontakt{index}@example.se",
                "services": ["alarms", "camera_supervision"],
            },
        )
    with app.app_context():
        user = create_user(
            db_session=db.session,
            username="fuzz-provider",
            display_name="Fuzz provider",
            role="provider",
            now=clock.now(),
            password=None,
            provider_id=1,
        )
        _, tokens["provider"] = create_token(db_session=db.session, user=user, name="fuzz", now=clock.now())
        db.session.commit()
    call("supplier", "POST", "/api/v1/notices", {"title": "GSM-störning", "service": "alarms"})
    call(
        "alarm_operator",
        "PUT",
        "/api/v1/supervised-clients",
        {
            "clients": [
                {
                    "reference": f"K-{index}",
                    "provider_id": index,
                    "area": "Centrum",
                    "schedules": [{"weekdays": ["mon", "tue", "wed", "thu", "fri"], "times": ["08:00", "22:00"]}],
                }
                for index in (1, 2)
            ]
        },
    )
    call(
        "alarm_operator",
        "POST",
        "/api/v1/supervision-failures",
        {"reference": "K-1", "scheduled_at": "2026-11-23T08:00:00+01:00", "reason": "ingen bild"},
    )
    return tokens


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    path = tmp_path_factory.mktemp("fuzz") / "krisrutin-fuzz.sqlite3"
    application = build_app(f"sqlite:///{path}", clock)
    create_schema(application)
    application.config["FUZZ_TOKENS"] = _seed(application, clock)
    assert application.test_client().get(DOCUMENT_URL).get_json() == build_document()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


# The description the service serves (tests/test_openapi.py checks that they are the same), loaded
# at import so that each operation is a test of its own; the calls go to ``fuzz_app`` (WSGI).
# (schemathesis.pytest.from_fixture does not work with pytest 9: it reads Function._nodeid.)
schema = schemathesis.openapi.from_dict(build_document())
# Each test sends its role's token itself: no generated Authorization headers (ignored_auth
# still checks that a request without the token is refused).
schema.config.generation.update(with_security_parameters=False)
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(expected_statuses=ACCEPTED)


@schema.hook
def filter_query(ctx, query):
    """An extra query parameter with an empty name is not sent at all: the request would be a
    valid one, which negative_data_rejection would count as invalid data accepted."""
    return not (isinstance(query, dict) and "" in query)


def _call(case, app, role: str) -> None:
    token = app.config["FUZZ_TOKENS"][role]
    # The schema is loaded before the application exists: send this case, and the probes that
    # checks like ignored_auth send after it, to the application in-process (WSGI).
    case.operation.app = case.operation.schema.app = app
    excluded = [positive_data_acceptance] if (case.method, case.path) in YEAR_RANGE_IN_WORDS else []
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, excluded_checks=excluded)


REGISTER = schema.exclude(tag=["notices", "supervision"])


@REGISTER.parametrize()
@FUZZ_SETTINGS
def test_the_register_and_calendar_as_the_team(case, fuzz_app):
    _call(case, fuzz_app, "team")


@REGISTER.include(method="GET").parametrize()
@FUZZ_SETTINGS
def test_the_register_read_by_a_provider_contact(case, fuzz_app):
    _call(case, fuzz_app, "provider")


@schema.include(tag="notices").parametrize()
@FUZZ_SETTINGS
def test_notices_from_a_supplier(case, fuzz_app):
    _call(case, fuzz_app, "supplier")


@schema.include(tag="notices").parametrize()
@FUZZ_SETTINGS
def test_notices_from_the_team(case, fuzz_app):
    _call(case, fuzz_app, "team")


@schema.include(tag="supervision").parametrize()
@FUZZ_SETTINGS
def test_supervision_from_the_alarm_operator(case, fuzz_app):
    _call(case, fuzz_app, "alarm_operator")
