"""The review queue: accepting a correction updates the register with its history, rejecting
needs a reason, two reviewers never apply one correction twice, nothing is half-applied."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from contacts import register
from contacts.check_models import CheckCorrection
from contacts.models import ContactPerson, RegisterChange
from contacts.register import Actor
from core.extensions import db
from tests.conftest import csrf_token_from, log_in
from tests.contacts.test_check_public import correction_form, log_in_as, make_month, text_of


@pytest.fixture
def month(app, clock):
    return make_month(app, clock)


@pytest.fixture
def team_member(app, client, make_user):
    user_id, username, password = make_user("team")
    log_in(client, username, password)
    return user_id


def _submit(app, token, **changes):
    """A contact's "no" through the link page (its own browser)."""
    browser = app.test_client()
    response = browser.post(f"/k/{token}/korrigera", data=correction_form(browser, token, **changes))
    assert response.status_code == 303, text_of(response)  # the thanks, by GET


def _pending(app) -> list[int]:
    with app.app_context():
        return [
            c.id for c in db.session.query(CheckCorrection).filter_by(status="pending").order_by(CheckCorrection.id)
        ]


def _decide(client, correction_id, action, reason=""):
    page = client.get("/checks/review")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post(
        f"/checks/review/{correction_id}", data={"csrf_token": token, "action": action, "reason": reason}
    )


def test_the_queue_shows_current_and_proposed_values_oldest_first(app, client, clock, month, team_member):
    anna, bo = month.people
    _submit(app, bo.token, email="bo.akesson@omsorg.example.se")
    clock.advance(minutes=5)
    _submit(app, anna.token, mobile="070-111 22 33", comment="Nytt nummer")
    page = client.get("/checks/review")
    assert page.status_code == 200
    text = text_of(page)
    assert text.index("Bo Åkesson") < text.index("Anna Lind")
    assert "E-postadress bo@omsorg.example.se bo.akesson@omsorg.example.se" in text
    assert "Mobilnummer 070-174 06 05 070-111 22 33" in text
    assert "Kommentar: Nytt nummer" in text


def test_accepting_updates_the_register_with_its_history(app, client, clock, month, team_member):
    anna = month.people[0]
    _submit(app, anna.token, mobile="070-111 22 33", role_title="Områdeschef")
    (correction_id,) = _pending(app)
    clock.advance(hours=2)
    response = _decide(client, correction_id, "accept")
    assert response.status_code == 303
    assert "Rättelsen är godkänd och registret uppdaterat." in text_of(client.get(response.headers["Location"]))
    with app.app_context():
        contact = db.session.get(ContactPerson, anna.contact_id)
        assert (contact.mobile, contact.role_title) == ("+46701112233", "Områdeschef")
        correction = db.session.get(CheckCorrection, correction_id)
        assert (correction.status, correction.reviewed_by_id, correction.reviewed_at) == (
            "accepted",
            team_member,
            clock.now(),
        )
        changes = register.history(db.session, entity="contact", entity_id=anna.contact_id)
        latest = {
            c.field: (c.old_value, c.new_value, c.source, c.changed_by_id) for c in changes if c.action == "updated"
        }
        assert latest == {
            "mobile": ("+46701740605", "+46701112233", "review", team_member),
            "role_title": ("Enhetschef", "Områdeschef", "review", team_member),
        }
    assert "Inga rättelser väntar på granskning." in text_of(client.get("/checks/review"))


def test_accepting_a_new_contact_person_creates_it(app, client, month, team_member):
    anna = month.people[0]
    _submit(app, anna.token, new_name="Cecilia Öberg", new_email="cecilia@norr.example.se", new_services=["alarms"])
    (correction_id,) = _pending(app)
    assert _decide(client, correction_id, "accept").status_code == 303
    with app.app_context():
        correction = db.session.get(CheckCorrection, correction_id)
        created = db.session.get(ContactPerson, correction.created_contact_id)
        assert (created.name, created.email, created.services, created.provider_id, created.is_active) == (
            "Cecilia Öberg",
            "cecilia@norr.example.se",
            ["alarms"],
            anna.provider_id,
            True,
        )
        sources = {c.source for c in register.history(db.session, entity="contact", entity_id=created.id)}
        assert sources == {"review"}


def test_rejecting_needs_a_reason_and_records_it(app, client, month, team_member):
    anna = month.people[0]
    _submit(app, anna.token, name="Anna Lind-Berg")
    (correction_id,) = _pending(app)
    response = _decide(client, correction_id, "reject", reason="  ")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Skriv varför rättelsen avvisas" in text_of(response)
    assert f'href="#reason-{correction_id}"' in html
    assert f'aria-describedby="reason-{correction_id}-error"' in html
    assert _pending(app) == [correction_id]

    assert _decide(client, correction_id, "reject", reason="Namnbytet gäller först i januari").status_code == 303
    with app.app_context():
        correction = db.session.get(CheckCorrection, correction_id)
        assert (correction.status, correction.reject_reason) == ("rejected", "Namnbytet gäller först i januari")
        assert db.session.get(ContactPerson, anna.contact_id).name == "Anna Lind"
    history = text_of(client.get(f"/checks/contacts/{anna.contact_id}"))
    assert "Avvisad" in history and "Skäl för avvisning: Namnbytet gäller först i januari" in history


