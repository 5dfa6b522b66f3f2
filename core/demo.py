"""``flask demo load``: clearly fictional demo data for trying the service locally.

Phone numbers are from the range the Swedish regulator (PTS) reserves for fiction
(070-174 06 05 … 070-174 06 99), e-mail addresses use example.se, and organisation numbers are
invented. Loading twice changes nothing. Refused in production.

This module creates the demo users; each domain adds its part with :func:`register_loader` in its
``init_app``, and the parts load after the users in that order (the domains' order): the register's
providers and contacts (:mod:`contacts.demo`), the on-call roster (:mod:`crisis.oncall.demo`),
suppliers and one open incident (:mod:`crisis.incidents.demo`), camera-supervised clients
(:mod:`crisis.visits.demo`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.models import User
from accounts.roles import Role
from accounts.service import create_user
from core.clock import current_clock
from core.extensions import db

demo_cli = AppGroup("demo", help="Demo data for local use.")

DEMO_USERS = (
    ("admin", "Ada Admin (demo)", Role.ADMIN, "demo-admin-lösenord"),
    ("team", "Tea Teamsson (demo)", Role.TEAM, "demo-team-lösenord"),
    ("tib", "Tor I Beredskap (demo)", Role.ON_CALL, "demo-tib-lösenord"),
    ("larm", "Lars Larmoperatör (demo)", Role.ALARM_OPERATOR, "demo-larm-lösenord"),
)

Loader = Callable[[Session, datetime], None]
"""``loader(db_session, now)``: adds what of a domain's demo data is missing; does not commit."""

_LOADERS = "krisrutin.demo_loaders"


def register_loader(app, loader: Loader) -> None:
    """Load ``loader``'s part of the demo data after the users and the parts registered before."""
    app.extensions.setdefault(_LOADERS, []).append(loader)


def load_demo_data() -> list[tuple[str, str, str]]:
    """Create the demo users and the domains' demo data that do not exist yet; returns (user, role,
    password)."""
    now = current_clock().now()
    created = []
    for username, name, role, password in DEMO_USERS:
        if db.session.scalar(select(User).where(User.username == username)) is None:
            create_user(
                db_session=db.session, username=username, display_name=name, role=role, now=now, password=password
            )
        created.append((username, role.value, password))
    for loader in current_app.extensions.get(_LOADERS, ()):
        loader(db.session, now)
    db.session.commit()
    return created


@demo_cli.command("load")
def load_command() -> None:
    """Load fictional providers, contacts and users (with printed demo passwords)."""
    if current_app.extensions["krisrutin.settings"].is_production:
        raise click.UsageError("demo data is not loaded in production")
    users = load_demo_data()
    click.echo("Demo data loaded. Log in at http://127.0.0.1:5000/login with:")
    for username, role, password in users:
        click.echo(f"  {username:<6} {role:<15} {password}")


def init_app(app) -> None:
    app.cli.add_command(demo_cli)
