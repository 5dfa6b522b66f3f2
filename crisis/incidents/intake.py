"""Notices in: a supplier notice from the form, the API or a forwarded e-mail becomes an incident.

:func:`create_notice` is the one way in for all three: it checks the fields
(:func:`clean_notice`), creates the :class:`~crisis.incidents.models.Incident` and its
:class:`~crisis.incidents.models.Notice` (kept as received), records ``notice_received`` (and ``flagged``
for planned work announced late or outside the preferred window), then hands the incident to
:func:`crisis.incidents.routing.route_incident`. It never commits: the caller does, once.

Decisions (the issue left them open):
- Times must carry a UTC offset (``2027-06-15T16:30:00+02:00``); a naive time is refused, since
  the sender's zone cannot be guessed. The form turns its local ``datetime-local`` values into
  Stockholm time before calling in here.
- The supplier is named by ``supplier`` (its name, ignoring case) or ``supplier_id``; it must be
  a known, active supplier or left out. An unknown name is refused rather than created, so that a
  typo does not split one supplier's follow-up in two (the team adds suppliers on /suppliers).
- Without ``starts_at`` an unplanned disruption starts when the notice arrives; planned work must
  say when it starts (the flag and the reminder depend on it).
- ``area`` (optional, free text of at most 100 characters) narrows an incident of camera
  supervision to the clients of that area (compared ignoring case and spacing); empty: every area.
- ``providers`` is ``"all"`` (the default: every provider using the service, as the register
  stands when a letter goes out) or a non-empty list of active providers' ids.
- Messages are Swedish: they are shown to the person who typed the value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contacts.models import SERVICES, Provider
from contacts.register import _SERVICE_ALIASES as SERVICE_ALIASES  # the register's Swedish names too
from core.local_time import check_year
from core.numbers import MAX_ID, record_id
from core.text import refusal
from crisis.incidents import routing, timeline
from crisis.incidents.models import Incident, IncidentProvider, IncidentStatus, Notice, NoticeSource, Supplier
from worktime.calendar import responsible_at

TITLE_MAX = 200
AREA_MAX = 100
BODY_MAX = 20_000
WEEKDAY_NAMES = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
_TRUE = {"true", "1", "on", "yes", "ja"}
_FALSE = {"false", "0", "off", "no", "nej", ""}


class NoticeError(Exception):
    """The notice's fields are refused; ``errors`` says, per field, what is wrong (Swedish)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = dict(errors)


def parse_instant(value) -> datetime:
    """An aware datetime from a datetime or an ISO 8601 string with an offset; ValueError (Swedish) else."""
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                "Ange datum och tid som ÅÅÅÅ-MM-DDTTT:MM med tidszon, t.ex. 2027-06-15T16:30+02:00"
            ) from None
    else:
        raise ValueError("Ange datum och tid som text i ISO 8601, t.ex. 2027-06-15T16:30+02:00")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("Ange tidszonen, t.ex. 2027-06-15T16:30+02:00 (en tid utan tidszon går inte att tolka)")
    check_year(instant.year)
    return instant


def parse_service(value) -> str:
    """The service's key from its key or its Swedish name; ValueError (Swedish) else."""
    key = SERVICE_ALIASES.get(value.strip().casefold()) if isinstance(value, str) else None
    if key is None or key not in SERVICES:
        raise ValueError("Välj en tjänst (" + ", ".join(SERVICES) + ")")
    return key


def parse_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and value.strip().casefold() in _TRUE | _FALSE:
        return value.strip().casefold() in _TRUE
    raise ValueError("Ange ja eller nej (true eller false)")


