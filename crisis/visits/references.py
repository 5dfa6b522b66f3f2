"""What a visit alert's messages are about, for the deliveries page's "Gäller"
(:mod:`notifications.references`): the provider told of physical visits, linking to the visits'
overview."""

from __future__ import annotations

from flask import url_for
from flask_babel import ngettext
from sqlalchemy.orm import Session

from contacts.models import Provider
from core.numbers import record_id
from crisis.visits.models import VisitAlert


def describe_alert(db_session: Session, ref_id: str):
    """ "Besked om 3 fysiska besök till Hemtjänst Norr", linking to /visits; None when unknown."""
    number = record_id(ref_id)
    alert = db_session.get(VisitAlert, number) if number is not None else None
    if alert is None:
        return None
    provider = db_session.get(Provider, alert.provider_id)
    count = len(alert.visit_ids or [])
    text = ngettext(
        "Besked om %(num)s fysiskt besök till %(provider)s",
        "Besked om %(num)s fysiska besök till %(provider)s",
        count,
        provider=provider.name if provider else "",
    )
    return text, url_for("visit_views.dashboard")
