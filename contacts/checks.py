"""The monthly contact check, run by the scheduler tick: open the month's check, invite every
active contact by e-mail and SMS, remind the silent ones, include contacts added during the
month, and take "JA"/"NEJ" answers by SMS.

What runs when (all through :func:`scheduling.service.tick`)
    The planner ``contacts.monthly_check`` runs at every tick and schedules, for the current
    local month (Europe/Stockholm) of the routine's plan (:func:`worktime.calendar.check_plan`):

    - ``contacts.check.open`` key ``"2027-01"``, due at the send instant (send day at the
      configured local time): creates the :class:`MonthlyCheck` and schedules invitation batches;
    - ``contacts.check.remind`` keys ``"2027-01:1"`` and ``"2027-01:2"``, due at the reminder
      instants (calendar days, at the same local time, so a month that crosses the change to
      summer time still sends at 08:00 local): schedules reminder batches.

    A batch (``contacts.check.batch``) handles at most :data:`BATCH_SIZE` contacts in its own
    transaction, so a month of 50,000 contacts is 50 short transactions instead of one long one.
    Every task marks itself done in the transaction of its effect (see ``scheduling.service``),
    and every message has an idempotency key (``check:{month}:{contact_id}:invite``,
    ``...:reminder1``, ``...:reminder2``), so ticks at every minute, once at each due instant,
    or twice at the same instant queue the same messages, once each.

Decisions (where the issue is silent)
    - Invitation batches cover ranges of contact ids; the last range is open-ended. A batch adds
      the active contacts of its range that have no recipient row yet, so a contact committed
      while the check was being opened (the listener could not see the check yet) is still
      invited by the batches that run after it.
    - A check whose send instant was missed (the service was down) opens at the first tick
      afterwards — but not on or after the month's call day: then the month is skipped and a
      warning logged, so that a service deployed late in a month does not send everybody a check
      days before the next one.
    - Reminder ``n`` goes to recipients who have not answered, whose contact and provider are
      still active, and who were invited before the local day of the reminder (a contact added
      on reminder day 1 at 07:00 does not get a reminder at 08:00 the same day). When a reminder
      runs late and the next reminder is already due, only the next one is sent (nobody gets two
      reminders at once). Reminders are not sent after the check has closed.
    - Contacts added or reactivated while a check is open (``contacts.register``'s
      ``on_contact_reachable``) get a recipient row and their invitation in the same transaction
      as the register change. A changed e-mail address or mobile number of a contact who has not
      answered gets a fresh link (new nonce: the links sent to the old address stop working) and
      a new invitation on both channels, keyed ``check:{month}:{contact_id}:invite:{nonce}``;
      so does a reactivated contact who had been invited before. A contact who has answered is
      left alone.
    - A contact deactivated during the month keeps their recipient row (the record of what was
      sent) but gets no more reminders and is left off the call list
      (:func:`contacts.check_queries.call_list`). Their link still works until the check closes.
      A provider reactivated during the month does not re-include its contacts until the next
      month (``contacts.register`` does not notify listeners for providers).
    - SMS answers: the whole message, ignoring case, spaces and punctuation, must be an answer
      word (``ja``/``yes`` or ``nej``/``no``), optionally followed by ``tack``: "JA", " ja. ",
      "Ja!", "Nej tack". Anything longer ("ja men numret är fel") is not taken as an answer: the
      contact gets a short help text with their link. Replies are queued (priority NORMAL, ahead
      of the bulk check messages) with the key ``check-sms:{inbound_id}:reply``; the webhook
      itself answers with empty TwiML. Texts that are not answers from contacts without an open
      check are left to the other handlers (and the "not read by anyone" reply).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import event, exists, select, update
from sqlalchemy.orm import Session

from contacts.check_links import link_url, new_nonce, record_answer
from contacts.check_models import CheckRecipient, MonthlyCheck
from contacts.check_queries import REF_TYPE, check_for_month
from contacts.models import ContactPerson, Provider
from contacts.register import on_contact_reachable
from core.database import dialect_insert
from core.local_time import MONTH_NAMES
from notifications.bulk import Outgoing, send_many
from notifications.inbound import inbound_handler
from notifications.models import Channel, Priority
from notifications.service import send
from scheduling.registry import planner, task_handler
from scheduling.service import get_task, schedule
from worktime.calendar import CheckPlan, check_plan, reminder_at, send_at

log = logging.getLogger(__name__)

PLANNER = "contacts.monthly_check"
KIND_OPEN = "contacts.check.open"
KIND_REMIND = "contacts.check.remind"
KIND_BATCH = "contacts.check.batch"
BATCH_SIZE = 1000
INVITE = "check.invite"
REMINDER = "check.reminder"
CHANNELS = (Channel.EMAIL, Channel.SMS)

# --- settings of the running application --------------------------------------------------------


def _policy():
    return current_app.extensions["krisrutin.routine"]


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _base_url() -> str:
    return current_app.extensions["krisrutin.settings"].public_base_url


def _month_of(month: str) -> tuple[int, int]:
    year, number = month.split("-")
    return int(year), int(number)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _local_midnight(day: date, policy) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=policy.timezone)


def month_label(month: str) -> str:
    year, number = _month_of(month)
    return f"{MONTH_NAMES[number - 1]} {year}"


def _last_day_label(check: MonthlyCheck, policy) -> str:
    """The last local day to answer, as the invitation says it: the day before the next check is
    sent, e.g. "31 januari" (the link works until the next check opens, that morning)."""
    last = check.closes_at.astimezone(policy.timezone).date() - timedelta(days=1)
    return f"{last.day} {MONTH_NAMES[last.month - 1]}"


# --- planning -------------------------------------------------------------------------------------


@planner(PLANNER)
def plan_monthly_check(db_session: Session, now: datetime) -> None:
    """Schedule the current local month's opening and reminders (idempotent)."""
    policy = _policy()
    local = now.astimezone(policy.timezone)
    plan = check_plan(local.year, local.month, policy)
    if local.date() >= plan.call_on and get_task(db_session=db_session, kind=KIND_OPEN, key=plan.month) is None:
        return  # too late for this month's check (see open_check); the next month is planned on its 1st
    schedule(
        db_session=db_session,
        kind=KIND_OPEN,
        key=plan.month,
        due_at=send_at(plan, policy),
        payload={"month": plan.month},
        now=now,
    )
    for index in range(len(plan.reminders)):
        schedule(
            db_session=db_session,
            kind=KIND_REMIND,
            key=f"{plan.month}:{index + 1}",
            due_at=reminder_at(plan, index, policy),
            payload={"month": plan.month, "number": index + 1},
            now=now,
        )


