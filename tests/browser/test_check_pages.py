"""The monthly check in a browser: a contact's personal link on a phone (one answers yes with the
keyboard only, another corrects a mobile number), and the team's pages, where the correction is
accepted and the register gets the new number."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from contacts.check_links import record_answer
from contacts.check_models import CheckCorrection
from contacts.check_review import NEW_PREFIX, current_values, submit_correction
from contacts.models import ContactPerson
from core.extensions import db
from notifications.models import Message
from tests.browser.conftest import DESKTOP, PHONE, ZOOMED, log_in, staff_user
from tests.browser.page_checks import assert_in_view_horizontally, assert_no_horizontal_scroll, check_page, tab_to
from tests.contacts.test_checks_helpers import local, make_register, recipient_of, run_tick

pytestmark = pytest.mark.browser

MONTH = "2026-06"
PEOPLE = {
    "anna": {"provider": "Hemtjänst Norr", "name": "Anna Lind", "mobile": "+46701740605", "role_title": "Enhetschef"},
    "omar": {
        "provider": "Omsorgsbolaget Fiktiv AB",
        "name": "Omar Demosson",
        "mobile": "+46701740606",
        "email": "omar@omsorg.example.se",
    },
}
NEW_MOBILE = "070-174 06 99"


def _june_check(live) -> dict[str, int]:
    """The register, then June's check opened and sent by the scheduler's tick on Monday 1 June
    08:00; the clock then stands on Tuesday 2 June 10:00. Returns the contacts' ids."""
    live.clock.set(local(date(2026, 5, 20), 9))
    with live.app.app_context():
        ids = make_register(live.clock, PEOPLE)
        db.session.remove()
    run_tick(live.app, live.clock, local(date(2026, 6, 1), 8))
    live.clock.set(local(date(2026, 6, 2), 10))
    return ids


def _link_sent_to(live, mobile: str) -> str:
    """The personal link in the check's SMS to ``mobile``, as the contact receives it."""
    with live.app.app_context():
        bodies = db.session.scalars(
            select(Message.body_text).where(Message.to_address == mobile, Message.channel == "sms")
        ).all()
        db.session.remove()
    links = [match.group(0) for body in bodies if (match := re.search(re.escape(live.url) + r"/k/[\w-]+", body))]
    assert links, f"no check link was sent to {mobile}"
    return links[0]


def test_contacts_answer_the_monthly_check_on_a_phone(live, new_page, steps, axe_source):
    ids = _june_check(live)

    # Anna answers yes, with the keyboard only.
    page = new_page(**PHONE)
    page.goto(_link_sent_to(live, PEOPLE["anna"]["mobile"]))
    page.get_by_role("heading", name="Stämmer uppgifterna?").wait_for()
    steps.shot(page, "anna opens her link")
    check_page(page, axe_source, "the check link page")
    tab_to(page, "Ja, uppgifterna stämmer")
    steps.shot(page, "anna has tabbed to yes")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Tack för ditt svar").wait_for()
    assert page.get_by_text("Du har bekräftat att uppgifterna stämmer.").is_visible()
    steps.shot(page, "anna sees the confirmation")
    check_page(page, axe_source, "the thank-you page")
    with live.app.app_context():
        anna = recipient_of(MONTH, ids["anna"])
        assert (anna.answer, anna.answered_via) == ("yes", "link")
        db.session.remove()

    # Omar answers no and corrects his mobile number.
    page = new_page(**PHONE)
    page.goto(_link_sent_to(live, PEOPLE["omar"]["mobile"]))
    steps.shot(page, "omar opens his link")
    page.get_by_role("button", name="Nej, något ska ändras").tap()
    page.get_by_role("heading", name="Vad ska ändras?").wait_for()
    steps.shot(page, "omar sees the correction form")
    check_page(page, axe_source, "the correction form")
    page.get_by_label("Mobilnummer").first.fill("070-174")
    page.get_by_label("Vad är fel? (frivilligt)").fill("Nytt jobbnummer från juni.")
    page.get_by_role("button", name="Skicka").tap()
    page.get_by_role("heading", name="Det finns ett problem").wait_for()
    steps.shot(page, "a too short number is refused")
    check_page(page, axe_source, "the correction form with an error")
    page.get_by_label("Mobilnummer").first.fill(NEW_MOBILE)
    steps.shot(page, "omar has corrected his number")
    page.get_by_role("button", name="Skicka").tap()
    page.get_by_role("heading", name="Tack för ditt svar").wait_for()
    assert page.get_by_text("Välfärdsteknikteamet går igenom det du skrev").is_visible()
    steps.shot(page, "omar sees the confirmation")
    with live.app.app_context():
        omar = recipient_of(MONTH, ids["omar"])
        assert omar.answer == "no"
        [correction] = db.session.scalars(select(CheckCorrection).where(CheckCorrection.recipient_id == omar.id))
        assert (correction.status, correction.proposed.get("mobile")) == ("pending", "+46701740699")
        assert correction.comment == "Nytt jobbnummer från juni."
        # The register changes when the team accepts (the next test).
        assert db.session.get(ContactPerson, ids["omar"]).mobile == "+46701740606"
        db.session.remove()


