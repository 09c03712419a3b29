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


#: What the framework tests install from the npm registry, next to djenga's own package.
NPM_PACKAGES = ["react@19", "react-dom@19", "htmx.org@2", "typescript@5", "@types/react@19"]
FRONTEND = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def npm_dir(tmp_path_factory) -> Path:
    """A folder where ``npm install`` put djenga's package (``npm install ./frontend``, copied
    as a registry install would) and React 19, htmx and TypeScript from the npm registry."""
    import shutil
    import subprocess

    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError(
            "npm is missing: install Node.js and npm (Debian: apt-get install nodejs npm; "
            "`python3 dev.py test` does)."
        )
    folder = tmp_path_factory.mktemp("npm")
    (folder / "package.json").write_text('{"private": true}\n')
    install = [npm, "install", "--no-audit", "--no-fund", "--install-links", str(FRONTEND)]
    subprocess.run(
        [*install, *NPM_PACKAGES], cwd=folder, check=True, capture_output=True, text=True
    )
    return folder
