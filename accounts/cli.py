"""``flask users ...`` and ``flask tokens ...``: accounts for people and for scripts."""

from __future__ import annotations

from contextlib import contextmanager

import click
from flask.cli import AppGroup
from sqlalchemy import select

from accounts.roles import Role
from accounts.service import (
    AccountError,
    create_token,
    create_user,
    deactivate_user,
    get_user_by_username,
    reset_totp,
    set_password,
)
from contacts.models import Provider
from core.clock import current_clock
from core.extensions import db

users_cli = AppGroup("users", help="Manage user accounts.")
tokens_cli = AppGroup("tokens", help="Manage API tokens for scripts and integrations.")


def _user_named(username: str):
    user = get_user_by_username(db_session=db.session, username=username)
    if user is None:
        raise click.UsageError(f"no user named {username!r}")
    return user


@contextmanager
def _refusal_as_usage_error():
    """A change the accounts' rules refuse is rolled back and told as a usage error."""
    try:
        yield
    except AccountError as error:
        db.session.rollback()
        raise click.UsageError(str(error)) from None


def _sessions_ended(count: int) -> str:
    return f"{count} session{'' if count == 1 else 's'} ended"


@users_cli.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True, help="The user's role.")
@click.option("--username", prompt=True, help="Login name: lowercase letters, digits, '.', '_' or '-'.")
@click.option("--name", "display_name", default="", help="Name shown in the service (defaults to the username).")
@click.option(
    "--password",
    default=None,
    help="Password (at least 12 characters). Prompted for, hidden, when omitted for staff roles.",
)
@click.option("--provider", "provider_name", default=None, help="For --role provider: the provider's exact name.")
def create_user_command(
    role: str, username: str, display_name: str, password: str | None, provider_name: str | None
) -> None:
    """Create a user, e.g. the first admin: flask --app app users create --role admin."""
    provider_id = None
    if provider_name is not None:
        provider = db.session.scalar(select(Provider).where(Provider.name == provider_name))
        if provider is None:
            raise click.UsageError(f"no provider named {provider_name!r}")
        provider_id = provider.id
    if password is None and Role(role).is_staff:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _refusal_as_usage_error():
        user = create_user(
            db_session=db.session,
            username=username,
            display_name=display_name,
            role=role,
            password=password,
            now=current_clock().now(),
            provider_id=provider_id,
        )
    db.session.commit()
    click.echo(f"Created user {user.username} ({user.role}).")


@users_cli.command("unlock")
@click.argument("username")
def unlock_user_command(username: str) -> None:
    """Lift a login lock-out (after five failed attempts) before its 15 minutes are over."""
    from accounts.security import reset_failures

    user = _user_named(username)
    reset_failures(user)
    db.session.commit()
    click.echo(f"Unlocked {user.username}.")


@users_cli.command("reset-totp")
@click.argument("username")
def reset_totp_command(username: str) -> None:
    """Remove a user's second factor (a lost phone); they enrol again at /account/totp."""
    user = _user_named(username)
    ended = reset_totp(db_session=db.session, user=user, now=current_clock().now())
    db.session.commit()
    click.echo(f"Removed the second factor of {user.username}; they must enrol again ({_sessions_ended(ended)}).")


@users_cli.command("set-password")
@click.argument("username")
@click.option("--password", default=None, help="The new password (at least 12 characters); prompted for when omitted.")
def set_password_command(username: str, password: str | None) -> None:
    """Give USERNAME a new password (a forgotten one); every session of theirs ends."""
    user = _user_named(username)
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with _refusal_as_usage_error():
        ended = set_password(db_session=db.session, user=user, password=password, now=current_clock().now())
    db.session.commit()
    click.echo(f"New password for {user.username} ({_sessions_ended(ended)}).")


@users_cli.command("deactivate")
@click.argument("username")
def deactivate_command(username: str) -> None:
    """Deactivate USERNAME: no more logins or API calls, every session ends; the record stays."""
    user = _user_named(username)
    ended = deactivate_user(db_session=db.session, user=user, now=current_clock().now())
    db.session.commit()
    click.echo(f"Deactivated {user.username} ({_sessions_ended(ended)}).")


@users_cli.command("sessions")
@click.argument("username")
def sessions_command(username: str) -> None:
    """List USERNAME's open sessions: started, last seen (UTC), address and browser."""
    from accounts.access import session_limits
    from accounts.sessions import open_sessions

    user = _user_named(username)
    rows = open_sessions(db_session=db.session, user_id=user.id, now=current_clock().now(), limits=session_limits())
    for row in rows:
        started, seen = f"{row.created_at:%Y-%m-%d %H:%M}", f"{row.last_seen_at:%Y-%m-%d %H:%M}"
        click.echo(f"{started}  {seen}  {row.ip or '-'}  {row.user_agent or '-'}")
    if not rows:
        click.echo(f"{user.username} has no open sessions.")


@users_cli.command("logout")
@click.argument("username")
def logout_command(username: str) -> None:
    """End every session of USERNAME (a lost laptop, a shared computer); their tokens stay."""
    from accounts.sessions import END_BY_ADMIN, end_all

    user = _user_named(username)
    ended = end_all(db_session=db.session, user_id=user.id, now=current_clock().now(), reason=END_BY_ADMIN)
    db.session.commit()
    click.echo(f"Logged {user.username} out everywhere ({_sessions_ended(ended)}).")


@tokens_cli.command("create")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", default="cli", help="What the token is for, e.g. 'alarm centre'.")
def create_token_command(username: str, name: str) -> None:
    """Print a new API token for USER; it is shown once and stored only as a hash."""
    user = _user_named(username)
    if not user.is_active:
        raise click.UsageError(f"user {username!r} is deactivated")
    _, secret = create_token(db_session=db.session, user=user, name=name, now=current_clock().now())
    db.session.commit()
    click.echo(secret)


def init_app(app) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
