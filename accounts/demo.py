"""The demo users, one per staff role, with demo passwords printed by ``flask demo load``."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.models import User
from accounts.roles import Role
from accounts.service import create_user

DEMO_USERS = (
    ("admin", "Ada Admin (demo)", Role.ADMIN, "demo-admin-lösenord"),
    ("team", "Tea Teamsson (demo)", Role.TEAM, "demo-team-lösenord"),
    ("tib", "Tor I Beredskap (demo)", Role.ON_CALL, "demo-tib-lösenord"),
    ("larm", "Lars Larmoperatör (demo)", Role.ALARM_OPERATOR, "demo-larm-lösenord"),
)


def load(db_session: Session, now: datetime) -> list[str]:
    """Create the demo users that do not exist yet; returns how to log in as each, at the
    service's own address (``PUBLIC_BASE_URL``)."""
    base_url = current_app.extensions["krisrutin.settings"].public_base_url  # PUBLIC_BASE_URL
    notes = [f"Log in at {base_url}/login with:"]
    for username, name, role, password in DEMO_USERS:
        if db_session.scalar(select(User).where(User.username == username)) is None:
            create_user(
                db_session=db_session, username=username, display_name=name, role=role, now=now, password=password
            )
        notes.append(f"  {username:<6} {role.value:<15} {password}")
    return notes
