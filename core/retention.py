"""Gallring: personal data is cleared when the routine no longer needs it.

The periods are in the ``[retention]`` section of config/routine.toml
(:class:`config.routine.RetentionPolicy`). Each domain registers the rules for its own tables in
its ``init_app`` (its ``retention`` module): :func:`register_clearing` for a kind of rows whose
personal fields are cleared, :func:`register_deletion` for a record deleted after its period.
What is cleared, and what is kept:

* ``check_recipients`` -- answered monthly-check recipients older than ``check_months``: the
  call note and who called are cleared; the answer, its time and channel stay (the routine-test
  record, kept ``check_record_years``). Registered by :mod:`contacts.retention`, like
  ``check_corrections`` and ``check_records``.
* ``check_corrections`` -- corrections submitted more than ``check_months`` ago: the proposed
  values, comment and reject reason are cleared; kind, status and times stay.
* ``letter_receipts`` -- receipts of letters of incidents closed more than ``incident_months``
  ago: the name typed when acknowledging and the call outcome are cleared; the times stay.
  Registered by :mod:`crisis.incidents.retention`, like ``notices``.
* ``notices`` -- the originals (raw e-mail/JSON) of notices of those incidents are removed; the
  subject, body, timeline and figures stay.
* ``visits`` -- visits older than ``visit_months``: the comment and who marked it are cleared;
  ``visit_alerts`` and ``visit_events`` of that age: the name typed when acknowledging, the call
  outcome and the event's actor. Registered by :mod:`crisis.visits.retention`.
* ``messages`` -- messages older than ``message_days`` that are no longer waiting to be sent:
  subject, bodies and the address are cleared; kind, status, times and contact id stay.
  Registered by :mod:`notifications.retention`, like ``inbound_sms``.
* ``inbound_sms`` -- SMS replies older than ``message_days``: the text and sender are cleared.

Three records are kept for periods of their own and then deleted, not anonymised:

* ``check_records`` -- the routine-test record: monthly checks that closed more than
  ``check_record_years`` ago are deleted with their recipients and corrections.
* ``user_sessions`` -- logins (server-side sessions, with the address and browser name) are
  deleted 30 days after they ended or were last used (a fixed period: they serve only the user's
  list of where they are logged in). Registered by :mod:`accounts`.
* ``audit_log`` -- audit entries older than ``audit_months`` are deleted (this module's own rule,
  always the last). The database refuses UPDATE and DELETE on ``audit_log`` (triggers); DELETE is
  let through only for rows older than the cutoff this run writes into ``audit_log_purge`` in its
  own transaction and removes again (migration 5e0c7d21a9b3). Each purge is itself written to the
  audit log (how many, before when).

A run applies the clearing rules in the order they were registered (the domains' order in
``create_app``), then the deletions, then the audit-log purge; :func:`kinds` lists them in that
order, as ``flask retention run`` prints them and /admin/retention shows them.

Every run (scheduled once per local day at ``run_time``, or ``flask retention run``) is
recorded in ``retention_runs`` with its counts, and shown to admins on /admin/retention.
Running twice changes nothing the second time: every rule only matches rows not yet cleared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import click
from flask import Blueprint, current_app, render_template
from flask.cli import AppGroup
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, String, delete, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from accounts.access import roles_required
from accounts.roles import Role
from config.routine import RetentionPolicy
from core.clock import current_clock
from core.extensions import db
from core.types import UTCDateTime
from scheduling.registry import planner, task_handler
from scheduling.service import schedule

log = logging.getLogger(__name__)

KIND = "core.retention"
PLANNER = "core.retention"
AUDIT_LOG = "audit_log"
AUDIT_LOG_LABEL = _l("Granskningsloggposter (raderade)")
_REGISTRY = "krisrutin.retention"


class RetentionRun(db.Model):
    """One run of the retention rules, with how many rows each rule cleared."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trigger: Mapped[str] = mapped_column(String(16))  # "scheduler" or "cli"
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)


class AuditLogPurge(db.Model):
    """The cutoff a running purge may delete audit entries before (see the module docstring).
    Written and removed in the same transaction by :func:`run_retention` only."""

    __tablename__ = "audit_log_purge"

    id: Mapped[int] = mapped_column(primary_key=True)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime())


