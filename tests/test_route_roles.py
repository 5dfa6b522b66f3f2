"""Every route of the service with the roles that may use it, as a table reviewed by a
person, and proof that every other role is refused (403) — through an API token (every method)
and through a logged-in session (every page that answers GET).

The table is the security decision: a new route fails ``test_the_table_lists_every_route`` until
it is added here with its roles. ``PUBLIC`` routes answer without authentication (see
tests/test_access.py for why each is public).
"""

from __future__ import annotations

import pytest
from werkzeug.routing import IntegerConverter

from accounts.access import access_rule_for
from core.extensions import db
from tests.conftest import DEFAULT_PASSWORD, log_in

PUBLIC = "public"
ROLES = ("admin", "team", "on_call", "provider", "alarm_operator", "supplier")
STAFF = {"admin", "team", "on_call"}
TEAM = {"admin", "team"}
EVERYONE = set(ROLES)

ROUTE_ROLES = {
    "account.change_password": EVERYONE,
    "account.logout_everywhere": EVERYONE,
    "account.page": EVERYONE,
    "accounts.index": EVERYONE,
    "accounts.login": PUBLIC,
    "accounts.login_code": PUBLIC,
    "accounts.logout": EVERYONE,
    "accounts.recovery_codes": EVERYONE,
    "accounts.totp_enrol": EVERYONE,
    "alerting.page": STAFF,
    "alerting.save": STAFF,
    "alerting.test": STAFF,
    "audit.export": {"admin"},
    "audit.index": {"admin"},
    "check_public.correct": PUBLIC,
    "check_public.link": PUBLIC,
    "checks.calls": TEAM,
    "checks.contact_history": STAFF,
    "checks.decide": TEAM,
    "checks.month": STAFF,
    "checks.months": STAFF,
    "checks.record_call": TEAM,
    "checks.report": STAFF,
    "checks.review": TEAM,
    "contacts_api.contact_history": {"admin", "on_call", "provider", "team"},
    "contacts_api.create_contact": TEAM,
    "contacts_api.create_provider": TEAM,
    "contacts_api.get_contact": {"admin", "on_call", "provider", "team"},
    "contacts_api.get_provider": {"admin", "on_call", "provider", "team"},
    "contacts_api.list_contacts": {"admin", "on_call", "provider", "team"},
    "contacts_api.list_providers": {"admin", "on_call", "provider", "team"},
    "contacts_api.provider_history": {"admin", "on_call", "provider", "team"},
    "contacts_api.update_contact": TEAM,
    "contacts_api.update_provider": TEAM,
    "handovers.acknowledge": STAFF,
    "handovers.page": STAFF,
    "health.healthz": PUBLIC,
    "health.readyz": PUBLIC,
    "incident_export.export_json": STAFF,
    "incident_export.print_page": STAFF,
    "incident_report.report": STAFF,
    "incidents.detail": STAFF,
    "mail_triage.dismiss_view": STAFF,
    "mail_triage.index": STAFF,
    "mail_triage.make_notice_view": STAFF,
    "incidents.index": STAFF,
    "letters.assess": TEAM,
    "letters.calls": STAFF,
    "letters.compose": STAFF,
    "letters.record_call_view": STAFF,
    "links.check_link": TEAM,
    "links.renew_alert": TEAM,
    "links.renew_check_recipient": TEAM,
    "links.renew_receipt": TEAM,
    "links.send_check_link": TEAM,
    "metrics.metrics": {"admin"},
    "notice_api.create_notice": {"admin", "alarm_operator", "on_call", "supplier", "team"},
    "notice_api.create_notice_from_email": {"admin", "alarm_operator", "on_call", "supplier", "team"},
    "notice_api.get_notice": {"admin", "alarm_operator", "on_call", "supplier", "team"},
    "notice_api.update_notice": {"admin", "on_call", "supplier", "team"},
    "notices.edit": STAFF,
    "notices.new": STAFF,
    "notices.original": STAFF,
    "notifications.console": STAFF,
    "notifications.deliveries": STAFF,
    "openapi.document": PUBLIC,
    "privacy.erase_page": TEAM,
    "privacy.extract_json": TEAM,
    "privacy.extract_page": TEAM,
    "provider_page.page": PUBLIC,
    "register.contact_history": STAFF,
    "register.deactivate_contact": TEAM,
    "register.deactivate_provider": TEAM,
    "register.edit_contact": TEAM,
    "register.edit_provider": TEAM,
    "register.export_file": STAFF,
    "register.import_file": TEAM,
    "register.index": STAFF,
    "register.new_contact": TEAM,
    "register.new_provider": TEAM,
    "register.provider": STAFF,
    "register.provider_history": STAFF,
    "register.reactivate_contact": TEAM,
    "register.reactivate_provider": TEAM,
    "retention.index": {"admin"},
    "roster.add_member": TEAM,
    "roster.add_override": TEAM,
    "roster.contact": TEAM,
    "roster.delete_override": TEAM,
    "roster.feed": PUBLIC,
    "roster.move_member": TEAM,
    "roster.page": STAFF,
    "roster.set_active": TEAM,
    "routing.acknowledge": STAFF,
    "supervision.clients": {"admin", "alarm_operator", "team"},
    "supervision.export_file": {"admin", "alarm_operator", "team"},
    "supervision.import_file": {"admin", "alarm_operator", "team"},
    "supervision_api.delete_client": {"admin", "alarm_operator", "team"},
    "supervision_api.list_clients": {"admin", "alarm_operator", "team"},
    "supervision_api.post_failures": {"admin", "alarm_operator", "team"},
    "supervision_api.put_clients": {"admin", "alarm_operator", "team"},
    "suppliers.api_access": TEAM,
    "suppliers.edit": TEAM,
    "suppliers.index": TEAM,
    "suppliers.new": TEAM,
    "tokens.create": {"admin"},
    "tokens.index": {"admin"},
    "tokens.revoke": {"admin"},
    "twilio_webhooks.call_gather": PUBLIC,
    "twilio_webhooks.call_status": PUBLIC,
    "twilio_webhooks.inbound_sms": PUBLIC,
    "twilio_webhooks.status_callback": PUBLIC,
    "visit_page.mark": PUBLIC,
    "visit_page.mine": {"provider"},
    "visit_page.mine_mark": {"provider"},
    "visit_page.page": PUBLIC,
    "visit_report.report": STAFF,
    "visit_views.calls": STAFF,
    "visit_views.dashboard": STAFF,
    "visit_views.record_call_view": STAFF,
    "worktime_api.check_plan": PUBLIC,
    "worktime_api.responsible": PUBLIC,
}


