"""Camera-supervision demo data (see core/demo.py): pseudonymous clients of the first two demo
providers, supervised every hour at half past. The demo incident's window (its start to its
expected end) turns their supervisions into visits at the scheduler's next tick, with the
providers alerted in the console outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from contacts import register
from contacts.demo import DEMO_PROVIDERS
from crisis.visits.models import SupervisedClient, SupervisionSchedule

DEMO_CLIENTS_PER_PROVIDER = 3
DEMO_SUPERVISION_TIMES = tuple(f"{hour:02d}:30" for hour in range(24))  # hourly, so the demo always has some


def load(db_session: Session, now: datetime) -> None:
    """The clients (area "Ryd"), each only if missing."""
    for name, _org, _kind, _contacts in DEMO_PROVIDERS[:2]:
        provider = register.find_provider_by_name(db_session, name)
        if provider is None:
            continue
        for number in range(1, DEMO_CLIENTS_PER_PROVIDER + 1):
            reference = f"DEMO-{provider.id}-{number}"
            if db_session.scalar(select(SupervisedClient.id).where(SupervisedClient.reference == reference)):
                continue
            client = SupervisedClient(
                reference=reference, provider_id=provider.id, area="Ryd", is_active=True, created_at=now
            )
            client.schedules = [
                SupervisionSchedule(weekdays=list(range(7)), local_time=moment) for moment in DEMO_SUPERVISION_TIMES
            ]
            db_session.add(client)
