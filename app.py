"""Krisrutin: the crisis routine for welfare technology outages, as a Flask service.

``create_app(config=None)`` builds the web application; ``flask --app app ...`` runs its CLI.
Creating the application never starts the scheduler: that is ``flask --app app scheduler run``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from flask import Flask

import core.database  # noqa: F401  (connection pragmas)
from config.routine import load_routine
from config.settings import ROOT, load_settings
from core.clock import Clock, SystemClock, install_clock
from core.extensions import babel, csrf, db, migrate

log = logging.getLogger("krisrutin")


def create_app(config: Mapping[str, object] | None = None, *, clock: Clock | None = None) -> Flask:
    """Build the application.

    ``config`` overrides environment variables by the same names (``DATABASE_URL``, ``SECRET_KEY``,
    ...); ``clock`` replaces the system clock (tests, ``tick --at``).
    """
    settings = load_settings(config)
    routine = load_routine(settings.routine_file, timezone=settings.timezone)

    from core.logging import configure_logging

    configure_logging(settings)

    app = Flask(__name__, instance_path=str(ROOT / "instance"), template_folder="templates", static_folder="static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),  # the server ends sessions earlier (accounts.access)
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        # CSRF is checked in accounts.access.enforce_access, which knows how a request authenticated.
        WTF_CSRF_CHECK_DEFAULT=False,
        BABEL_DEFAULT_LOCALE="sv",
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "translations"),
        TESTING=settings.env == "testing",
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
    )
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address (login limits, audit log) and scheme as the proxies saw them.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    app.extensions["krisrutin.settings"] = settings
    app.extensions["krisrutin.routine"] = routine
    install_clock(app, clock or SystemClock())
    if settings.secret_key_generated:
        log.warning("SECRET_KEY is not set: using a generated key (development/testing only)")
    if settings.database_url.startswith("sqlite:///"):
        _ensure_sqlite_folder(settings.database_url)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)

    import accounts
    import contacts
    import core.audit
    import core.audit_views
    import core.contact_now
    import core.demo
    import core.errors
    import core.health
    import core.i18n
    import core.labels
    import core.link_pages
    import core.local_time
    import core.metrics
    import core.numbers
    import core.openapi
    import core.retention
    import core.security_headers
    import core.text_input
    import crisis
    import notifications
    import scheduling
    import worktime
    from accounts.access import verify_all_endpoints

    core.numbers.init_app(app)  # the <int:...> converter for ids, before any blueprint adds a rule
    core.i18n.init_app(app, babel)
    core.contact_now.init_app(app)
    core.local_time.init_app(app)
    core.labels.init_app(app)
    core.errors.init_app(app)
    core.metrics.init_app(app)
    core.security_headers.init_app(app)
    core.health.init_app(app)
    core.demo.init_app(app)
    core.retention.init_app(app)
    for package in (accounts, worktime, scheduling, contacts, crisis, notifications):
        package.init_app(app)
    core.text_input.init_app(app)  # after the access rules' hook
    core.link_pages.init_app(app)
    core.audit.init_app(app)
    core.audit_views.init_app(app)
    core.openapi.init_app(app)
    verify_all_endpoints(app)
    return app


def _engine_options(url: str) -> dict:
    if url.startswith("sqlite"):
        # Several threads (web, scheduler) share one file: wait for the lock instead of failing.
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def _ensure_sqlite_folder(url: str) -> None:
    from pathlib import Path

    path = url[len("sqlite:///") :]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