@pytest.fixture
def database_url(sqlite_url):
    """Access does not depend on the database: SQLite only."""
    return sqlite_url


def _url(app, rule) -> str:
    values = {
        argument: ("1" if isinstance(rule._converters[argument], IntegerConverter) else "x")
        for argument in rule.arguments
    }
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **values)


def _routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint, r.rule)):
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_the_table_lists_every_route_with_the_roles_that_may_use_it(app):
    actual = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        access = access_rule_for(app, rule.endpoint)
        actual[rule.endpoint] = PUBLIC if access.public else {role.value for role in access.roles}
    assert actual == ROUTE_ROLES


@pytest.fixture
def users(app, clock, make_token):
    """One user of every role (the provider's account belongs to a provider), with a token."""
    from accounts.service import create_user
    from contacts import register
    from contacts.register import Actor

    made = {}
    with app.app_context():
        provider = register.create_provider(
            db.session, {"name": "Hemtjänst Norr", "kind": "municipal"}, actor=Actor("team"), now=clock.now()
        ).record
        for role in ROLES:
            user = create_user(
                db_session=db.session,
                username=f"user-{role}",
                display_name=f"Test {role}",
                role=role,
                now=clock.now(),
                password=DEFAULT_PASSWORD,
                provider_id=provider.id if role == "provider" else None,
            )
            db.session.flush()
            made[role] = user.id
        db.session.commit()
    return {role: (f"user-{role}", make_token(user_id)) for role, user_id in made.items()}


@pytest.mark.parametrize("role", ROLES)
def test_every_other_role_is_refused_on_every_route(app, users, role):
    username, token = users[role]
    client = app.test_client()
    refused = 0
    for rule, method in _routes(app):
        allowed = ROUTE_ROLES[rule.endpoint]
        if allowed == PUBLIC or role in allowed:
            continue
        response = client.open(_url(app, rule), method=method, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403, (role, method, rule.rule, response.status_code)
        refused += 1
    # The same pages through a logged-in session (GET: no CSRF token needed to be refused).
    browser = app.test_client()
    log_in(browser, username)
    for rule, method in _routes(app):
        allowed = ROUTE_ROLES[rule.endpoint]
        if method != "GET" or allowed == PUBLIC or role in allowed:
            continue
        response = browser.get(_url(app, rule))
        assert response.status_code == 403, (role, "session", rule.rule, response.status_code)
    assert refused > 0  # every role, admin included, has routes it may not use
