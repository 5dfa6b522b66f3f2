"""Alert fatigue over a weekend, through the scheduler tick: once the officer has acknowledged an
incident, the update-due reminders go by e-mail only (SMS only when routine.toml says so); before
the acknowledgement every reminder goes by SMS and e-mail, as the escalation does."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from accounts.models import User
from core.extensions import db
from crisis.incidents.followups import updates_due
from crisis.incidents.models import Incident
from crisis.incidents.routing import acknowledge_incident
from tests.crisis.incidents.test_routing_helpers import (
    local,
    new_incident,
    outbox,
    put_on_roster,
    routing_app,
    run_tick,
    staff,
)

FRIDAY = date(2026, 11, 27)
MONDAY = date(2026, 11, 30)
KIND = "crisis.followup.update_due"


@pytest.fixture
def app(make_app):
    return routing_app(make_app)


@pytest.fixture
def people(app, make_user):
    ids = staff(app, make_user, ["anna", "bo", "cia"])
    put_on_roster(app, [ids["anna"], ids["bo"], ids["cia"]])
    return ids


def _configure(app, **crisis):
    policy = app.extensions["krisrutin.routine"]
    app.extensions["krisrutin.routine"] = replace(policy, crisis=replace(policy.crisis, **crisis))


def _weekend(app, clock, *, acknowledge: bool) -> tuple[int, int]:
    """An outage at Friday 17:30, acknowledged by the officer at 17:40 (or never), no update sent
    all weekend; the tick every hour until Monday 07:40. Returns the reminders' (SMS, e-mails)."""
    incident_id = new_incident(app, clock, local(FRIDAY, 17, 30))
    if acknowledge:
        clock.set(local(FRIDAY, 17, 40))
        with app.app_context():
            incident = db.session.get(Incident, incident_id)
            officer = db.session.get(User, incident.handler_user_id)
            assert acknowledge_incident(db.session, incident, officer, clock.now())
            db.session.commit()
    instant = local(FRIDAY, 17, 40)
    while instant <= local(MONDAY, 7, 40):
        run_tick(app, clock, instant)
        instant += timedelta(hours=1)
    sent = outbox(app, KIND)
    return sum(key.endswith(":sms") for _, key, _, _ in sent), sum(key.endswith(":email") for _, key, _, _ in sent)


def _expected(app) -> int:
    """Reminders the configured interval gives from Friday 17:30 to Monday 07:40."""
    interval = timedelta(minutes=app.extensions["krisrutin.routine"].crisis.update_interval_minutes)
    return int((local(MONDAY, 7, 40) - local(FRIDAY, 17, 30)) / interval)


def test_after_the_acknowledgement_update_reminders_go_by_email_only(app, clock, people):
    sms, emails = _weekend(app, clock, acknowledge=True)
    assert _expected(app) == 31  # every two hours, as routine.toml says
    assert (sms, emails) == (0, 31)
    with app.app_context():
        due = updates_due(db.session, clock.now())
        assert [row["incident"].title for row in due] == ["Larmcentralen nere"]
        assert due[0]["since"] == local(FRIDAY, 17, 30)


def test_sms_reminders_after_the_acknowledgement_only_when_configured(app, clock, people):
    _configure(app, update_due_sms_after_acknowledge=True, update_interval_minutes=240)
    sms, emails = _weekend(app, clock, acknowledge=True)
    assert (sms, emails) == (_expected(app), _expected(app)) == (15, 15)


def test_before_the_acknowledgement_every_reminder_still_goes_by_sms_and_email(app, clock, people):
    sms, emails = _weekend(app, clock, acknowledge=False)
    assert (sms, emails) == (31, 31)
