"""Paging: a person alerted about something that demands acknowledgement is reached step by step,
SMS, e-mail and phone calls, until they acknowledge — like a pager.

Which alerts are paged
    The caller says so: :func:`crisis.oncall.alerts.alert` with ``page=True`` (an incident's
    alert, reason ``routed``, steps 0, 1 and 2 of the escalation, and the handover alerts). The
    informational reminders (``update_due``, ``expected_end``, ``call_list``) are not paged: they
    go on the channels they name, once.

The rules
    A person's own steps (:class:`~crisis.oncall.models.PagingStep`, "Mina larmregler", edited on
    ``/account/alerting``; steps the routine's limits no longer admit after a change of the file
    are left out), else the routine's default rules (``[paging]``): SMS + e-mail at minute
    0, a call at ``call_after_minutes`` and again at twice it ("no answer, busy or no key: called
    again once"). The limits of personal rules (:func:`validate_steps`): at most ``max_steps``
    steps, the first at minute 0 with SMS or a call (nobody only e-mailed at night), minutes
    increasing and none after ``latest_minute`` — which the routine keeps before
    ``crisis.acknowledge_minutes``, so the escalation to the backup and the manager comes after
    the person's own steps. The backup and the manager are paged by their own rules.

    The team's mailbox and duty phone (an alert with no user, in office hours) follow the default
    rules without their calls, unless ``paging.call_team`` is true: the team at work gets SMS +
    e-mail only.

The engine
    Minute 0 is sent with the alert itself (its SMS and e-mail keyed ``crisis-alert:...`` as
    before; a call at minute 0 keyed ``page:<alert>:0``). Each later step is a scheduled task
    ``oncall.page`` keyed ``alert:<alert id>:<step index>``, due at the alert's ``sent_at`` plus
    the step's minute, holding the step's channels as they were when the alert was sent. Its
    handler does nothing if the alert was acknowledged meanwhile (or its domain says it needs no
    more paging: the incident closed or handed over); else it sends the step: SMS and e-mail as a
    reminder (``oncall.reminder``, "EJ KVITTERAD") and/or a call (``send(channels=(Channel.CALL,))``
    with the domain's message kind, whose ``.call.txt`` is spoken), each with the idempotency key
    ``page:<alert id>:<step index>`` and ``ref=("alert", id)``, and tells the alert's listeners
    ``called`` (the incident's timeline). Acknowledging an alert in any way
    (:func:`crisis.oncall.alerts.acknowledge_alerts`) cancels its pending steps (:func:`stop`).
    Two schedulers page once: the tasks are unique by key and the messages by idempotency key.

    A person without a mobile: their SMS and call steps are left out (logged by alert id only)
    and the e-mail still goes; at minute 0 the e-mail is always sent then.

What a domain lends
    This layer does not know what an alert is about. The domain that owns an alert reason
    registers :func:`register_page_text`: ``fn(db_session, alert) -> PageText | None`` — the
    message kind and context of the call, the words and link of the reminder, or None when the
    alert needs no more paging.

The call's answers
    :func:`on_keypress` and :func:`on_call_status` are the call transport's handlers for calls
    with ``ref=("alert", id)`` (registered in :func:`crisis.oncall.init_app`): "1" acknowledges
    the alert as its person (``via="call"``) and the answer is spoken; a call's status goes to the
    alert's listeners (``call_status``). Neither commits: the webhook that calls them does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.models import User
from crisis.oncall.acknowledge import acknowledge_alert, alert_event
from crisis.oncall.models import Alert, PagingStep
from crisis.oncall.responsible import team_addresses
from notifications.models import Channel, Message, Priority
from notifications.service import send
from scheduling.models import ScheduledTask, TaskStatus
from scheduling.registry import task_handler
from scheduling.service import cancel, schedule

log = logging.getLogger(__name__)

PAGE_TASK = "oncall.page"
REMINDER_KIND = "oncall.reminder"
CHANNELS = ("sms", "email", "call")
_PAGE_TEXTS = "krisrutin.page_texts"


class Step(NamedTuple):
    minute: int
    channels: tuple[str, ...]


class PageText(NamedTuple):
    """What a paging step says: the call's message ``kind`` and ``context`` (its ``.call.txt`` is
    spoken), and for the SMS/e-mail reminder ``what`` was alerted (Swedish words) and the ``link``."""

    kind: str
    context: dict
    what: str
    link: str


PageTextFn = Callable[[Session, Alert], "PageText | None"]


def register_page_text(app: Flask, reason: str, fn: PageTextFn) -> None:
    """Let ``fn`` say what the paging steps of alerts of ``reason`` (exact, or a prefix ending
    with ":") say; None from it stops the paging."""
    app.extensions.setdefault(_PAGE_TEXTS, {})[reason] = fn


def _page_text(db_session: Session, alert: Alert) -> PageText | None:
    texts = current_app.extensions.get(_PAGE_TEXTS, {})
    fn = texts.get(alert.reason) if not alert.reason.endswith(":") else None
    if fn is None:
        prefixes = [key for key in texts if key.endswith(":") and alert.reason.startswith(key)]
        fn = texts[max(prefixes, key=len)] if prefixes else None
    return fn(db_session, alert) if fn is not None else None


def _paging():
    return current_app.extensions["krisrutin.routine"].paging


# --- the rules -----------------------------------------------------------------------------------


def default_steps() -> list[Step]:
    return [Step(minute, channels) for minute, channels in _paging().default_steps()]


def personal_steps(db_session: Session, user_id: int) -> list[Step]:
    """The user's own steps, in order; empty when they follow the default rules."""
    rows = db_session.scalars(select(PagingStep).where(PagingStep.user_id == user_id).order_by(PagingStep.position))
    return [Step(row.minute, row.channels) for row in rows]


