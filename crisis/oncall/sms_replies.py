"""Acknowledging an alert by replying to its SMS, like a pager: "1" takes the newest open alert.

Every staff alert SMS ends with "Svara 1 för att kvittera." — or, when the person had other alerts
open as it was sent, "Svara 1 4711 för att kvittera." (4711 is the alert's id, its *code*:
``notifications/templates/messages/<language>/_acknowledge.sms.txt``). The reply comes to the
Twilio number as any inbound SMS; these handlers are asked before the contact-person lookup
(:mod:`notifications.inbound`, ``before_sender=True``).

Who answers
    An active staff member (role team, on-call officer or admin) whose account's ``mobile`` is
    the sender's number (both read as E.164), or the team's duty phone (``TEAM_MOBILE``), which
    answers the alerts sent to the team's mailbox and phone (the alerts without a user; the
    acknowledgement then has no user). A number that is both answers for both.

What the reply may say
    ``1``, or ``ok``, ``okej``, ``kvittera``, ``kvitterar``, ``kvitterat`` (any case, spaces and a
    trailing ``.``/``!`` around it) acknowledges the newest open alert addressed to the sender:
    one not acknowledged, sent in the last 24 hours (:data:`crisis.oncall.alerts.OPEN_FOR`; older
    ones are on the pages). A code after it — ``1 4711``, also ``1,4711``, ``1#4711``, ``ok 4711``
    — names the alert: it must be addressed to the sender and not acknowledged yet (its age does
    not matter). ``14711`` is no command: a code needs a separator.

What comes back (TwiML, one GSM-7 segment where the names allow)
    - acknowledged: ``Kvitterat: driftstörning "GSM-nätet nere". Tack.`` (the words are the
      acknowledging domain's), and when more alerts are open, that "1" again takes the next;
    - a code that is not the sender's, or unknown: refused, nothing acknowledged;
    - nothing open: ``Inget öppet larm att kvittera.`` and whom to call now (the responsible
      party's phone, unless that is the sender);
    - any other text from a staff number (that is no contact person too): how to acknowledge, at
      most once per number per :data:`STAFF_HELP_INTERVAL`, so that a phone's auto-reply cannot
      start a loop; after that it is stored unanswered;
    - a command from a number that is no staff number and no contact person: a short help text
      at most once per number per 24 hours (as notifications' UNMONITORED_REPLY), else nothing.
      Contact persons' texts ("JA"/"NEJ", or "1") go on to the contact handlers as before.

Twilio's retries (the same MessageSid) never reach a handler (notifications.inbound), so an alert
is acknowledged once and the reply sent once. Logs hold ids only, never a number.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from accounts.models import User
from accounts.roles import STAFF
from core.labels import phone
from crisis.oncall.acknowledge import acknowledge_alert
from crisis.oncall.alerts import OPEN_FOR
from crisis.oncall.models import Alert
from crisis.oncall.responsible import contact_details
from notifications import recipients
from notifications.addresses import AddressError, normalize_mobile
from notifications.inbound import inbound_handler
from notifications.models import InboundSms

log = logging.getLogger(__name__)

ACK_HANDLER = "crisis.oncall.sms_acknowledge"
STAFF_HELP_HANDLER = "crisis.oncall.sms_acknowledge_help"
UNKNOWN_HANDLER = "crisis.oncall.sms_acknowledge_unknown"
STAFF_HELP_INTERVAL = timedelta(hours=1)
UNKNOWN_HELP_INTERVAL = timedelta(hours=24)

_WORD = r"(?:1|ok|okej|kvittera|kvitterar|kvitterat)"
_COMMAND = re.compile(rf"{_WORD}(?:(?:\s+|\s*[.,:#-]\s*)(\d{{1,9}}))?[\s.!]*")

# The replies (Swedish, as every staff SMS; sent as the webhook's TwiML answer).
HELP = "Svara 1 för att kvittera ditt senaste larm, eller 1 och larmets nummer (t.ex. 1 4711)."
UNKNOWN_HELP = (
    "Ditt nummer finns inte hos någon i personalen, så svaret kvitterade inget larm. Kontakta välfärdsteknikteamet."
)


@dataclass(frozen=True)
class Command:
    code: int | None  # the alert named, or None for the newest


def parse_command(body: str) -> Command | None:
    """``Command`` for an acknowledging reply ("1", "1 4711", "ok", "Kvitterar."), else None."""
    found = _COMMAND.fullmatch(" ".join((body or "").split()).casefold())
    if found is None:
        return None
    return Command(int(found.group(1)) if found.group(1) else None)


@dataclass
class Sender:
    """The staff members whose alert mobile sent the reply, and whether it is the team's duty phone."""

    users: list[User] = field(default_factory=list)
    team: bool = False

    def __bool__(self) -> bool:
        return bool(self.users) or self.team

    def owns(self, alert: Alert) -> bool:
        if alert.user_id is None:
            return self.team
        return any(user.id == alert.user_id for user in self.users)

    def user_for(self, alert: Alert) -> User | None:
        return next((user for user in self.users if user.id == alert.user_id), None)


