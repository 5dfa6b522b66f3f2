"""CSV import and export of camera-supervised clients: the page for the alarm operator and the
team, the command line, all or nothing with every bad row reported, and a round trip that
changes nothing. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from contacts import register
from contacts.register import Actor
from core.extensions import db
from crisis.visits import clients_csv as supervision_csv
from crisis.visits.models import ScheduleException, SupervisedClient, SupervisionSchedule
from tests.conftest import csrf_token_from, log_in

HEADER = "Referens;Utförare;Område;Schema;Undantag;Aktiv\r\n"
GOOD = (
    HEADER
    + 'K-001;Hemtjänst Norr;Norr;"mån-fre 23:00,01:30,04:00; lör-sön 23:00";2027-12-24 inställd;ja\r\n'
    + "K-002;556000-0001;Söder;alla 22:00 från 2027-01-01 till 2027-06-30;"
    + '"2027-02-01 22:00 inställd; 2027-02-02 02:00 extra";\r\n'
)


@pytest.fixture
def providers(app, clock):
    with app.app_context():
        team = Actor("team")
        norr = register.create_provider(
            db.session, {"name": "Hemtjänst Norr", "kind": "municipal"}, actor=team, now=clock.now()
        ).record
        omsorg = register.create_provider(
            db.session,
            {"name": "Omsorg AB", "kind": "private", "organisation_number": "5560000001"},
            actor=team,
            now=clock.now(),
        ).record
        db.session.commit()
        return {"Hemtjänst Norr": norr.id, "Omsorg AB": omsorg.id, "orgnr": omsorg.organisation_number}


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_good_file_creates_clients_with_schedules_and_exceptions(app, clock, providers):
    with app.app_context():
        data = GOOD.replace("556000-0001", providers["orgnr"]).encode("utf-8")
        summary = supervision_csv.import_csv(db.session, data, now=clock.now())
        db.session.commit()
        assert (summary.created, summary.updated) == (2, 0)
        first = db.session.scalar(select(SupervisedClient).where(SupervisedClient.reference == "K-001"))
        assert first.provider_id == providers["Hemtjänst Norr"]
        assert sorted((tuple(s.weekdays), s.local_time) for s in first.schedules) == [
            ((0, 1, 2, 3, 4), "01:30"),
            ((0, 1, 2, 3, 4), "04:00"),
            ((0, 1, 2, 3, 4), "23:00"),
            ((5, 6), "23:00"),
        ]
        second = db.session.scalar(select(SupervisedClient).where(SupervisedClient.reference == "K-002"))
        assert second.provider_id == providers["Omsorg AB"]  # by organisation number
        assert {(e.action, e.local_time) for e in second.exceptions} == {("skip", "22:00"), ("add", "02:00")}


def test_export_and_import_again_changes_nothing(app, clock, providers):
    with app.app_context():
        supervision_csv.import_csv(
            db.session, GOOD.replace("556000-0001", providers["orgnr"]).encode(), now=clock.now()
        )
        db.session.commit()
        exported = supervision_csv.export_csv(db.session)
        assert exported.startswith("\ufeffReferens;Utförare;Område;Schema;Undantag;Aktiv\r\n")
        assert "mån-fre 23:00,01:30,04:00; lör,sön 23:00" in exported
        again = supervision_csv.import_csv(db.session, exported.encode("utf-8"), now=clock.now())
        assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
        # Windows-1252, as Excel saves "CSV (semikolonavgränsad)", reads the same.
        again = supervision_csv.import_csv(db.session, exported.lstrip("\ufeff").encode("cp1252"), now=clock.now())
        assert again.unchanged == 2


def test_a_bad_file_imports_nothing_and_reports_every_bad_row(app, clock, providers):
    bad = (
        HEADER
        + "K-001;Hemtjänst Norr;Norr;mån-fre 23:00;;ja\r\n"
        + "K 002;Okänd AB;;mån-fre 25:00;;kanske\r\n"
        + "K-003;Hemtjänst Norr;Norr;varje natt;2027-13-01 extra;\r\n"
        + "K-001;Hemtjänst Norr;Norr;mån 23:00;;\r\n"
    )
    with app.app_context():
        with pytest.raises(supervision_csv.ImportRejected) as rejected:
            supervision_csv.import_csv(db.session, bad.encode(), now=clock.now())
        db.session.rollback()
        problems = {(p.line, p.column) for p in rejected.value.problems}
        assert problems == {
            (3, "Referens"),
            (3, "Utförare"),
            (3, "Område"),
            (3, "Schema"),
            (3, "Aktiv"),
            (4, "Schema"),
            (4, "Undantag"),
            (5, "Referens"),
        }
        assert count(SupervisedClient) == 0 and count(SupervisionSchedule) == 0 and count(ScheduleException) == 0


def test_unknown_columns_and_a_missing_column_reject_the_file(app, clock, providers):
    with app.app_context():
        with pytest.raises(supervision_csv.ImportRejected, match="Okända kolumner"):
            supervision_csv.import_csv(db.session, b"Referens;Utforare;Omrade;Schema\r\n", now=clock.now())
        with pytest.raises(supervision_csv.ImportRejected, match="saknar Schema"):
            supervision_csv.import_csv(db.session, "Referens;Utförare;Område\r\nK-1;A;B\r\n".encode(), now=clock.now())


def test_formula_cells_are_guarded_in_the_export(app, clock, providers):
    with app.app_context():
        supervision_csv.import_csv(
            db.session, (HEADER + "K-1;Hemtjänst Norr;=HYPERLINK(1);mån 23:00;;\r\n").encode(), now=clock.now()
        )
        exported = supervision_csv.export_csv(db.session)
        assert ";'=HYPERLINK(1);" in exported
        assert supervision_csv.import_csv(db.session, exported.encode(), now=clock.now()).unchanged == 1


def _page(client, make_user, role):
    _, username, _ = make_user(role=role)
    log_in(client, username)
    return client.get("/supervision/clients")


def test_the_alarm_operator_imports_on_the_page_and_sees_the_list(app, client, make_user, providers):
    page = _page(client, make_user, "alarm_operator")
    assert page.status_code == 200
    token = csrf_token_from(page.get_data(as_text=True))
    data = GOOD.replace("556000-0001", providers["orgnr"]).encode()
    response = client.post(
        "/supervision/clients",
        data={"csrf_token": token, "file": (io.BytesIO(data), "klienter.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "K-001" in html and "mån-fre 23:00,01:30,04:00" in html
    filtered = client.get("/supervision/clients?area=Söder").get_data(as_text=True)
    assert "K-002" in filtered and "K-001" not in filtered
    export = client.get("/supervision/clients.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv" and "K-002" in export.get_data(as_text=True)


def test_a_bad_file_on_the_page_is_400_with_the_rows(app, client, make_user, providers):
    page = _page(client, make_user, "team")
    token = csrf_token_from(page.get_data(as_text=True))
    response = client.post(
        "/supervision/clients",
        data={
            "csrf_token": token,
            "file": (io.BytesIO((HEADER + "K-1;Nobody;Norr;mån 23:00;;\r\n").encode()), "x.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "Ingenting importerades" in response.get_data(as_text=True)
    with app.app_context():
        assert count(SupervisedClient) == 0


def test_only_the_alarm_operator_the_team_and_admins_see_the_page(app, client, make_user):
    assert _page(client, make_user, "on_call").status_code == 403


def test_the_command_line_imports_and_exports(app, runner, providers, tmp_path):
    source = tmp_path / "klienter.csv"
    source.write_text(GOOD.replace("556000-0001", providers["orgnr"]), encoding="utf-8")
    result = runner.invoke(args=["supervision", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    target = tmp_path / "ut.csv"
    assert runner.invoke(args=["supervision", "export", str(target)]).exit_code == 0
    assert "K-001" in target.read_text(encoding="utf-8-sig")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "K-9;Nobody;Norr;mån 23:00;;\r\n", encoding="utf-8")
    result = runner.invoke(args=["supervision", "import", str(bad)])
    assert result.exit_code == 1
