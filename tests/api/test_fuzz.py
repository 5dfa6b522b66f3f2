"""Schemathesis against the real application: every /api/v1 operation in the served OpenAPI
description, called in-process (WSGI) with the API token of the role that uses it, on a SQLite
file seeded through the service (providers, contacts, suppliers, notices, supervised clients and
a failed supervision). Each answer must not be a 5xx and must match the description: a
documented status code, the documented content type and the documented body.

Generated data is positive and negative (schemathesis's default), with few examples per
operation and derandomized, so a run is quick and the same in CI every time.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from core.clock import FixedClock
from core.extensions import db
from core.openapi_document import build_document
from tests.conftest import DEFAULT_PASSWORD, build_app, create_schema
from tests.support.openapi import DOCUMENT_URL

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 12

# Which role's token calls which operations: the supplier for notices (its own), the alarm
# operator for camera supervision, the team for the register and everything else.
ROLE_BY_PREFIX = (
    ("/api/v1/notices", "supplier"),
    ("/api/v1/supervised-clients", "alarm_operator"),
    ("/api/v1/supervision-failures", "alarm_operator"),
)


def _role_for(path: str) -> str:
    return next((role for prefix, role in ROLE_BY_PREFIX if path.startswith(prefix)), "team")


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
    from crisis.models import Supplier

    tokens = {}
    with app.app_context():
        for role in ("admin", "team", "alarm_operator", "supplier"):
            user = create_user(
                db_session=db.session,
                username=f"fuzz-{role.replace('_', '-')}",
                display_name=f"Fuzz {role}",
                role=role,
                now=clock.now(),
                password=DEFAULT_PASSWORD if role in ("admin", "team") else None,
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


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_as_documented(case, fuzz_app):
    token = fuzz_app.config["FUZZ_TOKENS"][_role_for(case.path)]
    case.call_and_validate(app=fuzz_app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
