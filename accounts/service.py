"""Reads and writes of users and tokens. Functions take the session first and ``now`` as input."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts import sessions
from accounts.models import ApiToken, User, UserSession
from accounts.roles import Role
from core.clock import current_clock

TOKEN_PREFIX = "krt_"  # noqa: S105 (a marker, not a secret)
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD_LENGTH = 12

# Argon2id with the library's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes), except
# in the test environment (KRISRUTIN_ENV=testing), which uses argon2's cheapest parameters so
# that a thousand tests can log in: still Argon2id, verified the same way; a test checks that
# every other environment uses the strong parameters. A hash made with other parameters is
# re-made at the next successful login (check_needs_rehash).
STRONG_HASHER = PasswordHasher()
TEST_HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)
_hasher = STRONG_HASHER
_DUMMY_HASHES: dict[int, str] = {}


def use_test_password_hashing(enabled: bool) -> None:
    """Called by create_app: cheap parameters only for KRISRUTIN_ENV=testing."""
    global _hasher
    _hasher = TEST_HASHER if enabled else STRONG_HASHER


def _dummy_hash() -> str:
    """Verifying against this keeps login timing equal for unknown and known usernames."""
    key = id(_hasher)
    if key not in _DUMMY_HASHES:
        _DUMMY_HASHES[key] = _hasher.hash("not a real password, only for timing")
    return _DUMMY_HASHES[key]


class AccountError(ValueError):
    """A request to create or change an account that cannot be honoured; the text says why."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def get_user(*, db_session: Session, user_id: int) -> User | None:
    return db_session.get(User, user_id)


def get_user_by_username(*, db_session: Session, username: str) -> User | None:
    return db_session.scalar(select(User).where(User.username == username.strip().lower()))


def create_user(
    *,
    db_session: Session,
    username: str,
    display_name: str,
    role: Role | str,
    now: datetime,
    password: str | None,
    provider_id: int | None = None,
) -> User:
    """Create a user; staff need a password, other roles may work by signed links or tokens only.

    A provider contact's account belongs to one provider (``provider_id``); other roles have none.
    """
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        raise AccountError("the username must be 2-64 characters: lowercase letters, digits, '.', '_' or '-'")
    try:
        role = Role(role)
    except ValueError:
        raise AccountError("the role must be one of " + ", ".join(r.value for r in Role)) from None
    if get_user_by_username(db_session=db_session, username=username) is not None:
        raise AccountError(f"a user named {username!r} already exists")
    if role.is_staff and not password:
        raise AccountError("staff users need a password")
    if role is Role.PROVIDER and provider_id is None:
        raise AccountError("a provider contact's account needs the provider it belongs to")
    if role is not Role.PROVIDER and provider_id is not None:
        raise AccountError("only provider contacts belong to a provider")
    if provider_id is not None:
        from contacts.models import Provider

        if db_session.get(Provider, provider_id) is None:
            raise AccountError(f"there is no provider with id {provider_id}")
    if password:
        validate_password(password)
    user = User(
        username=username,
        display_name=display_name.strip() or username,
        role=role.value,
        password_hash=hash_password(password) if password else None,
        created_at=now,
        is_active=True,
        session_version=1,
        provider_id=provider_id,
    )
    db_session.add(user)
    db_session.flush()
    return user


def set_password(
    *, db_session: Session, user: User, password: str, now: datetime | None = None, keep: UserSession | None = None
) -> int:
    """Give the user a new password. Every session of the user ends, but ``keep`` (the session
    that changed it, which the caller renews); returns how many ended. ``now`` defaults to the
    app's clock."""
    validate_password(password)
    user.password_hash = hash_password(password)
    user.session_version += 1  # the roster's calendar feed links stop working too
    when = now if now is not None else current_clock().now()
    return sessions.end_all(db_session=db_session, user_id=user.id, now=when, reason=sessions.END_PASSWORD, keep=keep)


def check_password(user: User, password: str) -> bool:
    """Whether ``password`` is the user's password (for a change that asks for the old one)."""
    try:
        return bool(user.password_hash) and _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def reset_totp(*, db_session: Session, user: User, now: datetime) -> int:
    """Remove the user's second factor (a lost phone); every session made with it ends."""
    user.totp_secret = None
    user.totp_last_step = None
    user.totp_recovery = None
    user.session_version += 1
    return sessions.end_all(db_session=db_session, user_id=user.id, now=now, reason=sessions.END_TOTP_RESET)


def deactivate_user(*, db_session: Session, user: User, now: datetime) -> int:
    """Deactivate the user: no login, no API token, and every session ends (the record stays)."""
    user.is_active = False
    user.session_version += 1
    return sessions.end_all(db_session=db_session, user_id=user.id, now=now, reason=sessions.END_DEACTIVATED)


def authenticate_password(*, db_session: Session, username: str, password: str, now: datetime) -> User | None:
    """The active user with this username and password, or None (same timing either way)."""
    user = get_user_by_username(db_session=db_session, username=username)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, db_session: Session, user: User, name: str, now: datetime) -> tuple[ApiToken, str]:
    """Create an API token; returns the row and the secret, which is shown once and never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip() or "token",
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=_digest(secret),
        created_at=now,
    )
    db_session.add(token)
    db_session.flush()
    return token, secret


def authenticate_token(*, db_session: Session, secret: str, now: datetime) -> ApiToken | None:
    """This unrevoked token of an active user (``.user`` is who acts), or None; records when the
    token was last used."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = db_session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    token.last_used_at = now
    return token


def revoke_token(*, db_session: Session, token: ApiToken, now: datetime) -> None:
    token.revoked_at = now


def count_users(*, db_session: Session) -> int:
    return db_session.scalar(select(func.count()).select_from(User)) or 0
