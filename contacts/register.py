"""The register's rules, in one place for the team pages, the JSON API, the CSV import and the
monthly check's corrections: validation, create/update/deactivate, and the history of changes.

Every function takes the caller's session and does not commit: a caller that changes several
records (an import of 5,000 rows) commits once, or rolls everything back. Every change writes
:class:`~contacts.models.RegisterChange` rows (who, when, old and new value per field).

Validation messages are Swedish, like the address messages of :mod:`notifications.addresses`:
they are shown beside the form field, in the import report or in an API error, to the person
who typed the value. :class:`RegisterError` carries them by field.

Rules decided here (the issue left them open):
- A contact needs a name and at least one of mobile and e-mail; the register flags a contact
  that lacks one of them, because the monthly check and the letters use both.
- Mobile numbers are stored in E.164, e-mail addresses normalised (see ``notifications.addresses``).
- Changing an address clears the "failing since" mark a gateway set on the old address.
- Provider names are unique (ignoring case and surrounding spaces); an organisation number, when
  given, must be a valid Swedish one (10 digits with the Luhn check digit) and is stored as
  ``NNNNNN-NNNN``.
- Deactivating keeps the record and its history; a deactivated contact gets no messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from contacts.models import SERVICES, ContactPerson, Provider, RegisterChange
from notifications.addresses import AddressError, normalize_email, normalize_mobile

PROVIDER_FIELDS = ("name", "organisation_number", "kind", "is_active")
CONTACT_FIELDS = ("name", "role_title", "mobile", "email", "services", "is_active")
KINDS = ("municipal", "private")
SOURCES = ("team", "api", "import", "check", "review", "call", "demo")

# Swedish names of the services and kinds, as the team writes them (CSV, forms); the API and
# the database use the English keys. Accepted case-insensitively on input.
SERVICE_LABELS = {
    "camera_supervision": "Kameratillsyn",
    "alarms": "Trygghetslarm",
    "keyless_locks": "Nyckelfria lås",
    "time_registration": "Tidsregistrering",
}
KIND_LABELS = {"municipal": "Kommunal", "private": "Privat"}
_SERVICE_ALIASES = {
    **{key: key for key in SERVICES},
    **{label.casefold(): key for key, label in SERVICE_LABELS.items()},
    "kamera": "camera_supervision",
    "nattillsyn": "camera_supervision",
    "larm": "alarms",
    "lås": "keyless_locks",
    "nyckelfri": "keyless_locks",
    "nyckelfria lås": "keyless_locks",
    "tid": "time_registration",
}
_KIND_ALIASES = {"municipal": "municipal", "private": "private", "kommunal": "municipal", "privat": "private"}
_TRUE = {"true", "1", "ja", "yes", "j", "y", "aktiv", "active"}
_FALSE = {"false", "0", "nej", "no", "n", "inaktiv", "inactive"}

MAX_NAME = 200

# Normalising an address is pure but slow (phonenumbers matches every number pattern of the
# region), and an import validates each row before applying it, which validates it again:
# remember recent answers. Errors are not cached; they are raised anew.
normalize_mobile_cached = lru_cache(maxsize=50_000)(normalize_mobile)
normalize_email_cached = lru_cache(maxsize=50_000)(normalize_email)


class RegisterError(ValueError):
    """Values that cannot be stored; ``errors`` maps each field to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in self.errors.items()))


@dataclass
class Actor:
    """Who made a change: a user (by id), and through what (``source``, one of :data:`SOURCES`)."""

    source: str
    user_id: int | None = None

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"unknown change source {self.source!r}")


@dataclass
class Outcome:
    """What a create or update did: the record and the fields that changed (old, new)."""

    record: Provider | ContactPerson
    created: bool = False
    changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


# --- listeners ----------------------------------------------------------------------------------

# Called in the caller's transaction when a contact starts to need messages: created active,
# reactivated, or an address changed. ``reason`` is "created", "reactivated" or "address_changed".
# The monthly check registers one to send a newly added contact its link at once.
ContactListener = Callable[[Session, ContactPerson, datetime, str], None]
_listeners: list[ContactListener] = []