def test_the_check_link_page_fits_at_200_percent_zoom(live, new_page, steps, axe_source):
    _june_check(live)
    page = new_page(**ZOOMED)
    page.goto(_link_sent_to(live, PEOPLE["anna"]["mobile"]))
    steps.shot(page, "link page at 200 percent")
    assert_no_horizontal_scroll(page, "the check link page")
    assert_in_view_horizontally(page.get_by_role("button", name="Ja, uppgifterna stämmer"), page, "the yes button")
    assert_in_view_horizontally(page.get_by_role("button", name="Nej, något ska ändras"), page, "the no button")
    page.get_by_role("button", name="Nej, något ska ändras").click()
    steps.shot(page, "correction form at 200 percent")
    assert_no_horizontal_scroll(page, "the correction form")
    assert_in_view_horizontally(page.get_by_role("button", name="Skicka"), page, "the send button")


def test_the_team_follows_the_month_and_accepts_a_correction(live, new_page, steps, axe_source):
    ids = _june_check(live)
    with live.app.app_context():
        record_answer(db.session, recipient_of(MONTH, ids["anna"]), "yes", via="link", now=live.clock.now())
        omar = recipient_of(MONTH, ids["omar"])
        values = {**current_values(omar.contact), "mobile": NEW_MOBILE, "comment": "Nytt jobbnummer."}
        values.update({NEW_PREFIX + name: "" for name in ("name", "role_title", "mobile", "email")})
        values[NEW_PREFIX + "services"] = []
        submit_correction(db.session, omar, values, via="link", now=live.clock.now())
        db.session.commit()
        db.session.remove()
    staff_user(live, "team", "tea")

    page = new_page(**DESKTOP)
    page.goto(live("/login"))
    check_page(page, axe_source, "the login page")
    log_in(page, live, "tea", steps)
    page.get_by_role("navigation", name="Huvudmeny").get_by_role("link", name="Månadskontroll").click()
    page.get_by_role("heading", name="Månadskontroll").wait_for()
    check_page(page, axe_source, "the check months page")
    page.get_by_role("link", name="juni 2026").click()
    page.get_by_role("heading", name="Månadskontroll juni 2026").wait_for()
    steps.shot(page, "the month at a glance")
    check_page(page, axe_source, "the check month page")
    figures = page.locator(".figures").inner_text()
    assert re.search(r"Svar ja\s+1\b", figures) and re.search(r"Svar nej\s+1\b", figures), figures

    page.get_by_role("link", name="Granska rättelser").first.click()
    page.get_by_role("heading", name="Granska rättelser").wait_for()
    steps.shot(page, "the review queue")
    check_page(page, axe_source, "the review queue")
    item = page.locator(".review-item", has_text="Omar Demosson")
    assert re.search(r"Mobilnummer\s+070-174 06 06\s+070-174 06 99", item.inner_text()), item.inner_text()
    item.get_by_role("button", name="Godkänn och uppdatera registret").click()
    page.get_by_text("Rättelsen är godkänd och registret uppdaterat.").wait_for()
    steps.shot(page, "the correction is accepted")
    check_page(page, axe_source, "the review queue after accepting")
    with live.app.app_context():
        assert db.session.get(ContactPerson, ids["omar"]).mobile == "+46701740699"
        db.session.remove()

    zoomed = new_page(**ZOOMED, storage_state=page.context.storage_state())  # still logged in
    zoomed.goto(live(f"/checks/{MONTH}"))
    steps.shot(zoomed, "the month page at 200 percent")
    assert_no_horizontal_scroll(zoomed, "the check month page")
    quick_links = zoomed.get_by_role("list", name="Snabblänkar")
    assert_in_view_horizontally(quick_links.get_by_role("link", name="Ringlista"), zoomed, "the call list link")


def test_a_contact_not_reached_stays_on_the_call_list_on_a_phone(live, new_page, steps, axe_source):
    """The call day (Monday 8 June): nobody has answered; the team records Anna as not reached on
    a phone; she stays under "Att ringa" with the attempt shown, and the month still counts her."""
    _june_check(live)
    live.clock.set(local(date(2026, 6, 8), 10))
    staff_user(live, "team", "tea")
    page = new_page(**PHONE)
    log_in(page, live, "tea", steps)
    page.goto(live(f"/checks/{MONTH}/calls"))
    page.get_by_role("heading", name="Att ringa (2)").wait_for()
    check_page(page, axe_source, "the check call list")
    anna = page.locator(".call-item", has_text="Anna Lind")
    anna.get_by_text("Inte nådd").tap()
    anna.get_by_role("button", name="Spara samtalet").tap()
    page.get_by_text("Samtalet med Anna Lind är registrerat.").wait_for()
    steps.shot(page, "anna was not reached and stays on the list")
    assert page.get_by_role("heading", name="Att ringa (2)").is_visible()
    anna = page.locator(".call-item", has_text="Anna Lind")
    attempts = anna.get_by_role("list", name="1 samtal").inner_text()
    assert "kl. 10:00" in attempts and "Inte nådd" in attempts, attempts
    check_page(page, axe_source, "the check call list with an attempt")
    assert_no_horizontal_scroll(page, "the check call list on a phone")
    page.goto(live(f"/checks/{MONTH}"))
    figures = page.locator(".figures").inner_text()
    assert re.search(r"Samtal att göra\s+2\b", figures), figures
