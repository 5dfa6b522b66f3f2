"""The audit log: who saw or changed personal data, when and from where — and never what."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from contacts import register
from contacts.models import ContactPerson, Provider
from contacts.register import Actor
from core import audit
from core.audit import AuditEntry
from core.extensions import db
from tests.conftest import csrf_token_from, log_in

ANNA = {"name": "Anna Lind", "role_title": "Enhetschef", "mobile": "070-174 06 05", "email": "anna@example.se"}
PERSONAL = ("Anna", "Lind", "0701740605", "+46701740605", "174 06", "anna@example.se", "Bertil", "bertil@")


@pytest.fixture
def seeded(app, clock):
    with app.app_context():
        provider = register.create_provider(
            db.session, {"name": "Hemtjänst Väst", "kind": "kommunal"}, actor=Actor("team"), now=clock.now()
        ).record
        contact = register.create_contact(db.session, provider, ANNA, actor=Actor("team"), now=clock.now()).record
        db.session.commit()
        return provider.id, contact.id


def _rows(app, **where) -> list[AuditEntry]:
    with app.app_context():
        statement = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            statement = statement.where(getattr(AuditEntry, name) == value)
        rows = db.session.scalars(statement).all()
        db.session.expunge_all()
        return rows


def _assert_nothing_personal(app):
    with app.app_context():
        for row in db.session.scalars(select(AuditEntry)):
            text = json.dumps(
                [row.actor_id, row.entity_id, row.detail, row.path, row.ip], ensure_ascii=False, default=str
            )
            for value in PERSONAL:
                assert value not in text, f"{value!r} in audit row {row.id}"


def _team(client, make_user):
    user, username, password = make_user("team")
    log_in(client, username, password)
    return user


def test_an_edit_on_the_register_page_is_recorded_with_who_when_what_and_from_where(
    app, client, clock, make_user, seeded
):
    _provider_id, contact_id = seeded
    user = _team(client, make_user)
    token = csrf_token_from(client.get(f"/register/contacts/{contact_id}/edit").get_data(as_text=True))
    clock.advance(minutes=5)
    response = client.post(
        f"/register/contacts/{contact_id}/edit",
        data={"name": "Anna Lind", "mobile": "070-174 06 06", "email": "anna@example.se", "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 302
    updates = _rows(app, action="update", entity="contact", entity_id=str(contact_id))
    assert len(updates) == 1
    row = updates[0]
    assert (row.actor_kind, row.actor_id) == ("user", str(user))
    assert row.at == clock.now()
    assert row.ip == "10.1.2.3" and row.path == f"/register/contacts/{contact_id}/edit"
    assert "mobile" in row.detail["fields"] and "name" not in row.detail["fields"]
    # Opening the edit form was a view of the contact.
    views = _rows(app, action="view", entity="contact", entity_id=str(contact_id))
    assert views and views[0].actor_id == str(user)
    _assert_nothing_personal(app)


def test_a_change_through_the_api_is_recorded_with_the_token(app, client, clock, make_user, make_token, seeded):
    provider_id, contact_id = seeded
    user, _, _ = make_user("team")
    secret = make_token(user)
    with app.app_context():
        from accounts.models import ApiToken

        token_id = db.session.scalar(select(ApiToken.id))
    headers = {"Authorization": f"Bearer {secret}"}
    created = client.post(
        "/api/v1/contacts",
        json={
            "provider_id": provider_id,
            "name": "Bertil Berg",
            "mobile": "070-111 22 33",
            "email": "bertil@example.se",
        },
        headers=headers,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    new_id = created.get_json()["id"]
    row = _rows(app, action="create", entity="contact", entity_id=str(new_id))[0]
    assert (row.actor_kind, row.actor_id) == ("token", str(token_id))
    assert row.path == "/api/v1/contacts" and row.ip == "127.0.0.1"
    assert {"name", "mobile", "email"} <= set(row.detail["fields"])

    assert client.get(f"/api/v1/contacts/{contact_id}", headers=headers).status_code == 200
    viewed = _rows(app, action="view", entity="contact", entity_id=str(contact_id))
    assert [(r.actor_kind, r.actor_id) for r in viewed] == [("token", str(token_id))]
    _assert_nothing_personal(app)


def test_viewing_a_provider_with_its_contacts_and_exporting_the_register_are_recorded(app, client, make_user, seeded):
    provider_id, _ = seeded
    _team(client, make_user)
    assert client.get(f"/register/providers/{provider_id}").status_code == 200
    assert client.get("/register/export.csv").status_code == 200
    assert _rows(app, action="view", entity="provider", entity_id=str(provider_id))
    assert _rows(app, action="export", entity="register")
    # A page that is not found records nothing.
    assert client.get("/register/providers/999999").status_code == 404
    assert not _rows(app, entity_id="999999")
    _assert_nothing_personal(app)


def test_a_signed_link_view_is_recorded_as_the_link(app):
    with app.test_request_context("/d/abc", environ_base={"REMOTE_ADDR": "192.0.2.7"}):
        from flask import Response

        audit.viewed("letter_receipt", 12, actor_kind="link", actor_id="letter:12")
        audit._write_pending(Response("ok"))
    row = _rows(app, entity="letter_receipt")[0]
    # The path keeps no secret: a malformed token is cut off entirely (a valid one to its row id).
    assert (row.actor_kind, row.actor_id, row.ip, row.path) == ("link", "letter:12", "192.0.2.7", "/d/…")


def test_changes_outside_a_request_are_recorded_as_the_system_and_a_rollback_leaves_no_row(app, clock, seeded):
    provider_id, contact_id = seeded
    with app.app_context():
        db.session.get(ContactPerson, contact_id).role_title = "Chef"
        db.session.flush()
        db.session.rollback()
        assert not db.session.scalars(select(AuditEntry).where(AuditEntry.action == "update")).all()
        db.session.delete(db.session.get(Provider, provider_id).contacts[0])
        db.session.commit()
    deleted = _rows(app, action="delete", entity="contact")
    assert [(r.actor_kind, r.entity_id) for r in deleted] == [("system", str(contact_id))]


def test_the_database_refuses_to_change_or_delete_audit_rows(app, seeded):
    with app.app_context():
        assert db.session.scalar(select(sa.func.count()).select_from(AuditEntry)) > 0
        for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as connection:
                connection.execute(sa.text(statement))
        assert db.session.scalar(select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "x")) == 0


def test_the_audit_page_is_for_admins_only(client, make_user):
    _team(client, make_user)
    assert client.get("/audit").status_code == 403
    assert client.get("/audit.csv").status_code == 403


def test_the_audit_page_filters_pages_and_exports_csv(app, client, clock, make_user, seeded):
    provider_id, contact_id = seeded
    admin, username, password = make_user("admin", username="chefen")
    log_in(client, username, password)
    client.get(f"/register/providers/{provider_id}")
    page = client.get(f"/audit?entity=provider&action=view&entity_id={provider_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Granskningslogg" in html and f"Användare {admin}" in html and "Visade" in html
    assert "2026-11-23 10:00:00" in html  # 09:00 UTC shown in Stockholm time
    assert "1 händelser" in html
    assert "Hemtjänst" not in html
    assert client.get("/audit?entity=nothing").get_data(as_text=True).count("Inga händelser") == 1
    assert client.get("/audit?from=2026-11-24").get_data(as_text=True).count("Inga händelser") == 1
    assert client.get("/audit?from=2026-11-23&to=2026-11-23").status_code == 200
    bad = client.get("/audit?from=igår")
    assert bad.status_code == 400 and "ÅÅÅÅ-MM-DD" in bad.get_data(as_text=True)

    csv_response = client.get("/audit.csv?entity=contact&action=create")
    assert csv_response.status_code == 200
    body = csv_response.get_data()
    assert body.startswith("\ufeff".encode())
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id;tid;aktor")
    assert len(lines) == 2 and f";create;contact;{contact_id};" in lines[1]
    exports = _rows(app, action="export", entity="audit_log")
    assert exports and exports[0].actor_id == str(admin) and exports[0].detail["rows"] == 1
    _assert_nothing_personal(app)


def test_logins_and_logouts_are_recorded(app, client, make_user):
    user_id, username, password = make_user(role="team")
    log_in(client, username, password)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    entries = [(e.action, e.entity, e.entity_id, e.actor_kind, e.actor_id) for e in _rows(app, entity="user")]
    assert ("login", "user", str(user_id), "user", str(user_id)) in entries
    assert ("logout", "user", str(user_id), "user", str(user_id)) in entries


def test_each_domain_has_the_changes_of_its_personal_data_models_recorded(app, clock, make_user):
    """accounts, contacts, incidents and visits each name their models in their init_app: creating
    a row of any of them is on the record under its entity name."""
    from tests.test_retention import build

    make_user("team")
    with app.app_context():
        build(clock)  # providers, contacts, check answers and corrections, receipts, clients, visits
    created = {row.entity for row in _rows(app, action="create")}
    assert created >= {
        "user",
        "provider",
        "contact",
        "check_recipient",
        "check_correction",
        "letter_receipt",
        "client",
        "visit",
    }


def test_a_model_is_audited_under_one_name(app):
    with pytest.raises(ValueError, match="already audited as 'contact'"):
        audit.track(ContactPerson, "person")
    audit.track(ContactPerson, "contact")  # naming it again the same way (another app) changes nothing
