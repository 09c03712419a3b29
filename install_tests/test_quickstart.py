"""docs/quickstart.md followed literally in a new project: Chromium sees the bar reach 100 %."""

from __future__ import annotations

import re

from conftest import QUICKSTART, START_TIMEOUT, quickstart_blocks

# Records every djenga:* event the page sees, from before any page script runs.
RECORD_EVENTS = """
window.__djenga = [];
for (const name of ['djenga:update', 'djenga:done', 'djenga:error']) {
  document.addEventListener(name, (e) => window.__djenga.push(
    {name, state: e.detail && e.detail.state, current: e.detail && e.detail.current}));
}
"""
IS_FINAL = """() => {
  const el = document.querySelector('djenga-task-progress');
  return el && ['SUCCESS', 'FAILURE', 'REVOKED', 'LOST'].includes(el.dataset.state);
}"""


def test_every_block_of_the_quickstart_has_a_marker_the_test_can_apply():
    blocks = quickstart_blocks()
    kinds = {block.kind for block in blocks}
    assert kinds == {"file", "run", "terminal"}, kinds
    terminals = [block.body for block in blocks if block.kind == "terminal"]
    assert any("celery -A myproject worker" in body for body in terminals)
    assert any(body.startswith("daphne ") for body in terminals)


def test_the_quickstart_says_how_many_files_the_reader_touches():
    text = QUICKSTART.read_text()
    claim = re.search(r"\*\*(\d+) files\*\* \((\d+) edited, (\d+) new\)", text)
    assert claim, "docs/quickstart.md no longer says how many files it takes"
    blocks = [block for block in quickstart_blocks() if block.kind == "file"]
    new = {block.path for block in blocks if block.action == "new file"}
    edited = {block.path for block in blocks} - new
    print(f"quickstart: {len(new | edited)} files, {len(edited)} edited, {len(new)} new")
    assert tuple(map(int, claim.groups())) == (len(new | edited), len(edited), len(new))
    assert "pip install djenga" not in text.replace("`pip install djenga` installs", "")


def test_following_the_quickstart_gives_a_live_bar_that_reaches_100(reader, page):
    blocks = [block for block in quickstart_blocks() if not block.production]
    terminals = [block for block in blocks if block.kind == "terminal"]
    (worker,) = [block for block in terminals if "worker" in block.body]
    for block in blocks:
        if block is not worker:
            reader.apply(block)
    path = re.search(r"http://127\.0\.0\.1:8000(/\S*?/)[:\s]", QUICKSTART.read_text())
    assert path, "docs/quickstart.md does not say which page to open"
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.add_init_script(RECORD_EVENTS)

    response = page.goto(reader.base_url + path.group(1))

    assert response.status == 200, reader.logs()
    assert page.evaluate("() => !!customElements.get('djenga-task-progress')"), (
        "the widget's script did not load (is it served?)\n" + reader.logs()
    )
    # The page is watching (the task is queued: 4 steps, waiting) before a worker runs, so
    # every step after this can only reach it live.
    page.wait_for_function("() => window.__djenga.length > 0", timeout=START_TIMEOUT * 1000)
    assert page.evaluate("() => window.__djenga[0].state") == "PENDING"
    reader.apply(worker)
    page.wait_for_function(IS_FINAL, timeout=START_TIMEOUT * 1000)

    snapshot = page.evaluate("() => document.querySelector('djenga-task-progress').snapshot")
    assert snapshot["state"] == "SUCCESS", reader.logs()
    assert [step["state"] for step in snapshot["steps"]] == ["done"] * 4
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    events = page.evaluate("() => window.__djenga")
    assert {1, 2, 3, 4} >= {e["current"] for e in events if e["current"]} >= {1}
    assert "PROGRESS" in [e["state"] for e in events], events
    assert events[-1]["name"] == "djenga:done"
    assert any("/ws/djenga/tasks/" in url for url in sockets), sockets
    texts = page.locator("djenga-task-progress").locator("li").all_inner_texts()
    for description in ("Fly to the moon", "Shrink the moon", "Grab the moon", "Sit on the toilet"):
        assert any(description in text for text in texts), texts
    # What the quickstart promises the reader sees in the worker's terminal.
    assert "gru.steal_the_moon" in reader.logs()
    assert "Traceback" not in reader.logs(), reader.logs()
