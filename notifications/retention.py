"""Gallring of messages and SMS replies older than ``message_days`` (the rules
core/retention.py describes)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_

from config.routine import RetentionPolicy
from core.retention import Clearing, register_clearing
from notifications.models import InboundSms, Message, MessageStatus

_WAITING = (MessageStatus.QUEUED.value, MessageStatus.SENDING.value)


def messages(policy: RetentionPolicy, now: datetime) -> Clearing:
    """Messages no longer waiting to be sent: subject, bodies and the address."""
    return Clearing(
        Message,
        and_(
            Message.created_at < now - timedelta(days=policy.message_days),
            Message.status.not_in(_WAITING),
            or_(
                Message.body_text != "",
                Message.body_html.is_not(None),
                Message.subject.is_not(None),
                Message.to_address != "",
            ),
        ),
        {"body_text": "", "body_html": None, "subject": None, "to_address": ""},
    )


def inbound_sms(policy: RetentionPolicy, now: datetime) -> Clearing:
    """SMS replies: the text and the sender."""
    return Clearing(
        InboundSms,
        and_(
            InboundSms.received_at < now - timedelta(days=policy.message_days),
            or_(InboundSms.body != "", InboundSms.from_address != ""),
        ),
        {"body": "", "from_address": ""},
    )


def init_app(app) -> None:
    register_clearing(app, "messages", _l("Meddelanden"), messages)
    register_clearing(app, "inbound_sms", _l("Inkomna sms"), inbound_sms)
