"""Liveness and readiness probes for the process supervisor and load balancer.

``/readyz`` decides readiness by the database alone (it answers, its schema is at the newest
migration). A domain adds what a ready answer reports beside that with
:func:`register_readiness_report` in its ``init_app`` (the channels, :mod:`notifications.health`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from accounts.access import public
from core.clock import current_clock
from core.extensions import db

bp = Blueprint("health", __name__)

ReadinessReport = Callable[[Session, datetime], Mapping[str, object]]
"""``report(db_session, now)``: keys added to a ready answer of /readyz beside ``checks``."""

_REPORTS = "krisrutin.readiness_reports"


def register_readiness_report(app, report: ReadinessReport) -> None:
    """Add ``report``'s keys to every ready answer of /readyz (they never make it unready)."""
    app.extensions.setdefault(_REPORTS, []).append(report)


@bp.get("/healthz")
@public
def healthz():
    """The process is alive and answering."""
    return jsonify(status="ok")


def migration_heads() -> tuple[set[str], set[str]]:
    """(revisions applied to the database, revisions in migrations/)."""
    config = current_app.extensions["migrate"].migrate.get_config()
    script = ScriptDirectory.from_config(config)
    with db.engine.connect() as connection:
        applied = set(MigrationContext.configure(connection).get_current_heads())
    return applied, set(script.get_heads())


@bp.get("/readyz")
@public
def readyz():
    """The database answers and its schema is at the newest migration.

    A ready answer also holds what the domains report (each channel as ``"ok"`` or
    ``"degraded"`` with a ``warnings`` list); what they report leaves the status at 200.
    """
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError:
        db.session.rollback()
        checks["database"] = "unreachable"
        return jsonify(status="unavailable", checks=checks), 503
    applied, expected = migration_heads()
    checks["migrations"] = "current" if applied == expected else "pending"
    ready = applied == expected
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if not ready:
        body["hint"] = "run: flask --app app db upgrade"
    else:
        now = current_clock().now()
        for report in current_app.extensions.get(_REPORTS, ()):
            body.update(report(db.session, now))
    return jsonify(body), 200 if ready else 503


def init_app(app) -> None:
    app.register_blueprint(bp)
