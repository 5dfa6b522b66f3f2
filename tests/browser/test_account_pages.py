"""The TOTP enrolment page in a browser: on a phone the QR code and the key both fit the screen,
the code is an image named in Swedish, and the key typed from the page enrols the app."""

from __future__ import annotations

import re

import pyotp
import pytest

from tests.browser.conftest import DESKTOP, PHONE, ZOOMED, log_in, staff_user
from tests.browser.page_checks import assert_in_view_horizontally, assert_no_horizontal_scroll, check_page

pytestmark = pytest.mark.browser

QR_NAME = "QR-kod för att lägga till Krisrutin i din autentiseringsapp"


def test_a_team_member_enrols_an_authenticator_app_on_a_phone(live, new_page, steps, axe_source):
    staff_user(live, "team", "tove")
    page = new_page(**PHONE)
    log_in(page, live, "tove", steps)
    page.goto(live("/account/totp"))
    page.get_by_role("heading", name="Tvåstegsverifiering").wait_for()
    steps.shot(page, "the enrolment page on a phone")
    check_page(page, axe_source, "the TOTP enrolment page")
    assert_no_horizontal_scroll(page, "the TOTP enrolment page on a phone")

    qr = page.get_by_role("img", name=QR_NAME)
    assert_in_view_horizontally(qr, page, "the QR code")
    box = qr.bounding_box()
    assert box["width"] >= 180 and abs(box["width"] - box["height"]) < 1, f"QR code too small or not square: {box}"
    key = page.locator("#totp-secret")
    assert_in_view_horizontally(key, page, "the key")
    secret = key.inner_text()

    zoomed = new_page(**ZOOMED, storage_state=page.context.storage_state())  # the same session and key
    zoomed.goto(live("/account/totp"))
    steps.shot(zoomed, "the enrolment page at 200 percent zoom")
    assert_no_horizontal_scroll(zoomed, "the TOTP enrolment page")
    assert zoomed.locator("#totp-secret").inner_text() == secret

    page.get_by_label("Engångskod").fill(pyotp.TOTP(secret).at(live.clock.now()))
    page.get_by_role("button", name="Aktivera").click()
    page.wait_for_url(re.compile(r".*/$"))
    assert page.get_by_text("Tvåstegsverifiering är aktiverad.").is_visible()
    steps.shot(page, "enrolled")


def test_the_account_page_lists_where_one_is_logged_in_and_logs_out_everywhere(live, new_page, steps, axe_source):
    staff_user(live, "team", "vera")
    laptop = new_page(**DESKTOP)
    log_in(laptop, live, "vera")
    page = new_page(**PHONE)
    log_in(page, live, "vera", steps)
    page.get_by_role("button", name="Meny").click()  # the menu is folded on a phone
    page.get_by_role("link", name="Ditt konto", exact=True).click()
    page.get_by_role("heading", name="Ditt konto", level=1).wait_for()
    steps.shot(page, "the account page on a phone")
    check_page(page, axe_source, "the account page")
    assert_no_horizontal_scroll(page, "the account page on a phone")
    rows = page.get_by_role("table", name="Där du är inloggad").locator("tbody tr")
    assert rows.count() == 2
    assert page.get_by_text("(den här)").count() == 1

    page.get_by_label("Nuvarande lösenord").fill("inte-mitt-losenord")
    page.get_by_role("button", name="Byt lösenord").click()
    page.get_by_role("alert").wait_for()
    steps.shot(page, "a wrong current password")
    check_page(page, axe_source, "the account page with an error")
    assert page.get_by_role("link", name="Det nuvarande lösenordet stämmer inte.").is_visible()

    zoomed = new_page(**ZOOMED, storage_state=page.context.storage_state())
    zoomed.goto(live("/account"))
    assert_no_horizontal_scroll(zoomed, "the account page")

    page.get_by_role("button", name="Logga ut överallt").click()
    page.wait_for_url(re.compile(r".*/login$"))
    assert page.get_by_text("Du är utloggad överallt").is_visible()
    steps.shot(page, "logged out everywhere")
    laptop.reload()
    assert "/login" in laptop.url
