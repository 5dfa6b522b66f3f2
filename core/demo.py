"""``flask demo load``: clearly fictional demo data for trying the service locally.

Phone numbers are from the range the Swedish regulator (PTS) reserves for fiction
(070-174 06 05 … 070-174 06 99), e-mail addresses use example.se, and organisation numbers are
invented. Loading twice changes nothing. Refused in production.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

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

DEMO_PROVIDERS = (
    (
        "Hemtjänst Exempelstad Norr (demo)",
        "212000-0001",
        "municipal",
        (
            ("Karin Exempelsson", "Enhetschef", "+46701740605", "karin.norr@example.se"),
            ("Omar Demosson", "Samordnare natt", "+46701740606", "omar.norr@example.se"),
        ),
    ),
    (
        "Omsorgsbolaget Fiktiv AB (demo)",
        "559999-0206",
        "private",
        (("Lena Påhittad", "Verksamhetschef", "+46701740607", "lena@omsorgsbolaget.example.se"),),
    ),
    (
        "Trygg Vardag Demo AB (demo)",
        "559999-0305",
        "private",
        (("Åsa Övningsdotter", "Kvalitetsansvarig", "+46701740608", "asa@tryggvardag.example.se"),),
    ),
)


def load_demo_data() -> list[tuple[str, str, str]]:
    """Create the demo users and providers that do not exist yet; returns (user, role, password).

    Providers and contacts go through the register's rules (``contacts.register``) as the
    source ``demo``, so they have a history like any other record."""
    from contacts import register

    now = current_clock().now()
    actor = register.Actor("demo")
    created = []
    for username, name, role, password in DEMO_USERS:
        if db.session.scalar(select(User).where(User.username == username)) is None:
            create_user(
                db_session=db.session, username=username, display_name=name, role=role, now=now, password=password
            )
        created.append((username, role.value, password))
    for name, org, kind, contacts in DEMO_PROVIDERS:
        if register.find_provider_by_name(db.session, name) is not None:
            continue
        provider = register.create_provider(
            db.session, {"name": name, "organisation_number": org, "kind": kind}, actor=actor, now=now
        ).record
        for person, title, mobile, email in contacts:
            register.create_contact(
                db.session,
                provider,
                {
                    "name": person,
                    "role_title": title,
                    "mobile": mobile,
                    "email": email,
                    "services": ["camera_supervision", "alarms"],
                },
                actor=actor,
                now=now,
            )
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
