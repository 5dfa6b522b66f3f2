"""CSV import and export of the camera-supervised clients and their schedules, for the alarm
operator and the team: the page ``/supervision/clients`` and ``flask supervision import FILE`` /
``flask supervision export FILE``.

One row per client. The columns (English names accepted on import, any order, any case)::

    Referens;Utförare;Område;Schema;Undantag;Aktiv

- **Referens**: the pseudonymous reference, 1-64 characters A-Z, a-z, 0-9, ``-``, ``_``.
- **Utförare**: the provider's name as in the contacts register, or its organisation number.
- **Område**: the area (free text, at most 100 characters).
- **Schema**: weekly patterns separated by ``;`` (or ``|`` or a line break). A pattern is the
  weekdays, a space and the times: ``mån-fre 23:00,01:30,04:00; lör-sön 23:00``. Weekdays are
  ``mån tis ons tor fre lör sön`` (or ``mon``..``sun``, full names, ``alla``), separated by
  commas, with ranges (``fre-mån`` wraps round the week). A pattern may end with ``från
  ÅÅÅÅ-MM-DD`` and/or ``till ÅÅÅÅ-MM-DD`` (both inclusive). Times are Stockholm wall-clock
  times; see :mod:`crisis.visits.supervision` for the nights the clocks change.
- **Undantag**: exceptions separated by ``;``: ``2027-12-24 inställd`` (the whole day),
  ``2027-12-24 23:00 inställd`` (one time), ``2027-12-25 02:00 extra`` (an added time).
- **Aktiv**: ``ja`` or ``nej``; empty means ``ja``.

Like the register's import (:mod:`contacts.register_csv`, whose reading rules apply: UTF-8 or
Windows-1252, ``;`` or ``,``, at most 5 MB, formula cells guarded with ``'``): every row is checked
with the API's own rules (:func:`crisis.visits.clients.clean_client`) and every problem is reported
(line, column, problem); only a file without problems is saved, in one transaction. A client is
its reference: a row updates the client with that reference (its schedule and exceptions are
replaced by the row's), a new reference creates one. With "the file is the whole list", active
clients missing from the file are deactivated. The export writes every client, inactive ones
too, in the same format, so that it imports unchanged.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from datetime import datetime
from pathlib import Path

import click
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from accounts.access import roles_required
from accounts.roles import Role
from contacts.models import Provider
from contacts.register_csv import MAX_BYTES, MAX_ROWS, ImportRejected, RowProblem, decode, unguard
from core import audit, csv_export
from core.clock import current_clock
from core.extensions import db
from core.numbers import record_id
from crisis.visits import clients as supervision_clients
from crisis.visits.models import SupervisedClient

bp = Blueprint("supervision", __name__, url_prefix="/supervision")

USERS = (Role.ALARM_OPERATOR, Role.TEAM, Role.ADMIN)
COLUMNS = (
    ("reference", "Referens", ("reference", "ref", "klient", "client")),
    ("provider", "Utförare", ("provider", "utförarens namn", "organisationsnummer")),
    ("area", "Område", ("area", "omrade")),
    ("schedules", "Schema", ("schedule", "schedules", "tider", "tillsynstider")),
    ("exceptions", "Undantag", ("exceptions", "exception")),
    ("active", "Aktiv", ("active",)),
)
HEADERS = tuple(header for _, header, _ in COLUMNS)
_BY_NAME = {
    " ".join(name.split()).casefold(): key for key, header, aliases in COLUMNS for name in (header, key, *aliases)
}
_FIELD_COLUMN = {"reference": "reference", "provider": "provider", "provider_id": "provider", "area": "area"}
_SPLIT = re.compile(r"[;|\n]")
_PATTERN = re.compile(
    r"(?P<days>.+?)\s+(?P<times>\d{1,2}[:.]\d{2}(?:\s*,\s*\d{1,2}[:.]\d{2})*)"
    r"(?:\s+från\s+(?P<from>\S+))?(?:\s+till\s+(?P<until>\S+))?",
    re.IGNORECASE,
)
_EXCEPTION = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?:\s+(?P<time>\d{1,2}[:.]\d{2}))?\s+(?P<action>\S+)", re.IGNORECASE
)
_SKIP_WORDS = {"inställd", "inställt", "ingen", "skip", "stryk"}
_ADD_WORDS = {"extra", "add", "tillägg"}
_TRUE = {"ja", "j", "yes", "true", "1", "aktiv", ""}
_FALSE = {"nej", "n", "no", "false", "0", "inaktiv"}


# --- the text format ----------------------------------------------------------------------------


def parse_schedule_text(text: str) -> list[dict]:
    """``mån-fre 23:00,01:30; lör-sön 23:00 från 2027-01-01`` as the API's schedules; ValueError."""
    schedules = []
    for part in _SPLIT.split(text or ""):
        part = " ".join(part.split())
        if not part:
            continue
        match = _PATTERN.fullmatch(part)
        if match is None:
            raise ValueError(f"Läser inte {part!r}: skriv veckodagar och tider, t.ex. mån-fre 23:00,01:30")
        days = [day for day in re.split(r"\s*,\s*", match.group("days").strip()) if day]
        schedule = {
            "weekdays": days,
            "times": [t.strip() for t in match.group("times").split(",")],
        }
        if match.group("from"):
            schedule["valid_from"] = match.group("from")
        if match.group("until"):
            schedule["valid_until"] = match.group("until")
        schedules.append(schedule)
    return schedules


