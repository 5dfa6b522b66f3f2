"""The one CSV writer: every CSV the service hands out (the register, the clients, the audit log,
the monthly check's report, the disruption and visit reports) is written here, and nowhere else.

The format is what Excel on Swedish Windows opens right: UTF-8 with a BOM (without it Excel reads
Windows-1252), ``;`` between cells (the separator where the decimal comma is used), CRLF line
ends, a cell quoted only where it needs it (a ``;``, a quote or a line break in it).

**The formula guard** (OWASP "CSV injection"). A spreadsheet runs a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (``=HYPERLINK(…)``, ``@SUM(1+1)*cmd|' /C calc'!A0``), and a
leading tab or carriage return can hide such a start. Every *text* cell that starts with one of
them is written with a ``'`` in front, which makes the spreadsheet keep it as text. The guard is
decided by the cell's type, not its look:

- text (``str``, and anything else but numbers, written as ``str(value)``) is always guarded:
  it comes from people, and ``"-5"`` or ``"+46701112233"`` typed into a name or a phone field is
  text like any other (a phone number shown as ``'+46…`` keeps its plus; unguarded, Excel would
  read it as the sum ``=46…``);
- numbers (``int``, ``float``, ``Decimal``; not ``bool``) are written as they are: ``-5`` minutes
  is a number the report computed, and the spreadsheet should sum it, not show it as text;
- ``None`` is an empty cell.

:func:`unguard` takes the guard off again when a file comes back in (the register's and the
clients' imports), so an export imports unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal

from flask import Response

BOM = "\ufeff"
DELIMITER = ";"
LINE_END = "\r\n"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MIMETYPE = "text/csv"

Cell = str | int | float | Decimal | None


def guard(value: object) -> str | int | float | Decimal:
    """The cell as written: text starting like a formula behind a ``'``; numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def unguard(text: str) -> str:
    """A cell of an imported file as it was before :func:`guard`."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START:
        return text[1:]
    return text


def to_text(rows: Iterable[Iterable[object]]) -> str:
    """The rows as CSV text, BOM first, every cell through :func:`guard`; ``[]`` is an empty line."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, delimiter=DELIMITER, lineterminator=LINE_END)
    writer.writerows([guard(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def response(rows: Iterable[Iterable[object]], *, filename: str) -> Response:
    """A download of the rows (:func:`to_text`, UTF-8) named ``filename``; never cached, as every
    export holds personal data or the routine's record."""
    return Response(
        to_text(rows).encode("utf-8"),
        mimetype=MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
