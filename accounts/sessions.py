"""Server-side sessions (inloggningar): begun at login, checked on every request, ended on purpose.

A browser holds only a random session id (256 bits) in Flask's signed cookie; ``user_sessions``
stores its SHA-256, like an API token's, so reading the table opens nothing. A session is open
while it has no ``ended_at``, its user is active, and it is within the limits (:class:`Limits`):
idle for at most ``idle``, logged in for at most ``max_age``. Ending a session writes when and
why (``end_reason``, one of ``END_REASONS``); a cookie of an ended session opens nothing again,
whoever holds a copy.

Functions take the database session first and ``now`` as an input and do not commit;
:mod:`accounts.access` ties them to the cookie. The rows hold an address and a short name of the
browser (personal data, shown to the user to recognise their sessions); gallring deletes a row 30
days after it ended or was last seen (:func:`delete_old_sessions`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from accounts.models import UserSession

END_LOGOUT = "logout"
END_EVERYWHERE = "logout_everywhere"  # "Logga ut överallt" on the account page
END_PASSWORD = "password_changed"  # noqa: S105 (a reason, not a password)
END_TOTP_RESET = "totp_reset"
END_DEACTIVATED = "deactivated"
END_BY_ADMIN = "ended_by_admin"  # flask users logout
END_REPLACED = "replaced"  # a new login in the same browser
END_IDLE = "idle"
END_MAX_AGE = "max_age"
END_REASONS = (
    END_LOGOUT,
    END_EVERYWHERE,
    END_PASSWORD,
    END_TOTP_RESET,
    END_DEACTIVATED,
    END_BY_ADMIN,
    END_REPLACED,
    END_IDLE,
    END_MAX_AGE,
)

# last_seen_at is written at most once a minute: the idle limit holds to the minute, and a
# page with many requests costs one write, not one per request.
SEEN_RESOLUTION = timedelta(minutes=1)
RETENTION = timedelta(days=30)
_ID_LENGTHS = range(40, 50)  # token_urlsafe(32) is 43 characters; anything far off is no id of ours


@dataclass(frozen=True)
class Limits:
    """How long a session may be idle, and how long it may last in all (None: no limit)."""

    idle: timedelta | None
    max_age: timedelta | None


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def begin(
    *, db_session: Session, user_id: int, now: datetime, ip: str | None, user_agent: str | None
) -> tuple[UserSession, str]:
    """A new session for the user; returns the row and its id (for the cookie, never stored)."""
    session_id = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user_id,
        token_hash=_digest(session_id),
        created_at=now,
        last_seen_at=now,
        ip=ip if ip and _ADDRESS.fullmatch(ip) else None,
        user_agent=describe_user_agent(user_agent),
    )
    db_session.add(row)
    db_session.flush()
    return row, session_id


def find(*, db_session: Session, session_id: object) -> UserSession | None:
    """The session with this id, open or ended, with its user (one indexed lookup); None when
    there is none."""
    if not isinstance(session_id, str) or len(session_id) not in _ID_LENGTHS:
        return None
    return db_session.scalar(
        select(UserSession).options(joinedload(UserSession.user)).where(UserSession.token_hash == _digest(session_id))
    )


def expiry(row: UserSession, *, now: datetime, limits: Limits) -> str | None:
    """Why an open session has run out at ``now`` (END_IDLE, END_MAX_AGE), or None."""
    if limits.idle is not None and now - row.last_seen_at > limits.idle:
        return END_IDLE
    if limits.max_age is not None and now - row.created_at > limits.max_age:
        return END_MAX_AGE
    return None


def touch(row: UserSession, *, now: datetime) -> bool:
    """Note that the session was used at ``now``; True when the row changed (to be committed)."""
    if now - row.last_seen_at < SEEN_RESOLUTION:
        return False
    row.last_seen_at = now
    return True


def renew(row: UserSession) -> str:
    """A new id for the same session (after its rights changed); the old id opens nothing.
    Returns the new id for the cookie. The limits still count from the login."""
    session_id = secrets.token_urlsafe(32)
    row.token_hash = _digest(session_id)
    return session_id


def end(*, db_session: Session, row: UserSession, now: datetime, reason: str) -> None:
    """End one session (an ended one keeps its first end)."""
    if reason not in END_REASONS:
        raise ValueError(f"unknown reason for ending a session: {reason!r}")
    if row.ended_at is None:
        row.ended_at, row.end_reason, row.totp_pending = now, reason, None


def end_all(*, db_session: Session, user_id: int, now: datetime, reason: str, keep: UserSession | None = None) -> int:
    """End every open session of the user but ``keep``; returns how many were ended."""
    if reason not in END_REASONS:
        raise ValueError(f"unknown reason for ending a session: {reason!r}")
    statement = (
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason, totp_pending=None)
    )
    if keep is not None:
        statement = statement.where(UserSession.id != keep.id)
    return db_session.execute(statement).rowcount or 0


def open_sessions(*, db_session: Session, user_id: int, now: datetime, limits: Limits) -> list[UserSession]:
    """The user's sessions that would still open a page at ``now``, last used first."""
    rows = db_session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
    )
    return [row for row in rows if expiry(row, now=now, limits=limits) is None]


def delete_old_sessions(db_session: Session, *, policy, now: datetime, dry_run: bool) -> int:
    """Gallring: delete sessions that ended, or were last seen, more than 30 days ago."""
    cutoff = now - RETENTION
    old = or_(
        and_(UserSession.ended_at.is_not(None), UserSession.ended_at < cutoff),
        and_(UserSession.ended_at.is_(None), UserSession.last_seen_at < cutoff),
    )
    count = db_session.scalar(select(func.count()).select_from(UserSession).where(old)) or 0
    if count and not dry_run:
        db_session.execute(delete(UserSession).where(old))
    return count


# Browser and system as people name them, the first match wins (Edge and Opera also say
# "Chrome", Chrome also says "Safari"; an iPhone also says "Mac OS X", Android also "Linux").
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
_PRODUCT = re.compile(r"[A-Za-z0-9._/-]{1,40}")
_ADDRESS = re.compile(r"[0-9A-Fa-f:.]{2,45}")  # IPv4 or IPv6; anything else is not stored


def describe_user_agent(header: str | None) -> str | None:
    """A short name of the client ("Firefox, Windows"; else its first product token, such as
    "curl/8.5.0"): enough to recognise a session, and less than the whole header says."""
    text = header or ""
    named = [next((name for marker, name in table if marker in text), None) for table in (_BROWSERS, _SYSTEMS)]
    if any(named):
        return ", ".join(name for name in named if name)
    product = _PRODUCT.match(text.strip())
    return product.group(0) if product else None
