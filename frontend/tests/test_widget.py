"""<djenga-task-progress> in a real headless Chromium against real daphne, worker and Redis."""

from __future__ import annotations

import time

import pytest

from djenga.celery.results import AsyncDetailedResult
from djenga.live.auth import make_token
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

# Records every djenga:* event the page sees, from before any page script runs.
RECORD_EVENTS = """
window.__djenga = [];
for (const name of ['djenga:update', 'djenga:done', 'djenga:error']) {
  document.addEventListener(name, (e) => window.__djenga.push(
    {name, seq: e.detail && e.detail.seq, state: e.detail && e.detail.state,
     current: e.detail && e.detail.current, code: e.detail && e.detail.code}));
}
"""

IS_FINAL = """() => {
  const el = document.querySelector('djenga-task-progress');
  return el && ['SUCCESS', 'FAILURE', 'REVOKED', 'LOST', 'EXPIRED'].includes(el.dataset.state);
}"""


def mount(page, base_url: str, task_id: str, **attributes: str) -> None:
    """Open a page of the site and put a widget for ``task_id`` on it, as the tag would."""
    mount_element(page, base_url, {"task-id": task_id, "token": make_token(task_id), **attributes})


def mount_element(page, base_url: str, attrs: dict[str, str]) -> None:
    """Open a page of the site and put a ``<djenga-task-progress>`` with ``attrs`` on it."""
    page.add_init_script(RECORD_EVENTS)
    page.goto(base_url + "/")
    page.evaluate(
        """async (attrs) => {
             await import('/static/djenga/djenga-task-progress.js');
             const el = document.createElement('djenga-task-progress');
             for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
             document.body.append(el);
           }""",
        attrs,
    )


def wait_final(page, timeout_ms: int = 30_000) -> dict:
    widget = page.locator("djenga-task-progress")
    widget.wait_for()
    page.wait_for_function(IS_FINAL, timeout=timeout_ms)
    return page.evaluate("() => document.querySelector('djenga-task-progress').snapshot")


def step_texts(page) -> list[str]:
    return page.locator("djenga-task-progress").locator("li").all_inner_texts()


def test_demo_page_shows_the_four_steps_advancing_and_finishing(page, daphne, artifacts):
    page.add_init_script(RECORD_EVENTS)
    page.goto(daphne.url + "/")
    page.get_by_role("button", name="Steal the moon").click()
    page.wait_for_url("**/?task=*")
    snapshot = wait_final(page, timeout_ms=30_000)
    assert snapshot["state"] == "SUCCESS"
    events = page.evaluate("() => window.__djenga")
    currents = [e["current"] for e in events if e["name"] == "djenga:update" and e["current"]]
    # Seen advancing (Shrink takes no time, so step 2 may pass between two frames).
    assert currents == sorted(currents) and set(currents) >= {1, 3, 4}
    assert events[-1]["name"] == "djenga:done"
    bar = page.get_by_role("progressbar")
    assert bar.get_attribute("aria-valuenow") == "100"
    texts = step_texts(page)
    for description in ("Fly to the moon", "Shrink the moon", "Grab the moon", "Sit on the toilet"):
        assert any(description in text for text in texts)
    bar.focus()
    assert page.evaluate("() => document.activeElement.tagName") == "DJENGA-TASK-PROGRESS"
    page.wait_for_timeout(600)  # let the bar finish its transition
    page.locator("djenga-task-progress").screenshot(path=str(artifacts / "widget-finished.png"))


def test_widget_reconnects_after_daphne_is_killed_and_ends_on_the_exact_state(
    page, redis_server, web_data_dir
):
    from djenga_tests.tests.fixtures import Daphne

    web = Daphne(redis_server.url, web_data_dir).start()
    try:
        sent = tasks.steal_the_moon_declared.delay(Gru(pace=0.8), Moon())
        mount(page, web.url, sent.id)
        page.wait_for_function(
            "() => document.querySelector('djenga-task-progress').dataset.state === 'PROGRESS'"
        )
        web.kill()  # mid-task
        time.sleep(1.0)
        web.start()  # same port
        snapshot = wait_final(page)
    finally:
        web.stop()
    stored = AsyncDetailedResult(sent.id).details()
    assert snapshot["state"] == "SUCCESS"
    assert snapshot["seq"] == stored["seq"]
    assert [s["state"] for s in snapshot["steps"]] == ["done"] * 4


def test_falls_back_to_polling_when_websockets_fail(page, daphne):
    sent = tasks.steal_the_moon_declared.delay(Gru(pace=0.3), Moon())
    # Nothing listens on port 9 (discard): every WebSocket attempt fails at once.
    mount(page, daphne.url, sent.id, **{"ws-url": "ws://127.0.0.1:9/", "poll-interval": "200"})
    snapshot = wait_final(page)
    assert page.locator("djenga-task-progress").get_attribute("data-connection") in (
        "polling",
        "closed",
    )
    assert snapshot["state"] == "SUCCESS"
    assert snapshot["seq"] == AsyncDetailedResult(sent.id).details()["seq"]


def test_task_text_is_rendered_as_text_never_html(page, daphne):
    payload_description = '<img src=x onerror="window.__pwned=1">'
    payload_message = "<script>window.__pwned=2</script><b>bold?</b>"
    sent = tasks.say.delay(payload_description, payload_message, 0.5)
    mount(page, daphne.url, sent.id)
    wait_final(page)
    widget = page.locator("djenga-task-progress")
    texts = " ".join(step_texts(page))
    assert payload_description in texts and payload_message in texts
    assert page.evaluate("() => window.__pwned") is None
    counts = page.evaluate(
        """() => {
             const root = document.querySelector('djenga-task-progress').shadowRoot;
             return ['img', 'script', 'b'].map((tag) => root.querySelectorAll(tag).length);
           }"""
    )
    assert counts == [0, 0, 0]
    assert widget.get_attribute("data-state") == "SUCCESS"