def on_contact_reachable(listener: ContactListener) -> ContactListener:
    """Register ``listener`` (usable as a decorator); registering twice has no effect."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def _notify(db_session: Session, contact: ContactPerson, now: datetime, reason: str) -> None:
    db_session.flush()
    for listener in list(_listeners):
        listener(db_session, contact, now, reason)


# --- validation ---------------------------------------------------------------------------------


def parse_bool(value, name: str, errors: dict) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    errors[name] = "Ange ja eller nej"
    return None


def parse_services(value, errors: dict) -> list[str] | None:
    """A list of service keys, or text separated by commas/semicolons/|, English keys or Swedish names."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [item for item in re.split(r"[,;|]", value)]
    elif isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)
    else:
        errors["services"] = "Ange tjänsterna som en lista"
        return None
    chosen: list[str] = []
    unknown: list[str] = []
    for item in items:
        if not isinstance(item, str):
            unknown.append(str(item))
            continue
        key = item.strip().casefold()
        if not key:
            continue
        service = _SERVICE_ALIASES.get(key)
        if service is None:
            unknown.append(item.strip())
        elif service not in chosen:
            chosen.append(service)
    if unknown:
        known = ", ".join(SERVICE_LABELS.values())
        errors["services"] = f"Okänd tjänst: {', '.join(unknown)} (känner till: {known})"
        return None
    return [service for service in SERVICES if service in chosen]


def normalize_organisation_number(text: str) -> str:
    """``NNNNNN-NNNN`` for a valid Swedish organisation number (also written with a century or
    without the hyphen); raises :class:`ValueError` with a Swedish message otherwise."""
    digits = re.sub(r"[\s-]", "", text or "")
    if len(digits) == 12 and digits.startswith(("16", "18", "19", "20")):
        digits = digits[2:]
    if not re.fullmatch(r"[0-9]{10}", digits):  # ASCII: "²".isdigit() is True, int("²") raises
        raise ValueError("Organisationsnumret ska ha tio siffror, t.ex. 212000-0142")
    total = 0
    for index, char in enumerate(digits):
        product = int(char) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    if total % 10:
        raise ValueError("Organisationsnumret är inte giltigt (kontrollsiffran stämmer inte)")
    return f"{digits[:6]}-{digits[6:]}"


def _name(value, errors: dict, label: str) -> str | None:
    text = " ".join(str(value or "").split())
    if not text:
        errors["name"] = f"Ange {label}"
        return None
    if len(text) > MAX_NAME:
        errors["name"] = f"Namnet får vara högst {MAX_NAME} tecken"
        return None
    return text


def clean_provider(data: Mapping, *, partial: bool = False) -> dict:
    """The provider values in ``data`` checked and normalised; raises :class:`RegisterError`.
    With ``partial`` only the fields present are checked (an update); otherwise name is required."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    unknown = sorted(set(data) - set(PROVIDER_FIELDS))
    if unknown:
        errors["_"] = f"Okända fält: {', '.join(unknown)}"
    if "name" in data or not partial:
        cleaned["name"] = _name(data.get("name"), errors, "utförarens namn")
    if "organisation_number" in data:
        text = str(data.get("organisation_number") or "").strip()
        if text:
            try:
                cleaned["organisation_number"] = normalize_organisation_number(text)
            except ValueError as error:
                errors["organisation_number"] = str(error)
        else:
            cleaned["organisation_number"] = None
    if "kind" in data or not partial:
        kind = _KIND_ALIASES.get(str(data.get("kind") or "").strip().casefold())
        if kind is None:
            errors["kind"] = "Ange kommunal eller privat"
        cleaned["kind"] = kind
    if "is_active" in data:
        cleaned["is_active"] = parse_bool(data.get("is_active"), "is_active", errors)
    elif not partial:
        cleaned["is_active"] = True
    if errors:
        raise RegisterError(errors)
    return cleaned


def clean_contact(data: Mapping, *, partial: bool = False, current: ContactPerson | None = None) -> dict:
    """The contact values in ``data`` checked and normalised; raises :class:`RegisterError`.
    At least one of mobile and e-mail must remain (considering ``current`` for an update)."""
    errors: dict[str, str] = {}
    cleaned: dict = {}
    unknown = sorted(set(data) - set(CONTACT_FIELDS))
    if unknown:
        errors["_"] = f"Okända fält: {', '.join(unknown)}"
    if "name" in data or not partial:
        cleaned["name"] = _name(data.get("name"), errors, "kontaktpersonens namn")
    if "role_title" in data or not partial:
        role = " ".join(str(data.get("role_title") or "").split())
        if len(role) > MAX_NAME:
            errors["role_title"] = f"Rollen får vara högst {MAX_NAME} tecken"
        cleaned["role_title"] = role
    for key, normalize in (("mobile", normalize_mobile_cached), ("email", normalize_email_cached)):
        if key in data or not partial:
            text = str(data.get(key) or "").strip()
            if not text:
                cleaned[key] = None
                continue
            try:
                cleaned[key] = normalize(text)
            except AddressError as error:
                errors[key] = str(error)
    if "services" in data or not partial:
        services = parse_services(data.get("services"), errors)
        if services is not None:
            cleaned["services"] = services
    if "is_active" in data:
        cleaned["is_active"] = parse_bool(data.get("is_active"), "is_active", errors)
    elif not partial:
        cleaned["is_active"] = True
    if not errors:
        mobile = cleaned.get("mobile", current.mobile if current is not None else None)
        email = cleaned.get("email", current.email if current is not None else None)
        if not mobile and not email:
            errors["mobile"] = "Ange mobilnummer eller e-postadress (helst båda)"
    if errors:
        raise RegisterError(errors)
    return cleaned


# --- history ------------------------------------------------------------------------------------


def display_value(name: str, value) -> str | None:
    """How a value is written in the history and the CSV export."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if name == "services":
        return ", ".join(value)
    return str(value)


