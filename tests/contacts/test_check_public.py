"""The personal link pages of the monthly check: opening is not answering, yes and no, changing
the answer, and a clear page for every link that cannot be used."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest

from contacts import register
from contacts.check_links import _mac, link_token, new_nonce
from contacts.check_models import CheckCorrection, CheckRecipient, MonthlyCheck
from contacts.models import ContactPerson
from contacts.register import Actor
from core.extensions import db
from tests.conftest import TEST_SECRET, csrf_token_from

# November 2026: the 1st is a Sunday, so the check went out on Monday 2 November at 08:00;
# reminders on the 5th and 6th, the call day is Monday 9 November (the 7th is a Saturday), and
# the check closes when December's opens (Tuesday 1 December 08:00). The clock stands on 23 November.
OPENED = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
CLOSES = datetime(2026, 12, 1, 7, 0, tzinfo=timezone.utc)

PEOPLE = (
    ("Hemtjänst Norr", "2120000142", "Anna Lind", "Enhetschef", "070-174 06 05", "anna@norr.example.se"),
    ("Omsorgsbolaget AB", None, "Bo Åkesson", "Verksamhetschef", "070-174 06 06", "bo@omsorg.example.se"),
)


@dataclass
class Person:
    recipient_id: int
    contact_id: int
    provider_id: int
    token: str


@dataclass
class Month:
    check_id: int
    month: str
    people: list[Person]


def make_month(app, clock, *, month="2026-11", people=PEOPLE, opened=OPENED, closes=CLOSES) -> Month:
    """Providers and contacts made through the register, then the month's check with one
    recipient per contact (as the engine would make them)."""
    team = Actor("team")
    made = []
    with app.app_context():
        for provider_name, org, name, role, mobile, email in people:
            provider = register.find_provider_by_name(db.session, provider_name)
            if provider is None:
                data = {"name": provider_name, "kind": "privat" if "AB" in provider_name else "kommunal"}
                if org:
                    data["organisation_number"] = org
                provider = register.create_provider(db.session, data, actor=team, now=clock.now()).record
            contact = register.create_contact(
                db.session,
                provider,
                {"name": name, "role_title": role, "mobile": mobile, "email": email, "services": "Kameratillsyn"},
                actor=team,
                now=opened - timedelta(days=30),
            ).record
            made.append(contact)
        year, number = (int(part) for part in month.split("-"))
        check = MonthlyCheck(
            month=month,
            send_on=opened.date(),
            first_reminder_on=opened.date() + timedelta(days=3),
            second_reminder_on=opened.date() + timedelta(days=4),
            call_on=date(year, number, 9),
            opened_at=opened,
            closes_at=closes,
            created_at=opened,
        )
        db.session.add(check)
        db.session.flush()
        people_made = []
        for contact in made:
            recipient = CheckRecipient(
                check_id=check.id,
                contact_id=contact.id,
                provider_id=contact.provider_id,
                added_at=opened,
                added_reason="start",
                nonce=new_nonce(),
                reminders_sent=0,
            )
            db.session.add(recipient)
            db.session.flush()
            people_made.append(
                Person(recipient.id, contact.id, contact.provider_id, link_token(recipient, TEST_SECRET))
            )
        db.session.commit()
        return Month(check.id, month, people_made)


@pytest.fixture
def month(app, clock):
    return make_month(app, clock)


def log_in_as(app, client, clock, role: str, *, provider_id: int | None = None) -> int:
    """A logged-in user of ``role`` (a provider contact's account belongs to ``provider_id``)."""
    from accounts.service import create_user
    from tests.conftest import DEFAULT_PASSWORD, log_in

    username = f"{role.replace('_', '-')}-user"
    with app.app_context():
        user = create_user(
            db_session=db.session,
            username=username,
            display_name=f"Test {role}",
            role=role,
            now=clock.now(),
            password=DEFAULT_PASSWORD,
            provider_id=provider_id,
        )
        db.session.commit()
        user_id = user.id
    log_in(client, username)
    return user_id


def text_of(response) -> str:
    """The page's text with white space collapsed (and none before punctuation)."""
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))
    return re.sub(r" ([.,:;])", r"\1", text)