def parse_area(value) -> str | None:
    """The affected area (spacing normalised), or None for every area; ValueError (Swedish) else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError("Skriv området som vanlig text")
    if refusal(value):
        raise ValueError(refusal(value))
    area = " ".join(value.split())
    if len(area) > AREA_MAX:
        raise ValueError(f"Området får vara högst {AREA_MAX} tecken")
    return area


def find_supplier(db_session: Session, *, name=None, supplier_id=None) -> Supplier | None:
    """The active supplier by id or by name (ignoring case); ValueError (Swedish) when unknown."""
    if supplier_id not in (None, ""):
        if isinstance(supplier_id, str):
            supplier_id = record_id(supplier_id)
        if isinstance(supplier_id, bool) or not isinstance(supplier_id, int) or not 1 <= supplier_id <= MAX_ID:
            raise ValueError("Ange leverantörens id som ett heltal")
        supplier = db_session.get(Supplier, supplier_id)
        if supplier is None or not supplier.is_active:
            raise ValueError("Det finns ingen aktiv leverantör med detta id")
        return supplier
    if name is None or (isinstance(name, str) and not name.strip()):
        return None
    if not isinstance(name, str):
        raise ValueError("Ange leverantörens namn som text")
    supplier = db_session.scalar(
        select(Supplier).where(func.lower(Supplier.name) == name.strip().lower(), Supplier.is_active.is_(True))
    )
    if supplier is None:
        # lower() folds ASCII only on SQLite: compare the few suppliers in Python for å, ä, ö.
        wanted = name.strip().casefold()
        supplier = next(
            (
                s
                for s in db_session.scalars(select(Supplier).where(Supplier.is_active.is_(True)))
                if s.name.casefold() == wanted
            ),
            None,
        )
    if supplier is None:
        raise ValueError("Okänd leverantör: lägg till den under Leverantörer, eller lämna fältet tomt")
    return supplier


def parse_providers(db_session: Session, value) -> list[int] | None:
    """None for all providers using the service, or the chosen active providers' ids."""
    if value is None or value == "all":
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValueError('Ange "all" eller en lista med utförarnas id')
    ids = sorted(set(value))
    if not ids:
        raise ValueError("Välj minst en utförare, eller alla utförare")
    if any(not 1 <= v <= MAX_ID for v in ids):
        raise ValueError("Okänt utförar-id")
    found = set(db_session.scalars(select(Provider.id).where(Provider.id.in_(ids), Provider.is_active.is_(True))))
    missing = [str(v) for v in ids if v not in found]
    if missing:
        raise ValueError("Det finns ingen aktiv utförare med id " + ", ".join(missing))
    return ids


def clean_notice(db_session: Session, data: dict, *, now: datetime, supplier: Supplier | None = None) -> dict:
    """The notice's fields checked and converted, or :class:`NoticeError` naming every bad field.

    ``supplier`` is the sender's own supplier (a supplier's API user, an e-mail's sender): the
    data may then name no other supplier.
    """
    errors: dict[str, str] = {}
    cleaned: dict = {}

    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        errors["title"] = "Skriv en rubrik"
    elif len(title.strip()) > TITLE_MAX:
        errors["title"] = f"Rubriken får vara högst {TITLE_MAX} tecken"
    elif refusal(title):
        errors["title"] = refusal(title)
    else:
        cleaned["title"] = " ".join(title.split())

    body = data.get("body")
    if body is None:
        cleaned["body"] = ""
    elif not isinstance(body, str):
        errors["body"] = "Skriv texten som vanlig text"
    elif refusal(body):
        errors["body"] = refusal(body)
    elif len(body) > BODY_MAX:
        errors["body"] = f"Texten får vara högst {BODY_MAX} tecken"
    else:
        cleaned["body"] = body.strip()

    try:
        cleaned["service"] = parse_service(data.get("service"))
    except ValueError as error:
        errors["service"] = str(error)

    try:
        named = find_supplier(db_session, name=data.get("supplier"), supplier_id=data.get("supplier_id"))
        if supplier is not None and named is not None and named.id != supplier.id:
            errors["supplier"] = "Du kan bara skicka driftmeddelanden för din egen leverantör"
        else:
            cleaned["supplier"] = supplier or named
    except ValueError as error:
        errors["supplier_id" if data.get("supplier_id") not in (None, "") else "supplier"] = str(error)

    try:
        cleaned["planned"] = parse_bool(data.get("planned"))
    except ValueError as error:
        errors["planned"] = str(error)

    for field in ("starts_at", "expected_end"):
        value = data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            cleaned[field] = None
            continue
        try:
            cleaned[field] = parse_instant(value)
        except ValueError as error:
            errors[field] = str(error)
    if "starts_at" in cleaned and cleaned["starts_at"] is None and cleaned.get("planned"):
        errors["starts_at"] = "Ange när det planerade arbetet börjar"
    start = cleaned.get("starts_at") or now
    if cleaned.get("expected_end") is not None and "starts_at" not in errors and cleaned["expected_end"] <= start:
        errors["expected_end"] = "Beräknat slut måste vara efter starten"

    try:
        cleaned["area"] = parse_area(data.get("area"))
    except ValueError as error:
        errors["area"] = str(error)

    try:
        cleaned["providers"] = parse_providers(db_session, data.get("providers", "all"))
    except ValueError as error:
        errors["providers"] = str(error)

    if errors:
        raise NoticeError(errors)
    return cleaned