def _record(
    db_session: Session,
    *,
    entity: str,
    record,
    provider_id: int,
    action: str,
    changes: dict[str, tuple[str | None, str | None]],
    actor: Actor,
    now: datetime,
) -> None:
    for row in _change_rows(entity, record.id, provider_id, action, changes, actor, now):
        db_session.add(RegisterChange(**row))


def _apply(record, cleaned: dict) -> dict[str, tuple[str | None, str | None]]:
    changes = {}
    for name, value in cleaned.items():
        old = getattr(record, name)
        if old != value:
            changes[name] = (display_value(name, old), display_value(name, value))
            setattr(record, name, value)
    return changes


def history(db_session: Session, *, entity: str, entity_id: int) -> list[RegisterChange]:
    """The changes of one provider or contact, newest first."""
    return list(
        db_session.scalars(
            select(RegisterChange)
            .where(RegisterChange.entity == entity, RegisterChange.entity_id == entity_id)
            .order_by(RegisterChange.id.desc())
        )
    )


# --- providers ----------------------------------------------------------------------------------


def find_provider_by_name(db_session: Session, name: str) -> Provider | None:
    """The provider called ``name``, ignoring case and spacing (also of å, ä and ö, which SQL's
    lower() leaves alone on SQLite, hence the comparison here; there are hundreds, not millions)."""
    key = " ".join((name or "").split()).casefold()
    for provider_id, provider_name in db_session.execute(select(Provider.id, Provider.name)):
        if provider_name.casefold() == key:
            return db_session.get(Provider, provider_id)
    return None


def _check_unique_name(db_session: Session, name: str, provider_id: int | None) -> None:
    existing = find_provider_by_name(db_session, name)
    if existing is not None and existing.id != provider_id:
        raise RegisterError({"name": f"Det finns redan en utförare som heter {existing.name}"})


def create_provider(db_session: Session, data: Mapping, *, actor: Actor, now: datetime) -> Outcome:
    return create_providers(db_session, [data], actor=actor, now=now)[0]


def create_providers(db_session: Session, items: Sequence[Mapping], *, actor: Actor, now: datetime) -> list[Outcome]:
    """:func:`create_provider` for many providers at once (the CSV import): the same rules and
    history, with one name lookup, one flush and one history INSERT for all of them."""
    cleaned_items = [clean_provider(data) for data in items]
    taken = {" ".join(name.split()).casefold(): name for name in db_session.scalars(select(Provider.name))}
    for cleaned in cleaned_items:
        key = cleaned["name"].casefold()
        if key in taken:
            raise RegisterError({"name": f"Det finns redan en utförare som heter {taken[key]}"})
        taken[key] = cleaned["name"]
    providers = [Provider(created_at=now, updated_at=now, **cleaned) for cleaned in cleaned_items]
    db_session.add_all(providers)
    db_session.flush()
    outcomes, rows = [], []
    for provider, cleaned in zip(providers, cleaned_items, strict=True):
        changes = {name: (None, display_value(name, value)) for name, value in cleaned.items() if value is not None}
        rows.extend(_change_rows("provider", provider.id, provider.id, "created", changes, actor, now))
        outcomes.append(Outcome(provider, created=True, changes=changes))
    if rows:
        db_session.execute(insert(RegisterChange), rows)
    return outcomes


def _change_rows(entity: str, entity_id: int, provider_id: int, action: str, changes: dict, actor: Actor, now):
    return [
        {
            "entity": entity,
            "entity_id": entity_id,
            "provider_id": provider_id,
            "action": action,
            "field": name,
            "old_value": old,
            "new_value": new,
            "source": actor.source,
            "changed_by_id": actor.user_id,
            "changed_at": now,
        }
        for name, (old, new) in changes.items()
    ]


def update_provider(db_session: Session, provider: Provider, data: Mapping, *, actor: Actor, now: datetime) -> Outcome:
    cleaned = clean_provider(data, partial=True)
    if "name" in cleaned:
        _check_unique_name(db_session, cleaned["name"], provider.id)
    changes = _apply(provider, cleaned)
    if changes:
        provider.updated_at = now
        action = _action_for(changes)
        _record(
            db_session,
            entity="provider",
            record=provider,
            provider_id=provider.id,
            action=action,
            changes=changes,
            actor=actor,
            now=now,
        )
    return Outcome(provider, changes=changes)


