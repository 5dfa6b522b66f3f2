"""``flask dispatcher run|drain|status``: the processes that send what is queued."""

from __future__ import annotations

import json
import logging

import click
from flask import current_app
from flask.cli import AppGroup

from core.clock import current_clock
from core.extensions import db
from core.signals import run_until_signal
from notifications.dispatcher import Dispatcher, default_dispatcher_name
from notifications.service import status_summary

log = logging.getLogger(__name__)

dispatcher_cli = AppGroup("dispatcher", help="Send queued e-mail and SMS (durable; safe to run several).")


def _dispatcher(name: str | None) -> Dispatcher:
    """A dispatcher with the channels the settings configure (SMTP/Twilio, else the console);
    create_app has logged which are live."""
    return Dispatcher(current_app._get_current_object(), name=name or default_dispatcher_name())


@dispatcher_cli.command("run")
@click.option("--name", default=None, help="This process's name on its claims (default host:pid).")
def run_command(name: str | None) -> None:
    """Send queued messages until SIGTERM or Ctrl-C; in-flight sends finish first. Never started
    by the web app."""
    run_until_signal(_dispatcher(name).run_forever, log=log, what="dispatcher")


@dispatcher_cli.command("drain")
@click.option("--timeout", type=click.FloatRange(1, 86400), default=600.0, help="Stop after this many seconds.")
def drain_command(timeout: float) -> None:
    """Send everything due now, print what was done as JSON, and exit (1 if errors occurred)."""
    report = _dispatcher(None).run_until_idle(timeout=timeout)
    click.echo(json.dumps(report.as_dict()))
    if report.errors:
        raise click.exceptions.Exit(1)


@dispatcher_cli.command("status")
def status_command() -> None:
    """Print message counts by channel and status, the oldest due message's age, and the
    channels' states, as JSON."""
    click.echo(json.dumps(status_summary(db_session=db.session, now=current_clock().now()), indent=2))


def init_app(app) -> None:
    """Register the commands."""
    app.cli.add_command(dispatcher_cli)
