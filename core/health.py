"""Liveness and readiness probes for the process supervisor and load balancer."""

from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from accounts.access import public
from core.extensions import db

bp = Blueprint("health", __name__)


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

    Also reports each channel as ``"ok"`` or ``"degraded"`` with a ``warnings`` list; a degraded
    channel leaves the status at 200.
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
        body.update(_channel_health())
    return jsonify(body), 200 if ready else 503


def _channel_health() -> dict:
    """Channels are reported beside the checks, never as one: a failing SMS gateway must not take
    the web service out of the load balancer (the outbox keeps the messages until it recovers)."""
    from core.clock import current_clock
    from notifications.health import channel_summary, degraded_channels

    degraded = degraded_channels(db.session, current_clock().now())
    return {
        "channels": channel_summary(degraded),
        "warnings": [
            f"{state.channel} channel degraded since {state.degraded_since.isoformat()}"
            f" ({state.consecutive_failures} consecutive failures)"
            for state in degraded
        ],
    }


def init_app(app) -> None:
    app.register_blueprint(bp)