def parse_exceptions_text(text: str) -> list[dict]:
    """``2027-12-24 inställd; 2027-12-25 02:00 extra`` as the API's exceptions; ValueError."""
    exceptions = []
    for part in _SPLIT.split(text or ""):
        part = " ".join(part.split())
        if not part:
            continue
        match = _EXCEPTION.fullmatch(part)
        word = match.group("action").casefold() if match else ""
        if match is None or word not in _SKIP_WORDS | _ADD_WORDS:
            raise ValueError(
                f"Läser inte {part!r}: skriv t.ex. 2027-12-24 inställd, 2027-12-24 23:00 inställd "
                "eller 2027-12-25 02:00 extra"
            )
        exceptions.append(
            {
                "date": match.group("date"),
                "time": match.group("time"),
                "action": supervision_clients.SKIP if word in _SKIP_WORDS else supervision_clients.ADD,
            }
        )
    return exceptions


def _days_text(days: list[int]) -> str:
    if sorted(days) == list(range(7)):
        return "alla"
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = supervision_clients.WEEKDAY_SV
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{names[run[0]]}-{names[run[-1]]}")
        else:
            parts.extend(names[day] for day in run)
    return ",".join(parts)


def schedule_text(client: SupervisedClient) -> str:
    parts = []
    for group in supervision_clients.schedule_groups(client):
        text = f"{_days_text(group['weekdays'])} {','.join(group['times'])}"
        if group["valid_from"] is not None:
            text += f" från {group['valid_from'].isoformat()}"
        if group["valid_until"] is not None:
            text += f" till {group['valid_until'].isoformat()}"
        parts.append(text)
    return "; ".join(parts)


def exceptions_text(client: SupervisedClient) -> str:
    parts = []
    for exception in sorted(client.exceptions, key=lambda e: (e.on_date, e.local_time or "", e.action)):
        word = "inställd" if exception.action == supervision_clients.SKIP else "extra"
        time_part = f" {exception.local_time}" if exception.local_time else ""
        parts.append(f"{exception.on_date.isoformat()}{time_part} {word}")
    return "; ".join(parts)


# --- reading ------------------------------------------------------------------------------------


def _read(text: str) -> tuple[dict[str, str], list[tuple[int, dict[str, str]]]]:
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise ImportRejected("Filen är tom eller saknar rubrikrad på första raden")
    delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error:
        raise ImportRejected("Rubrikraden går inte att läsa") from None
    expected = ";".join(HEADERS)
    keys: list[str | None] = []
    unknown = []
    for name in header:
        cleaned = " ".join(name.removeprefix(csv_export.BOM).split())
        key = _BY_NAME.get(cleaned.casefold()) if cleaned else None
        if cleaned and key is None:
            unknown.append(cleaned)
        elif key is not None and key in keys:
            raise ImportRejected(f"Kolumnen {cleaned} finns två gånger i rubrikraden. Rubrikraden ska vara: {expected}")
        keys.append(key)
    if unknown:
        raise ImportRejected(f"Okända kolumner i rubrikraden: {', '.join(unknown)}. Rubrikraden ska vara: {expected}")
    missing = [header for key, header, _ in COLUMNS if key not in ("exceptions", "active") and key not in keys]
    if missing:
        raise ImportRejected(f"Rubrikraden saknar {', '.join(missing)}. Rubrikraden ska vara: {expected}")
    headers = {key: header[index].strip() for index, key in enumerate(keys) if key}
    rows = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(rows) >= MAX_ROWS:
                    raise ImportRejected(f"Filen har för många rader: högst {MAX_ROWS}")
                rows.append((line, {key: unguard(cell) for key, cell in zip(keys, cells, strict=False) if key}))
            line = reader.line_num + 1
    except csv.Error as error:
        raise ImportRejected(f"Rad {line} går inte att läsa som CSV ({error})") from None
    return headers, rows


