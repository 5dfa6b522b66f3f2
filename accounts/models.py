"""Users (staff, provider contacts, alarm operators) and API tokens for machine clients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.roles import Role
from core.extensions import db
from core.types import UTCDateTime


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # Provider contacts act for exactly one provider (and see only its data); nobody else has one.
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    # How staff are alerted (on-call officers, the manager): e-mail and an E.164 mobile.
    email: Mapped[str | None] = mapped_column(String(254))
    mobile: Mapped[str | None] = mapped_column(String(16))
    # Bumped when the password changes or the account is disabled: old sessions stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Login throttling: failures since first_failed_at (a 15-minute window); locked until then.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # TOTP second factor (RFC 6238): base32 secret, never logged; the last accepted time step.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    # One-time recovery codes for a lost phone: SHA-256 digests of the unused ones (never the codes).
    totp_recovery: Mapped[list | None] = mapped_column(JSON)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def __repr__(self) -> str:  # no personal data beyond the id
        return f"<User id={self.id} role={self.role}>"


class ApiToken(db.Model):
    """A bearer token for scripts and integrations; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="tokens")


class UserSession(db.Model):
    """One login (inloggning): the server's half of a browser session.

    The browser's signed cookie carries only a random session id; the row holds its SHA-256
    (like an API token's), whose user, and when it began, was last seen and ended (and why).
    Every request looks the row up: an ended row, or one past the idle or absolute limit, opens
    nothing, so a saved cookie is worth nothing once the session has ended. The address and a
    short name of the browser let the user recognise their sessions on the account page."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(64))
    # A TOTP secret shown for enrolment and not yet confirmed (kept here, not in the cookie).
    totp_pending: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:  # no address, browser or token
        return f"<UserSession id={self.id} user_id={self.user_id}>"


class LoginFailure(db.Model):
    """One failed login from an IP address; shared by all web processes for the per-IP limit."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    ip: Mapped[str] = mapped_column(String(45), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # SHA-256 of the username tried (not the name itself): unknown usernames "lock" like real ones,
    # so the login page never tells whether a username exists.
    account: Mapped[str | None] = mapped_column(String(64), index=True)
