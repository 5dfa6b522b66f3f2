"""Signed links in the audit log: a provider's letter page is recorded as the link, not a user,
and the acknowledgement made through it is recorded as a change by that link — without the name."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.audit import AuditEntry
from core.extensions import db
from tests.conftest import csrf_token_from
from tests.crisis.incidents.test_letters_provider_page import app, sent  # noqa: F401  (fixtures)


def _rows(application):
    with application.app_context():
        rows = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        db.session.expunge_all()
        return rows


def test_the_letter_page_and_its_acknowledgement_are_recorded_as_the_link(app, client, clock, sent):  # noqa: F811
    _, path = sent
    before = len(_rows(app))
    token = csrf_token_from(client.get(path, environ_base={"REMOTE_ADDR": "198.51.100.4"}).get_data(as_text=True))
    views = [r for r in _rows(app)[before:] if r.action == "view"]
    assert len(views) == 1
    view = views[0]
    assert view.entity == "letter_receipt" and view.actor_kind == "link"
    assert view.actor_id == f"letter:{view.entity_id}"
    # The stored path is the link's kind and row id, never its nonce and signature.
    assert view.ip == "198.51.100.4" and view.path == f"/d/{view.entity_id}-…"

    clock.advance(minutes=5)
    response = client.post(path, data={"csrf_token": token, "name": "Cia Berg", "local_routines": "yes"})
    assert response.status_code == 303
    updates = [r for r in _rows(app) if r.action == "update" and r.entity == "letter_receipt"]
    assert updates and all(r.actor_kind == "link" and r.actor_id == view.actor_id for r in updates)
    assert all("acknowledged_by" in r.detail["fields"] for r in updates)
    assert all(r.at == clock.now() for r in updates)
    for row in _rows(app):
        assert "Cia" not in json.dumps([row.detail, row.actor_id, row.entity_id], ensure_ascii=False)