def _message(problems: list[RowProblem]) -> str:
    lines = len({problem.line for problem in problems})
    return f"Filen importerades inte: {lines} rad{'er' if lines != 1 else ''} har fel. Rätta och försök igen."


def import_csv(
    db_session: Session, data: bytes, *, now: datetime, complete: bool = False
) -> supervision_clients.SaveSummary:
    """Validate the whole file, then save it in the caller's transaction (the caller commits).
    Raises :class:`~contacts.register_csv.ImportRejected` with every problem, writing nothing."""
    headers, rows = _read(decode(data))
    if not rows:
        raise ImportRejected("Filen har inga rader under rubrikraden")
    problems: list[RowProblem] = []
    items = []
    lines = []
    for line, cells in rows:
        item = {
            "reference": cells.get("reference", ""),
            "provider": cells.get("provider", ""),
            "area": cells.get("area", ""),
        }
        active = cells.get("active", "").strip().casefold()
        if active in _TRUE:
            item["active"] = True
        elif active in _FALSE:
            item["active"] = False
        else:
            problems.append(RowProblem(line, headers.get("active", ""), "Ange ja eller nej"))
        try:
            item["schedules"] = parse_schedule_text(cells.get("schedules", ""))
        except ValueError as error:
            problems.append(RowProblem(line, headers.get("schedules", ""), str(error)))
            item["schedules"] = []
        try:
            item["exceptions"] = parse_exceptions_text(cells.get("exceptions", ""))
        except ValueError as error:
            problems.append(RowProblem(line, headers.get("exceptions", ""), str(error)))
            item["exceptions"] = []
        items.append(item)
        lines.append(line)
    try:
        if problems:
            supervision_clients.check_clients(db_session, items)  # the other columns' problems too
            raise supervision_clients.BatchRejected([])
        return supervision_clients.save_clients(db_session, items, now=now, complete=complete)
    except supervision_clients.BatchRejected as error:
        for problem in error.problems:
            key = _FIELD_COLUMN.get(problem.field.split("[", 1)[0].split(".", 1)[0], problem.field.split("[", 1)[0])
            column = headers.get(key, "")
            message = problem.message
            if "[" in problem.field:
                message = f"{message} ({_part_name(problem.field)})"
            problems.append(RowProblem(lines[problem.index] if problem.index < len(lines) else 0, column, message))
    problems.sort(key=lambda p: (p.line, HEADERS.index(p.column) if p.column in HEADERS else -1))
    raise ImportRejected(_message(problems), problems)


def _part_name(field_name: str) -> str:
    """``schedules[1].times`` as "mönster 2" (which part of the cell is to blame)."""
    match = re.match(r"(schedules|exceptions)\[(\d+)\]", field_name)
    if match is None:
        return field_name
    word = "mönster" if match.group(1) == "schedules" else "undantag"
    return f"{word} {int(match.group(2)) + 1}"


# --- exporting ----------------------------------------------------------------------------------


def export_rows(db_session: Session):
    yield list(HEADERS)
    providers = {provider.id: provider.name for provider in db_session.scalars(select(Provider))}
    clients = db_session.scalars(
        select(SupervisedClient)
        .options(selectinload(SupervisedClient.schedules), selectinload(SupervisedClient.exceptions))
        .order_by(SupervisedClient.reference, SupervisedClient.id)
    )
    for client in clients:
        yield [
            client.reference,
            providers.get(client.provider_id, ""),
            client.area,
            schedule_text(client),
            exceptions_text(client),
            "ja" if client.is_active else "nej",
        ]


def export_csv(db_session: Session) -> str:
    """The clients as CSV for Excel (:mod:`core.csv_export`: UTF-8 with a BOM, ``;``, CRLF)."""
    return csv_export.to_text(export_rows(db_session))


