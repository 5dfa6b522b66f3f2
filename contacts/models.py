"""Responsible providers (ytterst ansvariga utförare) and their contact persons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.types import UTCDateTime

# The welfare technology services a contact can receive operational information for.
SERVICES = ("camera_supervision", "alarms", "keyless_locks", "time_registration")


class Provider(db.Model):
    """A home-care provider, municipal or private (ytterst ansvarig utförare)."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    organisation_number: Mapped[str | None] = mapped_column(String(11))
    kind: Mapped[str] = mapped_column(String(16))  # "municipal" or "private"
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    contacts: Mapped[list[ContactPerson]] = relationship(back_populates="provider", order_by="ContactPerson.id")


class ContactPerson(db.Model):
    """A person who receives operational information for a provider (kontaktperson)."""

    __tablename__ = "contact_persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role_title: Mapped[str] = mapped_column(String(200), default="")
    mobile: Mapped[str | None] = mapped_column(String(16))  # E.164, e.g. +46701234567
    email: Mapped[str | None] = mapped_column(String(254))
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set through contacts.recipients when a notifications gateway says an address cannot be
    # reached (unknown mailbox, invalid number); shown on the register until the team corrects it.
    email_failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    email_failure_reason: Mapped[str | None] = mapped_column(String(300))
    mobile_failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mobile_failure_reason: Mapped[str | None] = mapped_column(String(300))

    provider: Mapped[Provider] = relationship(back_populates="contacts")


class RegisterChange(db.Model):
    """One change to the register: who, when, which field, the old and the new value.

    Written by :mod:`contacts.register` for every create, update, deactivation and reactivation,
    whatever its source (team page, API, CSV import, an accepted correction, a call). Values are
    kept as text (``services`` as a comma-separated list, booleans as ``ja``/``nej``); a created
    record has one row per field set, with ``old_value`` empty.
    """

    __tablename__ = "register_changes"
    __table_args__ = (Index("ix_register_changes_entity", "entity", "entity_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))  # "provider" or "contact"
    entity_id: Mapped[int] = mapped_column()
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # created, updated, deactivated, reactivated
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # team, api, import, check, review, call, demo
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
