"""What every browser test checks on its pages: axe-core (WCAG 2.1 A and AA), the page's
language, keyboard focus, no horizontal scrolling at 200 % zoom, no errors in the console."""

from __future__ import annotations

import json

AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],  # details of violations only: quicker
}
BLOCKING = ("serious", "critical")


def _describe(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- [{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"][:5]:
            lines.append(f"    at {' '.join(node['target'])}: {node['html'][:160]}")
            if node.get("summary"):
                lines.append("      " + node["summary"].replace("\n", "\n      "))
        if len(violation["nodes"]) > 5:
            lines.append(f"    … and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)


def check_page(page, axe_source: str, what: str) -> None:
    """The page is in Swedish, has no serious or critical axe violations and no console errors.

    axe is evaluated in the page rather than added as a script element: the application's CSP
    (no inline scripts) would refuse an injected element, and the test keeps the real CSP."""
    page.wait_for_load_state("load")  # style sheets applied before colours are checked
    assert page.evaluate("document.documentElement.lang") == "sv", f"{what}: <html lang> is not sv"
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source + "\n;undefined")
    results = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    blocking = [v for v in results["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"{what} ({page.url}): accessibility violations\n{_describe(blocking)}"
    assert not page.errors, f"{what}: errors in the browser console:\n" + "\n".join(page.errors)


FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  const label = element.labels && element.labels.length ? element.labels[0].innerText : '';
  return {
    tag: element.tagName.toLowerCase(),
    type: element.type || '',
    text: (element.innerText || element.value || '').trim(),
    label: label.trim(),
    outlineStyle: style.outlineStyle,
    outlineWidth: parseFloat(style.outlineWidth) || 0,
    boxShadow: style.boxShadow,
  };
}"""


def focused(page) -> dict | None:
    return page.evaluate(FOCUSED)


def tab_to(page, name: str, *, limit: int = 60) -> dict:
    """Press Tab until the focused control's text or label contains ``name``; returns it. Every
    control passed on the way shows a visible focus indicator (an outline of at least 2 px or a box
    shadow)."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        element = focused(page)
        if element is None:
            continue
        seen.append(element["text"][:40] or element["label"][:40] or element["tag"])
        assert_focus_visible(element, seen[-1])
        if name in element["text"] or name in element["label"]:
            return element
    raise AssertionError(f"Tab never reached {name!r}; focus went through: {json.dumps(seen, ensure_ascii=False)}")


def assert_focus_visible(element: dict, name: str) -> None:
    outlined = element["outlineStyle"] != "none" and element["outlineWidth"] >= 2
    shadowed = element["boxShadow"] not in ("", "none")
    assert outlined or shadowed, f"{name!r} has no visible focus indicator: {element}"


def assert_no_horizontal_scroll(page, what: str) -> None:
    sizes = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth})"
    )
    assert sizes["scroll"] <= sizes["client"] + 1, f"{what}: scrolls sideways at 200 % zoom ({sizes})"


def assert_in_view_horizontally(locator, page, what: str) -> None:
    """The control is visible and lies within the viewport's width (reachable without sideways scrolling)."""
    assert locator.is_visible(), f"{what} is not visible"
    box = locator.bounding_box()
    width = page.evaluate("document.documentElement.clientWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, f"{what} lies outside the page's width: {box}"
