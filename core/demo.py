"""``flask demo load``: clearly fictional demo data for trying the service locally.

Phone numbers are from the range the Swedish regulator (PTS) reserves for fiction
(070-174 06 05 … 070-174 06 99), e-mail addresses use example.se, and organisation numbers are
invented. Loading twice changes nothing. Refused in production.

Each domain adds its part with :func:`register_loader` in its ``init_app``, and the parts load in
that order (the domains' order): the demo users, one per staff role (:mod:`accounts.demo`), the
register's providers and contacts (:mod:`contacts.demo`), the on-call roster (:mod:`crisis.oncall.demo`),
suppliers and one open incident (:mod:`crisis.incidents.demo`), camera-supervised clients
(:mod:`crisis.visits.demo`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from core.clock import current_clock
from core.extensions import db

demo_cli = AppGroup("demo", help="Demo data for local use.")

Loader = Callable[[Session, datetime], "list[str] | None"]
"""``loader(db_session, now)``: adds what of a domain's demo data is missing (does not commit);
may return lines for the person loading (how to log in)."""

_LOADERS = "krisrutin.demo_loaders"


def register_loader(app, loader: Loader) -> None:
    """Load ``loader``'s part of the demo data after the users and the parts registered before."""
    app.extensions.setdefault(_LOADERS, []).append(loader)


def load_demo_data() -> list[str]:
    """Load what of every domain's demo data is missing, in the domains' order; returns the lines
    the loaders have for the person loading."""
    now = current_clock().now()
    notes: list[str] = []
    for loader in current_app.extensions.get(_LOADERS, ()):
        notes.extend(loader(db.session, now) or ())
    db.session.commit()
    return notes


@demo_cli.command("load")
def load_command() -> None:
    """Load fictional providers, contacts and users (with printed demo passwords)."""
    if current_app.extensions["krisrutin.settings"].is_production:
        raise click.UsageError("demo data is not loaded in production")
    notes = load_demo_data()
    click.echo("Demo data loaded.")
    for line in notes:
        click.echo(line)


def init_app(app) -> None:
    app.cli.add_command(demo_cli)