def _plan(month: str) -> CheckPlan:
    year, number = _month_of(month)
    return check_plan(year, number, _policy())


# --- opening the month's check --------------------------------------------------------------------


@task_handler(KIND_OPEN)
def open_check(db_session: Session, task, now: datetime) -> None:
    month = task.payload["month"]
    policy = _policy()
    if check_for_month(db_session, month) is not None:
        return
    plan = _plan(month)
    if now.astimezone(policy.timezone).date() >= plan.call_on:
        log.warning("monthly check skipped: its send instant passed before the call day", extra={"month": month})
        return
    year, number = _month_of(month)
    closes_at = send_at(check_plan(*_next_month(year, number), policy), policy)
    check = MonthlyCheck(
        month=month,
        send_on=plan.send_on,
        first_reminder_on=plan.reminders[0] if plan.reminders else plan.send_on,
        second_reminder_on=plan.reminders[1] if len(plan.reminders) > 1 else plan.reminders[-1],
        call_on=plan.call_on,
        opened_at=now,
        closes_at=closes_at,
        created_at=now,
    )
    db_session.add(check)
    db_session.flush()
    ids = list(db_session.scalars(_active_contacts_query(select(ContactPerson.id)).order_by(ContactPerson.id)))
    bounds = [ids[end - 1] for end in range(BATCH_SIZE, len(ids), BATCH_SIZE)]
    _schedule_batches(db_session, month, "invite", 0, bounds, now)
    log.info("monthly check opened", extra={"month": month, "check_id": check.id, "contacts": len(ids)})


def _active_contacts_query(query):
    return query.join(Provider, Provider.id == ContactPerson.provider_id).where(
        ContactPerson.is_active.is_(True), Provider.is_active.is_(True)
    )


