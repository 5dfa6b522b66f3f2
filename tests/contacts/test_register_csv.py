"""CSV import and export of the register: all or nothing, idempotent, Excel's encodings."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from contacts import register, register_csv
from contacts.models import ContactPerson, Provider, RegisterChange
from contacts.register import Actor
from contacts.register_csv import ImportRejected
from core.extensions import db

HEADER = "Utförare;Organisationsnummer;Utförartyp;Namn;Roll;Mobil;E-post;Tjänster;Aktiv"
IMPORT = Actor("import")


def _row(number: int, *, provider: str | None = None, mobile: str | None = None, services="Kameratillsyn") -> str:
    provider = provider or f"Hemtjänst Område {number // 10}"
    mobile = mobile if mobile is not None else f"070-{1000000 + number}"
    return f"{provider};;Kommunal;Person {number};Enhetschef;{mobile};person{number}@example.se;{services};ja"


def _file(rows: list[str], *, header: str = HEADER, delimiter: str = ";", bom: bool = False, encoding="utf-8") -> bytes:
    text = "\r\n".join([header, *rows]) + "\r\n"
    if delimiter != ";":
        text = text.replace(";", delimiter)
    return (("\ufeff" if bom else "") + text).encode(encoding)


def _import(app, clock, data: bytes):
    with app.app_context():
        try:
            summary = register_csv.import_csv(db.session, data, actor=IMPORT, now=clock.now())
        except ImportRejected:
            db.session.rollback()
            raise
        db.session.commit()
        return summary


def _counts(app):
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Provider, ContactPerson, RegisterChange)
        )


def test_a_file_with_bad_rows_among_1000_is_rejected_with_every_problem_and_imports_nothing(app, clock):
    rows = [_row(number) for number in range(1000)]
    rows[499] = _row(499, mobile="08-123 456 78")  # a landline: no SMS; file line 501
    rows[799] = _row(799, services="Kameratillsyn, radio")  # file line 801
    with pytest.raises(ImportRejected) as caught:
        _import(app, clock, _file(rows))
    problems = caught.value.problems
    assert [(p.line, p.column) for p in problems] == [(501, "Mobil"), (801, "Tjänster")]
    assert "radio" in problems[1].message
    assert "2 rader har fel" in caught.value.message
    assert _counts(app) == (0, 0, 0)


def test_a_good_file_creates_providers_and_contacts_with_history_from_the_import(app, clock):
    summary = _import(app, clock, _file([_row(number) for number in range(25)]))
    assert (summary.created, summary.updated, summary.unchanged, summary.providers_created) == (25, 0, 0, 3)
    with app.app_context():
        contact = db.session.scalar(select(ContactPerson).where(ContactPerson.name == "Person 7"))
        assert contact.mobile == "+46701000007" and contact.services == ["camera_supervision"]
        assert contact.provider.name == "Hemtjänst Område 0"
        sources = {change.source for change in register.history(db.session, entity="contact", entity_id=contact.id)}
        assert sources == {"import"}


@pytest.mark.parametrize("delimiter", [";", ","])
def test_semicolon_and_comma_files_as_excel_writes_them_both_import(app, clock, delimiter):
    rows = [_row(1, services="Kameratillsyn"), _row(2, services="Trygghetslarm")]
    if delimiter == ",":
        # Excel quotes a cell that holds the separator.
        rows = [_row(3, services='"Kameratillsyn, Trygghetslarm"')]
    summary = _import(app, clock, _file(rows, delimiter=delimiter))
    assert summary.created == len(rows)
    with app.app_context():
        services = [c.services for c in db.session.scalars(select(ContactPerson).order_by(ContactPerson.id))]
    expected = [["camera_supervision"], ["alarms"]] if delimiter == ";" else [["camera_supervision", "alarms"]]
    assert services == expected


@pytest.mark.parametrize(
    "bom, encoding",
    [(True, "utf-8"), (False, "utf-8"), (False, "cp1252")],
    ids=["utf8-bom", "utf8", "excel-windows-1252"],
)
def test_swedish_letters_survive_utf8_with_or_without_bom_and_windows_1252(app, clock, bom, encoding):
    row = (
        "Hemtjänst Västerås Öst;;Privat;Åsa Ärlig-Öberg;Samordnare nattpatrull;070-174 06 05;"
        "asa@example.se;Nyckelfria lås;Ja"
    )
    _import(app, clock, _file([row], bom=bom, encoding=encoding))
    with app.app_context():
        contact = db.session.scalar(select(ContactPerson))
        assert contact.name == "Åsa Ärlig-Öberg"
        assert contact.provider.name == "Hemtjänst Västerås Öst"
        assert contact.provider.kind == "private"
        assert contact.services == ["keyless_locks"]


def test_english_column_names_in_another_order_are_accepted(app, clock):
    data = _file(["anna@example.se;Anna Lind;Hemtjänst Norr;municipal"], header="Email;Name;Provider;Provider type")
    summary = _import(app, clock, data)
    assert summary.created == 1


def test_importing_the_same_file_twice_changes_nothing(app, clock):
    data = _file([_row(number) for number in range(40)])
    _import(app, clock, data)
    before = _counts(app)
    clock.advance(hours=1)
    summary = _import(app, clock, data)
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 40)
    assert not summary.changed
    assert _counts(app) == before  # no new history rows either


def test_a_changed_row_updates_only_its_changed_fields_with_history(app, clock):
    _import(app, clock, _file([_row(1), _row(2)]))
    changed = _row(2).replace("Enhetschef", "Samordnare").replace(";ja", ";nej")
    summary = _import(app, clock, _file([_row(1), changed]))
    assert (summary.created, summary.updated, summary.unchanged) == (0, 1, 1)
    with app.app_context():
        contact = db.session.scalar(select(ContactPerson).where(ContactPerson.name == "Person 2"))
        assert contact.role_title == "Samordnare" and contact.is_active is False
        latest = {
            change.field: (change.old_value, change.new_value, change.source)
            for change in register.history(db.session, entity="contact", entity_id=contact.id)
            if change.action != "created"
        }
        assert latest == {"role_title": ("Enhetschef", "Samordnare", "import"), "is_active": ("ja", "nej", "import")}


def test_the_same_contact_twice_in_one_file_is_an_error_naming_both_lines(app, clock):
    duplicate = _row(1).replace("Person 1", "Someone Else").replace("070-1000001", "070-174 06 09")
    with pytest.raises(ImportRejected) as caught:
        _import(app, clock, _file([_row(1), _row(2), duplicate]))
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (4, "E-post")
    assert "rad 2" in problem.message
    assert _counts(app) == (0, 0, 0)


def test_rows_of_one_provider_must_agree_on_the_providers_details(app, clock):
    rows = [_row(1, provider="Hemtjänst Norr"), _row(2, provider="hemtjänst norr").replace(";Kommunal;", ";Privat;")]
    with pytest.raises(ImportRejected) as caught:
        _import(app, clock, _file(rows))
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (3, "Utförartyp") and "rad 2" in problem.message


def test_export_then_import_changes_nothing_and_exports_the_same(app, clock):
    team = Actor("team")
    with app.app_context():
        now = clock.now()
        norr = register.create_provider(
            db.session,
            {"name": "Hemtjänst Norr", "kind": "kommunal", "organisation_number": "2120000142"},
            actor=team,
            now=now,
        ).record
        privat = register.create_provider(
            db.session, {"name": "Ängens Omsorg AB", "kind": "privat"}, actor=team, now=now
        )
        register.create_provider(db.session, {"name": "Utan Kontakter AB", "kind": "privat"}, actor=team, now=now)
        for data in (
            {
                "name": "Åsa Öberg",
                "mobile": "070-174 06 05",
                "email": "Asa@Example.se",
                "services": "Kameratillsyn, larm",
            },
            {"name": '=HYPERLINK("x")', "role_title": "-natt", "mobile": "+47 412 34 567"},
            {"name": "Bo Ek", "email": "bo@example.se", "is_active": "nej"},
        ):
            register.create_contact(db.session, norr, data, actor=team, now=now)
        register.create_contact(
            db.session, privat.record, {"name": "Eva", "email": "eva@example.se"}, actor=team, now=now
        )
        db.session.commit()
        exported = register_csv.export_csv(db.session)
    before = _counts(app)
    assert exported.startswith("\ufeffUtförare;Organisationsnummer;")
    assert "'=HYPERLINK" in exported and "'+47 41 23 45 67" in exported  # Excel shows them as text
    summary = _import(app, clock, exported.encode("utf-8"))
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 4)
    assert not summary.changed
    assert _counts(app) == before
    with app.app_context():
        assert register_csv.export_csv(db.session) == exported
        odd = db.session.scalar(select(ContactPerson).where(ContactPerson.name.like("%HYPERLINK%")))
        assert odd.name == '=HYPERLINK("x")' and odd.mobile == "+4741234567"


@pytest.mark.parametrize(
    "header, expected",
    [
        ("Utförare;Namn;Telefon;E-post", "Okända kolumner i rubrikraden: Telefon"),
        ("Utförare;Roll;Mobil;E-post", "Rubrikraden saknar Namn"),
        ("Utförare;Namn;Roll", "saknar både Mobil och E-post"),
        ("Utförare;Namn;Mobil;Mobil", "Kolumnen Mobil finns två gånger"),
    ],
)
def test_a_bad_header_is_rejected_with_a_clear_message(app, clock, header, expected):
    with pytest.raises(ImportRejected) as caught:
        _import(app, clock, _file(["Hemtjänst Norr;Anna;x;y"], header=header))
    assert expected in caught.value.message
    assert HEADER in caught.value.message  # says what the header should be
    assert _counts(app) == (0, 0, 0)


def test_files_over_the_limits_are_rejected(app, clock, monkeypatch):
    with pytest.raises(ImportRejected, match="för stor"):
        _import(app, clock, b"x" * (register_csv.MAX_BYTES + 1))
    monkeypatch.setattr(register_csv, "MAX_ROWS", 10)
    with pytest.raises(ImportRejected, match="för många rader"):
        _import(app, clock, _file([_row(number) for number in range(11)]))
    with pytest.raises(ImportRejected, match="inga rader"):
        _import(app, clock, _file([]))
    assert _counts(app) == (0, 0, 0)


def test_the_import_command_imports_a_file_and_refuses_a_bad_one(app, tmp_path):
    runner = app.test_cli_runner()
    good = tmp_path / "register.csv"
    good.write_bytes(_file([_row(1), _row(2)], bom=True))
    result = runner.invoke(args=["register", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_file([_row(3), _row(4, mobile="12")]))
    result = runner.invoke(args=["register", "import", str(bad)])
    assert result.exit_code == 1
    assert "rad 3, Mobil" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ContactPerson)) == 2


def test_imported_active_contacts_reach_the_listeners_like_contacts_added_by_hand(app, clock, monkeypatch):
    # The monthly check listens to send a contact added mid-month its link at once.
    monkeypatch.setattr(register, "_listeners", [])
    heard = []

    @register.on_contact_reachable
    def listener(db_session, contact, now, reason):
        heard.append((contact.name, reason, contact.id is not None))

    rows = [_row(1), _row(2).replace(";ja", ";nej"), _row(3)]
    _import(app, clock, _file(rows))
    assert heard == [("Person 1", "created", True), ("Person 3", "created", True)]


def test_without_an_email_column_a_contact_is_recognised_by_its_mobile_and_other_fields_are_kept(app, clock):
    _import(app, clock, _file([_row(1)]))
    summary = _import(
        app, clock, _file(["Hemtjänst Område 0;Person Ett;070-1000001;Samordnare"], header="Utförare;Namn;Mobil;Roll")
    )
    assert (summary.created, summary.updated) == (0, 1)
    with app.app_context():
        contact = db.session.scalar(select(ContactPerson))
        assert (contact.name, contact.role_title) == ("Person Ett", "Samordnare")
        assert contact.email == "person1@example.se" and contact.services == ["camera_supervision"]
