"""Every CSV the service hands out is written by core.csv_export: Excel's format, and no cell that a
spreadsheet would run as a formula."""

from __future__ import annotations

import ast
import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest

from config.settings import ROOT
from contacts.models import ContactPerson, Provider
from core import csv_export
from core.extensions import db
from crisis.visits.models import Visit
from tests.conftest import log_in
from tests.contacts.test_check_public import make_month
from tests.crisis.incidents.test_record import make_incident, make_supplier, utc
from tests.crisis.visits.test_visit_helpers import new_visits

# Every route that answers text/csv, with what it must hold of the seeded data below.
CSV_ROUTES = {
    "register.export_file": ('\'=HYPERLINK("http://x")', "'+1 Omsorg", "'@SUM(1+1)*cmd|' /C calc'!A0", "'-1+1"),
    "supervision.export_file": ("'-K1", '\'=HYPERLINK("http://x")', "'@Norr"),
    "audit.export": (),
    "checks.report": ('\'=HYPERLINK("http://x")', "'@SUM(1+1)*cmd|' /C calc'!A0", "'\tTab", "'\rCR"),
    "incident_report.report": ("'=2+5+cmd|' /C calc'!A0",),
    "visit_report.report": ('\'=HYPERLINK("http://x")', "'-K1", "-5"),
}
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


# --- the writer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+46701112233", "'+46701112233"),
        ("-1", "'-1"),  # text, even when it looks like a number
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Anna = chef", "Anna = chef"),
        ("'citat", "'citat"),
        (None, ""),
        (-5, -5),  # a number the report computed stays a number
        (Decimal("-1.5"), Decimal("-1.5")),
    ],
)
def test_a_cell_starting_like_a_formula_is_written_as_text(value, written):
    assert csv_export.guard(value) == written
    if isinstance(value, str):
        assert csv_export.unguard(csv_export.guard(value)) == value


def test_the_text_is_excels_csv():
    text = csv_export.to_text([["Namn", "Antal"], ["Åsa; Öberg", -3], [], ["=1+1", 'sa "hej"']])
    assert text == '\ufeffNamn;Antal\r\n"Åsa; Öberg";-3\r\n\r\n\'=1+1;"sa ""hej"""\r\n'


def _source_files():
    skip = {"tests", "bench", "migrations", "node_modules", "instance"}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if not (set(parts) & skip or any(part.startswith(".") for part in parts)):
            yield path


def _writes_csv(node: ast.AST) -> str | None:
    """What in ``node`` writes CSV or names its media type, if anything."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "csv":
        return f"csv.{node.attr}" if node.attr in ("writer", "DictWriter") else None
    if isinstance(node, ast.ImportFrom) and node.module == "csv":
        names = [alias.name for alias in node.names if alias.name in ("writer", "DictWriter")]
        return f"from csv import {', '.join(names)}" if names else None
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and "text/csv" in node.value:
        return "text/csv"
    return None


def test_no_module_but_the_writer_writes_csv():
    writer = ROOT / "core" / "csv_export.py"
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno} {found}"
        for path in _source_files()
        if path != writer
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (found := _writes_csv(node))
    ]
    assert offenders == []


# --- every export, with data a spreadsheet would run --------------------------------------------


@pytest.fixture
def seeded(app, clock):
    """The month's check (two providers, two contacts), a supplier's incident, a client and a visit
    made five minutes early, then renamed to what an attacker would type."""
    checked = make_month(app, clock)
    with app.app_context():
        norr, omsorg = (db.session.get(Provider, person.provider_id) for person in checked.people)
        anna, bo = (db.session.get(ContactPerson, person.contact_id) for person in checked.people)
        norr.name, omsorg.name = '=HYPERLINK("http://x")', "+1 Omsorg"
        anna.name, anna.role_title = "@SUM(1+1)*cmd|' /C calc'!A0", "-1+1"
        bo.name, bo.role_title = "\tTab", "\rCR"
        supplier = make_supplier("=2+5+cmd|' /C calc'!A0")
        make_incident("GSM-avbrott", notice_at=utc(2026, 11, 20, 8), supplier_id=supplier)
        (visit_id,) = new_visits(clock, norr.name, [clock.now()], announce=False)
        visit = db.session.get(Visit, visit_id)
        visit.client.reference, visit.client.area = "-K1", "@Norr"
        visit.status, visit.done_at = "done", clock.now() - timedelta(minutes=5)
        db.session.commit()


def _url(rule) -> str:
    values = {name: "2026-11" if name == "month" else 1 for name in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def test_every_csv_route_goes_through_the_writer_and_guards_every_cell(app, seeded, make_user, monkeypatch):
    written: list[str] = []
    to_text = csv_export.to_text

    def recording(rows):
        written.append(to_text(rows))
        return written[-1]

    monkeypatch.setattr(csv_export, "to_text", recording)
    _, username, password = make_user("admin")
    client = app.test_client()
    log_in(client, username, password)

    answered: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        written.clear()
        response = client.get(_url(rule), query_string={"format": "csv"})
        if response.mimetype == "text/csv":
            body = response.get_data().decode("utf-8")
            assert written == [body], rule.endpoint  # the answer is the writer's text, nothing else
            assert response.headers["Cache-Control"] == "no-store"
            answered[rule.endpoint] = body
    assert sorted(answered) == sorted(CSV_ROUTES)

    for endpoint, body in answered.items():
        assert body.startswith("\ufeff") and "\r\n" in body, endpoint
        cells = [cell for row in csv.reader(io.StringIO(body[1:], newline=""), delimiter=";") for cell in row]
        assert ";" in body.split("\r\n", 1)[0], endpoint
        unsafe = [c for c in cells if c.startswith(DANGEROUS) and not re.fullmatch(r"-\d+", c)]
        assert unsafe == [], endpoint
        for expected in CSV_ROUTES[endpoint]:
            assert expected in cells, (endpoint, expected)
