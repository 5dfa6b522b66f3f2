"""Gallring: personal data is cleared when the routine no longer needs it (issue 7).

The periods are in the ``[retention]`` section of config/routine.toml
(:class:`config.routine.RetentionPolicy`). What is cleared, and what is kept:

* ``check_recipients`` -- answered monthly-check recipients older than ``check_months``: the
  call note and who called are cleared; the answer, its time and channel stay (the routine-test
  record, kept ``check_record_years``).
* ``check_corrections`` -- corrections submitted more than ``check_months`` ago: the proposed
  values, comment and reject reason are cleared; kind, status and times stay.
* ``letter_receipts`` -- receipts of letters of incidents closed more than ``incident_months``
  ago: the name typed when acknowledging and the call outcome are cleared; the times stay.
* ``notices`` -- the originals (raw e-mail/JSON) of notices of those incidents are removed; the
  subject, body, timeline and figures stay.
* ``visits`` -- visits older than ``visit_months``: the comment and who marked it are cleared;
  ``visit_alerts`` and ``visit_events`` of that age: the name typed when acknowledging, the call
  outcome and the event's actor.
* ``messages`` -- messages older than ``message_days`` that are no longer waiting to be sent:
  subject, bodies and the address are cleared; kind, status, times and contact id stay.
* ``inbound_sms`` -- SMS replies older than ``message_days``: the text and sender are cleared.

Two records are kept for periods of their own and then deleted, not anonymised:

* ``check_records`` -- the routine-test record: monthly checks that closed more than
  ``check_record_years`` ago are deleted with their recipients and corrections.
* ``audit_log`` -- audit entries older than ``audit_months`` are deleted. The database refuses
  UPDATE and DELETE on ``audit_log`` (triggers); DELETE is let through only for rows older than
  the cutoff this run writes into ``audit_log_purge`` in its own transaction and removes again
  (migration 5e0c7d21a9b3). Each purge is itself written to the audit log (how many, before when).

Every run (scheduled once per local day at ``run_time``, or ``flask retention run``) is
recorded in ``retention_runs`` with its counts, and shown to admins on /admin/retention.
Running twice changes nothing the second time: every rule only matches rows not yet cleared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import Blueprint, current_app, render_template
from flask.cli import AppGroup
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Boolean, String, and_, delete, func, or_, select, update
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
KINDS = (
    "check_recipients",
    "check_corrections",
    "letter_receipts",
    "notices",
    "visits",
    "visit_alerts",
    "visit_events",
    "messages",
    "inbound_sms",
    "check_records",
    "audit_log",
)


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
class _Rule:
    kind: str
    model: type
    where: object
    values: dict
    pending: Callable | None = None  # a further test on the loaded row (still holds data?)


def _rules(policy: RetentionPolicy, now: datetime) -> list[_Rule]:
    from contacts.check_models import CheckCorrection, CheckRecipient
    from crisis.incidents.models import Incident, IncidentStatus, Letter, LetterReceipt, Notice
    from crisis.visits.models import Visit, VisitAlert, VisitEvent
    from notifications.models import InboundSms, Message, MessageStatus

    check_cutoff = months_before(now, policy.check_months)
    incident_cutoff = months_before(now, policy.incident_months)
    visit_cutoff = months_before(now, policy.visit_months)
    message_cutoff = now - timedelta(days=policy.message_days)

    closed_incidents = select(Incident.id).where(
        Incident.status.in_((IncidentStatus.RESOLVED.value, IncidentStatus.NOT_RELEVANT.value)),
        func.coalesce(Incident.resolved_at, Incident.updated_at, Incident.created_at) < incident_cutoff,
    )
    old_letters = select(Letter.id).where(Letter.incident_id.in_(closed_incidents))
    waiting = (MessageStatus.QUEUED.value, MessageStatus.SENDING.value)
    return [
        _Rule(
            "check_recipients",
            CheckRecipient,
            and_(
                CheckRecipient.answered_at.is_not(None),
                CheckRecipient.answered_at < check_cutoff,
                or_(CheckRecipient.call_note.is_not(None), CheckRecipient.called_by_id.is_not(None)),
            ),
            {"call_note": None, "called_by_id": None},
        ),
        _Rule(
            "check_corrections",
            CheckCorrection,
            CheckCorrection.submitted_at < check_cutoff,
            {"proposed": {}, "comment": "", "reject_reason": None},
            # JSON is not comparable the same way on both databases: filtered in Python
            pending=lambda row: bool(row.proposed or row.comment or row.reject_reason),
        ),
        _Rule(
            "letter_receipts",
            LetterReceipt,
            and_(
                LetterReceipt.letter_id.in_(old_letters),
                or_(LetterReceipt.acknowledged_by.is_not(None), LetterReceipt.call_outcome.is_not(None)),
            ),
            {"acknowledged_by": None, "call_outcome": None},
        ),
        _Rule(
            "notices",
            Notice,
            and_(Notice.incident_id.in_(closed_incidents), Notice.original.is_not(None)),
            {"original": None, "original_type": None},
        ),
        _Rule(
            "visits",
            Visit,
            and_(
                func.coalesce(Visit.marked_at, Visit.created_at) < visit_cutoff,
                or_(Visit.comment.is_not(None), Visit.marked_by.is_not(None)),
            ),
            {"comment": None, "marked_by": None},
        ),
        _Rule(
            "visit_alerts",
            VisitAlert,
            and_(
                VisitAlert.created_at < visit_cutoff,
                or_(VisitAlert.acknowledged_by.is_not(None), VisitAlert.call_outcome.is_not(None)),
            ),
            {"acknowledged_by": None, "call_outcome": None},
        ),
        _Rule(
            "visit_events",
            VisitEvent,
            and_(VisitEvent.at < visit_cutoff, VisitEvent.actor.is_not(None)),
            {"actor": None},
        ),
        _Rule(
            "messages",
            Message,
            and_(
                Message.created_at < message_cutoff,
                Message.status.not_in(waiting),
                or_(
                    Message.body_text != "",
                    Message.body_html.is_not(None),
                    Message.subject.is_not(None),
                    Message.to_address != "",
                ),
            ),
            {"body_text": "", "body_html": None, "subject": None, "to_address": ""},
        ),
        _Rule(
            "inbound_sms",
            InboundSms,
            and_(InboundSms.received_at < message_cutoff, or_(InboundSms.body != "", InboundSms.from_address != "")),
            {"body": "", "from_address": ""},
        ),
    ]


def run_retention(db_session: Session, *, now: datetime, dry_run: bool = False, trigger: str = "cli") -> RetentionRun:
    """Apply every rule (or, with ``dry_run``, only count what would be cleared), record the run.
    Does not commit."""
    policy: RetentionPolicy = current_app.extensions["krisrutin.routine"].retention
    counts: dict[str, int] = {}
    for rule in _rules(policy, now):
        if rule.pending is None:
            ids = list(db_session.scalars(select(rule.model.id).where(rule.where)))
        else:
            ids = [row.id for row in db_session.scalars(select(rule.model).where(rule.where)) if rule.pending(row)]
        counts[rule.kind] = len(ids)
        if ids and not dry_run:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                db_session.execute(
                    update(rule.model).where(rule.model.id.in_(chunk)).values(**rule.values),
                    execution_options={"synchronize_session": False},
                )
    counts["check_records"] = _delete_check_records(
        db_session, months_before(now, 12 * policy.check_record_years), dry_run
    )
    counts["audit_log"] = _purge_audit_log(db_session, months_before(now, policy.audit_months), dry_run)
    run = RetentionRun(started_at=now, trigger=trigger, dry_run=dry_run, counts=counts)
    db_session.add(run)
    db_session.flush()
    db_session.expire_all()
    log.info("retention run", extra={"dry_run": dry_run, "trigger": trigger, "counts": counts})
    return run


def _delete_check_records(db_session: Session, cutoff: datetime, dry_run: bool) -> int:
    """Delete monthly checks closed before ``cutoff`` with their recipients and corrections."""
    from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck

    check_ids = list(db_session.scalars(select(MonthlyCheck.id).where(MonthlyCheck.closes_at < cutoff)))
    if check_ids and not dry_run:
        recipients = select(CheckRecipient.id).where(CheckRecipient.check_id.in_(check_ids))
        db_session.execute(delete(CheckCorrection).where(CheckCorrection.recipient_id.in_(recipients)))
        db_session.execute(delete(CheckRecipient).where(CheckRecipient.check_id.in_(check_ids)))
        db_session.execute(delete(MonthlyCheck).where(MonthlyCheck.id.in_(check_ids)))
    return len(check_ids)


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
    for kind in KINDS:
        click.echo(f"{kind}: {run.counts.get(kind, 0)}")
    if dry_run:
        click.echo("dry run: nothing changed")


# --- admin page -----------------------------------------------------------------------------------

bp = Blueprint("retention", __name__, url_prefix="/admin/retention")

KIND_LABELS = {
    "check_recipients": _l("Besvarade kontrollmottagare"),
    "check_corrections": _l("Rättelser"),
    "letter_receipts": _l("Kvittenser på utskick"),
    "notices": _l("Originalmeddelanden"),
    "visits": _l("Besök"),
    "visit_alerts": _l("Besökslarm"),
    "visit_events": _l("Besökshändelser"),
    "messages": _l("Meddelanden"),
    "inbound_sms": _l("Inkomna sms"),
    "check_records": _l("Månadskontroller (raderade)"),
    "audit_log": _l("Granskningsloggposter (raderade)"),
}


@bp.get("/")
@roles_required(Role.ADMIN)
def index():
    runs = db.session.scalars(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(30)).all()
    routine = current_app.extensions["krisrutin.routine"]
    labels = {kind: str(label) for kind, label in KIND_LABELS.items()}
    return render_template("retention/index.html", runs=runs, policy=routine.retention, kinds=KINDS, labels=labels)


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.cli.add_command(retention_cli)
