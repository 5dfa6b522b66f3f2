"""Disruptions in a browser: the on-call officer writes, previews and sends a letter at night;
a provider acknowledges it on its page (``/d/<token>``) and marks visits done on its visit list
(``/v/<token>``) on a phone, the visits with the keyboard only."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from core.extensions import db
from crisis.incidents.letters import send_letter
from crisis.incidents.models import Incident, LetterKind, LetterReceipt
from crisis.oncall.models import RosterMember
from crisis.visits.models import Visit
from tests.browser.conftest import DESKTOP, PHONE, ZOOMED, log_in, staff_user
from tests.browser.page_checks import (
    assert_in_view_horizontally,
    assert_no_horizontal_scroll,
    check_page,
    focused,
    tab_to,
)
from tests.crisis.incidents.test_letters_helpers import letters, local, make_incident, make_people, messages
from tests.crisis.visits.test_visit_helpers import NORR, alerts, new_visits

pytestmark = pytest.mark.browser

NIGHT = local(date(2026, 11, 24), 2, 10)  # Tuesday 02:10: outside office hours
CIA = "+46701000003"  # Omsorg Söder AB's active contact
ANNA = "+46701000001"  # Hemtjänst Norr


def _night_incident(live) -> int:
    """The register, the on-call officer on the roster and an open incident handled by the officer."""
    live.clock.set(NIGHT)
    officer = staff_user(live, "on_call", "tib", email="tib@kommun.example.se", mobile="+46701777777")
    with live.app.app_context():
        db.session.add(RosterMember(user_id=officer, position=0, is_active=True))
        db.session.commit()
        make_people(live.clock)
        incident_id = make_incident(live.clock, party="on_call")
        db.session.remove()
    return incident_id


def _link_in_sms(live, mobile: str, kind: str, prefix: str) -> str:
    with live.app.app_context():
        bodies = [m.body_text for m in messages(kind) if m.to_address == mobile and m.channel == "sms"]
        db.session.remove()
    links = [match.group(0) for body in bodies if (match := re.search(re.escape(live.url) + prefix + r"[\w-]+", body))]
    assert links, f"no {kind} link was sent to {mobile}"
    return links[0]


def test_the_on_call_officer_writes_previews_and_sends_a_letter(live, new_page, steps, axe_source):
    incident_id = _night_incident(live)
    page = new_page(**DESKTOP)
    log_in(page, live, "tib", steps)
    page.get_by_role("navigation", name="Huvudmeny").get_by_role("link", name="Störningar").click()
    page.get_by_role("link", name="GSM-nätet nere i norra kommundelen").click()
    steps.shot(page, "the incident")
    check_page(page, axe_source, "the incident page")

    page.get_by_role("link", name="Skriv informationsbrev").first.click()  # the next step, at the top
    assert "Telia meddelar en oplanerad driftstörning" in page.get_by_label("Text").input_value()
    steps.shot(page, "the pre-filled letter")
    check_page(page, axe_source, "the letter form")
    page.get_by_label("Text").fill(page.get_by_label("Text").input_value() + "\n\nNästa besked kl. 04:00.")
    page.get_by_label(re.compile("Be utförarna tillämpa sina lokala rutiner")).check()
    page.get_by_role("button", name="Förhandsgranska").click()

    page.get_by_role("heading", name="Kontrollera brevet innan det skickas").wait_for()
    assert page.get_by_text("Nästa besked kl. 04:00.").is_visible()
    steps.shot(page, "the preview")
    check_page(page, axe_source, "the letter preview")
    page.get_by_role("button", name="Skicka brevet").click()
    page.get_by_text(re.compile(r"Brevet är skickat till 3 kontaktpersoner hos 2 utförare")).wait_for()
    steps.shot(page, "the letter is sent")
    check_page(page, axe_source, "the incident page after sending")

    with live.app.app_context():
        [letter] = letters(incident_id)
        assert (letter.kind, letter.party, letter.recipients) == ("first", "on_call", 3)
        assert letter.body.endswith("Nästa besked kl. 04:00.")
        queued = {(m.channel, m.to_address) for m in messages()}
        assert {("sms", CIA), ("email", "cia@soder.se"), ("email", "valfardsteknik@kommun.example.se")} <= queued
        assert ("sms", "+46701000004") not in queued  # Dan is inactive
        db.session.remove()

    zoomed = new_page(**ZOOMED, storage_state=page.context.storage_state())  # still logged in
    zoomed.goto(live(f"/incidents/{incident_id}/letters/new?kind=update"))
    steps.shot(zoomed, "the letter form at 200 percent")
    assert_no_horizontal_scroll(zoomed, "the letter form")
    assert_in_view_horizontally(zoomed.get_by_role("button", name="Förhandsgranska"), zoomed, "the preview button")


def test_a_provider_acknowledges_the_letter_and_marks_visits_done_on_a_phone(live, new_page, steps, axe_source):
    incident_id = _night_incident(live)
    with live.app.app_context():
        send_letter(
            db.session,
            db.session.get(Incident, incident_id),
            kind=LetterKind.FIRST,
            subject="GSM-avbrott: kameratillsynen fungerar inte",
            body="Kameratillsynen kan inte utföras i natt. Gör fysiska besök.",
            apply_local_routines=True,
            author_id=None,
            party="on_call",
            now=live.clock.now(),
        )
        db.session.commit()
        visit_ids = new_visits(
            live.clock, NORR, [NIGHT + timedelta(minutes=20), NIGHT + timedelta(minutes=80)], incident_id=incident_id
        )
        db.session.remove()

    # The letter's page: Hemtjänst Norr acknowledges.
    letter_link = _link_in_sms(live, ANNA, "crisis.letter", "/d/")
    page = new_page(**PHONE)
    page.goto(letter_link)
    page.get_by_role("heading", name="GSM-nätet nere i norra kommundelen").wait_for()
    steps.shot(page, "the provider page")
    check_page(page, axe_source, "the provider page")
    # Keyboard only: the question unanswered is an error; then "Nej, inte än" with the arrow key.
    tab_to(page, "Ditt namn")
    page.keyboard.type("Anna Lind")
    tab_to(page, "Skicka kvittens")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Det finns ett problem").wait_for()
    steps.shot(page, "the question is not answered")
    check_page(page, axe_source, "the provider page with an unanswered question")
    page.get_by_role("link", name="Svara på om ni har startat era lokala rutiner.").press("Enter")
    assert focused(page)["label"].startswith("Ja")  # the summary's link leads to the question
    assert not page.get_by_role("radio", name="Ja").is_checked()  # focus alone answers nothing
    page.keyboard.press("ArrowDown")
    assert page.get_by_role("radio", name="Nej, inte än").is_checked()
    tab_to(page, "Skicka kvittens")
    page.keyboard.press("Enter")
    page.get_by_role("status").filter(has_text="Tack! Ni har kvitterat breven.").wait_for()
    assert page.get_by_text("Har ni startat era lokala rutiner? Nej, inte än").is_visible()
    steps.shot(page, "the letter is acknowledged")
    check_page(page, axe_source, "the provider page after acknowledging")
    with live.app.app_context():
        receipt = db.session.query(LetterReceipt).filter_by(provider_id=_provider_of(visit_ids[0])).one()
        assert (receipt.acknowledged_by, receipt.local_routines) == ("Anna Lind", "not_yet")
        db.session.remove()

    # The visit list: acknowledge, then mark the first visit done, with the keyboard only.
    live.clock.set(NIGHT + timedelta(minutes=40))
    visit_link = _link_in_sms(live, ANNA, "crisis.visit.alert", "/v/")
    page = new_page(**PHONE)
    page.goto(visit_link)
    page.get_by_role("heading", name="Fysiska besök i stället för kameratillsyn").wait_for()
    steps.shot(page, "the visit list")
    check_page(page, axe_source, "the visit list")
    tab_to(page, "Ditt namn")
    page.keyboard.type("Bo Ek")
    tab_to(page, "Vi tar dessa")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Tack! Ni har kvitterat besöken.").wait_for()
    steps.shot(page, "the visits are acknowledged")
    check_page(page, axe_source, "the visit list after acknowledging")
    with live.app.app_context():
        assert [alert.acknowledged_by for alert in alerts()] == ["Bo Ek"]
        db.session.remove()

    first = tab_to(page, "02:30")
    assert first["type"] == "checkbox"
    page.keyboard.press("Space")
    assert tab_to(page, "Gjorda")["type"] == "radio"
    page.keyboard.press("Space")
    tab_to(page, "Ditt namn")
    page.keyboard.type("Bo Ek")
    steps.shot(page, "a visit is chosen and marked done")
    tab_to(page, "Spara för de valda besöken")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Tack! Besöken är markerade.").wait_for()
    steps.shot(page, "the visit is done")
    check_page(page, axe_source, "the visit list after marking")
    with live.app.app_context():
        done, still_open = (db.session.get(Visit, vid) for vid in visit_ids)
        assert (done.status, still_open.status) == ("done", "open")
        assert done.done_at == live.clock.now()
        db.session.remove()

    zoomed = new_page(**ZOOMED)
    zoomed.goto(visit_link)
    steps.shot(zoomed, "the visit list at 200 percent")
    assert_no_horizontal_scroll(zoomed, "the visit list")
    save = zoomed.get_by_role("button", name="Spara för de valda besöken")
    assert_in_view_horizontally(save, zoomed, "the save button")
    zoomed.goto(letter_link)
    steps.shot(zoomed, "the provider page at 200 percent")
    assert_no_horizontal_scroll(zoomed, "the provider page")


def _provider_of(visit_id: int) -> int:
    return db.session.get(Visit, visit_id).provider_id


def test_the_officer_reads_both_call_lists_on_a_phone(live, new_page, steps, axe_source):
    """An urgent letter and Norr's visits nobody acknowledged: at 03:20 both call lists show each
    provider once, with its state and times; axe finds nothing serious, nothing scrolls sideways."""
    from tests.crisis.incidents.test_letters_helpers import run_tick

    incident_id = _night_incident(live)
    with live.app.app_context():
        send_letter(
            db.session,
            db.session.get(Incident, incident_id),
            kind=LetterKind.FIRST,
            subject="GSM-avbrott: kameratillsynen fungerar inte",
            body="Kameratillsynen kan inte utföras i natt. Gör fysiska besök.",
            apply_local_routines=True,
            author_id=None,
            party="on_call",
            now=live.clock.now(),
        )
        db.session.commit()
        new_visits(live.clock, NORR, [NIGHT + timedelta(minutes=20), NIGHT + timedelta(minutes=40)])
        db.session.remove()
    run_tick(live.app, live.clock, NIGHT + timedelta(minutes=70))
    page = new_page(**PHONE)
    log_in(page, live, "tib", steps)
    page.goto(live("/visits/calls"))
    entry = page.locator(".call-item", has_text="Hemtjänst Norr")
    entry.wait_for()
    assert page.locator(".call-item").count() == 1
    assert "2 öppna besök" in entry.inner_text() and "Larmad kl. 02:10" in entry.inner_text()
    steps.shot(page, "the visits call list")
    check_page(page, axe_source, "the visits call list")
    assert_no_horizontal_scroll(page, "the visits call list on a phone")
    page.goto(live("/incidents/calls"))
    page.locator(".call-item").first.wait_for()
    names = [name.strip() for name in page.locator(".call-item h2").all_inner_texts()]
    assert sorted(names) == sorted(set(names)) and "Hemtjänst Norr" in names, names
    assert "skickat kl. 02:10" in page.locator(".call-item").first.inner_text()
    steps.shot(page, "the letters call list")
    check_page(page, axe_source, "the letters call list")
    assert_no_horizontal_scroll(page, "the letters call list on a phone")
