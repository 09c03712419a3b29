"""<djenga-task-progress> retry countdowns and workflow mode (chains, chords) in a real
headless Chromium against real daphne, worker and Redis."""

from __future__ import annotations

import re

import pytest
from celery import chain, chord
from test_widget import RECORD_EVENTS, mount, mount_element, wait_final

from djenga.live.auth import make_workflow_token
from djenga_tests import tasks

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

STATE_IS = "(state) => document.querySelector('djenga-task-progress')?.dataset.state === state"
ETA_TEXT = (
    "() => document.querySelector('djenga-task-progress')"
    ".shadowRoot.querySelector('[part=eta]').textContent"
)


def mount_workflow(page, base_url: str, token: str, **attributes: str) -> None:
    mount_element(page, base_url, {"workflow-token": token, **attributes})


def seconds_left(text: str) -> int:
    match = re.fullmatch(r"Retrying in (\d+) seconds?", text)
    assert match, text
    return int(match.group(1))


def test_a_retry_counts_down_then_the_next_attempt_runs_on_the_same_bar(page, daphne, artifacts):
    sent = tasks.retry_later.delay(6.0)
    mount(page, daphne.url, sent.id)
    page.wait_for_function(STATE_IS, arg="RETRY", timeout=30_000)
    widget = page.locator("djenga-task-progress")
    first = seconds_left(page.evaluate(ETA_TEXT))
    assert 1 <= first <= 6
    assert widget.locator("[part=state]").inner_text() == "Retrying"
    # It counts down on its own, between frames (no snapshot arrives while the retry waits).
    page.wait_for_function(
        f"() => {{ const m = ({ETA_TEXT})().match(/in (\\d+)/);"
        f" return m && Number(m[1]) < {first}; }}",
        timeout=10_000,
    )
    widget.screenshot(path=str(artifacts / "widget-retry.png"))
    snapshot = wait_final(page, timeout_ms=30_000)
    assert snapshot["state"] == "SUCCESS" and snapshot["attempt"] == 2
    assert widget.locator("[part=count]").inner_text() == "Attempt 2"
    assert page.evaluate(ETA_TEXT) == ""
    assert widget.get_attribute("data-mode") == "task"


def test_a_chain_of_three_shows_its_stages_each_with_its_steps(page, daphne):
    sent = chain(tasks.stage.si(0.2), tasks.stage.si(0.2), tasks.stage.si(0.2)).apply_async()
    mount_workflow(page, daphne.url, make_workflow_token(sent), label="Three stages")
    widget = page.locator("djenga-task-progress")
    page.wait_for_function(
        "() => /^Stage [123] of 3$/.test(document.querySelector('djenga-task-progress')"
        ".shadowRoot.querySelector('[part=count]').textContent)",
        timeout=30_000,
    )
    snapshot = wait_final(page)
    assert widget.get_attribute("data-mode") == "workflow"
    assert snapshot["type"] == "workflow" and snapshot["state"] == "SUCCESS"
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    stages = widget.locator("[part~=stage]")
    assert stages.count() == 3
    assert widget.locator("[part~=stage-success]").count() == 3
    assert stages.nth(0).get_attribute("aria-label") == "Stage 1: gru.stage: Done"
    assert widget.locator("[part~=stage-step-done]").count() == 6  # two steps per stage
    assert "Pack the bananas" in stages.nth(2).inner_text()
    assert widget.locator("[part=count]").inner_text() == "3 stages done"
    events = page.evaluate("() => window.__djenga")
    percents = [e for e in events if e["name"] == "djenga:update"]
    assert percents and events[-1]["name"] == "djenga:done"


def test_a_stage_shows_its_sub_steps_nested_and_collapsible(page, daphne, artifacts):
    sent = chain(tasks.stage.si(0.05), tasks.nested_export.si(rows=2, pace=0.05)).apply_async()
    mount_workflow(page, daphne.url, make_workflow_token(sent), label="Stage, then an export")
    snapshot = wait_final(page)
    assert snapshot["state"] == "SUCCESS"
    export_stage = page.locator("djenga-task-progress [part~=stage]").nth(1)
    export = export_stage.get_by_role("button", name="Export the orders")
    assert export.get_attribute("aria-expanded") == "true"
    children = export_stage.get_by_role("list", name="Export the orders")
    rows = children.get_by_role("listitem")
    assert rows.count() == 3  # Query, Write and, under Write, Compress
    assert children.locator(":scope > li").all_inner_texts()[0].endswith("Query the database")
    zip_row = export_stage.get_by_role("list", name="Write the CSV file").get_by_role("listitem")
    assert "Compress the file" in zip_row.inner_text()
    assert zip_row.get_attribute("aria-level") == "3"
    assert zip_row.get_attribute("data-state") == "done"
    page.wait_for_timeout(600)
    widget = page.locator("djenga-task-progress")
    widget.screenshot(path=str(artifacts / "widget-workflow-nested.png"))
    export.click()
    assert export.get_attribute("aria-expanded") == "false" and children.is_hidden()


