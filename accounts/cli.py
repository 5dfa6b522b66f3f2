"""``flask users ...`` and ``flask tokens ...``: accounts for people and for scripts."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from accounts.roles import Role
from accounts.service import AccountError, create_token, create_user, get_user_by_username
from contacts.models import Provider
from core.clock import current_clock
from core.extensions import db

users_cli = AppGroup("users", help="Manage user accounts.")
tokens_cli = AppGroup("tokens", help="Manage API tokens for scripts and integrations.")


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
    try:
        user = create_user(
            db_session=db.session,
            username=username,
            display_name=display_name,
            role=role,
            password=password,
            now=current_clock().now(),
            provider_id=provider_id,
        )
    except AccountError as error:
        db.session.rollback()
        raise click.UsageError(str(error)) from None
    db.session.commit()
    click.echo(f"Created user {user.username} ({user.role}).")


@users_cli.command("unlock")
@click.argument("username")
def unlock_user_command(username: str) -> None:
    """Lift a login lock-out (after five failed attempts) before its 15 minutes are over."""
    from accounts.security import reset_failures

    user = get_user_by_username(db_session=db.session, username=username)
    if user is None:
        raise click.UsageError(f"no user named {username!r}")
    reset_failures(user)
    db.session.commit()
    click.echo(f"Unlocked {user.username}.")


@users_cli.command("reset-totp")
@click.argument("username")
def reset_totp_command(username: str) -> None:
    """Remove a user's second factor (a lost phone); they enrol again at /account/totp."""
    user = get_user_by_username(db_session=db.session, username=username)
    if user is None:
        raise click.UsageError(f"no user named {username!r}")
    user.totp_secret = None
    user.totp_last_step = None
    user.totp_recovery = None
    user.session_version += 1  # sessions made with the old factor end
    db.session.commit()
    click.echo(f"Removed the second factor of {user.username}; they must enrol again.")


@tokens_cli.command("create")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", default="cli", help="What the token is for, e.g. 'alarm centre'.")
def create_token_command(username: str, name: str) -> None:
    """Print a new API token for USER; it is shown once and stored only as a hash."""
    user = get_user_by_username(db_session=db.session, username=username)
    if user is None:
        raise click.UsageError(f"no user named {username!r}")
    if not user.is_active:
        raise click.UsageError(f"user {username!r} is deactivated")
    _, secret = create_token(db_session=db.session, user=user, name=name, now=current_clock().now())
    db.session.commit()
    click.echo(secret)


def init_app(app) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
