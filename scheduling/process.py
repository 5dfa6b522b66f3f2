"""The scheduler process (``flask scheduler run``): APScheduler as a clock, and nothing more.

One interval job calls :func:`scheduling.service.tick`. The job store is in memory and holds only
that job; what is due lives in our tables. ``misfire_grace_time=None`` and ``coalesce=True``: a
late run (the machine slept, a tick took long) runs once, late, instead of being dropped or
repeated; ``max_instances=1``: ticks never overlap within the process (across processes they
may, and that is safe). The first tick runs at once on start, so downtime is caught up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timezone

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import Counter

from core.clock import current_clock
from core.errors import describe_error, error_location
from core.extensions import db
from core.metrics import REGISTRY
from scheduling.service import TickReport, tick

log = logging.getLogger(__name__)

TICK_JOB_ID = "krisrutin.tick"
TICK_FAILURES = Counter(
    "krisrutin_scheduler_tick_failures_total", "Ticks that raised (e.g. database unreachable)", registry=REGISTRY
)


def default_scheduler_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


def build_scheduler(app, *, interval_seconds: int, name: str) -> BackgroundScheduler:
    """An un-started scheduler whose one job ticks every ``interval_seconds``, first at once."""
    scheduler = BackgroundScheduler(timezone=timezone.utc, jobstores={"default": MemoryJobStore()})
    scheduler.add_job(
        run_tick,
        trigger=IntervalTrigger(seconds=interval_seconds, timezone=timezone.utc),
        args=(app, name),
        id=TICK_JOB_ID,
        name="tick",
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        # APScheduler is the process's alarm clock and runs on real time; the tick itself asks
        # the application's clock.
        next_run_time=datetime.now(timezone.utc),
    )
    return scheduler


def run_tick(app, name: str) -> TickReport | None:
    """One tick at the application's clock; a failure is logged and counted, and the next run
    tries again (nothing is lost: the work is still due in the database)."""
    with app.app_context():
        try:
            return tick(db_session=db.session, now=current_clock().now(), scheduler_name=name)
        except Exception as error:
            TICK_FAILURES.inc()
            log.error(
                "tick failed; the next tick tries again",
                extra={"scheduler": name, "error": describe_error(error), "where": error_location(error)},
            )
            return None


def run_scheduler(app, *, interval_seconds: int, name: str, stop: threading.Event) -> None:
    """Tick every ``interval_seconds`` until ``stop`` is set (or an exception such as a signal's
    interrupts the wait); then wait for a running tick to finish."""
    scheduler = build_scheduler(app, interval_seconds=interval_seconds, name=name)
    try:
        # Inside the try: a signal that arrives while the first tick is starting still shuts down.
        scheduler.start()
        log.info("scheduler started", extra={"scheduler": name, "interval_seconds": interval_seconds})
        stop.wait()
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        log.info("scheduler stopped", extra={"scheduler": name})