def recipient_row(app, recipient_id) -> CheckRecipient:
    with app.app_context():
        recipient = db.session.get(CheckRecipient, recipient_id)
        db.session.expunge(recipient)
        return recipient


def corrections(app, recipient_id) -> list[tuple[str, str, dict, str]]:
    with app.app_context():
        rows = db.session.query(CheckCorrection).filter_by(recipient_id=recipient_id).order_by(CheckCorrection.id)
        return [(c.kind, c.status, c.proposed, c.comment) for c in rows]


def correction_form(client, token, **changes) -> dict:
    page = client.get(f"/k/{token}/korrigera")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    form = {"csrf_token": csrf_token_from(html)}
    for name in ("name", "role_title", "mobile", "email"):
        form[name] = re.search(rf'id="{name}" name="{name}" value="([^"]*)"', html).group(1)
    form["services"] = re.findall(r'name="services" value="(\w+)" checked', html)
    form["comment"] = ""
    form.update(changes)
    return form


def test_opening_the_link_shows_the_registers_details_and_does_not_count_as_an_answer(app, client, clock, month):
    anna = month.people[0]
    response = client.get(f"/k/{anna.token}")
    assert response.status_code == 200
    page = text_of(response)
    html = response.get_data(as_text=True)
    assert "Stämmer uppgifterna?" in page
    for shown in (
        "Hemtjänst Norr",
        "Anna Lind",
        "Enhetschef",
        "070-174 06 05",
        "anna@norr.example.se",
        "Kameratillsyn",
    ):
        assert shown in page
    assert "Bo Åkesson" not in page
    assert '<html lang="sv">' in html
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert response.headers["Referrer-Policy"] == "same-origin"
    stored = recipient_row(app, anna.recipient_id)
    assert stored.answer is None and stored.answered_at is None
    assert stored.first_opened_at == clock.now()

    clock.advance(hours=1)
    client.get(f"/k/{anna.token}")
    assert recipient_row(app, anna.recipient_id).first_opened_at == clock.now() - timedelta(hours=1)


def test_yes_from_a_phone_opened_from_the_sms_confirms_the_details(app, clock, month):
    phone = app.test_client()  # a browser with no cookies yet, as when an SMS link is tapped
    anna = month.people[0]
    page = phone.get(f"/k/{anna.token}")
    assert "SameSite=Lax" in page.headers["Set-Cookie"]
    token = csrf_token_from(page.get_data(as_text=True))
    response = phone.post(f"/k/{anna.token}", data={"csrf_token": token, "answer": "yes"})
    # post, redirect, get: a reload of the thanks reads the page again and never resends the answer
    assert (response.status_code, response.location) == (303, f"/k/{anna.token}?svar=sparat")
    response = phone.get(response.location)
    assert response.status_code == 200
    assert "Tack för ditt svar" in text_of(response)
    assert "Du har bekräftat att uppgifterna stämmer." in text_of(response)
    stored = recipient_row(app, anna.recipient_id)
    assert (stored.answer, stored.answered_via, stored.answered_at) == ("yes", "link", clock.now())
    assert recipient_row(app, month.people[1].recipient_id).answer is None


def test_a_yes_without_the_forms_token_is_refused_and_leads_back_to_the_link(app, client, month):
    anna = month.people[0]
    response = client.post(f"/k/{anna.token}", data={"answer": "yes"})
    assert response.status_code == 400
    assert "Ditt svar kom inte fram" in text_of(response)
    assert f'href="/k/{anna.token}"' in response.get_data(as_text=True)
    assert recipient_row(app, anna.recipient_id).answer is None