def test_a_chord_of_four_and_a_body_is_one_bar_final_with_its_body(page, daphne, artifacts):
    body = chord(tasks.stage.si(0.1 * i) for i in range(1, 5))(tasks.stage.si(0.2))
    mount_workflow(page, daphne.url, make_workflow_token(body), label="Chord: four and a body")
    snapshot = wait_final(page)
    widget = page.locator("djenga-task-progress")
    assert snapshot["state"] == "SUCCESS" and snapshot["total"] == 5
    assert [s["total"] for s in snapshot["stages"]] == [4, 1]
    assert widget.locator("[part~=stage]").count() == 2
    assert widget.locator("[part~=stage-task]").count() == 5
    assert widget.locator("[part~=stage-name]").all_inner_texts() == [
        "Stage 1: 4 tasks",
        "Stage 2: gru.stage",
    ]
    page.wait_for_timeout(600)  # let the bars finish their transitions
    widget.screenshot(path=str(artifacts / "widget-workflow.png"))


def test_a_chain_that_fails_in_its_second_stage_ends_failed(page, daphne, artifacts):
    sent = chain(
        tasks.stage.si(0.1), tasks.stage.si(0.1, fail=True), tasks.stage.si(0.1)
    ).apply_async()
    mount_workflow(page, daphne.url, make_workflow_token(sent))
    snapshot = wait_final(page)
    widget = page.locator("djenga-task-progress")
    assert snapshot["state"] == "FAILURE"
    assert widget.locator("[part=error]").inner_text() == "Stage 2 failed."
    states = [s.get_attribute("data-state") for s in widget.locator("[part~=stage]").all()]
    # Celery fails the rest of a chain too (Backend._fail_chain), just after the failed task:
    # the last stage reads FAILURE or, if the frame went out in between, PENDING.
    assert states[:2] == ["SUCCESS", "FAILURE"] and states[2] in ("PENDING", "FAILURE")
    assert int(page.get_by_role("progressbar").get_attribute("aria-valuenow")) < 100
    page.wait_for_timeout(600)
    widget.screenshot(path=str(artifacts / "widget-workflow-failed.png"))


def test_a_forged_workflow_token_is_refused_4403(page, daphne):
    mount_workflow(page, daphne.url, "forged")
    page.wait_for_function("() => window.__djenga.some(e => e.name === 'djenga:error')")
    events = page.evaluate("() => window.__djenga")
    assert [e["code"] for e in events if e["name"] == "djenga:error"] == [4403]
    error = page.locator("djenga-task-progress [part=error]")
    assert error.inner_text() == "You are not allowed to watch these tasks."


def test_the_console_counts_a_retry_down_in_the_step_column(page, daphne, artifacts):
    from test_console import log_in

    log_in(page, daphne.url)
    page.goto(daphne.url + "/djenga/console/")
    page.wait_for_selector("djenga-task-console[data-connection=websocket]")
    sent = tasks.retry_later.delay(8.0)
    row = page.locator(f"djenga-task-console tr[data-task-id='{sent.id}']")
    row.wait_for(timeout=10_000)
    page.wait_for_function(
        "(id) => document.querySelector(`djenga-task-console tr[data-task-id='${id}']`)"
        "?.dataset.state === 'RETRY'",
        arg=sent.id,
        timeout=30_000,
    )
    step = row.locator("td").nth(3)
    first = seconds_left(step.inner_text())
    assert 1 <= first <= 8
    page.wait_for_function(
        "([id, first]) => { const cell = document.querySelector("
        "`djenga-task-console tr[data-task-id='${id}']`).cells[3];"
        " const m = cell.textContent.match(/in (\\d+)/); return m && Number(m[1]) < first; }",
        arg=[sent.id, first],
        timeout=10_000,
    )
    page.locator("djenga-task-console").screenshot(path=str(artifacts / "console-retry.png"))
    page.wait_for_function(
        "(id) => document.querySelector(`djenga-task-console tr[data-task-id='${id}']`)"
        "?.dataset.state === 'SUCCESS'",
        arg=sent.id,
        timeout=30_000,
    )
    assert "Retrying" not in step.inner_text()


@pytest.mark.parametrize(
    ("button", "stages"), [("Run a chain of three", [1, 1, 1]), ("Run a chord of four", [4, 1])]
)
def test_the_demo_page_runs_a_workflow_on_one_bar(page, daphne, artifacts, button, stages):
    page.add_init_script(RECORD_EVENTS)
    page.goto(daphne.url + "/")
    page.get_by_role("button", name=button).click()
    page.wait_for_url("**/?workflow=*")
    snapshot = wait_final(page, timeout_ms=30_000)
    widget = page.locator("djenga-task-progress")
    assert widget.get_attribute("data-mode") == "workflow"
    assert widget.get_attribute("poll-url") == "/djenga/workflows/"
    assert snapshot["state"] == "SUCCESS"
    assert [s["total"] for s in snapshot["stages"]] == stages
    assert widget.locator("[part=label]").inner_text() == "Gru's banana workflow"
    if len(stages) == 2:
        page.wait_for_timeout(600)  # let the bars finish their transitions
        page.screenshot(path=str(artifacts / "demo-workflow.png"), full_page=True)


