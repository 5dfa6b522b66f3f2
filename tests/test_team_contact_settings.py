"""TEAM_EMAIL and TEAM_MOBILE are what every provider page names: production warns at start-up
when either is missing, and /readyz says which."""

from __future__ import annotations

import logging

from tests.conftest import build_app, create_schema


def test_production_warns_at_start_up_and_readyz_reports_a_missing_team_phone(sqlite_url, clock, caplog):
    caplog.set_level(logging.WARNING, logger="core.contact_now")
    app = build_app(sqlite_url, clock, KRISRUTIN_ENV="production", TEAM_EMAIL="team@kommun.example.se")
    warnings = [r.getMessage() for r in caplog.records if r.name == "core.contact_now"]
    assert warnings == ["TEAM_MOBILE not set: the providers' pages cannot name the team's mailbox and phone"]
    create_schema(app)
    body = app.test_client().get("/readyz").get_json()
    assert body["team_contact"] == {"TEAM_EMAIL": "ok", "TEAM_MOBILE": "missing"}


def test_a_configured_team_contact_starts_quietly(sqlite_url, clock, caplog):
    caplog.set_level(logging.WARNING, logger="core.contact_now")
    app = build_app(
        sqlite_url, clock, KRISRUTIN_ENV="production", TEAM_EMAIL="team@kommun.example.se", TEAM_MOBILE="+46701740605"
    )
    assert not [r for r in caplog.records if r.name == "core.contact_now"]
    create_schema(app)
    assert app.test_client().get("/readyz").get_json()["team_contact"] == {"TEAM_EMAIL": "ok", "TEAM_MOBILE": "ok"}
