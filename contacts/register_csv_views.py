"""The register's CSV import and export: the pages (the routes are on
:data:`contacts.register_views.bp`) and ``flask register import FILE`` / ``export FILE``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from flask import g, render_template, request
from flask.cli import AppGroup
from flask_babel import gettext as _

from accounts.access import roles_required
from contacts import register_csv
from contacts.register import Actor
from contacts.register_views import EDITORS, READERS, bp
from core import audit, csv_export
from core.clock import current_clock
from core.extensions import db

log = logging.getLogger(__name__)


@bp.route("/import", methods=["GET", "POST"])
@roles_required(*EDITORS)
def import_file():
    """Upload a CSV file; all or nothing, with a report of every bad row."""
    summary = rejected = None
    status = 200
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            rejected = register_csv.ImportRejected(_("Välj en CSV-fil att importera."))
        else:
            data = upload.stream.read(register_csv.MAX_BYTES + 1)
            try:
                summary = register_csv.import_csv(
                    db.session, data, actor=Actor("import", user_id=g.user.id), now=current_clock().now()
                )
            except register_csv.ImportRejected as error:
                db.session.rollback()
                rejected = error
            else:
                db.session.commit()
                log.info(
                    "register import",
                    extra={
                        "user_id": g.user.id,
                        "contacts_created": summary.created,
                        "contacts_updated": summary.updated,
                        "contacts_unchanged": summary.unchanged,
                    },
                )
        status = 400 if rejected is not None else 200
    return (
        render_template(
            "contacts/register/import.html",
            summary=summary,
            rejected=rejected,
            headers=register_csv.HEADERS,
            max_mb=register_csv.MAX_BYTES // (1024 * 1024),
            max_rows=register_csv.MAX_ROWS,
        ),
        status,
    )


@bp.get("/export.csv")
@roles_required(*READERS)
@audit.audited_export("register")
def export_file():
    """The whole register as CSV for Excel (UTF-8 with BOM, ``;``); re-importable unchanged."""
    day = current_clock().now().date().isoformat()
    return csv_export.response(register_csv.export_rows(db.session), filename=f"kontaktregister-{day}.csv")


register_cli = AppGroup("register", help="The contacts register: CSV import and export.")


@register_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(path: Path) -> None:
    """Import a CSV file into the register (all or nothing; see contacts/register_csv.py)."""
    if path.stat().st_size > register_csv.MAX_BYTES:
        raise click.ClickException(f"the file is larger than {register_csv.MAX_BYTES // (1024 * 1024)} MB")
    try:
        summary = register_csv.import_csv(
            db.session, path.read_bytes(), actor=Actor("import"), now=current_clock().now()
        )
    except register_csv.ImportRejected as error:
        db.session.rollback()
        click.echo(error.message, err=True)
        for problem in error.problems:
            click.echo(f"  rad {problem.line}, {problem.column or 'hela raden'}: {problem.message}", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(
        f"imported: {summary.created} created, {summary.updated} updated, {summary.unchanged} unchanged; "
        f"providers: {summary.providers_created} created, {summary.providers_updated} updated"
    )


@register_cli.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def export_command(path: Path) -> None:
    """Write the register to a CSV file (UTF-8 with BOM, ';'), as the export page does."""
    path.write_bytes(register_csv.export_csv(db.session).encode("utf-8"))
    click.echo(f"exported to {path}")