def test_the_demo_page_retries_in_five_seconds(page, daphne):
    page.goto(daphne.url + "/")
    page.get_by_role("button", name="Retry in 5 seconds").click()
    page.wait_for_url("**/?task=*")
    page.wait_for_function(STATE_IS, arg="RETRY", timeout=30_000)
    assert seconds_left(page.evaluate(ETA_TEXT)) <= 5
    snapshot = wait_final(page, timeout_ms=30_000)
    assert snapshot["state"] == "SUCCESS" and snapshot["attempt"] == 2


def test_a_stage_waiting_for_its_retry_counts_down_in_the_workflow(page, daphne, artifacts):
    sent = chain(tasks.stage.si(0.05), tasks.retry_later.si(6.0)).apply_async()
    mount_workflow(page, daphne.url, make_workflow_token(sent), label="Stage, then a retry")
    status = page.locator("djenga-task-progress [part=stage-task-status]").nth(1)
    page.wait_for_function(
        "() => /^Retrying in \\d+ seconds?$/.test(document.querySelector('djenga-task-progress')"
        ".shadowRoot.querySelectorAll('[part=stage-task-status]')[1]?.textContent)",
        timeout=30_000,
    )
    first = seconds_left(status.inner_text())
    page.wait_for_function(
        "(first) => { const m = document.querySelector('djenga-task-progress').shadowRoot"
        ".querySelectorAll('[part=stage-task-status]')[1].textContent.match(/in (\\d+)/);"
        " return m && Number(m[1]) < first; }",
        arg=first,
        timeout=10_000,
    )
    widget = page.locator("djenga-task-progress")
    assert widget.get_attribute("data-state") == "PROGRESS"  # a retry is not the end
    widget.screenshot(path=str(artifacts / "widget-workflow-retry.png"))
    snapshot = wait_final(page, timeout_ms=30_000)
    assert snapshot["state"] == "SUCCESS"
    assert snapshot["stages"][1]["tasks"][0]["attempt"] == 2


def test_workflow_mode_polls_the_json_view_when_websockets_fail(page, daphne):
    sent = chain(tasks.stage.si(0.1), tasks.stage.si(0.1)).apply_async()
    mount_workflow(
        page,
        daphne.url,
        make_workflow_token(sent),
        **{"ws-url": "ws://127.0.0.1:9/", "poll-url": "/djenga/workflows/", "poll-interval": "200"},
    )
    snapshot = wait_final(page)
    assert snapshot["type"] == "workflow" and snapshot["state"] == "SUCCESS"
    assert page.locator("djenga-task-progress").get_attribute("data-connection") in (
        "polling",
        "closed",
    )


def test_a_chord_of_120_stays_under_daphnes_64_kib_frames(page, daphne):
    """Its full frame is over 80 KB: daphne would fail the socket (1009) on every frame.
    The consumer slims it (wire.fit_workflow), so the widget follows it to the end."""
    body = chord(tasks.stage.si(0) for _ in range(120))(tasks.stage.si(0))
    page.add_init_script(
        "window.__closes = []; const WS = window.WebSocket; window.WebSocket = class extends WS {"
        " constructor(...a) { super(...a); this.addEventListener('close', (e) =>"
        " window.__closes.push(e.code)); } };"
    )
    mount_workflow(page, daphne.url, make_workflow_token(body))
    snapshot = wait_final(page, timeout_ms=90_000)
    assert snapshot["state"] == "SUCCESS" and snapshot["total"] == 121
    assert [s["total"] for s in snapshot["stages"]] == [120, 1]
    assert 1009 not in page.evaluate("() => window.__closes")
    assert page.locator("djenga-task-progress [part~=stage-task]").count() == 121


def test_a_page_opened_while_the_retry_waits_counts_what_is_left(page, daphne):
    """The RETRY snapshot it reads is seconds old: the countdown is what is left of the
    delay on the browser's clock, not the whole delay from the snapshot's updated_at."""
    import time

    from djenga.celery.results import AsyncDetailedResult

    sent = tasks.retry_later.delay(20.0)
    result = AsyncDetailedResult(sent.id)
    deadline = time.monotonic() + 30
    while result.details()["state"] != "RETRY":
        assert time.monotonic() < deadline, "never retried"
        time.sleep(0.05)
    time.sleep(5)  # the stored snapshot is now at least 5 s old
    mount(page, daphne.url, sent.id)
    page.wait_for_function(STATE_IS, arg="RETRY", timeout=30_000)
    assert seconds_left(page.evaluate(ETA_TEXT)) <= 15