def test_the_second_of_two_reviewers_is_told_and_nothing_is_applied_twice(app, client, month, team_member, make_user):
    anna = month.people[0]
    _submit(app, anna.token, mobile="070-111 22 33")
    (correction_id,) = _pending(app)
    _, username, password = make_user("admin")
    colleague = app.test_client()
    log_in(colleague, username, password)
    colleague_token = csrf_token_from(colleague.get("/checks/review").get_data(as_text=True))
    mine = csrf_token_from(client.get("/checks/review").get_data(as_text=True))

    first = client.post(f"/checks/review/{correction_id}", data={"csrf_token": mine, "action": "accept"})
    second = colleague.post(
        f"/checks/review/{correction_id}", data={"csrf_token": colleague_token, "action": "reject", "reason": "Nej"}
    )
    assert first.status_code == second.status_code == 303
    assert "Rättelsen har redan godkänts av någon annan. Inget ändrades nu." in text_of(
        colleague.get(second.headers["Location"])
    )
    again = colleague.post(f"/checks/review/{correction_id}", data={"csrf_token": colleague_token, "action": "accept"})
    assert again.status_code == 303
    with app.app_context():
        correction = db.session.get(CheckCorrection, correction_id)
        assert (correction.status, correction.reject_reason) == ("accepted", None)
        updates = db.session.query(RegisterChange).filter_by(entity_id=anna.contact_id, action="updated").count()
        assert updates == 1


def test_an_accept_the_register_no_longer_allows_shows_why_and_changes_nothing(app, client, clock, month, team_member):
    anna = month.people[0]
    _submit(app, anna.token, email="", comment="Jag har ingen jobbmejl längre")  # keeps only the mobile
    (correction_id,) = _pending(app)
    with app.app_context():  # meanwhile the team removed the mobile number
        contact = db.session.get(ContactPerson, anna.contact_id)
        register.update_contact(db.session, contact, {"mobile": ""}, actor=Actor("team"), now=clock.now())
        db.session.commit()
    response = _decide(client, correction_id, "accept")
    assert response.status_code == 400
    text = text_of(response)
    assert "Rättelsen kunde inte godkännas. Inget ändrades" in text
    assert "Ange mobilnummer eller e-postadress" in text
    assert 'role="alert"' in response.get_data(as_text=True)
    assert _pending(app) == [correction_id]
    with app.app_context():
        assert db.session.get(ContactPerson, anna.contact_id).email == "anna@norr.example.se"


def test_a_correction_withdrawn_by_a_later_yes_cannot_be_accepted(app, client, month, team_member):
    anna = month.people[0]
    _submit(app, anna.token, mobile="070-111 22 33")
    (correction_id,) = _pending(app)
    browser = app.test_client()
    page = browser.get(f"/k/{anna.token}")
    browser.post(f"/k/{anna.token}", data={"csrf_token": csrf_token_from(page.get_data(as_text=True)), "answer": "yes"})
    response = _decide(client, correction_id, "accept")
    assert "rättelsen gäller inte längre" in text_of(client.get(response.headers["Location"]))
    with app.app_context():
        assert db.session.get(ContactPerson, anna.contact_id).mobile == "+46701740605"


@pytest.mark.parametrize("role", ["on_call", "provider", "alarm_operator"])
def test_only_the_team_and_administrators_review(app, client, clock, month, role):
    anna = month.people[0]
    _submit(app, anna.token, mobile="070-111 22 33")
    (correction_id,) = _pending(app)
    log_in_as(app, client, clock, role, provider_id=anna.provider_id if role == "provider" else None)
    assert client.get("/checks/review").status_code == 403
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert (
        client.post(f"/checks/review/{correction_id}", data={"csrf_token": token, "action": "accept"}).status_code
        == 403
    )
    assert _pending(app) == [correction_id]


def test_the_review_page_has_its_language_and_labels(app, client, month, team_member):
    _submit(app, month.people[0].token, mobile="070-111 22 33")
    html = client.get("/checks/review", query_string={"lang": "en"}).get_data(as_text=True)
    assert '<html lang="en">' in html and "Review corrections" in html
    assert re.search(r'<label for="reason-\d+">Reason for rejecting</label>', html)
    with app.app_context():
        assert db.session.query(User).count() == 1