def months_before(moment: datetime, months: int) -> datetime:
    """``moment`` minus whole calendar months (the day clamped to the month's last day)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    day = moment.day
    while True:
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


@dataclass(frozen=True)
class Clearing:
    """What one kind's rule clears in a run: the rows of ``model`` matching ``where`` get
    ``values``; ``pending``, when given, is a further test on each loaded row (does it still hold
    data?) for what the database cannot compare the same way everywhere (JSON)."""

    model: type
    where: object
    values: dict
    pending: Callable[[object], bool] | None = None


ClearingRule = Callable[[RetentionPolicy, datetime], Clearing]
"""``rule(policy, now)``: what its kind clears in a run at ``now``."""


class DeletionRule(Protocol):
    def __call__(self, db_session: Session, *, policy: RetentionPolicy, now: datetime, dry_run: bool) -> int:
        """Delete (with ``dry_run`` only count) the records past their period; returns how many."""


@dataclass
class _Registry:
    labels: dict[str, object] = field(default_factory=dict)
    clearings: dict[str, ClearingRule] = field(default_factory=dict)
    deletions: dict[str, DeletionRule] = field(default_factory=dict)


def _registry(app) -> _Registry:
    return app.extensions.setdefault(_REGISTRY, _Registry())


def _add_kind(app, kind: str, label) -> _Registry:
    registry = _registry(app)
    if kind in registry.labels or kind == AUDIT_LOG:
        raise ValueError(f"retention kind {kind!r} is registered twice")
    registry.labels[kind] = label
    return registry


def register_clearing(app, kind: str, label, rule: ClearingRule) -> None:
    """Clear personal fields of the rows ``rule`` names in every run, counted as ``kind`` and
    shown on /admin/retention as ``label`` (a domain calls this in its ``init_app``)."""
    _add_kind(app, kind, label).clearings[kind] = rule


def register_deletion(app, kind: str, label, rule: DeletionRule) -> None:
    """Delete a record kept for a period of its own in every run (after all clearing rules)."""
    _add_kind(app, kind, label).deletions[kind] = rule


def kinds(app=None) -> tuple[str, ...]:
    """Every kind a run counts, in the order it runs them: the clearing rules, the deletions, the
    audit-log purge."""
    registry = _registry(app or current_app)
    return (*registry.clearings, *registry.deletions, AUDIT_LOG)


def labels(app=None) -> dict[str, str]:
    """The admin page's Swedish label of every kind."""
    registry = _registry(app or current_app)
    return {**{kind: str(label) for kind, label in registry.labels.items()}, AUDIT_LOG: str(AUDIT_LOG_LABEL)}


def run_retention(db_session: Session, *, now: datetime, dry_run: bool = False, trigger: str = "cli") -> RetentionRun:
    """Apply every rule (or, with ``dry_run``, only count what would be cleared), record the run.
    Does not commit."""
    policy: RetentionPolicy = current_app.extensions["krisrutin.routine"].retention
    registry = _registry(current_app)
    counts: dict[str, int] = {}
    for kind, rule in registry.clearings.items():
        clearing = rule(policy, now)
        model = clearing.model
        if clearing.pending is None:
            ids = list(db_session.scalars(select(model.id).where(clearing.where)))
        else:
            rows = db_session.scalars(select(model).where(clearing.where))
            ids = [row.id for row in rows if clearing.pending(row)]
        counts[kind] = len(ids)
        if ids and not dry_run:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                db_session.execute(
                    update(model).where(model.id.in_(chunk)).values(**clearing.values),
                    execution_options={"synchronize_session": False},
                )
    for kind, rule in registry.deletions.items():
        counts[kind] = rule(db_session, policy=policy, now=now, dry_run=dry_run)
    counts[AUDIT_LOG] = _purge_audit_log(db_session, months_before(now, policy.audit_months), dry_run)
    run = RetentionRun(started_at=now, trigger=trigger, dry_run=dry_run, counts=counts)
    db_session.add(run)
    db_session.flush()
    db_session.expire_all()
    log.info("retention run", extra={"dry_run": dry_run, "trigger": trigger, "counts": counts})
    return run


def _purge_audit_log(db_session: Session, cutoff: datetime, dry_run: bool) -> int:
    """Delete audit entries older than ``cutoff`` (the only DELETE the database lets through)."""
    from core import audit

    count = db_session.scalar(select(func.count()).select_from(audit.AuditEntry).where(audit.AuditEntry.at < cutoff))
    if count and not dry_run:
        permit = AuditLogPurge(cutoff=cutoff)
        db_session.add(permit)
        db_session.flush()
        db_session.execute(delete(audit.AuditEntry).where(audit.AuditEntry.at < cutoff))
        db_session.delete(permit)
        audit.record("purge", "audit_log", db_session=db_session, before=cutoff.isoformat(), rows=count)
        db_session.flush()
    return count


# --- scheduling -----------------------------------------------------------------------------------


@planner(PLANNER)
def plan_retention(db_session: Session, now: datetime) -> None:
    """Schedule today's (local) run at ``run_time`` (idempotent: one task per local day)."""
    routine = current_app.extensions["krisrutin.routine"]
    local_day = now.astimezone(routine.timezone).date()
    due = datetime.combine(local_day, routine.retention.run_time, tzinfo=routine.timezone)
    schedule(db_session=db_session, kind=KIND, key=local_day.isoformat(), due_at=due, now=now)


@task_handler(KIND)
def run_scheduled(db_session: Session, task, now: datetime) -> None:
    run_retention(db_session, now=now, trigger="scheduler")


# --- CLI ------------------------------------------------------------------------------------------

retention_cli = AppGroup("retention", help="Gallring: clear personal data older than the retention periods.")


@retention_cli.command("run")
@click.option("--dry-run", is_flag=True, help="Only count what would be cleared.")
def run_command(dry_run: bool) -> None:
    run = run_retention(db.session, now=current_clock().now(), dry_run=dry_run, trigger="cli")
    db.session.commit()
    for kind in kinds():
        click.echo(f"{kind}: {run.counts.get(kind, 0)}")
    if dry_run:
        click.echo("dry run: nothing changed")


# --- admin page -----------------------------------------------------------------------------------

bp = Blueprint("retention", __name__, url_prefix="/admin/retention")


@bp.get("/")
@roles_required(Role.ADMIN)
def index():
    runs = db.session.scalars(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(30)).all()
    routine = current_app.extensions["krisrutin.routine"]
    return render_template("retention/index.html", runs=runs, policy=routine.retention, kinds=kinds(), labels=labels())


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.cli.add_command(retention_cli)