def _schedule_batches(db_session: Session, month: str, step: str, number: int, bounds: list[int], now) -> None:
    """One batch per id range ``(lo, hi]``; the last range has no upper end."""
    lows = [0, *bounds]
    highs = [*bounds, None]
    for index, (low, high) in enumerate(zip(lows, highs, strict=True)):
        schedule(
            db_session=db_session,
            kind=KIND_BATCH,
            key=f"{month}:{step}{number or ''}:{index}",
            due_at=now,
            payload={"month": month, "step": step, "number": number, "lo": low, "hi": high},
            now=now,
        )


@task_handler(KIND_BATCH)
def run_batch(db_session: Session, task, now: datetime) -> None:
    payload = task.payload
    check = check_for_month(db_session, payload["month"])
    if check is None or not check.is_open(now):
        return
    if payload["step"] == "invite":
        _invite_batch(db_session, check, payload["lo"], payload["hi"], now)
    else:
        _reminder_batch(db_session, check, payload["number"], payload["lo"], payload["hi"], now)


def _invite_batch(db_session: Session, check: MonthlyCheck, low: int, high: int | None, now: datetime) -> None:
    in_range = [ContactPerson.id > low] + ([ContactPerson.id <= high] if high is not None else [])
    has_row = exists().where(CheckRecipient.check_id == check.id, CheckRecipient.contact_id == ContactPerson.id)
    new = db_session.execute(
        _active_contacts_query(select(ContactPerson.id, ContactPerson.provider_id)).where(*in_range, ~has_row)
    ).all()
    if new:
        rows = [
            {
                "check_id": check.id,
                "contact_id": contact_id,
                "provider_id": provider_id,
                "added_at": now,
                "added_reason": "start",
                "nonce": new_nonce(),
                "reminders_sent": 0,
            }
            for contact_id, provider_id in new
        ]
        statement = dialect_insert(db_session, CheckRecipient.__table__).on_conflict_do_nothing(
            index_elements=["check_id", "contact_id"]
        )
        for start in range(0, len(rows), BATCH_SIZE):
            db_session.execute(statement, rows[start : start + BATCH_SIZE])
    recipient_range = [CheckRecipient.contact_id > low] + (
        [CheckRecipient.contact_id <= high] if high is not None else []
    )
    _queue(
        db_session,
        check,
        INVITE,
        "invite",
        [*recipient_range, CheckRecipient.added_reason == "start"],
        now,
    )


# --- reminders ------------------------------------------------------------------------------------


@task_handler(KIND_REMIND)
def start_reminder(db_session: Session, task, now: datetime) -> None:
    month, number = task.payload["month"], task.payload["number"]
    check = check_for_month(db_session, month)
    if check is None or not check.is_open(now):
        return
    policy = _policy()
    plan = _plan(month)
    if number < len(plan.reminders) and now >= reminder_at(plan, number, policy):
        log.info("reminder skipped: the next reminder is already due", extra={"month": month, "number": number})
        return
    ids = list(
        db_session.scalars(
            select(CheckRecipient.id)
            .where(CheckRecipient.check_id == check.id, CheckRecipient.answer.is_(None))
            .order_by(CheckRecipient.id)
        )
    )
    bounds = [ids[end - 1] for end in range(BATCH_SIZE, len(ids), BATCH_SIZE)]
    _schedule_batches(db_session, month, "reminder", number, bounds, now)


def _reminder_batch(db_session: Session, check: MonthlyCheck, number: int, low: int, high: int | None, now) -> None:
    policy = _policy()
    plan = _plan(check.month)
    reminder_day = plan.reminders[number - 1]
    conditions = [
        CheckRecipient.id > low,
        *([CheckRecipient.id <= high] if high is not None else []),
        CheckRecipient.answer.is_(None),
        CheckRecipient.reminders_sent < number,
        CheckRecipient.added_at < _local_midnight(reminder_day, policy),
    ]
    sent_to = _queue(db_session, check, REMINDER, f"reminder{number}", conditions, now)
    for start in range(0, len(sent_to), BATCH_SIZE):
        db_session.execute(
            update(CheckRecipient)
            .where(CheckRecipient.id.in_(sent_to[start : start + BATCH_SIZE]))
            .values(reminders_sent=number)
        )


