"""The text boundary at the door (core.text, core.text_input): every form and query string of
every page passes one normaliser before a view runs. A refused character (NUL, another control
character, a lone surrogate, a bidirectional override) gets 400 naming the field in Swedish and
nothing is stored; accepted text is stored in NFC. Database tests run on SQLite and PostgreSQL
(PostgreSQL refuses NUL in text itself: the refusal must come first)."""

from __future__ import annotations

import re
import unicodedata
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contacts import register
from contacts.models import ContactPerson, Provider, RegisterChange
from contacts.register import Actor
from core.extensions import db
from core.text_input import FIELD_LABELS, NEW_PREFIX
from tests.conftest import csrf_token_from, log_in

HEADER = "Utförare;Organisationsnummer;Utförartyp;Namn;Roll;Mobil;E-post;Tjänster;Aktiv"
REFUSED = {
    "NUL": "\x00",
    "escape": "\x1b",
    "C1 control": "\x85",
    "right-to-left override": "\u202e",
    "first-strong isolate": "\u2068",
}


@pytest.fixture
def team_client(client, make_user):
    _, username, password = make_user("team")
    log_in(client, username, password)
    return client


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _post(client, url, data, page=None):
    token = csrf_token_from(client.get(page or url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


@pytest.mark.parametrize("char", REFUSED.values(), ids=REFUSED.keys())
def test_a_provider_name_with_a_hidden_character_is_refused_naming_the_field_and_nothing_is_stored(
    app, team_client, char
):
    response = _post(team_client, "/register/providers/new", {"name": f"Omsorg{char} AB", "kind": "private"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Texten kunde inte tas emot" in html and "<strong>Namn:</strong>" in html
    assert f"U+{ord(char):04X}" in html and "Ingenting har sparats" in html
    assert _count(app, Provider) == 0 and _count(app, RegisterChange) == 0


def test_a_contact_name_with_nul_is_refused_on_the_form_and_the_register_is_unchanged(app, team_client, clock):
    with app.app_context():
        provider = register.create_provider(
            db.session, {"name": "Hemtjänst Norr", "kind": "municipal"}, actor=Actor("team"), now=clock.now()
        ).record
        db.session.commit()
        provider_id = provider.id
    before = _count(app, RegisterChange)
    url = f"/register/providers/{provider_id}/contacts/new"
    response = _post(team_client, url, {"name": "Anna\x00Lind", "email": "anna@example.se", "role_title": "Chef"})
    assert response.status_code == 400
    assert "NUL-tecknet (U+0000)" in response.get_data(as_text=True)
    assert _count(app, ContactPerson) == 0 and _count(app, RegisterChange) == before


def test_text_is_stored_in_nfc_so_a_name_typed_with_a_combining_ring_is_the_same_name(app, team_client):
    decomposed = unicodedata.normalize("NFD", "Hemtjänst Västerås")
    assert decomposed != "Hemtjänst Västerås"
    created = _post(team_client, "/register/providers/new", {"name": decomposed, "kind": "municipal"})
    assert created.status_code in (302, 303)
    with app.app_context():
        assert db.session.scalars(select(Provider.name)).all() == ["Hemtjänst Västerås"]
    # The same name typed the composed way is the same provider (names are unique).
    again = _post(team_client, "/register/providers/new", {"name": "Hemtjänst Västerås", "kind": "municipal"})
    assert again.status_code == 400 and _count(app, Provider) == 1


@pytest.mark.parametrize("char", ["\x00", "\u202e", "\x07"], ids=["NUL", "override", "bell"])
def test_a_register_csv_with_a_hidden_character_is_rejected_naming_the_line_and_imports_nothing(app, team_client, char):
    rows = [
        "Hemtjänst Norr;;Kommunal;Anna Lind;Enhetschef;070-174 06 05;anna@example.se;Kameratillsyn;ja",
        f"Hemtjänst Syd;;Kommunal;Bo{char} Ek;;070-174 06 06;;;ja",
    ]
    data = ("\ufeff" + "\r\n".join([HEADER, *rows])).encode()
    token = csrf_token_from(team_client.get("/register/import").get_data(as_text=True))
    response = team_client.post("/register/import", data={"csrf_token": token, "file": (BytesIO(data), "register.csv")})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Ingenting importerades" in html and f"U+{ord(char):04X}" in html
    assert re.search(r"\b3\b", html)  # the file's line 3
    assert _count(app, Provider) == 0 and _count(app, ContactPerson) == 0


def test_the_supervised_clients_csv_is_read_by_the_same_rule(app, clock):
    from contacts.register_csv import ImportRejected
    from crisis.visits.clients_csv import import_csv

    data = "Referens;Utförare;Område;Tillsyn\r\nK-1;Hemtjänst Norr;Cen\u202etrum;mån-fre 22:00\r\n".encode()
    with app.app_context(), pytest.raises(ImportRejected) as refused:
        import_csv(db.session, data, now=clock.now())
    assert [(problem.line, "U+202E" in problem.message) for problem in refused.value.problems] == [(2, True)]


def test_a_query_string_with_a_refused_character_gets_400_a_page_or_json(app, team_client, make_user, make_token):
    page = team_client.get("/register/", query_string={"q": "Anna\x00"})
    assert page.status_code == 400 and "<strong>Sök:</strong>" in page.get_data(as_text=True)
    user_id, _, _ = make_user("team")
    api = app.test_client().get(
        "/api/v1/providers", query_string={"q": "\u202eAB"}, headers={"Authorization": f"Bearer {make_token(user_id)}"}
    )
    assert api.status_code == 400
    assert "U+202E" in api.get_json()["fields"]["q"]


@pytest.mark.parametrize("path", ["/register/providers/%00", "/k/abc%00def", "/incidents/%E2%80%AE1"])
def test_a_path_with_a_refused_character_is_not_found(team_client, path):
    assert team_client.get(path).status_code == 404


def test_a_password_is_taken_as_typed(app, client, clock):
    """Passwords are hashed, never shown: the boundary does not touch them, so a password with
    a control character or a decomposed letter still logs in (NFC would change it)."""
    from accounts.service import create_user

    password = "lösenord-\x07-" + unicodedata.normalize("NFD", "åäö") + "-långt"
    with app.app_context():
        create_user(
            db_session=db.session, username="ada", display_name="Ada", role="team", now=clock.now(), password=password
        )
        db.session.commit()
    assert log_in(client, "ada", password).status_code == 302
    assert client.get("/register/").status_code == 200


# --- every field's words -------------------------------------------------------------------------


def _template_fields() -> set[str]:
    """The names of the fields the service's templates post or send in a query string."""
    root = Path(__file__).resolve().parent.parent
    names = set()
    for path in root.rglob("*.html"):
        if {"node_modules", ".venv", "tests"} & set(path.relative_to(root).parts):
            continue
        source = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<(?:input|textarea|select)\b[^>]*>", source):
            match = re.search(r'\bname="([a-z_]+)(?:[-{][^"]*)?"', tag)
            if match:
                names.add(match.group(1))
        names.update(re.findall(r'text_field\("([a-z_]+)"', source))
    return names


def test_every_field_of_the_pages_has_its_words_for_the_refusal_page():
    """A refused field is named as the page names it, never by its internal name."""
    unread = {"password", "file"}  # passwords are taken as typed; files are read by the CSV imports
    fields = {name.removeprefix(NEW_PREFIX) for name in _template_fields()} - unread
    assert len(fields) > 30
    assert fields - set(FIELD_LABELS) == set()