def _e164(number: str | None) -> str | None:
    try:
        return normalize_mobile(number or "")
    except AddressError:
        return None


def find_staff(db_session: Session, number: str) -> Sender:
    """Who sent from ``number``: active staff with that alert mobile, and/or the team's duty phone."""
    wanted = _e164(number)
    if wanted is None:
        return Sender()
    users = db_session.scalars(
        select(User)
        .where(User.is_active.is_(True), User.role.in_([role.value for role in STAFF]), User.mobile.is_not(None))
        .order_by(User.id)
    )
    team_mobile = current_app.extensions["krisrutin.settings"].team_mobile
    return Sender([user for user in users if _e164(user.mobile) == wanted], _e164(team_mobile) == wanted)


def open_alerts_of(db_session: Session, sender: Sender, now: datetime) -> list[Alert]:
    """The sender's alerts a bare "1" may acknowledge, newest first."""
    addressed = []
    if sender.users:
        addressed.append(Alert.user_id.in_([user.id for user in sender.users]))
    if sender.team:
        addressed.append(Alert.user_id.is_(None))
    return list(
        db_session.scalars(
            select(Alert)
            .where(or_(*addressed), Alert.acknowledged_at.is_(None), Alert.sent_at > now - OPEN_FOR)
            .order_by(Alert.sent_at.desc(), Alert.id.desc())
        )
    )


def _nothing_open(db_session: Session, inbound: InboundSms, now: datetime) -> str:
    details = contact_details(db_session, now)
    number = details.urgent_phone
    if number and _e164(number) != _e164(inbound.from_address):
        whom = details.urgent_name or "teamets jourtelefon"
        return f"Inget öppet larm att kvittera. Frågor: ring {whom} {phone(number)}."
    base = current_app.extensions["krisrutin.settings"].public_base_url.rstrip("/")
    return f"Inget öppet larm att kvittera. Larmen finns på {base}/"


@inbound_handler(ACK_HANDLER, before_sender=True)
def acknowledge_by_reply(db_session: Session, inbound: InboundSms, now: datetime) -> str | None:
    """A staff member's "1" (or "1 <code>"): the alert acknowledged, the reply says which."""
    command = parse_command(inbound.body)
    if command is None:
        return None
    sender = find_staff(db_session, inbound.from_address)
    if not sender:
        return None
    if command.code is not None:
        alert = db_session.get(Alert, command.code)
        if alert is None or not sender.owns(alert):
            log.info("SMS acknowledgement refused: not the sender's alert", extra={"inbound_sms_id": inbound.id})
            return f"Larm {command.code} är inte ditt, så det kvitterades inte. Svara 1 för ditt senaste larm."
        if alert.acknowledged_at is not None:
            return f"Larm {command.code} är redan kvitterat. Tack."
    else:
        open_now = open_alerts_of(db_session, sender, now)
        if not open_now:
            return _nothing_open(db_session, inbound, now)
        alert = open_now[0]
    words = acknowledge_alert(db_session, alert, user=sender.user_for(alert), via="sms", now=now)
    if words is None:
        return f"Larm {alert.id} var redan kvitterat. Tack."
    log.info("alert acknowledged by SMS", extra={"inbound_sms_id": inbound.id, "alert_id": alert.id})
    reply = f"Kvitterat: {words}. Tack." if words else "Kvitterat. Tack."
    if open_alerts_of(db_session, sender, now):
        reply += " Fler larm är öppna: svara 1 igen för nästa."
    return reply


def _answered_lately(db_session: Session, inbound: InboundSms, handler: str, since: datetime) -> bool:
    return bool(
        db_session.scalar(
            select(func.count())
            .select_from(InboundSms)
            .where(
                InboundSms.from_address == inbound.from_address,
                InboundSms.handled_by == handler,
                InboundSms.id != inbound.id,
                InboundSms.received_at > since,
            )
        )
    )


@inbound_handler(STAFF_HELP_HANDLER, before_sender=True)
def help_staff(db_session: Session, inbound: InboundSms, now: datetime) -> str | None:
    """Any other text from a staff number: how to acknowledge (at most once an hour)."""
    if parse_command(inbound.body) is not None or not find_staff(db_session, inbound.from_address):
        return None
    if recipients.find_sender(db_session=db_session, number=inbound.from_address) is not None:
        return None  # also a contact person: the contact handlers decide ("JA", "NEJ")
    if _answered_lately(db_session, inbound, STAFF_HELP_HANDLER, now - STAFF_HELP_INTERVAL):
        return None
    return HELP


@inbound_handler(UNKNOWN_HANDLER, before_sender=True)
def help_unknown(db_session: Session, inbound: InboundSms, now: datetime) -> str | None:
    """A "1" from a number that is nobody's: a short help text, at most once a day per number."""
    if parse_command(inbound.body) is None or find_staff(db_session, inbound.from_address):
        return None
    if recipients.find_sender(db_session=db_session, number=inbound.from_address) is not None:
        return None  # a contact person: their texts go to the contact handlers as ever
    if _answered_lately(db_session, inbound, UNKNOWN_HANDLER, now - UNKNOWN_HELP_INTERVAL):
        return None
    return UNKNOWN_HELP
