"""``flask tick``, ``flask scheduler run`` and ``flask scheduler status``."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from core.clock import FixedClock, current_clock, install_clock
from core.extensions import db
from core.signals import run_until_signal
from scheduling.process import default_scheduler_name, run_scheduler
from scheduling.service import status_summary, tick

log = logging.getLogger(__name__)

scheduler_cli = AppGroup("scheduler", help="The process that runs due work (durable; safe to run twice).")


class Instant(click.ParamType):
    """An ISO 8601 instant with a UTC offset or Z, e.g. 2026-12-01T08:00:00+01:00."""

    name = "instant"

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 instant such as 2026-12-01T08:00:00+01:00", param, ctx)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(
                f"{value!r} has no UTC offset; write e.g. 2026-12-01T08:00:00+01:00 or 2026-12-01T07:00:00Z",
                param,
                ctx,
            )
        return parsed


@click.command("tick")
@click.option("--at", "at", type=Instant(), default=None, help="Act as if it were this instant (default: now).")
@with_appcontext
def tick_command(at: datetime | None) -> None:
    """Do, once, all work due at --at (default now), and print what was done as JSON.

    Idempotent: a second run at the same instant finds nothing left to do. Exits 1 when a planner
    failed (the JSON names it); failed tasks are recorded on their rows and retried."""
    app = current_app._get_current_object()
    previous = current_clock()
    # Domain code called during the tick asks the clock: it must see --at as now, all along.
    fixed = FixedClock(at or previous.now())
    install_clock(app, fixed)
    try:
        report = tick(db_session=db.session, now=fixed.now())
    finally:
        install_clock(app, previous)
    click.echo(json.dumps(report.as_dict()))
    if report.planner_errors:
        raise click.exceptions.Exit(1)


@scheduler_cli.command("run")
@click.option("--interval", type=click.IntRange(1, 3600), default=None, help="Seconds between ticks.")
@click.option("--name", default=None, help="This process's name in the heartbeats (default host:pid).")
def run_command(interval: int | None, name: str | None) -> None:
    """Tick every SCHEDULER_INTERVAL_SECONDS until SIGTERM or Ctrl-C. Never started by the web app."""
    app = current_app._get_current_object()
    interval = interval or app.extensions["krisrutin.settings"].scheduler_interval_seconds
    run_until_signal(
        lambda: run_scheduler(
            app, interval_seconds=interval, name=name or default_scheduler_name(), stop=threading.Event()
        ),
        log=log,
        what="scheduler",
    )


@scheduler_cli.command("status")
def status_command() -> None:
    """Print task counts, what is overdue, and each scheduler's last tick, as JSON."""
    click.echo(json.dumps(status_summary(db_session=db.session, now=current_clock().now()), indent=2))


def init_app(app) -> None:
    app.cli.add_command(tick_command)
    app.cli.add_command(scheduler_cli)
