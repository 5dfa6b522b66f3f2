"""Text stored before the text boundary existed: the migration replaces the characters the
boundary refuses with U+FFFD everywhere but in the audit log and the notices' originals (kept
byte for byte), and the incident page that a lone surrogate had broken for good opens again.
Runs on SQLite and PostgreSQL, online, from the revision before."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from contacts.models import Provider
from core.extensions import db
from crisis.incidents import timeline
from crisis.incidents.models import IncidentEvent, Notice
from tests.conftest import build_app, log_in
from tests.crisis.incidents.test_letters_helpers import make_incident

REVISION = "d41c7e5a9f20"


def test_text_stored_before_the_boundary_loses_the_refused_characters(database_url, clock, make_user):
    app = build_app(database_url, clock)
    with app.app_context():
        script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
        upgrade()
        downgrade(revision=script.get_revision(REVISION).down_revision)
        db.session.add(Provider(name="Omsorg\u202e AB", kind="private", created_at=clock.now()))
        incident_id = make_incident(clock, supplier=None)  # suppliers' columns are newer
        timeline.record(db.session, incident_id, "note", clock.now(), text="K\ud800", fields=["a\x1bb"])
        db.session.add(
            Notice(
                incident_id=incident_id,
                source="email",
                subject="Störning\x07 kameror",
                body="Text\u2066 här",
                original="From: drift@telia.se\r\nSubject: Fr\x85n\r\n\r\nText",
                original_type="message/rfc822; charset=latin-1",
                received_at=clock.now(),
            )
        )
        db.session.commit()
        db.session.remove()

        upgrade()

        assert db.session.scalars(select(Provider.name)).all() == ["Omsorg\ufffd AB"]
        note = db.session.scalars(select(IncidentEvent).where(IncidentEvent.kind == "note")).one()
        assert note.detail == {"text": "K\ufffd", "fields": ["a\ufffdb"]}
        notice = db.session.scalars(select(Notice)).one()
        assert (notice.subject, notice.body) == ("Störning\ufffd kameror", "Text\ufffd här")
        assert notice.original == "From: drift@telia.se\r\nSubject: Fr\x85n\r\n\r\nText"
        db.session.remove()

    _, username, password = make_user("team")
    client = app.test_client()
    log_in(client, username, password)
    assert client.get(f"/incidents/{incident_id}").status_code == 200
    with app.app_context():
        db.engine.dispose()
