"""The register's rules: validation, history of every change, flags, listeners."""

from __future__ import annotations

import pytest

from contacts import register
from contacts.models import ContactPerson, RegisterChange
from contacts.register import Actor, RegisterError
from core.extensions import db

TEAM = Actor("team")


def _provider(clock, name="Hemtjänst Norr", **extra):
    return register.create_provider(
        db.session, {"name": name, "kind": "kommunal", **extra}, actor=TEAM, now=clock.now()
    ).record


def _contact(clock, provider, **extra):
    data = {"name": "Anna Lind", "role_title": "Enhetschef", "mobile": "070-174 06 05", "email": "anna@example.se"}
    data.update(extra)
    return register.create_contact(db.session, provider, data, actor=TEAM, now=clock.now()).record


def test_a_contact_is_stored_with_e164_mobile_and_normalised_email_and_its_creation_recorded(app, clock):
    with app.app_context():
        provider = _provider(clock, organisation_number="2120000142")
        contact = _contact(clock, provider, email="Anna@Example.SE", services="Kameratillsyn; larm")
        db.session.commit()
        assert provider.organisation_number == "212000-0142"
        assert contact.mobile == "+46701740605"
        assert contact.email == "Anna@example.se"
        assert contact.services == ["camera_supervision", "alarms"]
        created = register.history(db.session, entity="contact", entity_id=contact.id)
        assert {change.field: (change.old_value, change.new_value) for change in created}["mobile"] == (
            None,
            "+46701740605",
        )
        assert {change.action for change in created} == {"created"}


def test_every_field_error_is_reported_at_once_in_swedish_and_nothing_is_stored(app, clock):
    with app.app_context():
        provider = _provider(clock)
        db.session.commit()
        with pytest.raises(RegisterError) as caught:
            _contact(clock, provider, name=" ", mobile="08-123 456 78", email="anna.at.example.se", services="radio")
        errors = caught.value.errors
        assert set(errors) == {"name", "mobile", "email", "services"}
        assert "mobilnummer" in errors["mobile"]
        assert "@" in errors["email"]
        assert "radio" in errors["services"]
        db.session.rollback()
        assert db.session.query(ContactPerson).count() == 0


def test_a_contact_needs_a_mobile_or_an_email(app, clock):
    with app.app_context():
        provider = _provider(clock)
        with pytest.raises(RegisterError) as caught:
            _contact(clock, provider, mobile="", email="")
        assert "mobilnummer eller e-postadress" in caught.value.errors["mobile"]


@pytest.mark.parametrize(
    ("number", "problem"),
    [("212000-0143", "kontrollsiffran"), ("12345", "tio siffror"), ("21200O-0142", "tio siffror")],
)
def test_a_bad_organisation_number_is_refused(number, problem):
    with pytest.raises(ValueError, match=problem):
        register.normalize_organisation_number(number)


def test_provider_names_are_unique_ignoring_case_including_swedish_letters(app, clock):
    with app.app_context():
        _provider(clock, name="Åsa Omsorg AB")
        with pytest.raises(RegisterError) as caught:
            _provider(clock, name="  åsa   omsorg ab")
        assert "redan" in caught.value.errors["name"]


def test_an_update_records_old_and_new_values_by_whom_and_clears_the_failing_mark(app, clock, make_user):
    user_id, _, _ = make_user(role="team")
    with app.app_context():
        provider = _provider(clock)
        contact = _contact(clock, provider)
        contact.mobile_failing_since = clock.now()
        contact.mobile_failure_reason = "twilio rejected the address"
        db.session.commit()
        clock.advance(hours=2)
        outcome = register.update_contact(
            db.session,
            contact,
            {"mobile": "+46 70 174 06 06", "role_title": "Enhetschef"},
            actor=Actor("team", user_id),
            now=clock.now(),
        )
        db.session.commit()
        assert outcome.changes == {"mobile": ("+46701740605", "+46701740606")}
        assert contact.mobile_failing_since is None and contact.mobile_failure_reason is None
        [latest, *_] = register.history(db.session, entity="contact", entity_id=contact.id)
        assert (latest.field, latest.old_value, latest.new_value) == ("mobile", "+46701740605", "+46701740606")
        assert latest.changed_by_id == user_id and latest.changed_at == clock.now() and latest.action == "updated"


def test_an_update_that_changes_nothing_writes_no_history(app, clock):
    with app.app_context():
        provider = _provider(clock)
        contact = _contact(clock, provider)
        db.session.commit()
        before = db.session.query(RegisterChange).count()
        outcome = register.update_contact(
            db.session, contact, {"mobile": "0701740605", "email": "anna@example.se"}, actor=TEAM, now=clock.now()
        )
        assert outcome.changes == {}
        assert db.session.query(RegisterChange).count() == before


def test_a_provider_without_an_active_contact_is_flagged(app, clock):
    with app.app_context():
        staffed = _provider(clock, name="Bemannad AB")
        _contact(clock, staffed)
        empty = _provider(clock, name="Tom AB")
        leaving = _provider(clock, name="Lämnar AB")
        contact = _contact(clock, leaving)
        register.deactivate_contact(db.session, contact, actor=TEAM, now=clock.now())
        db.session.commit()
        assert [p.name for p in register.providers_without_active_contact(db.session)] == ["Lämnar AB", "Tom AB"]
        assert next(c.action for c in register.history(db.session, entity="contact", entity_id=contact.id)) == (
            "deactivated"
        )
        assert empty.id not in {c.provider_id for c in register.active_contacts(db.session)}


def test_listeners_hear_when_a_contact_becomes_reachable(app, clock):
    heard = []

    def listener(db_session, contact, now, reason):
        heard.append((contact.name, reason))

    register.on_contact_reachable(listener)
    try:
        with app.app_context():
            provider = _provider(clock)
            contact = _contact(clock, provider)
            register.update_contact(db.session, contact, {"role_title": "Chef"}, actor=TEAM, now=clock.now())
            register.update_contact(db.session, contact, {"email": "ny@example.se"}, actor=TEAM, now=clock.now())
            register.deactivate_contact(db.session, contact, actor=TEAM, now=clock.now())
            register.update_contact(db.session, contact, {"is_active": "ja"}, actor=TEAM, now=clock.now())
            _contact(clock, provider, name="Vilande", is_active="nej")
    finally:
        register._listeners.remove(listener)
    assert heard == [("Anna Lind", "created"), ("Anna Lind", "address_changed"), ("Anna Lind", "reactivated")]
