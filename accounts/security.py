"""Login throttling (per user and per IP, in the database) and the TOTP second factor (RFC 6238).

Everything takes ``now`` as input. Per-user state lives on ``users`` (failed_logins,
first_failed_at, locked_until); per-IP failures in ``login_failures`` so that several web
processes share the count. TOTP (codes and otpauth URIs by pyotp): 30-second steps, 6 digits,
HMAC-SHA-1, ±1 step, a step once accepted is never accepted again (``users.totp_last_step``).
The secret is never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from accounts.models import LoginFailure, User

log = logging.getLogger(__name__)

MAX_USER_FAILURES = 5
USER_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)
MAX_IP_FAILURES = 20
IP_WINDOW = timedelta(minutes=15)

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
TOTP_ISSUER = "Krisrutin"


# --- throttling ---------------------------------------------------------------------------------


def is_locked(user: User | None, now: datetime) -> bool:
    return user is not None and user.locked_until is not None and user.locked_until > now


def ip_blocked(db_session: Session, ip: str, now: datetime) -> bool:
    count = db_session.scalar(
        select(func.count()).select_from(LoginFailure).where(LoginFailure.ip == ip, LoginFailure.at > now - IP_WINDOW)
    )
    return (count or 0) >= MAX_IP_FAILURES


def account_key(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()


def unknown_account_locked(db_session: Session, username: str, now: datetime) -> bool:
    """An unknown username is refused like a locked one after as many failures (no user enumeration)."""
    count = db_session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.account == account_key(username), LoginFailure.at > now - USER_WINDOW)
    )
    return (count or 0) >= MAX_USER_FAILURES


def record_failure(db_session: Session, *, user: User | None, username: str, ip: str, now: datetime) -> None:
    """Count a failed attempt for the IP and the username tried, and, when it exists, for the user."""
    db_session.execute(delete(LoginFailure).where(LoginFailure.at <= now - max(IP_WINDOW, USER_WINDOW)))
    db_session.add(LoginFailure(ip=ip[:45], at=now, account=account_key(username) if user is None else None))
    if user is None:
        return
    if user.first_failed_at is None or user.first_failed_at <= now - USER_WINDOW:
        user.first_failed_at = now
        user.failed_logins = 0
    user.failed_logins = (user.failed_logins or 0) + 1
    if user.failed_logins >= MAX_USER_FAILURES:
        user.locked_until = now + LOCK_DURATION
        user.failed_logins = 0
        user.first_failed_at = None
        log.warning("account locked after repeated failed logins", extra={"user_id": user.id})


def reset_failures(user: User) -> None:
    user.failed_logins = 0
    user.first_failed_at = None
    user.locked_until = None


# --- TOTP (RFC 6238 / RFC 4226, computed by pyotp) -------------------------------------------------


def _totp(secret_b32: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret_b32, digits=TOTP_DIGITS, digest=hashlib.sha1, interval=TOTP_STEP_SECONDS)


def new_totp_secret() -> str:
    """A new random secret of 160 bits, base32 (the length RFC 4226 recommends for HMAC-SHA-1)."""
    return pyotp.random_base32(length=32)


def hotp(key: bytes, counter: int, *, digits: int = TOTP_DIGITS, digest=hashlib.sha1) -> str:
    """The HOTP value of a raw key at ``counter`` (RFC 4226)."""
    return pyotp.HOTP(base64.b32encode(key).decode("ascii"), digits=digits, digest=digest).at(counter)


def time_step(now: datetime) -> int:
    """The TOTP time step (counter) that ``now`` falls in: the unit of ``users.totp_last_step``."""
    return int(now.timestamp()) // TOTP_STEP_SECONDS


def totp(secret_b32: str, now: datetime) -> str:
    """The code an authenticator app shows at ``now``."""
    return _totp(secret_b32).generate_otp(time_step(now))


def matching_step(secret_b32: str, code: str, now: datetime, *, after: int | None = None) -> int | None:
    """The step (now ±1) whose code equals ``code`` and is later than ``after``, or None.

    ``after`` is the replay guard: the last step accepted for the user is never accepted again,
    nor any step before it."""
    code = (code or "").replace(" ", "")
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    generator = _totp(secret_b32)
    current = time_step(now)
    for step in (current - 1, current, current + 1):
        if after is not None and step <= after:
            continue
        if pyotp.utils.strings_equal(code, generator.generate_otp(step)):
            return step
    return None


# --- recovery codes ---------------------------------------------------------------------------------

RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols without 0/O and 1/I
_RECOVERY_LENGTH = 16  # 80 bits: a digest cannot be reversed by trying codes


def _recovery_digest(user_id: int, code: str) -> str:
    return hashlib.sha256(f"krisrutin-recovery:{user_id}:{code}".encode()).hexdigest()


def _normalise_recovery(text: str) -> str:
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())


def new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with new ones; returns them (shown once, stored hashed)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, _RECOVERY_LENGTH, 4)))
    user.totp_recovery = [_recovery_digest(user.id, _normalise_recovery(code)) for code in codes]
    return codes


def use_recovery_code(user: User, text: str) -> bool:
    """Accept an unused recovery code instead of the app's code, and spend it."""
    code = _normalise_recovery(text)
    if not user.totp_secret or len(code) != _RECOVERY_LENGTH or not user.totp_recovery:
        return False
    digest = _recovery_digest(user.id, code)
    remaining = [d for d in user.totp_recovery if not hmac.compare_digest(d, digest)]
    if len(remaining) == len(user.totp_recovery):
        return False
    user.totp_recovery = remaining
    return True


def verify_user_code(user: User, code: str, now: datetime) -> bool:
    """Check a login code; a step once used cannot be used again."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now, after=user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    return True


def provisioning_uri(secret_b32: str, username: str) -> str:
    """The otpauth:// URI an authenticator app reads (from the QR code or typed in). Written here
    rather than by pyotp, which leaves out the parameters at their defaults and refuses keys
    shorter than ours may have been: every parameter is stated, so no app has to guess."""
    label = quote(f"{TOTP_ISSUER}:{username}")
    query = urlencode({"secret": secret_b32, "issuer": TOTP_ISSUER, "algorithm": "SHA1", "digits": 6, "period": 30})
    return f"otpauth://totp/{label}?{query}"