def steps_for(db_session: Session, user: User | None) -> list[Step]:
    """The steps that page ``user`` (None: the team's mailbox and duty phone)."""
    if user is None:
        keep = CHANNELS if _paging().call_team else ("sms", "email")
        steps = [Step(s.minute, tuple(c for c in s.channels if c in keep)) for s in default_steps()]
        return [s for s in steps if s.channels]
    paging = _paging()
    own = [s for s in personal_steps(db_session, user.id) if s.minute <= paging.latest_minute]
    return own[: paging.max_steps] or default_steps()


class StepError(NamedTuple):
    row: int | None  # 0-based row of the form, None: the whole list
    field: str  # "minute" or "channels" of the row
    message: str


def validate_steps(steps: list[Step]) -> list[StepError]:
    """The routine's limits on personal rules, as Swedish messages naming the row ("Rad 2: ...")."""
    paging = _paging()
    errors: list[StepError] = []
    if not steps:
        return [StepError(None, "", _("Lägg till minst ett steg, eller välj Återställ standard."))]
    if len(steps) > paging.max_steps:
        errors.append(StepError(None, "", _("Högst %(count)s steg.", count=paging.max_steps)))
    for index, step in enumerate(steps):
        row = index + 1
        if not step.channels:
            errors.append(StepError(index, "channels", _("Rad %(row)s: välj sms, e-post eller samtal.", row=row)))
        if not 0 <= step.minute <= paging.latest_minute:
            errors.append(
                StepError(
                    index,
                    "minute",
                    _(
                        "Rad %(row)s: ange en minut från 0 till %(latest)s.",
                        row=row,
                        latest=paging.latest_minute,
                    ),
                )
            )
        elif index > 0 and step.minute <= steps[index - 1].minute:
            errors.append(StepError(index, "minute", _("Rad %(row)s: ange en senare minut än raden före.", row=row)))
    first = steps[0]
    if first.minute != 0:
        errors.append(StepError(0, "minute", _("Rad 1: det första steget ska gälla direkt (minut 0).")))
    elif first.channels and "sms" not in first.channels and "call" not in first.channels:
        errors.append(
            StepError(0, "channels", _("Rad 1: det första steget ska ha sms eller samtal, inte bara e-post."))
        )
    return errors


