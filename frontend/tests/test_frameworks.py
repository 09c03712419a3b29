"""The npm package in frameworks, in the real Chromium against real daphne, worker and Redis:
React 19 and htmx installed from the npm registry by the test setup (conftest.npm_dir), each
showing a live bar to 100 % and leaving no WebSocket open once the widget left the page."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from djenga_tests import tasks
from djenga_tests.tests.fixtures import Daphne

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

#: How long a WebSocket may take to close after its element left (a generous bound, not a
#: timing assert: the check passes as soon as it is closed).
CLOSE_DEADLINE = 30.0


@pytest.fixture(scope="module")
def web(redis_server, web_data_dir, npm_dir):
    """A daphne that also serves the installed npm packages under /npm/."""
    server = Daphne(redis_server.url, web_data_dir)
    server.env["DJENGA_NPM_DIR"] = str(npm_dir)
    server.start()
    yield server
    server.stop()


def djenga_sockets(page) -> list:
    """Every WebSocket the page opens to djenga's routes, recorded from now on."""
    sockets: list = []
    page.on("websocket", lambda ws: sockets.append(ws) if "/ws/djenga/" in ws.url else None)
    return sockets


def wait_closed(page, sockets: list) -> None:
    deadline = time.monotonic() + CLOSE_DEADLINE
    while any(not ws.is_closed() for ws in sockets):
        assert time.monotonic() < deadline, [ws.url for ws in sockets if not ws.is_closed()]
        page.wait_for_timeout(50)


def wait_running(page) -> None:
    """The widget shows the gated task running: a live bar, not yet full."""
    page.wait_for_function(
        "() => document.querySelector('djenga-task-progress')?.dataset.state === 'PROGRESS'",
        timeout=30_000,
    )
    assert int(page.get_by_role("progressbar").get_attribute("aria-valuenow")) < 100


def wait_full_bar(page) -> None:
    page.wait_for_function(
        """() => {
             const bar = document.querySelector('djenga-task-progress')?.shadowRoot
               .querySelector('[role=progressbar]');
             return bar && bar.getAttribute('aria-valuenow') === '100';
           }""",
        timeout=30_000,
    )


def test_the_package_installs_with_exports_and_types(npm_dir):
    installed = npm_dir / "node_modules" / "djenga-widget"
    manifest = json.loads((installed / "package.json").read_text())
    assert manifest.get("dependencies") is None  # no runtime dependencies
    for files in manifest["exports"].values():
        for path in [files] if isinstance(files, str) else files.values():
            assert (installed / path).is_file(), path
    names = "['djenga-widget', 'djenga-widget/console']"
    script = f"for (const name of {names}) console.log(import.meta.resolve(name))"
    resolved = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=npm_dir, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert resolved[0].endswith("/djenga-widget/src/djenga-task-progress.js")
    assert resolved[1].endswith("/djenga-widget/src/djenga-task-console.js")
    # The same modules as the wheel's static files: one source, two channels.
    assert (installed / "src" / "progress" / "element.js").is_file()


def test_the_types_check_a_react_19_component(npm_dir):
    (npm_dir / "app.tsx").write_text(
        """import type {} from 'djenga-widget/react';
import type { DjengaDoneEvent, TaskSnapshot } from 'djenga-widget';
import 'djenga-widget';

export function Progress({ taskId, token, onDone }: {
  taskId: string; token: string; onDone: (state: string) => void;
}) {
  return <djenga-task-progress task-id={taskId} token={token} stay label="Import"
    ondjenga:done={(event: DjengaDoneEvent) => onDone((event.detail as TaskSnapshot).state)} />;
}

const el = document.querySelector('djenga-task-progress');
el?.addEventListener('djenga:error', (event) => console.log(event.detail.code, el.connection));
"""
    )
    (npm_dir / "bad.tsx").write_text(
        """import type {} from 'djenga-widget/react';
export const Bad = () => <djenga-task-progress task-id={1} poll-intervall="5" />;
"""
    )
    tsc = [str(npm_dir / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "--jsx",
           "react-jsx", "--module", "nodenext", "--moduleResolution", "nodenext",
           "--target", "es2022", "--lib", "es2022,dom", "--skipLibCheck", "false"]  # fmt: skip
    good = subprocess.run([*tsc, "app.tsx"], cwd=npm_dir, capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run([*tsc, "bad.tsx"], cwd=npm_dir, capture_output=True, text=True)
    assert bad.returncode != 0 and "poll-intervall" in bad.stdout, bad.stdout


def test_react_19_renders_the_widget_and_hears_djenga_done(page, web, artifacts):
    name = f"react-{uuid.uuid4()}"
    sent = tasks.gated.delay(name)
    sockets = djenga_sockets(page)
    page.goto(f"{web.url}/react/?task={sent.id}")
    wait_running(page)
    assert page.locator("#outcome").inner_text() == "React is waiting for djenga:done"
    tasks.gate(name).set()
    wait_full_bar(page)
    page.wait_for_function(
        "() => document.getElementById('outcome').textContent === 'React saw djenga:done: SUCCESS'"
    )
    widget = page.locator("djenga-task-progress")
    assert widget.get_attribute("data-state") == "SUCCESS"
    assert widget.get_attribute("stay") == ""  # React 19 sets stay: true as an attribute
    page.wait_for_timeout(600)  # let the bar finish its transition
    page.screenshot(path=str(artifacts / "widget-react.png"))
    # `stay` keeps the socket open after SUCCESS: removing the element must close it.
    assert sockets and any(not ws.is_closed() for ws in sockets)
    page.click("#remove")
    assert widget.count() == 0
    wait_closed(page, sockets)


def test_htmx_swaps_a_live_widget_in_after_a_post_and_out_again(page, web, artifacts):
    name = f"htmx-{uuid.uuid4()}"
    sockets = djenga_sockets(page)
    page.goto(f"{web.url}/htmx/?gate={name}")
    page.click("#launch")
    widget = page.locator("#job djenga-task-progress")
    widget.wait_for()
    wait_running(page)
    tasks.gate(name).set()
    wait_full_bar(page)
    assert widget.get_attribute("data-state") == "SUCCESS"
    texts = widget.locator("[part~=step-description]").all_inner_texts()
    assert texts == ["Wait at the gate", "Fly to the moon"]
    page.wait_for_timeout(600)  # let the bar finish its transition
    page.screenshot(path=str(artifacts / "widget-htmx.png"))
    assert sockets and any(not ws.is_closed() for ws in sockets)
    page.click("#dismiss")
    page.wait_for_function("() => !document.querySelector('djenga-task-progress')")
    wait_closed(page, sockets)
    # And again: a second POST swaps in a new widget for a new task (the gate is open).
    page.click("#launch")
    widget.wait_for()
    wait_full_bar(page)