def test_no_with_a_changed_mobile_and_a_comment_queues_a_correction_of_that_field_only(app, client, clock, month):
    anna = month.people[0]
    form = correction_form(client, anna.token, mobile="070-111 22 33", comment="Nytt jobbnummer")
    assert form["mobile"] == "070-111 22 33" and form["name"] == "Anna Lind"
    response = client.post(f"/k/{anna.token}/korrigera", data=form)
    assert (response.status_code, response.location) == (303, f"/k/{anna.token}?svar=sparat")
    response = client.get(response.location)
    assert "Välfärdsteknikteamet går igenom det du skrev" in text_of(response)
    stored = recipient_row(app, anna.recipient_id)
    assert (stored.answer, stored.answered_via, stored.answered_at) == ("no", "link", clock.now())
    assert corrections(app, anna.recipient_id) == [
        ("correction", "pending", {"mobile": "+46701112233"}, "Nytt jobbnummer")
    ]
    with app.app_context():  # the register is not changed until the team accepts
        assert db.session.get(ContactPerson, anna.contact_id).mobile == "+46701740605"


def test_a_bad_mobile_is_shown_beside_the_field_with_400_and_nothing_is_stored(app, client, month):
    anna = month.people[0]
    form = correction_form(client, anna.token, mobile="12", comment="Nytt nummer")
    response = client.post(f"/k/{anna.token}/korrigera", data=form)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html and 'href="#mobile"' in html
    assert re.search(r'id="mobile" name="mobile" value="12"[^>]*aria-describedby="mobile-hint mobile-error"', html)
    assert 'id="mobile-error"' in html and "mobilnummer" in text_of(response).lower()
    assert 'value="Nytt nummer"' in html or ">Nytt nummer</textarea>" in html
    assert recipient_row(app, anna.recipient_id).answer is None
    assert corrections(app, anna.recipient_id) == []


def test_submitting_no_without_saying_what_is_wrong_is_refused(app, client, month):
    anna = month.people[0]
    response = client.post(f"/k/{anna.token}/korrigera", data=correction_form(client, anna.token))
    assert response.status_code == 400
    assert "Ändra minst en uppgift" in text_of(response)
    assert recipient_row(app, anna.recipient_id).answer is None


def test_a_provider_can_name_a_new_contact_person(app, client, month):
    anna = month.people[0]
    form = correction_form(
        client, anna.token, new_name="Cecilia Öberg", new_mobile="0701740607", new_email="", new_services=["alarms"]
    )
    response = client.post(f"/k/{anna.token}/korrigera", data=form)
    assert response.status_code == 303
    assert corrections(app, anna.recipient_id) == [
        (
            "new_contact",
            "pending",
            {
                "name": "Cecilia Öberg",
                "role_title": "",
                "mobile": "+46701740607",
                "email": None,
                "services": ["alarms"],
                "is_active": True,
            },
            "",
        )
    ]


def test_a_new_contact_without_mobile_or_email_is_refused_beside_its_own_field(app, client, month):
    anna = month.people[0]
    form = correction_form(client, anna.token, new_name="Cecilia Öberg")
    response = client.post(f"/k/{anna.token}/korrigera", data=form)
    assert response.status_code == 400
    assert 'id="new_mobile-error"' in response.get_data(as_text=True)
    assert corrections(app, anna.recipient_id) == []


