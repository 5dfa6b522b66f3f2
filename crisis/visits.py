"""Visits: alerting the providers, their acknowledgement, escalation (a stub until the visits
part of issue 6 lands)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session


def visits_created(db_session: Session, visits: list, now: datetime) -> None:
    """New visits exist (flushed): alert each provider once with the link to its own visit
    list and start the escalation clock. Does not commit. (Stub: does nothing yet.)"""