# --- the page -----------------------------------------------------------------------------------


def _filters() -> dict:
    args = request.args
    return {
        "provider_id": record_id(args.get("provider_id")),
        "area": " ".join(args.get("area", "").split())[:100],
        "active": args.get("active", "yes") if args.get("active") in ("yes", "no", "all") else "yes",
    }


def _page(*, summary=None, rejected=None, status=200):
    filters = _filters()
    query = select(SupervisedClient).options(
        selectinload(SupervisedClient.schedules), selectinload(SupervisedClient.exceptions)
    )
    if filters["provider_id"] is not None:
        query = query.where(SupervisedClient.provider_id == filters["provider_id"])
    if filters["active"] != "all":
        query = query.where(SupervisedClient.is_active.is_(filters["active"] == "yes"))
    clients = list(db.session.scalars(query.order_by(SupervisedClient.reference)))
    if filters["area"]:
        wanted = supervision_clients.area_key(filters["area"])
        clients = [client for client in clients if supervision_clients.area_key(client.area) == wanted]
    providers = db.session.scalars(select(Provider).order_by(Provider.name)).all()
    areas = sorted({client.area for client in db.session.scalars(select(SupervisedClient))}, key=str.casefold)
    return (
        render_template(
            "visits/supervision_clients.html",
            clients=clients,
            providers=providers,
            provider_names={provider.id: provider.name for provider in providers},
            areas=areas,
            filters=filters,
            schedule_text=schedule_text,
            exceptions_text=exceptions_text,
            summary=summary,
            rejected=rejected,
            headers=HEADERS,
            max_mb=MAX_BYTES // (1024 * 1024),
        ),
        status,
    )


@bp.get("/clients")
@roles_required(*USERS)
@audit.audited_view("client")
def clients():
    """The camera-supervised clients and their schedules, with the CSV import and export."""
    return _page()


@bp.post("/clients")
@roles_required(*USERS)
def import_file():
    """Import a CSV file of clients: all or nothing, every bad row reported."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(rejected=ImportRejected(_("Välj en CSV-fil att importera.")), status=400)
    data = upload.stream.read(MAX_BYTES + 1)
    try:
        summary = import_csv(db.session, data, now=current_clock().now(), complete=request.form.get("complete") == "on")
    except ImportRejected as error:
        db.session.rollback()
        return _page(rejected=error, status=400)
    db.session.commit()
    flash(
        _(
            "Importen är klar: %(created)d nya, %(updated)d ändrade, %(unchanged)d oförändrade, "
            "%(deactivated)d avaktiverade.",
            created=summary.created,
            updated=summary.updated,
            unchanged=summary.unchanged,
            deactivated=summary.deactivated,
        ),
        "success",
    )
    return redirect(url_for("supervision.clients"))


@bp.get("/clients.csv")
@roles_required(*USERS)
@audit.audited_export("client")
def export_file():
    """Every client as CSV for Excel; re-importable unchanged."""
    day = current_clock().now().date().isoformat()
    return csv_export.response(export_rows(db.session), filename=f"kameratillsyn-{day}.csv")


# --- the command line ---------------------------------------------------------------------------

supervision_cli = AppGroup("supervision", help="Camera-supervised clients: CSV import and export.")


@supervision_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--complete", is_flag=True, help="The file is the whole list: deactivate clients not in it.")
def import_command(path: Path, complete: bool) -> None:
    """Import clients and schedules from a CSV file (all or nothing; see crisis/supervision_csv.py)."""
    if path.stat().st_size > MAX_BYTES:
        raise click.ClickException(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        summary = import_csv(db.session, path.read_bytes(), now=current_clock().now(), complete=complete)
    except ImportRejected as error:
        db.session.rollback()
        click.echo(error.message, err=True)
        for problem in error.problems:
            click.echo(f"  rad {problem.line}, {problem.column or 'hela raden'}: {problem.message}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(
        f"imported: {summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged, "
        f"{summary.deactivated} deactivated"
    )


@supervision_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export_command(path: Path) -> None:
    """Write the clients to a CSV file (UTF-8 with BOM, ';'), as the page's export does."""
    path.write_bytes(export_csv(db.session).encode("utf-8"))
    click.echo(f"exported to {path}")


def init_app(app) -> None:
    app.cli.add_command(supervision_cli)