def test_a_second_visit_shows_the_answer_and_the_answer_can_be_changed(app, client, clock, month):
    anna = month.people[0]
    page = client.get(f"/k/{anna.token}")
    client.post(f"/k/{anna.token}", data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "answer": "yes"})

    clock.advance(days=1)
    again = text_of(client.get(f"/k/{anna.token}"))
    assert "Du svarade Ja 23 november kl. 10:00." in again
    assert "Du kan ändra ditt svar fram till 1 december kl. 08:00." in again

    client.post(f"/k/{anna.token}/korrigera", data=correction_form(client, anna.token, role_title="Områdeschef"))
    assert recipient_row(app, anna.recipient_id).answer == "no"
    # the form opens with what is waiting, and a new submission replaces it
    form = correction_form(client, anna.token)
    assert form["role_title"] == "Områdeschef"
    form["role_title"] = "Sektionschef"
    client.post(f"/k/{anna.token}/korrigera", data=form)
    assert [(kind, status, proposed) for kind, status, proposed, _ in corrections(app, anna.recipient_id)] == [
        ("correction", "superseded", {"role_title": "Områdeschef"}),
        ("correction", "pending", {"role_title": "Sektionschef"}),
    ]
    # back to yes: what was waiting is withdrawn
    page = client.get(f"/k/{anna.token}")
    assert "Du svarade Nej 24 november kl. 10:00." in text_of(page)
    client.post(f"/k/{anna.token}", data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "answer": "yes"})
    assert recipient_row(app, anna.recipient_id).answer == "yes"
    assert [status for _, status, _, _ in corrections(app, anna.recipient_id)] == ["superseded", "superseded"]


def _forged(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    ("reason", "status", "headline"),
    [
        ("malformed", 404, "Länken fungerar inte"),
        ("forged", 404, "Länken fungerar inte"),
        ("altered", 404, "Länken fungerar inte"),
        ("unknown", 404, "Länken fungerar inte"),
        ("replaced", 404, "Länken har ersatts"),
        ("closed", 410, "Månadskontrollen är avslutad"),
    ],
)
def test_a_link_that_cannot_be_used_gets_a_clear_page(app, client, clock, month, reason, status, headline):
    anna, bo = month.people
    token = anna.token
    if reason == "malformed":
        token = anna.token[:12]
    elif reason == "forged":
        token = _forged(anna.token)
    elif reason == "altered":  # another recipient's id with this link's nonce and signature
        token = f"{bo.recipient_id}-{anna.token.split('-', 1)[1]}"
    elif reason == "unknown":  # correctly signed, but no such recipient
        token = f"99999-abcdefghij-{_mac(TEST_SECRET, 99999, 'abcdefghij')}"
    elif reason == "replaced":
        with app.app_context():
            db.session.get(CheckRecipient, anna.recipient_id).nonce = new_nonce()
            db.session.commit()
    elif reason == "closed":
        clock.set(CLOSES)
    for path in (f"/k/{token}", f"/k/{token}/korrigera"):
        response = client.get(path)
        assert response.status_code == status, path
        page = text_of(response)
        assert headline in page
        assert "Kontakta välfärdsteknikteamet" in page
        assert "Traceback" not in page
    assert recipient_row(app, anna.recipient_id).first_opened_at is None


def test_an_answer_posted_after_the_check_closed_is_not_recorded(app, client, clock, month):
    anna = month.people[0]
    page = client.get(f"/k/{anna.token}")
    token = csrf_token_from(page.get_data(as_text=True))
    clock.set(CLOSES + timedelta(minutes=1))
    response = client.post(f"/k/{anna.token}", data={"csrf_token": token, "answer": "yes"})
    assert response.status_code == 410
    assert recipient_row(app, anna.recipient_id).answer is None


def test_the_link_pages_switch_to_english(client, month):
    anna = month.people[0]
    response = client.get(f"/k/{anna.token}", query_string={"lang": "en"})
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Are these details correct?" in text_of(response)
    assert '<html lang="en">' in client.get(f"/k/{anna.token}/korrigera").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/k/not-a-link").get_data(as_text=True)


def test_the_thanks_address_before_any_answer_shows_the_question(client, month):
    anna = month.people[0]
    response = client.get(f"/k/{anna.token}", query_string={"svar": "sparat"})
    assert response.status_code == 200
    assert "Stämmer uppgifterna?" in text_of(response) and "Tack för ditt svar" not in text_of(response)