# --- queueing the messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    recipient_id: int
    nonce: str
    contact_id: int
    name: str
    email: str | None
    mobile: str | None
    provider: str


def _link(recipient_id: int, nonce: str) -> str:
    return link_url(SimpleNamespace(id=recipient_id, nonce=nonce), secret=_secret(), base_url=_base_url())


def _queue(db_session: Session, check: MonthlyCheck, kind: str, suffix: str, conditions, now) -> list[int]:
    """Queue ``kind`` by e-mail and SMS to the check's recipients matching ``conditions`` whose
    contact and provider are active; returns their recipient ids."""
    rows = [
        _Row(*row)
        for row in db_session.execute(
            select(
                CheckRecipient.id,
                CheckRecipient.nonce,
                ContactPerson.id,
                ContactPerson.name,
                ContactPerson.email,
                ContactPerson.mobile,
                Provider.name,
            )
            .join(ContactPerson, ContactPerson.id == CheckRecipient.contact_id)
            .join(Provider, Provider.id == ContactPerson.provider_id)
            .where(
                CheckRecipient.check_id == check.id,
                ContactPerson.is_active.is_(True),
                Provider.is_active.is_(True),
                *conditions,
            )
            .order_by(CheckRecipient.id)
        )
    ]
    policy = _policy()
    common = {"month_label": month_label(check.month), "last_day": _last_day_label(check, policy)}
    items = [
        Outgoing(
            idempotency_key=f"check:{check.month}:{row.contact_id}:{suffix}",
            context={**common, "name": row.name, "provider": row.provider, "link": _link(row.recipient_id, row.nonce)},
            contact_id=row.contact_id,
            to_email=row.email,
            to_mobile=row.mobile,
        )
        for row in rows
    ]
    created = send_many(
        db_session=db_session,
        kind=kind,
        items=items,
        channels=CHANNELS,
        priority=Priority.BULK,
        now=now,
        ref=(REF_TYPE, check.id),
    )
    log.info("monthly check messages queued", extra={"check_id": check.id, "kind": kind, "messages": created})
    return [row.recipient_id for row in rows]


# --- contacts added or changed during the month --------------------------------------------------


def open_check_at(db_session: Session, now: datetime) -> MonthlyCheck | None:
    """The check open at ``now``, if any."""
    return db_session.scalars(
        select(MonthlyCheck)
        .where(MonthlyCheck.opened_at <= now, MonthlyCheck.closes_at > now)
        .order_by(MonthlyCheck.opened_at.desc())
    ).first()


_OPEN_CHECK_CACHE = "contacts.checks.open_check"


@event.listens_for(Session, "after_transaction_end")
def _forget_open_check(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_OPEN_CHECK_CACHE, None)


def _open_check_in_transaction(db_session: Session, now: datetime) -> MonthlyCheck | None:
    """:func:`open_check_at`, asked once per transaction and instant: an import of 5,000
    contacts calls the listener 5,000 times in one transaction at one ``now``."""
    cache = db_session.info.setdefault(_OPEN_CHECK_CACHE, {})
    if now not in cache:
        cache[now] = open_check_at(db_session, now)
    return cache[now]


@on_contact_reachable
def include_contact(db_session: Session, contact: ContactPerson, now: datetime, reason: str) -> None:
    """A contact created, reactivated or given a new address while a check is open gets a
    recipient row and an invitation now, in the register change's transaction."""
    check = _open_check_in_transaction(db_session, now)
    if check is None or not contact.is_active:
        return
    provider = db_session.get(Provider, contact.provider_id)
    if provider is None or not provider.is_active:
        return
    recipient = _recipient(db_session, check.id, contact.id)
    if recipient is None:
        db_session.execute(
            dialect_insert(db_session, CheckRecipient.__table__)
            .values(
                check_id=check.id,
                contact_id=contact.id,
                provider_id=contact.provider_id,
                added_at=now,
                added_reason="reactivated" if reason == "reactivated" else "created",
                nonce=new_nonce(),
                reminders_sent=0,
            )
            .on_conflict_do_nothing(index_elements=["check_id", "contact_id"])
        )
        recipient = _recipient(db_session, check.id, contact.id)
        suffix = "invite"
    elif recipient.answer is not None:
        return
    elif reason == "created":
        suffix = "invite"  # the batch that runs later uses the same key: one invitation
    else:
        # A new address (the old links went to an address that is no longer the contact's), or
        # a reactivation: a fresh link, sent on both channels.
        recipient.nonce = new_nonce()
        suffix = f"invite:{recipient.nonce}"
    policy = _policy()
    send(
        db_session=db_session,
        kind=INVITE,
        context={
            "month_label": month_label(check.month),
            "last_day": _last_day_label(check, policy),
            "name": contact.name,
            "provider": provider.name,
            "link": _link(recipient.id, recipient.nonce),
        },
        channels=CHANNELS,
        priority=Priority.BULK,
        idempotency_key=f"check:{check.month}:{contact.id}:{suffix}",
        now=now,
        contact=contact,
        ref=(REF_TYPE, check.id),
    )
    log.info("contact included in the open check", extra={"check_id": check.id, "contact_id": contact.id})