def planned_work_flag(starts_at: datetime, now: datetime, policy) -> str | None:
    """Why planned work starting at ``starts_at``, announced at ``now``, is flagged to the team
    (Swedish), or None: less than ``planned_min_days_ahead`` days ahead, or outside the preferred
    weekdays and local hours (``policy`` is the :class:`~config.routine.RoutinePolicy`)."""
    crisis = policy.crisis
    reasons = []
    if starts_at - now < timedelta(days=crisis.planned_min_days_ahead):
        reasons.append(f"Planerat arbete aviserat mindre än {crisis.planned_min_days_ahead} dagar i förväg.")
    local = starts_at.astimezone(policy.timezone)
    if local.weekday() not in crisis.planned_weekdays or not crisis.planned_hours.contains(local.time()):
        days = ", ".join(WEEKDAY_NAMES[d] for d in sorted(crisis.planned_weekdays))
        hours = f"{crisis.planned_hours.start:%H:%M}-{crisis.planned_hours.end:%H:%M}"
        reasons.append(
            f"Startar {WEEKDAY_NAMES[local.weekday()]} {local:%Y-%m-%d %H:%M}, utanför önskat fönster ({days} {hours})."
        )
    return " ".join(reasons) or None


def _policy():
    return current_app.extensions["krisrutin.routine"]


def find_by_external_id(db_session: Session, external_id: str) -> Notice | None:
    return db_session.scalar(select(Notice).where(Notice.external_id == external_id))


def create_notice(
    db_session: Session,
    data: dict,
    *,
    source: NoticeSource,
    now: datetime,
    actor_id: int | None = None,
    supplier: Supplier | None = None,
    original: str | None = None,
    original_type: str | None = None,
    external_id: str | None = None,
) -> tuple[Notice, bool]:
    """A new incident and its notice from ``data``, routed; or the notice already received with
    ``external_id`` (False). Raises :class:`NoticeError`; does not commit."""
    if external_id is not None:
        existing = find_by_external_id(db_session, external_id)
        if existing is not None:
            return existing, False
    cleaned = clean_notice(db_session, data, now=now, supplier=supplier)
    policy = _policy()
    chosen = cleaned["providers"]
    supplier_row = cleaned["supplier"]
    incident = Incident(
        title=cleaned["title"],
        service=cleaned["service"],
        supplier_id=supplier_row.id if supplier_row else None,
        planned=cleaned["planned"],
        starts_at=cleaned["starts_at"] or now,
        expected_end_at=cleaned["expected_end"],
        all_providers=chosen is None,
        area=cleaned["area"],
        status=IncidentStatus.NEW.value,
        # routing.route_incident decides; the column may not be empty until then.
        party=responsible_at(now, policy).responsible,
        party_since=now,
        created_at=now,
    )
    db_session.add(incident)
    db_session.flush()
    for provider_id in chosen or ():
        db_session.add(IncidentProvider(incident_id=incident.id, provider_id=provider_id))
    notice = Notice(
        incident_id=incident.id,
        source=NoticeSource(source).value,
        supplier_id=incident.supplier_id,
        external_id=external_id,
        subject=cleaned["title"],
        body=cleaned["body"],
        original=original,
        original_type=original_type,
        received_at=now,
        received_by_id=actor_id,
    )
    db_session.add(notice)
    db_session.flush()
    timeline.record(
        db_session, incident.id, "notice_received", now, actor_id=actor_id, notice_id=notice.id, source=notice.source
    )
    if incident.planned:
        reason = planned_work_flag(incident.starts_at, now, policy)
        if reason:
            incident.flag_reason = reason[:300]
            timeline.record(db_session, incident.id, "flagged", now, reason=incident.flag_reason)
    routing.route_incident(db_session, incident, now)
    return notice, True


# --- corrections by the handling party ---------------------------------------------------------

EDITABLE = ("service", "supplier_id", "planned", "starts_at", "expected_end", "providers", "area")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def chosen_providers(db_session: Session, incident: Incident) -> list[int]:
    return sorted(
        db_session.scalars(select(IncidentProvider.provider_id).where(IncidentProvider.incident_id == incident.id))
    )


def set_area(db_session: Session, incident: Incident, area, *, now: datetime, actor_id: int | None = None) -> bool:
    """A new affected area (None or empty: every area), recorded as a ``note``; False when it is
    the same. Raises :class:`NoticeError`; does not commit."""
    try:
        new = parse_area(area)
    except ValueError as error:
        raise NoticeError({"area": str(error)}) from None
    if new == incident.area:
        return False
    incident.area = new
    incident.updated_at = now
    timeline.record(
        db_session,
        incident.id,
        "note",
        now,
        actor_id=actor_id,
        party=incident.party,
        text="Rättat: area",
        fields=["area"],
    )
    return True


