"""The checks the browser tests rely on do find problems (a checker that never fails proves nothing)."""

from __future__ import annotations

import pytest

from tests.browser.page_checks import assert_no_horizontal_scroll, check_page, tab_to

pytestmark = pytest.mark.browser

BAD = """<!doctype html><html lang="sv"><head><style>
  .faint { color: #bbb; background: #fff; } .wide { width: 1400px; } a:focus { outline: none; }
</style></head><body>
  <p class="faint">Svag text som ingen kan läsa</p>
  <input type="text">
  <a href="#x">Länk utan fokusmarkering</a>
  <div class="wide">Bred</div>
</body></html>"""


def test_the_page_checks_catch_real_problems(new_page, axe_source):
    page = new_page(viewport={"width": 640, "height": 400})
    page.set_content(BAD.replace('lang="sv"', 'lang="en"'))
    with pytest.raises(AssertionError, match="lang"):
        check_page(page, axe_source, "an English page")
    page.set_content(BAD)
    with pytest.raises(AssertionError) as failure:
        check_page(page, axe_source, "a bad page")
    assert "color-contrast" in str(failure.value) and "label" in str(failure.value)
    with pytest.raises(AssertionError, match="no visible focus indicator"):
        tab_to(page, "Länk utan fokusmarkering")
    with pytest.raises(AssertionError, match="scrolls sideways"):
        assert_no_horizontal_scroll(page, "a wide page")
