"""A headless Chromium for browser tests of pages with djenga's widgets, through Playwright.

Playwright cannot download its own browser everywhere (not on machines without internet):
this launches the system's Chromium (Debian's ``chromium``, or ``$CHROMIUM``) instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Flags for a quiet headless Chromium: no sandbox (root in CI), and none of the background
#: connections that a closed network refuses many at a time.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def chromium_path() -> str:
    """``$CHROMIUM``, else ``chromium``/``chromium-browser`` on PATH; a clear error if none."""
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        raise RuntimeError(
            "Chromium is missing: install it (Debian: apt-get install chromium; djenga's own "
            "`python3 dev.py test` does), or set CHROMIUM to its path."
        )
    return found


@contextmanager
def launch_chromium() -> Iterator[Any]:
    """A Playwright ``Browser`` on the system's headless Chromium, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Any, width: int = 800, height: int = 700) -> Iterator[Any]:
    """A page in a fresh context that prints the page's console messages."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.on("console", lambda message: print(f"[browser {message.type}] {message.text}"))
    try:
        yield page
    finally:
        context.close()
