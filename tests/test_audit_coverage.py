"""Every view or export of personal data is in the audit log.

Each endpoint that shows or exports personal data declares it (``core.audit.audited_view`` /
``audited_export``); every other endpoint is in ``NOT_PERSONAL`` below, a table reviewed by a
person with the reason. A new route fails ``test_every_endpoint_is_declared_or_reviewed`` until
someone decides which it is, and a declared one fails ``test_each_personal_data_view_is_recorded``
until a request to it (``REQUESTS``) leaves its row in the log.

What counts as personal data here: what the service holds about a person — contact persons'
names, roles, numbers and addresses, the names typed on receipts and visits, call notes,
supervised clients' references, messages' addresses and texts, the original e-mails of notices,
staff's alert numbers and addresses, and the audit log itself (addresses, who did what). Not:
organisations (providers, suppliers) on their own, figures, and staff names as the authors of a
step.
"""

from __future__ import annotations

import pytest

from core import audit
from tests.conftest import build_app, csrf_token_from
from tests.test_audit_helpers import MONTH, audit_rows, build_world, last_audit_id

CHANGE = "a change, not a view: the tracked models record it (create/update/delete)"

NOT_PERSONAL = {
    "account.page": "the user's own sessions (where they are logged in), shown only to them",
    "account.change_password": CHANGE,
    "account.logout_everywhere": CHANGE,
    "accounts.index": "the start page: who is responsible now and the month's check plan",
    "accounts.login": "the login form; a login is recorded as a login",
    "accounts.login_code": "the second factor's form; a login is recorded as a login",
    "accounts.logout": "recorded as a logout",
    "accounts.recovery_codes": "the user's own new recovery codes, recorded as a change of the user",
    "accounts.totp_enrol": "the user's own second factor",
    "alerting.page": "the user's own paging rules and own alert mobile, shown only to them",
    "alerting.save": CHANGE,
    "alerting.test": CHANGE + " (the queued test message; the test itself is logged as a test of the member)",
    "checks.decide": CHANGE,
    "checks.months": "figures per month",
    "checks.record_call": CHANGE,
    "contacts_api.create_contact": CHANGE,
    "contacts_api.create_provider": CHANGE,
    "contacts_api.update_contact": CHANGE,
    "contacts_api.update_provider": CHANGE,
    "handovers.acknowledge": CHANGE,
    "handovers.page": "an incident's steps and letters, staff names as the steps' authors",
    "health.healthz": "no data",
    "health.readyz": "the database's and channels' state",
    "incident_report.report": "figures per supplier",
    "incidents.index": "incidents: titles, services, suppliers",
    "letters.assess": "the notice's text and the assessment form",
    "letters.compose": "the letter and the contact details the routine gives every provider",
    "letters.record_call_view": CHANGE,
    "links.renew_alert": CHANGE + "; its GET asks first and names no one",
    "links.renew_check_recipient": CHANGE + "; its GET asks first and names no one",
    "links.renew_receipt": CHANGE + "; its GET asks first and names no one",
    "links.send_check_link": CHANGE + " (the queued messages)",
    "mail_triage.dismiss_view": CHANGE,
    "mail_triage.make_notice_view": CHANGE,
    "metrics.metrics": "counters",
    "notice_api.create_notice": CHANGE,
    "notice_api.create_notice_from_email": CHANGE,
    "notice_api.get_notice": "a notice's text and the incident's figures (the original e-mail is notices.original)",
    "notice_api.update_notice": CHANGE,
    "notices.edit": "the incident's form",
    "notices.new": "an empty notice form",
    "openapi.document": "the API's description",
    "register.deactivate_contact": CHANGE,
    "register.deactivate_provider": CHANGE,
    "register.import_file": "the import form and the file's problems (line, column); each import is a change",
    "register.new_contact": "an empty contact form under the provider's name",
    "register.new_provider": "an empty provider form",
    "register.reactivate_contact": CHANGE,
    "register.reactivate_provider": CHANGE,
    "retention.index": "the retention runs' counts",
    "roster.add_member": CHANGE,
    "roster.add_override": CHANGE,
    "roster.contact": CHANGE,
    "roster.delete_override": CHANGE,
    "roster.feed": "shifts with the on-call staff's names, no contact details (its token is a secret in the path)",
    "roster.move_member": CHANGE,
    "roster.set_active": CHANGE,
    "routing.acknowledge": CHANGE,
    "static": "the stylesheets and scripts",
    "supervision.import_file": CHANGE,
    "supervision_api.delete_client": CHANGE,
    "supervision_api.post_failures": CHANGE,
    "supervision_api.put_clients": CHANGE,
    "suppliers.api_access": CHANGE,
    "suppliers.edit": "a supplier: an organisation's name and operations mailbox",
    "suppliers.index": "suppliers: organisations' names and operations mailboxes",
    "suppliers.new": "an empty supplier form",
    "tokens.create": CHANGE,
    "tokens.index": "API tokens by name with their owners' usernames",
    "tokens.revoke": CHANGE,
    "twilio_webhooks.call_gather": "the gateway's post of a key pressed during our call",
    "twilio_webhooks.call_status": "the gateway's status of our call",
    "twilio_webhooks.inbound_sms": "the gateway's post of an SMS: stored, not shown",
    "twilio_webhooks.status_callback": "the gateway's delivery status",
    "visit_page.mark": CHANGE + ", as the link",
    "visit_page.mine_mark": CHANGE,
    "visit_views.record_call_view": CHANGE,
    "worktime_api.check_plan": "the calendar",
    "worktime_api.responsible": "the calendar",
}

