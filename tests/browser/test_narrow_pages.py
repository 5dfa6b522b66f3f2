"""Every page at 320 CSS pixels (a small phone, or a 1280 px window at 400 % zoom): nothing scrolls
sideways. The staff's pages as an admin (who sees them all), the provider's link pages and the
pages of a provider user; the team's visit dashboard does not reload itself and says when it was read.

One world (tests/test_audit_helpers.build_world: a register, an open monthly check, an incident
with a letter, alerted visits) and one browser page serve the whole module's walk."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE, staff_user
from tests.browser.page_checks import check_page
from tests.conftest import DEFAULT_PASSWORD
from tests.test_audit_helpers import MONTH, World, build_world

pytestmark = pytest.mark.browser

# Not is_mobile: a mobile viewport zooms out to fit a page that is too wide, and then hides it.
NARROW = {"viewport": {"width": 320, "height": 640}}

STAFF_PAGES = (
    "/",
    "/account",
    "/account/totp",
    "/account/alerting",
    "/register/",
    "/register/providers/{provider_id}",
    "/register/providers/{provider_id}/history",
    "/register/providers/new",
    "/register/contacts/{contact_id}/edit",
    "/register/contacts/{contact_id}/history",
    "/register/contacts/{contact_id}/extract",
    "/register/import",
    "/checks",
    f"/checks/{MONTH}",
    f"/checks/{MONTH}/calls",
    "/checks/review",
    "/checks/contacts/{contact_id}",
    "/incidents",
    "/incidents/new",
    "/incidents/{incident_id}",
    "/incidents/{incident_id}/print",
    "/incidents/calls",
    "/incidents/report",
    "/incidents/mail",
    "/suppliers",
    "/visits",
    "/visits/calls",
    "/visits/report",
    "/supervision/clients",
    "/roster",
    "/audit",
    "/admin/tokens",
    "/admin/retention/",
    "/notifications/console",
    "/notifications/deliveries/letter/{letter_id}",
)
LINK_PAGES = ("{links[check]}", "{links[check]}/korrigera", "{links[letter]}", "{links[visit]}", "/k/x", "/v/x", "/d/x")
PROVIDER_PAGES = ("/visits/mine",)


def _make_user(live):
    counter = {"n": 0}

    def make(role="team", username=None, password=DEFAULT_PASSWORD):
        counter["n"] += 1
        name = username or f"{role.replace('_', '-')}{counter['n']}"
        return staff_user(live, role, name), name, password

    return make


def _make_token(live):
    def make(user_id, name="test"):
        from accounts.models import User
        from accounts.service import create_token
        from core.extensions import db

        with live.app.app_context():
            _, secret = create_token(
                db_session=db.session, user=db.session.get(User, user_id), name=name, now=live.clock.now()
            )
            db.session.commit()
            db.session.remove()
            return secret

    return make


def _sideways(page) -> dict | None:
    sizes = page.evaluate(
        """() => ({
          scroll: document.documentElement.scrollWidth,
          inner: window.innerWidth,
          widest: [...document.querySelectorAll('main *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(-1).map(e => e.outerHTML.slice(0, 160))[0] || null,
        })"""
    )
    return sizes if sizes["scroll"] > sizes["inner"] else None


def _log_in(page, live, username: str) -> None:
    page.goto(live("/login"))
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def _walk(page, live, paths, world: World, problems: list[str], axe_source: str) -> None:
    """Each page: nothing wider than the screen, and axe (WCAG 2.1 A/AA) finds no serious or
    critical violation — every page, not only those a scenario passes through."""
    for template in paths:
        path = template.format(**vars(world))
        page.goto(live(path))
        page.wait_for_load_state("load")
        wide = _sideways(page)
        if wide:
            problems.append(f"{template}: {wide}")
        try:
            check_page(page, axe_source, template)
        except AssertionError as failure:
            problems.append(str(failure))
        page.errors.clear()


def test_no_page_scrolls_sideways_at_320_pixels(live, new_page, steps, axe_source):
    world = build_world(live.app, live.clock, _make_user(live), _make_token(live))
    staff_user(live, "admin", "ada")
    problems: list[str] = []

    page = new_page(**NARROW)
    _walk(page, live, LINK_PAGES, world, problems, axe_source)
    _log_in(page, live, "utforare")  # build_world's user of Hemtjänst Norr
    _walk(page, live, PROVIDER_PAGES, world, problems, axe_source)

    staff = new_page(**NARROW)
    _log_in(staff, live, "ada")
    _walk(staff, live, STAFF_PAGES, world, problems, axe_source)
    assert not problems, "pages wider than 320 px or with accessibility violations:\n" + "\n".join(problems)

    # The visit dashboard: no reload of its own, the time it was read, a link to read it again,
    # its tables as cards that are still tables to a screen reader, and no axe violation.
    staff.goto(live("/visits"))
    steps.shot(staff, "the visit dashboard at 320 px")
    assert staff.locator("meta[http-equiv=refresh]").count() == 0
    assert staff.get_by_text("Senast uppdaterad kl. 22:50").is_visible()
    assert staff.get_by_role("link", name="Uppdatera").is_visible()
    assert staff.get_by_role("table").count() >= 1 and staff.get_by_role("cell").count() >= 1
    check_page(staff, axe_source, "the visit dashboard at 320 px")
    staff.get_by_role("link", name="Uppdatera").click()
    staff.wait_for_url(live("/visits"))

    # "Ny länk" on the month page (a phone, the team): the question first, then the new link with a
    # copy button (the script is allowed by the CSP: no console error), both without axe violations.
    staff_user(live, "team", "tea")
    team = new_page(**PHONE)
    _log_in(team, live, "tea")
    team.goto(live(f"/checks/{MONTH}"))
    team.get_by_role("link", name="Ny länk till Anna Lind").click()
    team.get_by_role("heading", name="Skapa en ny länk?").wait_for()
    assert team.get_by_text("Den gamla länken slutar fungera direkt.").is_visible()
    check_page(team, axe_source, "the question before a new link")
    team.get_by_role("button", name="Ja, skapa en ny länk").click()
    team.get_by_role("heading", name="Ny länk till Anna Lind").wait_for()
    copy = team.get_by_role("button", name="Kopiera länken")
    copy.wait_for()
    assert copy.is_visible() and team.locator("#the-link").inner_text().startswith(live.url + "/k/")
    assert team.get_by_role("button", name="Skicka med SMS och e-post").is_visible()
    steps.shot(team, "the new link")
    check_page(team, axe_source, "the new link page")
