"""A real browser (Debian's Chromium, driven by Playwright for Python) against the running system
of tests/conftest.py (the launcher's, or an external one with SHOP_E2E_GATEWAY_URL).

`playwright install` cannot download browsers here: the suite launches CHROMIUM (default
/usr/bin/chromium; `.ci/run` installs it). Each page a test shows is saved as a PNG under
SHOP_SCREENSHOTS_DIR (default build/screenshots; `make screenshots` writes docs/screenshots).
A console error on a page (a CSP violation, a script error) fails the test that saw it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)
from shop_devstack.layout import REPO_ROOT
from shop_devstack.running import RunningSystem

BROWSER_SUITE = Path(__file__).parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1280, "height": 860}
LAUNCH_TIMEOUT_SECONDS = 420
# The system runs beside other work on a 2-core machine: an assertion waits this long (ms).
expect.set_options(timeout=20_000)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The first test waits for the launcher; give the suite's tests its patience."""
    for item in items:
        if item.path.is_relative_to(BROWSER_SUITE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LAUNCH_TIMEOUT_SECONDS))


@pytest.fixture(scope="module")
def browser(system: RunningSystem) -> Iterator[Browser]:
    """One headless Chromium per test module. Playwright's sync API keeps an event loop running
    in this thread while it is open, so it must be closed before any other suite's fixture or
    test of the same session runs its own loop (asyncio.run, pytest-asyncio): a module scope
    ends it with this suite's module (pytest-randomly shuffles modules, never interleaves them)."""
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the pages' screenshots go (a test artefact; docs/screenshots for the README)."""
    where = Path(os.environ.get("SHOP_SCREENSHOTS_DIR", REPO_ROOT / "build" / "screenshots"))
    where.mkdir(parents=True, exist_ok=True)
    return where


class Tab:
    """A browser page on the system's gateway that records console errors and request URLs."""

    def __init__(self, context: BrowserContext, base_url: str, screenshots: Path) -> None:
        self.context = context
        self.page: Page = context.new_page()
        self.base_url = base_url
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.failed: list[str] = []  # answers >= 400 (a test asserts the ones it expects)
        self._screenshots = screenshots
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("request", lambda request: self.urls.append(request.url))
        self.page.on(
            "response",
            lambda response: (
                response.status >= 400 and self.failed.append(f"{response.status} {response.url}")
            ),
        )

    def _console(self, message: ConsoleMessage) -> None:
        # A 4xx the page expects (a refused login) is logged by Chromium as a failed resource;
        # the tests assert those answers themselves. Everything else is an error of the page.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def open(self, path: str) -> Page:
        self.page.goto(self.base_url + path)
        return self.page

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        path = self._screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def tab(system: RunningSystem, browser: Browser, screenshots: Path) -> Iterator[Tab]:
    """A fresh browser context (no storage shared with another test) at desktop size."""
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(20_000)
    opened = Tab(context, system.gateway_url, screenshots)
    yield opened
    context.close()