def set_expected_end(
    db_session: Session, incident: Incident, expected_end, *, now: datetime, actor_id: int | None = None
) -> bool:
    """A new expected end (an aware datetime or ISO string), recorded as ``expected_end_changed``;
    False when it is the same. Raises :class:`NoticeError`; does not commit."""
    try:
        new = parse_instant(expected_end)
    except ValueError as error:
        raise NoticeError({"expected_end": str(error)}) from None
    if incident.starts_at is not None and new <= incident.starts_at:
        raise NoticeError({"expected_end": "Beräknat slut måste vara efter starten"})
    if incident.expected_end_at is not None and incident.expected_end_at == new:
        return False
    old = incident.expected_end_at
    incident.expected_end_at = new
    incident.updated_at = now
    timeline.record(
        db_session,
        incident.id,
        "expected_end_changed",
        now,
        actor_id=actor_id,
        party=incident.party,
        old=_iso(old),
        new=_iso(new),
    )
    return True


def update_incident(
    db_session: Session, incident: Incident, data: dict, *, now: datetime, actor_id: int | None = None
) -> list[str]:
    """Correct the incident's service, supplier, planned, start, expected end, providers and area
    (only when ``data`` has the key ``area``) from ``data`` (the fields in :data:`EDITABLE`). A
    changed expected end is an ``expected_end_changed`` step, other changes one ``note`` step
    listing them. Returns the changed fields; raises
    :class:`NoticeError` with nothing changed; does not commit."""
    checked = clean_notice(
        db_session,
        {
            "title": incident.title,
            "service": data.get("service"),
            "supplier_id": data.get("supplier_id"),
            "planned": data.get("planned"),
            "starts_at": data.get("starts_at"),
            "expected_end": data.get("expected_end"),
            "providers": data.get("providers", "all"),
            "area": data.get("area"),
        },
        now=incident.created_at or now,
    )
    changed: list[str] = []
    supplier = checked["supplier"]
    if checked["service"] != incident.service:
        changed.append("service")
        incident.service = checked["service"]
    if (supplier.id if supplier else None) != incident.supplier_id:
        changed.append("supplier")
        incident.supplier_id = supplier.id if supplier else None
    if checked["planned"] != incident.planned:
        changed.append("planned")
        incident.planned = checked["planned"]
    starts_at = checked["starts_at"] or incident.starts_at
    if starts_at != incident.starts_at:
        changed.append("starts_at")
        incident.starts_at = starts_at
    if "area" in data and checked["area"] != incident.area:
        changed.append("area")
        incident.area = checked["area"]
    chosen = checked["providers"]
    if (chosen is None) != incident.all_providers or (
        chosen is not None and chosen != chosen_providers(db_session, incident)
    ):
        changed.append("providers")
        incident.all_providers = chosen is None
        for row in db_session.scalars(select(IncidentProvider).where(IncidentProvider.incident_id == incident.id)):
            db_session.delete(row)
        db_session.flush()
        for provider_id in chosen or ():
            db_session.add(IncidentProvider(incident_id=incident.id, provider_id=provider_id))
    if changed:
        incident.updated_at = now
        timeline.record(
            db_session,
            incident.id,
            "note",
            now,
            actor_id=actor_id,
            party=incident.party,
            text="Rättat: " + ", ".join(changed),
            fields=list(changed),
        )
    if incident.planned and ("planned" in changed or "starts_at" in changed) and incident.starts_at is not None:
        received = min((n.received_at for n in incident.notices), default=now)
        reason = planned_work_flag(incident.starts_at, received, _policy())
        if reason and reason[:300] != incident.flag_reason:
            incident.flag_reason = reason[:300]
            timeline.record(db_session, incident.id, "flagged", now, actor_id=actor_id, reason=incident.flag_reason)
    if checked["expected_end"] is not None:
        if set_expected_end(db_session, incident, checked["expected_end"], now=now, actor_id=actor_id):
            changed.append("expected_end")
    elif incident.expected_end_at is not None and "expected_end" in data and not data.get("expected_end"):
        old = incident.expected_end_at
        incident.expected_end_at = None
        timeline.record(
            db_session,
            incident.id,
            "expected_end_changed",
            now,
            actor_id=actor_id,
            party=incident.party,
            old=_iso(old),
            new=None,
        )
        changed.append("expected_end")
    return changed


def estimate_requested(incident: Incident) -> bool:
    """Whether the supplier has been asked for a new estimate since the expected end last changed."""
    asked = False
    for event in incident.events:
        if event.kind == "expected_end_changed":
            asked = False
        elif event.kind == "estimate_requested":
            asked = True
    return asked
