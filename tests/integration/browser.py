"""A real browser for the journeys: Debian's Chromium driven by Playwright.

Playwright's own browser download cannot work here (no outside network), so the tests launch
`/usr/bin/chromium` (CLASSHUB_CHROMIUM overrides) with the flags a closed network needs.
Screenshots go to CLASSHUB_SCREENSHOTS (`make screenshots` sets docs/img), else
.cache/screenshots.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = os.environ.get("CLASSHUB_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("CLASSHUB_SCREENSHOTS", REPO / ".cache" / "screenshots"))
# Without these Chromium tries to reach Google's hosts at every start, and waits on them.
CLOSED_NETWORK_FLAGS = ["--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--disable-quic", "--no-first-run",
                        "--disable-gpu", "--no-sandbox", "--lang=fr-FR"]
VIEWPORT = {"width": 1280, "height": 800}
# axe-core impacts that fail the check; "moderate" and "minor" are reported, not failed.
BLOCKING_IMPACTS = ("serious", "critical")


def launch(playwright):
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CLOSED_NETWORK_FLAGS)


def new_person(browser, base_url: str):
    """A browser context of one person (own cookies), French first, downloads allowed."""
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, locale="fr-FR",
                                  accept_downloads=True)
    context.set_default_timeout(30_000)
    return context


def shot(page, name: str) -> Path:
    """Save what the page shows now as <name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def accessibility_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result.response["violations"] if v["impact"] in BLOCKING_IMPACTS]


def log_in(page, username: str, password: str) -> None:
    page.goto("/hub/login")
    page.fill("#username_input", username)
    page.fill("#password_input", password)
    page.click("#login_submit")


class kept_on_failure:
    """`with kept_on_failure(page, name):` a failure leaves the page's screenshot and HTML in
    .cache/screenshots/failed-<name>.* (CI keeps the folder), then goes on failing."""

    def __init__(self, page, name: str):
        self.page, self.name = page, name

    def __enter__(self):
        return self.page

    def __exit__(self, kind, error, trace):
        if kind is not None:
            folder = REPO / ".cache" / "screenshots"
            folder.mkdir(parents=True, exist_ok=True)
            try:
                self.page.screenshot(path=str(folder / f"failed-{self.name}.png"))
                (folder / f"failed-{self.name}.html").write_text(self.page.content())
            except Exception as keeping:  # noqa: BLE001 - the test's own error matters more
                print(f"could not keep the failed page: {keeping}")
        return False


@contextmanager
def signed_in(browser, base_url: str, username: str, password: str, name: str,
              lands: str = "**/hub/spawn**"):
    """A person's browser, logged in and landed (`lands`: the URL pattern); closed after.
    A failure inside keeps the page as failed-<name>.*"""
    context = new_person(browser, base_url)
    page = context.new_page()
    try:
        with kept_on_failure(page, name):
            log_in(page, username, password)
            page.wait_for_url(lands, timeout=240_000)
            yield page
    finally:
        context.close()