# --- contacts -----------------------------------------------------------------------------------


def create_contact(db_session: Session, provider: Provider, data: Mapping, *, actor: Actor, now: datetime) -> Outcome:
    return create_contacts(db_session, [(provider, data)], actor=actor, now=now)[0]


def create_contacts(
    db_session: Session, items: Sequence[tuple[Provider, Mapping]], *, actor: Actor, now: datetime
) -> list[Outcome]:
    """:func:`create_contact` for many contacts at once (the CSV import): the same rules, history
    and listeners, with one flush for the contacts and one INSERT for their history instead of
    two round trips per contact. Every item is validated before anything is added; the first
    bad one raises :class:`RegisterError`."""
    cleaned_items = [(provider, clean_contact(data)) for provider, data in items]
    contacts = [
        ContactPerson(provider_id=provider.id, created_at=now, updated_at=now, **cleaned)
        for provider, cleaned in cleaned_items
    ]
    db_session.add_all(contacts)
    db_session.flush()
    outcomes, rows = [], []
    for contact, (provider, cleaned) in zip(contacts, cleaned_items, strict=True):
        changes = {
            name: (None, display_value(name, value)) for name, value in cleaned.items() if value not in (None, "", [])
        }
        rows.extend(_change_rows("contact", contact.id, provider.id, "created", changes, actor, now))
        outcomes.append(Outcome(contact, created=True, changes=changes))
    if rows:
        db_session.execute(insert(RegisterChange), rows)
    for contact in contacts:
        if contact.is_active:
            _notify(db_session, contact, now, "created")
    return outcomes


def update_contact(
    db_session: Session, contact: ContactPerson, data: Mapping, *, actor: Actor, now: datetime
) -> Outcome:
    """Change a contact; moving it to another provider is done with ``provider_id`` in ``data``
    by the caller's own check (not a register field here). Clears the failing mark of a changed
    address."""
    cleaned = clean_contact(data, partial=True, current=contact)
    was_active = contact.is_active
    changes = _apply(contact, cleaned)
    if not changes:
        return Outcome(contact)
    contact.updated_at = now
    if "email" in changes:
        contact.email_failing_since = None
        contact.email_failure_reason = None
    if "mobile" in changes:
        contact.mobile_failing_since = None
        contact.mobile_failure_reason = None
    _record(
        db_session,
        entity="contact",
        record=contact,
        provider_id=contact.provider_id,
        action=_action_for(changes),
        changes=changes,
        actor=actor,
        now=now,
    )
    if contact.is_active and not was_active:
        _notify(db_session, contact, now, "reactivated")
    elif contact.is_active and ("email" in changes or "mobile" in changes):
        _notify(db_session, contact, now, "address_changed")
    return Outcome(contact, changes=changes)


def deactivate_contact(db_session: Session, contact: ContactPerson, *, actor: Actor, now: datetime) -> Outcome:
    return update_contact(db_session, contact, {"is_active": False}, actor=actor, now=now)


def _action_for(changes: dict) -> str:
    if set(changes) == {"is_active"}:
        return "deactivated" if changes["is_active"][1] == "nej" else "reactivated"
    return "updated"


# --- reading ------------------------------------------------------------------------------------


def providers_without_active_contact(db_session: Session) -> list[Provider]:
    """Active providers that no active contact person represents (flagged on the register)."""
    has_contact = (
        select(ContactPerson.id)
        .where(ContactPerson.provider_id == Provider.id, ContactPerson.is_active.is_(True))
        .exists()
    )
    return list(
        db_session.scalars(select(Provider).where(Provider.is_active.is_(True), ~has_contact).order_by(Provider.name))
    )


def contact_problems(contact: ContactPerson) -> list[str]:
    """What the team should fix about a contact (Swedish, for the register pages)."""
    problems = []
    if not contact.mobile:
        problems.append("Mobilnummer saknas: får inga SMS")
    if not contact.email:
        problems.append("E-postadress saknas: får ingen e-post")
    if contact.mobile_failing_since is not None:
        problems.append("Mobilnumret går inte att nå")
    if contact.email_failing_since is not None:
        problems.append("E-postadressen går inte att nå")
    return problems


def active_contacts(db_session: Session) -> list[ContactPerson]:
    """Every active contact of an active provider: who the monthly check and letters reach."""
    return list(
        db_session.scalars(
            select(ContactPerson)
            .join(Provider)
            .where(ContactPerson.is_active.is_(True), Provider.is_active.is_(True))
            .order_by(ContactPerson.id)
        )
    )