def test_forbidden_is_final_and_reported(page, daphne):
    page.add_init_script(RECORD_EVENTS)
    page.goto(daphne.url + "/")
    page.evaluate(
        """async () => {
             await import('/static/djenga/djenga-task-progress.js');
             const el = document.createElement('djenga-task-progress');
             el.setAttribute('task-id', 'somebody-elses-task');
             el.setAttribute('token', 'forged');
             document.body.append(el);
           }"""
    )
    page.wait_for_function("() => window.__djenga.some(e => e.name === 'djenga:error')")
    events = page.evaluate("() => window.__djenga")
    assert [e["code"] for e in events if e["name"] == "djenga:error"] == [4403]
    error = page.locator("djenga-task-progress [part=error]")
    assert error.inner_text() == "You are not allowed to watch this task." and error.is_visible()


def test_group_mode_shows_one_overall_bar_and_each_member(page, daphne, artifacts):
    from celery import group

    from djenga.live.auth import make_group_token

    result = group(tasks.wait_in_step.s(0.3 * i) for i in range(1, 5)).apply_async()
    ids = [member.id for member in result.results]
    page.add_init_script(RECORD_EVENTS)
    page.goto(daphne.url + "/")
    page.evaluate(
        """async (token) => {
             await import('/static/djenga/djenga-task-progress.js');
             const el = document.createElement('djenga-task-progress');
             el.setAttribute('group-token', token);
             el.setAttribute('label', 'Importing 4 files');
             document.body.append(el);
           }""",
        make_group_token(ids),
    )
    snapshot = wait_final(page)
    widget = page.locator("djenga-task-progress")
    assert widget.get_attribute("data-mode") == "group"
    assert snapshot["type"] == "group" and snapshot["state"] == "SUCCESS"
    assert [t["task_id"] for t in snapshot["tasks"]] == ids
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    assert widget.locator("[part~=task]").count() == 4
    assert "4 of 4 done" in widget.locator("[part=count]").inner_text()
    page.wait_for_timeout(600)  # let the bars finish their transitions
    widget.screenshot(path=str(artifacts / "widget-group.png"))


def test_a_group_of_120_stays_under_daphnes_64_kib_frames(page, daphne):
    """Its full frame is about 100 KB: daphne would fail the socket (1009) on every frame,
    and the widget would reconnect forever. The consumer slims it (wire.fit_group)."""
    from celery import group

    from djenga.live.auth import make_group_token

    result = group(tasks.stage.si(0) for _ in range(120)).apply_async()
    page.add_init_script(
        "window.__closes = []; const WS = window.WebSocket; window.WebSocket = class extends WS {"
        " constructor(...a) { super(...a); this.addEventListener('close', (e) =>"
        " window.__closes.push(e.code)); } };"
    )
    page.goto(daphne.url + "/")
    page.evaluate(
        """async (token) => {
             await import('/static/djenga/djenga-task-progress.js');
             const el = document.createElement('djenga-task-progress');
             el.setAttribute('group-token', token);
             document.body.append(el);
           }""",
        make_group_token([member.id for member in result.results]),
    )
    snapshot = wait_final(page, timeout_ms=90_000)
    assert snapshot["state"] == "SUCCESS" and snapshot["total"] == 120
    assert 1009 not in page.evaluate("() => window.__closes")
    assert page.locator("djenga-task-progress [part~=task]").count() == 120


def test_sub_progress_and_eta_are_shown(page, daphne):
    sent = tasks.chatty.delay(2_000)
    mount(page, daphne.url, sent.id)
    snapshot = wait_final(page)
    assert snapshot["steps"][0]["total"] == 2000
    widget = page.locator("djenga-task-progress")
    assert widget.locator("[part=step-count]").inner_text() == "2000 of 2000"
    assert widget.locator("[part=elapsed]").inner_text().strip() != ""


def test_a_full_web_process_4503_falls_back_to_polling_and_back(page, redis_server, web_data_dir):
    """At DJENGA_MAX_WATCHERS a socket is closed 4503: after a few the widget polls, keeps
    trying the socket (every 15 s), and takes it again once there is room."""
    from websockets.sync.client import connect

    from djenga_tests.tests.fixtures import Daphne

    connection = "() => document.querySelector('djenga-task-progress').dataset.connection"
    full = Daphne(redis_server.url, web_data_dir)
    full.env["DJENGA_MAX_WATCHERS"] = "1"
    full.start()
    try:
        holder_url = f"ws://127.0.0.1:{full.port}/ws/djenga/tasks/holder/?stay=1&token="
        # Long enough for the widget to poll, then retry the socket once there is room.
        sent = tasks.steal_the_moon_declared.delay(Gru(pace=7), Moon())
        with connect(holder_url + make_token("holder"), origin=full.url) as holder:
            holder.recv()  # the one watcher this process takes
            mount(page, full.url, sent.id, **{"poll-interval": "200"})
            page.wait_for_function(connection + " === 'polling'", timeout=20_000)
        # Room again: the background retry takes the socket.
        page.wait_for_function(connection + " === 'websocket'", timeout=25_000)
        snapshot = wait_final(page, timeout_ms=40_000)
        assert snapshot["state"] == "SUCCESS"
        assert snapshot["seq"] == AsyncDetailedResult(sent.id).details()["seq"]
    finally:
        full.stop()
