"""Browser tests: the real application on a live server, driven by Debian's Chromium through
Playwright (sync API), with axe-core for accessibility.

One browser for this package's tests (per xdist worker; see ``browser``), a new context per
test, a live server per test on its own migrated SQLite file and a fixed clock the test moves.
Without Chromium, the
``playwright`` package or axe-core the tests skip, unless ``REQUIRE_BROWSER=1`` (CI), when they
fail and say what is missing. Each test writes a screenshot of every step to
``test-artifacts/browser/<test name>/NN-step.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from core.clock import FixedClock
from core.extensions import db
from tests.conftest import DEFAULT_PASSWORD, build_app, create_schema

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
TEAM_EMAIL = "valfardsteknik@kommun.example.se"
TEAM_MOBILE = "+46701999999"

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
# 200 % zoom of a 1280 px wide desktop window: the page gets 640 CSS pixels.
ZOOMED = {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2}


def unavailable(reason: str):
    """Skip, or fail when the browser tests are required (CI sets REQUIRE_BROWSER=1)."""
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"Browser tests are required (REQUIRE_BROWSER=1), but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="package")
def browser():
    """Debian's Chromium (Playwright's own download does not work here), started once for this
    package's tests in a test session (in each xdist worker that runs them).

    Not session-scoped: while Playwright's sync API is started it leaves its event loop marked as
    running in the main thread, so any later test in the same process that calls ``asyncio.run()``
    would fail. Package scope stops it when the browser tests are done."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("the Python package playwright is not installed")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as error:
            unavailable(f"Chromium at {CHROMIUM} did not start: {error.message.splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        unavailable(f"axe-core is missing ({AXE.relative_to(ROOT)}): run npm ci --no-audit --no-fund")
    return AXE.read_text(encoding="utf-8")


@dataclass
class Live:
    """The application served on 127.0.0.1 at ``url``, with the clock its requests read."""

    app: object
    clock: FixedClock
    url: str

    def __call__(self, path: str) -> str:
        return self.url + path


@pytest.fixture
def live(tmp_path):
    """A live server of the real application on a fresh migrated SQLite file. The socket is bound
    first, so the app's PUBLIC_BASE_URL (used in the links it sends) is this server's address."""
    clock = FixedClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    holder = {}
    server = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = build_app(
        f"sqlite:///{tmp_path / 'browser.sqlite3'}",
        clock,
        PUBLIC_BASE_URL=url,
        TEAM_EMAIL=TEAM_EMAIL,
        TEAM_MOBILE=TEAM_MOBILE,
    )
    create_schema(app)
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield Live(app, clock, url)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@dataclass
class Steps:
    """Screenshots of a test's steps, numbered in order."""

    folder: Path
    count: int = 0
    taken: list[str] = field(default_factory=list)

    def shot(self, page, step: str) -> None:
        page.wait_for_load_state("load")  # style sheets applied
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{self.count:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower()).strip('-')}.png"
        page.screenshot(path=str(self.folder / name), full_page=True)
        self.taken.append(name)


@pytest.fixture
def steps(request) -> Steps:
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    return Steps(folder)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_call_failed = report.failed
    return report


@pytest.fixture
def new_page(browser, request, steps):
    """``new_page(**context_options)``: a page in a new browser context (closed after the test).
    Console errors (e.g. a CSP refusal) and failed requests for a page's resources (style
    sheets, icons) are collected on ``page.errors``; a page's own status is the test's to assert (a
    form with errors answers 400)."""
    contexts = []

    def make(**options):
        context = browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm", **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("console", lambda message: _console_error(page, message))
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("response", lambda answer: _failed_resource(page, answer))
        return page

    yield make
    for context in contexts:
        if getattr(request.node, "browser_call_failed", False):
            for page in context.pages:
                steps.shot(page, "failure")
        context.close()


def _console_error(page, message) -> None:
    if message.type != "error":
        return
    url = message.location.get("url", "")
    if message.text.startswith("Failed to load resource") and url.split("#")[0] == page.url.split("#")[0]:
        return  # Chromium logs the page's own 4xx too
    page.errors.append(f"{message.text} ({url})" if url else message.text)


def _failed_resource(page, answer) -> None:
    if answer.status >= 400 and answer.request.resource_type != "document":
        page.errors.append(f"{answer.status} {answer.request.resource_type} {answer.url}")


def staff_user(live: Live, role: str, username: str, **fields) -> str:
    """A staff user made through the accounts service; returns the username (password DEFAULT_PASSWORD)."""
    from accounts.service import create_user

    with live.app.app_context():
        user = create_user(
            db_session=db.session,
            username=username,
            display_name=f"Test {username}",
            role=role,
            now=live.clock.now(),
            password=DEFAULT_PASSWORD,
        )
        for name, value in fields.items():
            setattr(user, name, value)
        db.session.commit()
        user_id = user.id
        db.session.remove()
    return user_id


def log_in(page, live: Live, username: str, steps: Steps | None = None) -> None:
    """Log in through the real /login form."""
    page.goto(live("/login"))
    page.get_by_label("Användarnamn").fill(username)
    page.get_by_label("Lösenord").fill(DEFAULT_PASSWORD)
    if steps:
        steps.shot(page, "login")
    page.get_by_role("button", name="Logga in").click()
    page.wait_for_url(re.compile(r".*/(\?.*)?$"))