# How each declared endpoint is opened: (who, path). ``admin`` is a logged-in admin, ``provider``
# a logged-in user of Hemtjänst Norr, ``api`` a team member's API token, ``link`` nobody (a
# signed link); the path may use the world's ids and links.
REQUESTS = {
    "audit.export": ("admin", "/audit.csv"),
    "audit.index": ("admin", "/audit"),
    "check_public.correct": ("link", "{links[check]}/korrigera"),
    "check_public.link": ("link", "{links[check]}"),
    "checks.calls": ("admin", f"/checks/{MONTH}/calls"),
    "checks.contact_history": ("admin", "/checks/contacts/{contact_id}"),
    "checks.month": ("admin", f"/checks/{MONTH}"),
    "checks.report": ("admin", f"/checks/{MONTH}/report.csv"),
    "checks.review": ("admin", "/checks/review"),
    "contacts_api.contact_history": ("api", "/api/v1/contacts/{contact_id}/history"),
    "contacts_api.get_contact": ("api", "/api/v1/contacts/{contact_id}"),
    "contacts_api.get_provider": ("api", "/api/v1/providers/{provider_id}"),
    "contacts_api.list_contacts": ("api", "/api/v1/contacts"),
    "contacts_api.list_providers": ("api", "/api/v1/providers"),
    "contacts_api.provider_history": ("api", "/api/v1/providers/{provider_id}/history"),
    "incident_export.export_json": ("admin", "/incidents/{incident_id}/export.json"),
    "incident_export.print_page": ("admin", "/incidents/{incident_id}/print"),
    "incidents.detail": ("admin", "/incidents/{incident_id}"),
    "links.check_link": ("admin", "/links/check-recipients/{recipient_id}"),
    "mail_triage.index": ("admin", "/incidents/mail"),
    "letters.calls": ("admin", "/incidents/calls"),
    "notices.original": ("admin", "/incidents/{incident_id}/notices/{notice_id}/original"),
    "notifications.console": ("admin", "/notifications/console"),
    "notifications.deliveries": ("admin", "/notifications/deliveries/letter/{letter_id}"),
    "privacy.erase_page": ("admin", "/register/contacts/{contact_id}/erase"),
    "privacy.extract_json": ("admin", "/register/contacts/{contact_id}/extract.json"),
    "privacy.extract_page": ("admin", "/register/contacts/{contact_id}/extract"),
    "provider_page.page": ("link", "{links[letter]}"),
    "register.contact_history": ("admin", "/register/contacts/{contact_id}/history"),
    "register.edit_contact": ("admin", "/register/contacts/{contact_id}/edit"),
    "register.edit_provider": ("admin", "/register/providers/{provider_id}/edit"),
    "register.export_file": ("admin", "/register/export.csv"),
    "register.index": ("admin", "/register/"),
    "register.provider": ("admin", "/register/providers/{provider_id}"),
    "register.provider_history": ("admin", "/register/providers/{provider_id}/history"),
    "roster.page": ("admin", "/roster"),
    "supervision.clients": ("admin", "/supervision/clients"),
    "supervision.export_file": ("admin", "/supervision/clients.csv"),
    "supervision_api.list_clients": ("api", "/api/v1/supervised-clients"),
    "visit_page.mine": ("provider", "/visits/mine"),
    "visit_page.page": ("link", "{links[visit]}"),
    "visit_report.report": ("admin", "/visits/report?format=csv"),
    "visit_views.calls": ("admin", "/visits/calls"),
    "visit_views.dashboard": ("admin", "/visits"),
}