def _recipient(db_session: Session, check_id: int, contact_id: int) -> CheckRecipient | None:
    return db_session.scalars(
        select(CheckRecipient)
        .where(CheckRecipient.check_id == check_id, CheckRecipient.contact_id == contact_id)
        .execution_options(populate_existing=True)
    ).first()


# --- answers by SMS -------------------------------------------------------------------------------

YES_WORDS = frozenset({"ja", "yes"})
NO_WORDS = frozenset({"nej", "no"})
_FILLER = frozenset({"tack"})
_WORD = re.compile(r"[^\W\d_]+")


def parse_answer(body: str) -> str | None:
    """ "yes", "no" or None: the whole text must be an answer word, optionally with "tack"."""
    words = _WORD.findall((body or "").casefold())
    if not words or len(words) > 2 or any(word not in _FILLER for word in words[1:]):
        return None
    if words[0] in YES_WORDS:
        return "yes"
    if words[0] in NO_WORDS:
        return "no"
    return None


SMS_HANDLER = "contacts.check_answer"


@inbound_handler(SMS_HANDLER)
def answer_by_sms(db_session: Session, inbound, contact: ContactPerson, now: datetime) -> str | None:
    """Take "JA"/"NEJ" (and other texts while the contact's check is open) from a contact."""
    answer = parse_answer(inbound.body)
    check = db_session.scalars(
        select(MonthlyCheck).where(MonthlyCheck.opened_at <= now).order_by(MonthlyCheck.opened_at.desc())
    ).first()
    if check is None:
        return None
    recipient = _recipient(db_session, check.id, contact.id)
    is_open = check.is_open(now)
    if recipient is None or not is_open:
        if answer is None:
            return None  # not an answer: left to other handlers and the "not read" reply
        _reply(db_session, inbound, contact, check, "check.reply_closed", {}, now)
        return ""
    link = _link(recipient.id, recipient.nonce)
    if answer is None:
        _reply(db_session, inbound, contact, check, "check.reply_help", {"link": link}, now)
    elif answer == "yes":
        record_answer(db_session, recipient, "yes", via="sms", now=now)
        _reply(db_session, inbound, contact, check, "check.reply_yes", {}, now)
    else:
        record_answer(db_session, recipient, "no", via="sms", now=now)
        _reply(db_session, inbound, contact, check, "check.reply_no", {"link": link + "/korrigera"}, now)
    log.info(
        "check answer by SMS",
        extra={"check_id": check.id, "recipient_id": recipient.id, "answer": answer or "unclear"},
    )
    return ""


def _reply(db_session, inbound, contact, check, kind: str, context: dict, now: datetime) -> None:
    send(
        db_session=db_session,
        kind=kind,
        context=context,
        channels=[Channel.SMS],
        priority=Priority.NORMAL,
        idempotency_key=f"check-sms:{inbound.id}:reply",
        now=now,
        contact=contact,
        to_mobile=inbound.from_address,
        ref=(REF_TYPE, check.id),
    )


__all__ = [
    "BATCH_SIZE",
    "KIND_BATCH",
    "KIND_OPEN",
    "KIND_REMIND",
    "answer_by_sms",
    "include_contact",
    "open_check_at",
    "parse_answer",
    "plan_monthly_check",
]
