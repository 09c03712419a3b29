"""Browser fixtures: Debian's Chromium, driven by Playwright (which cannot download one here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from djenga.testing.browser import launch_chromium, new_page

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="session")
def browser():
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    with new_page(browser) as page:
        yield page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