def save_steps(db_session: Session, user_id: int, steps: list[Step]) -> None:
    """Replace the user's own steps (empty: back to the default rules). Validate first. Does not commit."""
    for row in db_session.scalars(select(PagingStep).where(PagingStep.user_id == user_id)):
        db_session.delete(row)
    db_session.flush()
    for position, step in enumerate(steps):
        db_session.add(
            PagingStep(
                user_id=user_id,
                position=position,
                minute=step.minute,
                sms="sms" in step.channels,
                email="email" in step.channels,
                call="call" in step.channels,
            )
        )


def describe(steps: list[Step]) -> str:
    """The rules in words: "sms + e-post direkt, samtal efter 5 min, samtal efter 10 min"."""
    names = {"sms": _("sms"), "email": _("e-post"), "call": _("samtal")}
    parts = []
    for step in steps:
        channels = " + ".join(names[c] for c in step.channels)
        if step.minute == 0:
            parts.append(_("%(channels)s direkt", channels=channels))
        else:
            parts.append(_("%(channels)s efter %(minute)s min", channels=channels, minute=step.minute))
    return ", ".join(parts)


# --- the engine ----------------------------------------------------------------------------------


def first_channels(db_session: Session, user: User | None, to_email: str | None, to_mobile: str | None):
    """(the step list, the SMS/e-mail channels of minute 0, whether minute 0 calls)."""
    steps = steps_for(db_session, user)
    first = steps[0].channels if steps and steps[0].minute == 0 else ()
    channels = [Channel(c) for c in first if c in ("sms", "email")]
    calls = "call" in first and bool(to_mobile)
    if not to_mobile and Channel.EMAIL not in channels:
        channels.append(Channel.EMAIL)  # no mobile: the e-mail still goes
    return steps, tuple(channels), calls


def start(
    db_session: Session, alert: Alert, steps: list[Step], *, calls_now: bool, kind: str, context: dict, now: datetime
) -> None:
    """Page ``alert`` after its minute-0 messages were queued: the minute-0 call (if the rules
    say so) now, each later step as a task. Does not commit."""
    if calls_now:
        _call(db_session, alert, 0, kind=kind, context=context, now=now)
    for index, step in enumerate(steps):
        if step.minute == 0:
            continue
        schedule(
            db_session=db_session,
            kind=PAGE_TASK,
            key=f"alert:{alert.id}:{index}",
            due_at=alert.sent_at + timedelta(minutes=step.minute),
            payload={"alert_id": alert.id, "step": index, "channels": list(step.channels)},
            now=now,
        )


def stop(db_session: Session, alert_ids: list[int], now: datetime) -> None:
    """Cancel the pending steps of these alerts (acknowledged). Does not commit."""
    for alert_id in alert_ids:
        keys = db_session.scalars(
            select(ScheduledTask.key).where(
                ScheduledTask.kind == PAGE_TASK,
                ScheduledTask.key.like(f"alert:{alert_id}:%"),
                ScheduledTask.status == TaskStatus.PENDING.value,
            )
        ).all()
        for key in keys:
            cancel(db_session=db_session, kind=PAGE_TASK, key=key, now=now)


def _addresses(db_session: Session, alert: Alert) -> tuple[User | None, str | None, str | None]:
    if alert.user_id is None:
        return None, *team_addresses()
    user = db_session.get(User, alert.user_id)
    return user, (user.email if user else None), (user.mobile if user else None)


def _call(db_session: Session, alert: Alert, step: int, *, kind: str, context: dict, now: datetime) -> None:
    _, _, to_mobile = _addresses(db_session, alert)
    if not to_mobile:
        log.info("paging call left out: no mobile", extra={"alert_id": alert.id, "step": step})
        return
    send(
        db_session=db_session,
        kind=kind,
        context=context,
        channels=(Channel.CALL,),
        priority=Priority.URGENT,
        idempotency_key=f"page:{alert.id}:{step}",
        now=now,
        to_mobile=to_mobile,
        ref=("alert", alert.id),
    )
    alert_event(db_session, alert, "called", now, step=step)


