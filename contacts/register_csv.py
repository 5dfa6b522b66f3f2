"""CSV import and export of the register, as the team's Excel reads and writes it.

One row is one contact person together with its provider (providers are created as needed).
The columns, Swedish first (English names are accepted on import, in any order, any case)::

    Utförare;Organisationsnummer;Utförartyp;Namn;Roll;Mobil;E-post;Tjänster;Aktiv

Decisions (the issue left them open):

- **Encoding.** UTF-8, with or without a byte order mark. A file that is not valid UTF-8 is read
  as Windows-1252, which is what Excel on a Swedish Windows writes for "CSV (semikolonavgränsad)";
  å, ä and ö come through either way. The export is UTF-8 with a BOM, so Excel opens it right.
  The text is read in NFC; a line holding a character the service refuses (:mod:`core.text`: a
  control character, NUL, a bidirectional override) rejects the file, naming the line (this
  reading is the supervised clients' import's too).
- **Separator.** ``;`` or ``,``, whichever the header row uses more (Excel writes ``;`` in a
  Swedish locale and ``,`` in an English one). The export uses ``;``.
- **Columns.** ``Utförare`` and ``Namn`` are required, and at least one of ``Mobil`` and ``E-post``.
  A column that is present sets its field for every row (an empty cell means an empty value);
  a column that is absent leaves that field of an existing record as it is (a new record gets
  the default: active, no services, no role). Unknown or repeated columns reject the file.
- **Rows without a contact.** A row whose contact columns are all empty names only its provider
  (the export writes one for a provider without contacts, so that the round trip is complete).
- **Identity.** A provider is its name, ignoring case and spacing (the register keeps names
  unique); a file never renames a provider. A contact is its provider plus its e-mail address
  (ignoring case) when the row has one, else plus its mobile number, else plus its name; a row
  is matched with the register's contact that has that same e-mail (or mobile, or name). A row
  matching an existing contact updates its changed fields (history source ``import``); an
  identical row writes nothing, so importing the same file twice changes nothing. A changed
  e-mail address therefore makes a new contact: change addresses on the team page. Two rows
  with the same identity in one file are an error, and so is an identity that matches several
  contacts already in the register.
- **All or nothing.** Every row is validated first, with the register's own rules
  (:func:`contacts.register.clean_provider` / :func:`~contacts.register.clean_contact`), and
  every problem is reported (line, column, problem); only a file without problems is applied,
  in the caller's single transaction. Line numbers are the file's, the header being line 1, as
  Excel numbers its rows.
- **Limits.** At most :data:`MAX_BYTES` (5 MB) and :data:`MAX_ROWS` (20,000 rows).
- **Formulas.** The export is written by :mod:`core.csv_export`, which puts a ``'`` before a cell
  starting like a formula (``=``, ``+``, ``-``, ``@``, tab, CR) so Excel shows it as text instead of
  running it (it may come from a provider's correction); the import removes that quote again.
  Swedish mobile numbers are exported in the national form (``070-174 06 05``), which Excel keeps
  as text; others as ``'+47 41 23 45 67``.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session

from contacts import register
from contacts.models import ContactPerson, Provider
from contacts.register import KIND_LABELS, SERVICE_LABELS, Actor, RegisterError
from core import csv_export
from core.text import describe, first_forbidden
from notifications.addresses import AddressError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
_BATCH = 1000  # new contacts created per flush


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    aliases: tuple[str, ...] = ()


COLUMNS = (
    Column("provider", "Utförare", ("provider", "utförarens namn", "provider name", "ytterst ansvarig utförare")),
    Column("organisation_number", "Organisationsnummer", ("organisation number", "organization number", "orgnr")),
    Column("kind", "Utförartyp", ("provider type", "kind", "typ")),
    Column("name", "Namn", ("name", "kontaktperson", "contact name", "contact")),
    Column("role_title", "Roll", ("role", "befattning", "title")),
    Column("mobile", "Mobil", ("mobile", "mobilnummer", "mobile number")),
    Column("email", "E-post", ("email", "e-mail", "epost", "e-postadress", "email address")),
    Column("services", "Tjänster", ("services",)),
    Column("is_active", "Aktiv", ("active",)),
)
HEADERS = tuple(column.header for column in COLUMNS)
PROVIDER_COLUMNS = ("organisation_number", "kind")
CONTACT_COLUMNS = ("name", "role_title", "mobile", "email", "services", "is_active")
_CONTACT_CONTENT = ("name", "role_title", "mobile", "email", "services")
_BY_NAME = {
    " ".join(name.split()).casefold(): column.key
    for column in COLUMNS
    for name in (column.header, column.key, *column.aliases)
}


@dataclass(frozen=True)
class RowProblem:
    """One problem of one row: the file's line number, the column (as headed in the file; empty
    for the whole row) and what is wrong, in Swedish."""

    line: int
    column: str
    message: str


class ImportRejected(Exception):
    """The file was not imported; ``problems`` lists every bad row (empty for a file-level problem)."""

    def __init__(self, message: str, problems: list[RowProblem] | None = None):
        self.message = message
        self.problems = list(problems or [])
        super().__init__(message)


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    providers_created: int = 0
    providers_updated: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.providers_created or self.providers_updated)


@dataclass
class _Row:
    line: int
    contact: dict | None  # the contact's raw values (present columns only), None for a provider-only row
    existing: ContactPerson | None = None


@dataclass
class _ProviderPlan:
    line: int
    data: dict  # raw provider values (present columns only, without the name)
    name: str
    existing: Provider | None
    rows: list[_Row] = field(default_factory=list)
    created: bool = False


# --- reading ------------------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (BOM or not), else Windows-1252 (Excel's "CSV" on Swedish Windows)."""
    if len(data) > MAX_BYTES:
        raise ImportRejected(f"Filen är för stor: högst {MAX_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise ImportRejected("Filen går inte att läsa: spara den som CSV UTF-8") from None
    return _checked_text(text.removeprefix(csv_export.BOM))


def _checked_text(text: str) -> str:
    """The file's text in NFC, or :class:`ImportRejected` naming every line that holds a
    character the service refuses (:mod:`core.text`: control characters, NUL, bidirectional
    overrides). Line breaks and tabs are whitespace; one-line cells are folded by the rules."""
    problems = []
    for number, line in enumerate(text.split("\n"), start=1):
        char = first_forbidden(line)
        if char is not None:
            where = line.index(char) + 1
            problems.append(RowProblem(number, "", f"Tecken {where} på raden är {describe(char)}: ta bort det"))
    if problems:
        raise ImportRejected(_rejected_message(problems), problems)
    return unicodedata.normalize("NFC", text)


def unguard(cell: str) -> str:
    """A cell as the register reads it: trimmed, without the export's formula guard."""
    return csv_export.unguard(cell.strip())


def read_rows(text: str) -> tuple[dict[str, str], list[tuple[int, dict[str, str]]]]:
    """The columns (key -> header as written) and the non-empty rows (line, key -> cell)."""
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise ImportRejected("Filen är tom eller saknar rubrikrad på första raden")
    delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error:
        raise ImportRejected("Rubrikraden går inte att läsa") from None
    columns = _columns(header)
    keys = [columns.get(index) for index in range(len(header))]
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num + 1
    problems: list[RowProblem] = []
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(rows) >= MAX_ROWS:
                    raise ImportRejected(f"Filen har för många rader: högst {MAX_ROWS:,}".replace(",", " "))
                if len(cells) > len(header) and any(cell.strip() for cell in cells[len(header) :]):
                    problems.append(RowProblem(line, "", "Raden har fler fält än rubrikraden"))
                rows.append((line, {key: unguard(cell) for key, cell in zip(keys, cells, strict=False) if key}))
            line = reader.line_num + 1
    except csv.Error as error:
        raise ImportRejected(f"Rad {line} går inte att läsa som CSV ({error})") from None
    if problems:
        raise ImportRejected(_rejected_message(problems), problems)
    header_names = {key: header[index].strip() for index, key in enumerate(keys) if key}
    return header_names, rows


def _columns(header: list[str]) -> dict[int, str]:
    found: dict[int, str] = {}
    unknown: list[str] = []
    expected = ";".join(HEADERS)
    for index, name in enumerate(header):
        cleaned = " ".join(name.removeprefix(csv_export.BOM).split())
        if not cleaned:
            continue
        key = _BY_NAME.get(cleaned.casefold())
        if key is None:
            unknown.append(cleaned)
        elif key in found.values():
            raise ImportRejected(f"Kolumnen {cleaned} finns två gånger i rubrikraden. Rubrikraden ska vara: {expected}")
        else:
            found[index] = key
    if unknown:
        raise ImportRejected(f"Okända kolumner i rubrikraden: {', '.join(unknown)}. Rubrikraden ska vara: {expected}")
    present = set(found.values())
    missing = [column.header for column in COLUMNS if column.key in ("provider", "name") and column.key not in present]
    if missing:
        raise ImportRejected(f"Rubrikraden saknar {' och '.join(missing)}. Rubrikraden ska vara: {expected}")
    if "mobile" not in present and "email" not in present:
        raise ImportRejected(f"Rubrikraden saknar både Mobil och E-post. Rubrikraden ska vara: {expected}")
    return found


def _rejected_message(problems: list[RowProblem]) -> str:
    lines = len({problem.line for problem in problems})
    return f"Filen importerades inte: {lines} rad{'er' if lines != 1 else ''} har fel. Rätta och försök igen."


# --- validating ---------------------------------------------------------------------------------


def _key(text: str) -> str:
    return " ".join((text or "").split()).casefold()


def _identity(values: dict) -> tuple[str, str] | None:
    """The contact's identity within its provider: e-mail, else mobile, else name (see module doc)."""
    email = (values.get("email") or "").strip()
    if email:
        try:
            return ("email", register.normalize_email_cached(email).casefold())
        except AddressError:
            return None
    mobile = (values.get("mobile") or "").strip()
    if mobile:
        try:
            return ("mobile", register.normalize_mobile_cached(mobile))
        except AddressError:
            return None
    name = _key(values.get("name") or "")
    return ("name", name) if name else None


def _stored_identities(contact: ContactPerson) -> list[tuple[str, str]]:
    """Every key a row may find this contact by (a row without an e-mail finds it by mobile)."""
    keys = [("name", _key(contact.name))]
    if contact.email:
        keys.append(("email", contact.email.casefold()))
    if contact.mobile:
        keys.append(("mobile", contact.mobile))
    return keys


_IDENTITY_COLUMN = {"email": "email", "mobile": "mobile", "name": "name"}
_IDENTITY_TEXT = {"email": "e-postadress", "mobile": "mobilnummer", "name": "namn (utan mobil och e-post)"}


def plan_import(db_session: Session, data: bytes) -> list[_ProviderPlan]:
    """Read and validate the whole file against the register; raises :class:`ImportRejected`
    with every problem found. Nothing is written."""
    headers, rows = read_rows(decode(data))
    if not rows:
        raise ImportRejected("Filen har inga rader under rubrikraden")
    present = set(headers)
    providers = {_key(provider.name): provider for provider in db_session.scalars(select(Provider))}
    stored: dict[tuple[int, tuple[str, str]], list[ContactPerson]] = {}
    for contact in db_session.scalars(select(ContactPerson).order_by(ContactPerson.id)):
        for identity in _stored_identities(contact):
            stored.setdefault((contact.provider_id, identity), []).append(contact)

    problems: list[RowProblem] = []
    plans: dict[str, _ProviderPlan] = {}
    provider_values: dict[str, dict] = {}
    seen: dict[tuple[str, tuple[str, str]], int] = {}
    matched: dict[int, int] = {}  # existing contact id -> line

    def report(line: int, key: str, message: str) -> None:
        problems.append(RowProblem(line, headers.get(key, "") if key != "_" else "", message))

    for line, cells in rows:
        name = " ".join(cells.get("provider", "").split())
        provider_key = _key(name)
        if not provider_key:
            report(line, "provider", "Ange utförarens namn")
            continue
        existing_provider = providers.get(provider_key)
        raw_provider = {key: cells.get(key, "") for key in PROVIDER_COLUMNS if key in present}
        try:
            cleaned = register.clean_provider(
                {"name": name, **raw_provider} if existing_provider is None else raw_provider,
                partial=existing_provider is not None,
            )
        except RegisterError as error:
            for field_name, message in error.errors.items():
                report(line, "provider" if field_name == "name" else field_name, message)
            cleaned = None
        plan = plans.get(provider_key)
        if plan is None:
            plan = plans[provider_key] = _ProviderPlan(line, raw_provider, name, existing_provider)
            if cleaned is not None:
                provider_values[provider_key] = cleaned
        elif cleaned is not None and provider_key in provider_values:
            for field_name in PROVIDER_COLUMNS:
                if field_name in cleaned and cleaned[field_name] != provider_values[provider_key].get(field_name):
                    report(line, field_name, f"Skiljer sig från rad {plan.line} för samma utförare")

        contact_values = {key: cells.get(key, "") for key in CONTACT_COLUMNS if key in present}
        if not any(contact_values.get(key) for key in _CONTACT_CONTENT):
            plan.rows.append(_Row(line, None))
            continue
        identity = _identity(contact_values)
        existing_contact = None
        if identity is not None:
            earlier = seen.get((provider_key, identity))
            if earlier is not None:
                report(
                    line,
                    _IDENTITY_COLUMN[identity[0]],
                    f"Samma kontaktperson som på rad {earlier} (samma utförare och {_IDENTITY_TEXT[identity[0]]})",
                )
                continue
            seen[(provider_key, identity)] = line
            if existing_provider is not None:
                candidates = stored.get((existing_provider.id, identity), [])
                if len(candidates) > 1:
                    report(
                        line,
                        _IDENTITY_COLUMN[identity[0]],
                        f"{len(candidates)} kontaktpersoner hos utföraren i registret har samma "
                        f"{_IDENTITY_TEXT[identity[0]]}: rätta registret först",
                    )
                    continue
                if candidates:
                    existing_contact = candidates[0]
                    if existing_contact.id in matched:
                        report(line, "_", f"Samma kontaktperson som på rad {matched[existing_contact.id]}")
                        continue
                    matched[existing_contact.id] = line
        try:
            register.clean_contact(contact_values, partial=existing_contact is not None, current=existing_contact)
        except RegisterError as error:
            for field_name, message in error.errors.items():
                report(line, field_name, message)
            continue
        plan.rows.append(_Row(line, contact_values, existing_contact))

    if problems:
        problems.sort(
            key=lambda problem: (problem.line, HEADERS.index(problem.column) if problem.column in HEADERS else -1)
        )
        raise ImportRejected(_rejected_message(problems), problems)
    return list(plans.values())


# --- applying -----------------------------------------------------------------------------------


def import_csv(db_session: Session, data: bytes, *, actor: Actor, now: datetime) -> ImportSummary:
    """Validate the whole file, then apply it in the caller's transaction (the caller commits,
    or rolls back on any exception). Raises :class:`ImportRejected` before writing anything."""
    plans = plan_import(db_session, data)
    summary = ImportSummary()
    line = 0
    new_contacts: list[tuple[Provider, dict]] = []
    try:
        fresh = [plan for plan in plans if plan.existing is None]
        for start in range(0, len(fresh), _BATCH):
            batch = fresh[start : start + _BATCH]
            line = batch[0].line
            created = register.create_providers(
                db_session, [{"name": plan.name, **plan.data} for plan in batch], actor=actor, now=now
            )
            for plan, outcome in zip(batch, created, strict=True):
                plan.existing, plan.created = outcome.record, True
            summary.providers_created += len(created)
        for plan in plans:
            line = plan.line
            provider = plan.existing
            if (
                not plan.created
                and register.update_provider(db_session, provider, plan.data, actor=actor, now=now).changes
            ):
                summary.providers_updated += 1
            for row in plan.rows:
                line = row.line
                if row.contact is None:
                    continue
                if row.existing is None:
                    new_contacts.append((provider, row.contact))
                elif register.update_contact(db_session, row.existing, row.contact, actor=actor, now=now).changes:
                    summary.updated += 1
                else:
                    summary.unchanged += 1
        line = 0
        for start in range(0, len(new_contacts), _BATCH):
            batch = new_contacts[start : start + _BATCH]
            summary.created += len(register.create_contacts(db_session, batch, actor=actor, now=now))
    except RegisterError as error:  # the register changed between validation and now (a race)
        problem = RowProblem(line, "", str(error))
        raise ImportRejected(_rejected_message([problem]), [problem]) from None
    return summary


# --- exporting ----------------------------------------------------------------------------------


def format_mobile(mobile: str | None) -> str:
    """A mobile number as Excel keeps it: national form for Swedish numbers, else international."""
    if not mobile:
        return ""
    try:
        number = phonenumbers.parse(mobile, None)
    except phonenumbers.NumberParseException:
        return mobile
    if number.country_code == 46:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _swedish_key(text: str) -> str:
    # å, ä, ö sort after z in Swedish; map them past "z" in the order å < ä < ö.
    return text.casefold().translate({ord("å"): "{", ord("ä"): "|", ord("ö"): "}"})


def export_rows(db_session: Session) -> Iterator[list[str]]:
    """The header and one row per contact (inactive ones too), providers in Swedish order; a
    provider without contacts gets a row of its own."""
    yield list(HEADERS)
    contacts: dict[int, list[ContactPerson]] = {}
    for contact in db_session.scalars(select(ContactPerson)):
        contacts.setdefault(contact.provider_id, []).append(contact)
    for provider in sorted(db_session.scalars(select(Provider)), key=lambda p: _swedish_key(p.name)):
        provider_cells = [provider.name, provider.organisation_number or "", KIND_LABELS.get(provider.kind, "")]
        people = sorted(contacts.get(provider.id, []), key=lambda c: (_swedish_key(c.name), c.id))
        if not people:
            yield [*provider_cells, "", "", "", "", "", ""]
        for contact in people:
            yield [
                *provider_cells,
                contact.name,
                contact.role_title or "",
                format_mobile(contact.mobile),
                contact.email or "",
                ", ".join(SERVICE_LABELS[service] for service in contact.services or [] if service in SERVICE_LABELS),
                "ja" if contact.is_active else "nej",
            ]


def export_csv(db_session: Session) -> str:
    """The register as CSV for Excel (:mod:`core.csv_export`: UTF-8 with a BOM, ``;``, CRLF)."""
    return csv_export.to_text(export_rows(db_session))
