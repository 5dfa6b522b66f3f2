"""The on-call officer at 02:10 on a phone (390x844) and the team at a desk (1366x768): the SMS
link "Kvittera" leads through the login to the incident page, whose acknowledge button is in the
first screen; the start page's task row has its own button in the first screen; the menu folds
behind "Meny" on the phone and works with the keyboard; the current page is marked; axe finds no
serious or critical violation."""

from __future__ import annotations

import re
from datetime import date

import pytest

from core.extensions import db
from crisis.incidents.models import Incident
from crisis.oncall.models import RosterMember
from tests.browser.conftest import DEFAULT_PASSWORD, PHONE
from tests.browser.conftest import staff_user as make_staff
from tests.browser.page_checks import assert_no_horizontal_scroll, check_page, focused, tab_to
from tests.crisis.incidents.test_letters_helpers import local, make_people

pytestmark = pytest.mark.browser

NIGHT = local(date(2026, 11, 24), 2, 10)  # Tuesday 02:10: outside office hours
DESK = {"viewport": {"width": 1366, "height": 768}}
TITLE = "GSM-nätet nere i norra kommundelen, kameratillsyn kan inte utföras"


def _world(live) -> int:
    """The officer on the roster, the register, and a new incident routed to the officer, with
    every provider affected (a long page below the top)."""
    live.clock.set(NIGHT)
    officer = make_staff(live, "on_call", "tib", email="tib@kommun.example.se", mobile="+46701777777")
    make_staff(live, "team", "tea")
    with live.app.app_context():
        db.session.add(RosterMember(user_id=officer, position=0, is_active=True))
        make_people(live.clock)
        now = live.clock.now()
        incident = Incident(
            title=TITLE,
            service="camera_supervision",
            planned=False,
            party="on_call",
            party_since=now,
            handler_user_id=officer,
            status="new",
            created_at=now,
        )
        db.session.add(incident)
        db.session.commit()
        incident_id = incident.id
        db.session.remove()
    return incident_id


def _in_first_screen(locator, page, what: str) -> None:
    """Visible without scrolling: the whole box lies inside the first viewport."""
    # wait_for: after a click the next page may still be loading (is_visible does not wait)
    locator.wait_for(state="visible")
    box = locator.bounding_box()
    size = page.viewport_size
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1, f"{what}: {box}"
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], f"{what} is below the first screen: {box}"


def _log_in_from_link(page, live, path: str, username: str) -> None:
    page.goto(live(path))  # the SMS link: the login first, then back to the link's page
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url(re.compile(re.escape(path) + "$"))


def test_the_officer_on_a_phone_acknowledges_in_the_first_screen_and_uses_the_folded_menu(
    live, new_page, steps, axe_source
):
    incident_id = _world(live)
    page = new_page(**PHONE)
    _log_in_from_link(page, live, f"/incidents/{incident_id}", "tib")
    steps.shot(page, "the incident page on a phone")
    button = page.get_by_role("button", name="Kvittera störningen")
    _in_first_screen(button, page, "the incident's acknowledge button")
    check_page(page, axe_source, "the incident page on a phone")

    # The menu is folded behind "Meny"; the keyboard opens it, reaches a link and closes it.
    menu = page.get_by_role("navigation", name="Huvudmeny")
    toggle = page.get_by_role("button", name="Meny")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not menu.get_by_role("link", name="Störningar").is_visible()
    page.locator("body").focus()
    tab_to(page, "Meny")
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    assert menu.get_by_role("link", name="Störningar").is_visible()
    steps.shot(page, "the menu opened")
    check_page(page, axe_source, "the incident page with the menu open")
    tab_to(page, "Start")
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert focused(page)["text"].startswith("Meny")

    # 320 px wide: no sideways scrolling on the incident page or the start page.
    narrow = new_page(viewport={"width": 320, "height": 640}, storage_state=page.context.storage_state())
    for path in (f"/incidents/{incident_id}", "/"):
        narrow.goto(live(path))
        assert_no_horizontal_scroll(narrow, f"{path} at 320 px")

    # The start page: the task's own button is in the first screen and brings the officer back.
    page.goto(live("/"))
    row = page.locator(".todo-item", has_text=TITLE)
    _in_first_screen(row.get_by_role("button", name="Kvittera"), page, "the start page row's button")
    toggle.click()
    assert menu.get_by_role("link", name="Start").get_attribute("aria-current") == "page"
    assert menu.get_by_role("link", name="Störningar").get_attribute("aria-current") is None
    toggle.click()
    steps.shot(page, "the start page on a phone")
    check_page(page, axe_source, "the start page on a phone")
    row.get_by_role("button", name="Kvittera").click()
    page.get_by_text("Du har kvitterat störningen.").wait_for()
    assert page.url == live("/")
    assert page.get_by_text("Inget att göra just nu.").is_visible()
    steps.shot(page, "nothing left to do")
    check_page(page, axe_source, "the empty start page on a phone")
    with live.app.app_context():
        assert db.session.get(Incident, incident_id).acknowledged_at is not None
        db.session.remove()


def test_at_a_desk_the_menu_is_open_and_the_buttons_are_in_the_first_screen(live, new_page, steps, axe_source):
    incident_id = _world(live)
    with live.app.app_context():
        db.session.get(Incident, incident_id).party = "team"
        db.session.commit()
        db.session.remove()
    live.clock.set(local(date(2026, 11, 24), 10, 0))
    page = new_page(**DESK)
    _log_in_from_link(page, live, "/", "tea")
    assert not page.get_by_role("button", name="Meny").is_visible()
    menu = page.get_by_role("navigation", name="Huvudmeny")
    assert menu.get_by_role("link", name="Start").get_attribute("aria-current") == "page"
    row = page.locator(".todo-item", has_text=TITLE)
    _in_first_screen(row.get_by_role("button", name="Kvittera"), page, "the start page row's button")
    steps.shot(page, "the team's start page")
    check_page(page, axe_source, "the team's start page")

    menu.get_by_role("link", name="Störningar").click()
    assert menu.get_by_role("link", name="Störningar").get_attribute("aria-current") == "page"
    assert menu.get_by_role("link", name="Start").get_attribute("aria-current") is None
    page.get_by_role("link", name=TITLE).click()
    _in_first_screen(page.get_by_role("button", name="Kvittera störningen"), page, "the incident's button")
    check_page(page, axe_source, "the incident page at a desk")
    page.get_by_role("button", name="Kvittera störningen").click()
    page.get_by_text("Du har kvitterat störningen.").wait_for()
    # Acknowledged, the next step is the team's assessment, still at the top.
    _in_first_screen(page.get_by_role("link", name="Bedöm störningen").first, page, "the next step")
    steps.shot(page, "the next step at the top")
