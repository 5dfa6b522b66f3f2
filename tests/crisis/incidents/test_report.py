"""The follow-up figures: notice → first letter and start → resolution, per supplier and month."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from core.extensions import db
from crisis.incidents.models import Incident
from tests.crisis.incidents.test_record import add_letter, add_notice, make_incident, make_supplier, staff_client, utc


def _seed_march(app):
    """March 2027 in Stockholm (the month begins 28 Feb 23:00 UTC, ends 31 Mar 22:00 UTC)."""
    with app.app_context():
        telia, careium = make_supplier("Telia"), make_supplier("Careium")
        # Telia: letters after 10, 20 and 60 minutes; resolved after 2 h and 5 h (from the start).
        a = make_incident(
            "Telia A",
            notice_at=utc(2027, 3, 2, 8),
            starts_at=utc(2027, 3, 2, 7, 30),
            supplier_id=telia,
            status="resolved",
            resolved_at=utc(2027, 3, 2, 9, 30),
        )
        add_letter(a, utc(2027, 3, 2, 8, 10))
        add_letter(a, utc(2027, 3, 2, 9, 0), number=2, kind="update")  # a later letter is not the first
        b = make_incident(
            "Telia B",
            notice_at=utc(2027, 3, 10, 8),
            supplier_id=telia,
            planned=True,
            status="resolved",
            resolved_at=utc(2027, 3, 10, 13),
        )
        add_letter(b, utc(2027, 3, 10, 8, 20))
        c = make_incident("Telia C still open", notice_at=utc(2027, 3, 20, 8), supplier_id=telia, status="open")
        add_letter(c, utc(2027, 3, 20, 9))
        # Telia, first notice 31 March 23:30 local (21:30 UTC, summer time): a March incident,
        # resolved in April; a second notice in April does not move it.
        d = make_incident(
            "Telia D over the month end",
            notice_at=utc(2027, 3, 31, 21, 30),
            supplier_id=telia,
            status="resolved",
            resolved_at=utc(2027, 4, 1, 1, 30),
        )
        add_notice(d, utc(2027, 4, 1, 0, 30), "Uppdatering")
        add_letter(d, utc(2027, 3, 31, 22, 10))
        # Careium: one, not relevant (closed without a letter or resolution).
        make_incident("Careium E", notice_at=utc(2027, 3, 5, 12), supplier_id=careium, status="not_relevant")
        # Not March: 1 March 00:30 local is in March, 28 February 23:30 local is not.
        make_incident("Telia F February", notice_at=utc(2027, 2, 28, 22, 30), supplier_id=telia)
        make_incident("No supplier", notice_at=utc(2027, 2, 28, 23, 30))
        db.session.commit()


def _csv_rows(response):
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


def test_figures_per_supplier_for_a_month(app, make_user):
    _seed_march(app)
    response = staff_client(app, make_user).get("/incidents/report", query_string={"month": "2027-03", "format": "csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="storningar-2027-03.csv"' in response.headers["Content-Disposition"]
    rows = _csv_rows(response)
    assert rows[0][0] == "Leverantör" and rows[0][-1] == "Pågående"
    table = {row[0]: row[1:] for row in rows[1 : rows.index([])]}
    # incidents, planned, unplanned, notice→letter median/max, start→resolution median/max, open
    assert table["Telia"] == ["4", "1", "3", "30", "60", "240", "300", "1"]
    assert table["Careium"] == ["1", "0", "1", "", "", "", "", "0"]
    assert table["Ingen leverantör angiven"] == ["1", "0", "1", "", "", "", "", "1"]
    assert table["Alla leverantörer"][:3] == ["6", "1", "5"]
    assert list(table) == ["Careium", "Telia", "Ingen leverantör angiven", "Alla leverantörer"]
    assert ["Månad", "2027-03"] in rows and ["Tidszon", "Europe/Stockholm"] in rows


def test_an_incident_belongs_to_the_month_of_its_first_notice(app, make_user):
    _seed_march(app)
    client = staff_client(app, make_user)
    april = _csv_rows(client.get("/incidents/report?month=2027-04&format=csv"))
    assert april[1][0] == "Alla leverantörer" and april[1][1] == "0"  # D counted in March only
    february = _csv_rows(client.get("/incidents/report?month=2027-02&format=csv"))
    table = {row[0]: row[1:] for row in february[1 : february.index([])]}
    assert table["Telia"][0] == "1" and table["Telia"][-1] == "1"  # F: open, still counted


def test_the_report_page_shows_durations_and_the_months_incidents(app, make_user):
    _seed_march(app)
    html = staff_client(app, make_user, "on_call").get("/incidents/report?month=2027-03").get_data(as_text=True)
    telia = re.search(r'<th scope="row">Telia</th>(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", telia)
    assert cells == ["4", "1", "3", "30 min", "1 h 00 min", "4 h 00 min", "5 h 00 min", "1"]
    assert "Telia D over the month end" in html and "Telia F February" not in html
    assert 'href="/incidents/report?month=2027-02"' in html and 'href="/incidents/report?month=2027-04"' in html
    assert "format=csv" in html


def test_without_a_month_the_report_shows_the_current_local_month(app, make_user, clock):
    clock.set(utc(2027, 3, 31, 22, 30))  # 1 April 00:30 in Stockholm
    html = staff_client(app, make_user).get("/incidents/report").get_data(as_text=True)
    assert "<h1>Uppföljning av störningar april 2027</h1>" in html
    assert "Inga störningar den här månaden." in html


@pytest.mark.parametrize("month", ["2027-13", "27-03", "mars", "2027-3"])
def test_a_malformed_month_is_refused_with_a_message(app, make_user, month):
    response = staff_client(app, make_user).get("/incidents/report", query_string={"month": month})
    assert response.status_code == 400
    assert "Ange månaden som ÅÅÅÅ-MM" in response.get_data(as_text=True)


def test_an_incident_without_a_letter_has_no_notice_to_letter_figure(app):
    from crisis.incidents.report import incident_figures

    with app.app_context():
        incident_id = make_incident("Utan brev", notice_at=utc(2027, 3, 2, 8), status="open")
        figures = incident_figures(db.session, db.session.get(Incident, incident_id))
        assert figures.notice_to_first_letter is None and figures.start_to_resolution is None
        assert figures.start_at == utc(2027, 3, 2, 8)  # no starts_at: the first notice
        add_letter(incident_id, utc(2027, 3, 2, 8, 45))
        incident = db.session.get(Incident, incident_id)
        incident.status, incident.resolved_at = "resolved", utc(2027, 3, 2, 10)
        figures = incident_figures(db.session, incident)
        assert figures.notice_to_first_letter == timedelta(minutes=45)
        assert figures.start_to_resolution == timedelta(hours=2)
