"""On-call demo data: the demo officer (``tib``) gets a demo e-mail and mobile and is the
roster's only member (see core/demo.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounts.models import User
from crisis.oncall.models import RosterMember

# How the on-call officer is alerted (fictional: PTS's range for fiction, example.se).
DEMO_STAFF_CONTACTS = {"tib": ("tib@kommun.example.se", "+46701740609")}
DEMO_ROSTER = ("tib",)


def load(db_session: Session, now: datetime) -> None:
    """The officer's addresses where missing, and the roster when it is empty."""
    for username, (email, mobile) in DEMO_STAFF_CONTACTS.items():
        user = db_session.scalar(select(User).where(User.username == username))
        if user is not None:  # fill in only what is missing: an edited address is kept
            user.email = user.email or email
            user.mobile = user.mobile or mobile
    if db_session.scalar(select(RosterMember.id).limit(1)) is None:
        for position, username in enumerate(DEMO_ROSTER):
            user = db_session.scalar(select(User).where(User.username == username))
            db_session.add(RosterMember(user_id=user.id, position=position, is_active=True))
    db_session.flush()