def _superseded(db_session: Session, alert_id: int, step: int, now: datetime) -> bool:
    """Whether a later step of the alert is pending and due at ``now`` as well."""
    keys = db_session.scalars(
        select(ScheduledTask.key).where(
            ScheduledTask.kind == PAGE_TASK,
            ScheduledTask.key.like(f"alert:{alert_id}:%"),
            ScheduledTask.status == TaskStatus.PENDING.value,
            ScheduledTask.due_at <= now,
        )
    ).all()
    return any(int(key.rsplit(":", 1)[1]) > step for key in keys)


@task_handler(PAGE_TASK)
def page_step(db_session: Session, task, now: datetime) -> None:
    """A step of an unacknowledged alert is due: send it (nothing if it was acknowledged, nor when
    a later step of the same alert is due too: a scheduler that was down catches up with one step,
    not with two calls at once)."""
    alert = db_session.get(Alert, task.payload["alert_id"])
    if alert is None or alert.acknowledged_at is not None:
        return
    if _superseded(db_session, alert.id, int(task.payload["step"]), now):
        log.info("paging step superseded by a later one due too", extra={"alert_id": alert.id})
        return
    text = _page_text(db_session, alert)
    if text is None:
        return  # its domain needs no more paging (closed, handed over)
    step = int(task.payload["step"])
    channels = set(task.payload.get("channels", ()))
    if alert.user_id is None and not _paging().call_team:
        channels.discard("call")
    _, to_email, to_mobile = _addresses(db_session, alert)
    if not to_mobile and channels & {"sms", "call"}:
        log.info("paging step without a mobile: SMS and call left out", extra={"alert_id": alert.id, "step": step})
        channels -= {"sms", "call"}
    reminders = tuple(Channel(c) for c in ("sms", "email") if c in channels)
    if reminders:
        send(
            db_session=db_session,
            kind=REMINDER_KIND,
            # A reminder names its alert's code: by now other alerts may be open too.
            context={"what": text.what, "link": text.link, "ack_code": alert.id, "ack_several": True},
            channels=reminders,
            priority=Priority.URGENT,
            idempotency_key=f"page:{alert.id}:{step}",
            now=now,
            to_email=to_email,
            to_mobile=to_mobile,
            ref=("alert", alert.id),
        )
    if "call" in channels:
        _call(db_session, alert, step, kind=text.kind, context=text.context, now=now)


# --- the call's answers (the call transport's handlers for ref "alert") --------------------------


def _alert_of(db_session: Session, message: Message) -> Alert | None:
    if message.ref_type != "alert" or not (message.ref_id or "").isdigit():
        return None
    return db_session.get(Alert, int(message.ref_id))


def on_keypress(db_session: Session, message: Message, digits: str, now: datetime) -> str | None:
    """A key pressed on a paging call: "1" acknowledges the alert as its person; the words to
    speak, or None for any other key. Does not commit."""
    if digits != "1":
        return None
    alert = _alert_of(db_session, message)
    if alert is None:
        return None
    if alert.acknowledged_at is not None:
        return "Larmet är redan kvitterat. Tack."  # spoken: Swedish, as every call
    user = db_session.get(User, alert.user_id) if alert.user_id is not None else None
    what = acknowledge_alert(db_session, alert, user=user, via="call", now=now)
    if what is None:
        return "Larmet är redan kvitterat. Tack."
    return f"Kvitterat. {what[:1].upper()}{what[1:]}. Tack."


def on_call_status(db_session: Session, message: Message, status: str, now: datetime) -> None:
    """A paging call's outcome (ringing, answered, no answer, busy, ...) told to the alert's
    listeners (the incident's timeline). Does not commit."""
    alert = _alert_of(db_session, message)
    if alert is not None:
        alert_event(db_session, alert, "call_status", now, status=status)