def _endpoints(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()}


@pytest.fixture
def url_map_app(sqlite_url, clock):
    """The URL map does not depend on the database: one application, no schema."""
    return build_app(sqlite_url, clock)


def test_every_endpoint_is_declared_or_reviewed(url_map_app):
    app = url_map_app
    declared = set(audit.personal_data_views(app))
    assert not declared & set(NOT_PERSONAL), "declared as showing personal data and reviewed as not"
    undecided = _endpoints(app) - declared - set(NOT_PERSONAL)
    assert not undecided, f"decide whether these show personal data (audited_view) or not (NOT_PERSONAL): {undecided}"
    assert not set(NOT_PERSONAL) - _endpoints(app), "NOT_PERSONAL names endpoints that no longer exist"


def test_every_declared_endpoint_has_a_request_in_the_table(url_map_app):
    assert set(REQUESTS) == set(audit.personal_data_views(url_map_app))


def test_each_personal_data_view_is_recorded(app, clock, make_user, make_token):
    """A request to every declared endpoint answers 200 and leaves its row: the declared entity and
    action, by the one who asked (a user, a token or the signed link)."""
    world = build_world(app, clock, make_user, make_token)
    anonymous = app.test_client()
    clients = {"admin": world.admin, "provider": world.provider, "api": anonymous, "link": anonymous}
    expected_actor = {"admin": "user", "provider": "user", "api": "token", "link": "link"}
    declared = audit.personal_data_views(app)
    problems = []
    for endpoint, (who, template) in sorted(REQUESTS.items()):
        path = template.format(**vars(world))
        before = last_audit_id(app)
        response = clients[who].get(path, headers=world.api if who == "api" else {})
        if response.status_code != 200:
            problems.append(f"{endpoint}: {path} answered {response.status_code}")
            continue
        wanted = declared[endpoint]
        rows = [
            row
            for row in audit_rows(app, before)
            if (row.entity, row.action, row.actor_kind) == (wanted.entity, wanted.action, expected_actor[who])
        ]
        if not rows:
            problems.append(f"{endpoint}: no {wanted.action} of {wanted.entity} by {expected_actor[who]} in the log")
    assert not problems, "\n".join(problems)


def test_a_declared_view_that_records_nothing_itself_records_its_declaration(app, clock, make_user, make_token):
    """The register extract records nothing of its own: the declaration writes the view of the
    contact with the id from the URL, and a contact that does not exist records nothing."""
    world = build_world(app, clock, make_user, make_token)
    before = last_audit_id(app)
    assert world.admin.get(f"/register/contacts/{world.contact_id}/extract").status_code == 200
    assert world.admin.get(f"/register/contacts/{world.contact_id}/extract.json").status_code == 200
    assert world.admin.get("/register/contacts/999999/extract").status_code == 404
    rows = [(r.action, r.entity, r.entity_id, r.detail) for r in audit_rows(app, before)]
    assert rows == [
        ("view", "contact", str(world.contact_id), {"extract": True}),
        ("export", "contact", str(world.contact_id), {"extract": True}),
    ]


def test_a_check_link_is_recorded_as_the_link_and_so_is_its_answer(app, clock, make_user, make_token):
    world = build_world(app, clock, make_user, make_token)
    client = app.test_client()
    before = last_audit_id(app)
    page = client.get(world.links["check"])
    assert page.status_code == 200
    answer = client.post(world.links["check"], data={"answer": "yes", "csrf_token": csrf_token_from(page.text)})
    assert answer.status_code == 303  # then the thanks, by GET
    rows = audit_rows(app, before)
    recipient_id = world.links["check"].removeprefix("/k/").split("-")[0]
    views = [r for r in rows if r.action == "view"]
    assert [(r.entity, r.entity_id, r.actor_kind, r.actor_id) for r in views] == [
        ("check_recipient", recipient_id, "link", f"check_recipient:{recipient_id}")
    ] * 2
    changes = [r for r in rows if r.action == "update" and r.entity == "check_recipient"]
    assert changes and all((r.actor_kind, r.actor_id) == ("link", f"check_recipient:{recipient_id}") for r in changes)
    assert {"answer", "answered_at"} <= {field for r in changes for field in r.detail["fields"]}
