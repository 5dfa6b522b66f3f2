"""The letter receipt's old "local routines started" box becomes the answer to "Har ni startat era
lokala rutiner?": started -> "yes", not started -> "not_yet", not acknowledged stays empty; and
back again. Runs on SQLite and PostgreSQL, from the revision before."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from contacts.models import Provider
from core.extensions import db
from crisis.incidents.models import Letter
from tests.conftest import build_app
from tests.crisis.incidents.test_letters_helpers import make_incident

REVISION = "c4e2a7b19d03"


def test_old_receipts_keep_what_they_said_as_an_answer(database_url, clock):
    app = build_app(database_url, clock)
    with app.app_context():
        script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
        upgrade()
        downgrade(revision=script.get_revision(REVISION).down_revision)
        incident_id = make_incident(clock, supplier=None)  # suppliers' columns are newer
        providers = [Provider(name=f"Utförare {n}", kind="private", created_at=clock.now()) for n in range(3)]
        letter = Letter(
            incident_id=incident_id, number=1, kind="first", party="team", subject="S", body="B",
            apply_local_routines=True, urgent=True, sent_at=clock.now(), recipients=0,
        )  # fmt: skip
        db.session.add_all([*providers, letter])
        db.session.flush()
        for provider, started in zip(providers, (True, False, None), strict=True):
            db.session.execute(
                text(
                    "INSERT INTO letter_receipts (letter_id, provider_id, nonce, local_routines_started)"
                    " VALUES (:letter, :provider, 'n', :started)"
                ),
                {"letter": letter.id, "provider": provider.id, "started": started},
            )
        db.session.commit()
        db.session.remove()

        upgrade()
        rows = db.session.execute(text("SELECT local_routines FROM letter_receipts ORDER BY provider_id")).scalars()
        assert list(rows) == ["yes", "not_yet", None]
        db.session.execute(
            text("UPDATE letter_receipts SET local_routines = 'not_needed' WHERE local_routines IS NULL")
        )
        db.session.commit()
        db.session.remove()

        downgrade(revision=script.get_revision(REVISION).down_revision)
        query = "SELECT local_routines_started FROM letter_receipts ORDER BY provider_id"
        assert list(db.session.execute(text(query)).scalars()) == [True, False, False]
        db.session.remove()
        upgrade()
        db.engine.dispose()
