"""Nested sub-steps in a real headless Chromium against real daphne, worker and Redis: the
widget's step tree (indent, collapse, accessible names) and the console's."""

from __future__ import annotations

import uuid

import pytest

from djenga_tests import tasks
from frontend.tests.test_console import log_in
from frontend.tests.test_widget import mount, wait_final

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

WRITING = """() => {
  const root = document.querySelector('djenga-task-progress')?.shadowRoot;
  const rows = [...(root?.querySelectorAll('li.djenga-step') || [])];
  return rows.some((li) => li.dataset.state === 'running' && li.textContent.includes('row 2 of 2'));
}"""


@pytest.fixture
def gated_export():
    name = f"nested-{uuid.uuid4()}"
    sent = tasks.nested_export.delay(rows=2, pace=0.2, gate_name=name)
    yield sent, tasks.gate(name)
    tasks.gate(name).set()
    sent.get(timeout=30, propagate=False)


def test_widget_renders_the_step_tree_indented_collapsible_and_named(
    page, daphne, artifacts, gated_export
):
    sent, gate = gated_export
    mount(page, daphne.url, sent.id)
    page.wait_for_function(WRITING, timeout=30_000)
    widget = page.locator("djenga-task-progress")
    export = widget.get_by_role("button", name="Export the orders")
    assert export.get_attribute("aria-expanded") == "true"
    children = widget.get_by_role("list", name="Export the orders")
    assert children.get_by_role("listitem").count() == 2
    query = children.get_by_text("Query the database")
    write = children.get_by_role("button", name="Write the CSV file")  # a parent too, soon
    assert write.count() == 0  # not yet: 1.2's child starts after the gate
    # Indented: the children start further in than their parent.
    assert query.bounding_box()["x"] > export.bounding_box()["x"] + 8
    levels = page.evaluate(
        """() => [...document.querySelector('djenga-task-progress').shadowRoot
             .querySelectorAll('li.djenga-step')].map((li) => li.getAttribute('aria-level'))"""
    )
    assert levels == ["1", "2", "2", "1"]
    bar = page.get_by_role("progressbar")
    assert bar.get_attribute("aria-valuenow") == "50"
    page.wait_for_timeout(400)  # let the bars finish their transition
    widget.screenshot(path=str(artifacts / "widget-nested.png"))

    # Collapse with a click, expand with the keyboard.
    export.click()
    assert export.get_attribute("aria-expanded") == "false"
    assert children.is_hidden()
    export.focus()
    page.keyboard.press("Enter")
    assert export.get_attribute("aria-expanded") == "true" and children.is_visible()
    export.click()  # collapsed again: it stays so while frames arrive

    gate.set()
    snapshot = wait_final(page)
    assert snapshot["state"] == "SUCCESS" and snapshot["steps"][0]["children"][1]["children"]
    assert export.get_attribute("aria-expanded") == "false" and children.is_hidden()
    export.click()
    zip_row = widget.get_by_role("list", name="Write the CSV file").get_by_role("listitem")
    assert "Compress the file" in zip_row.inner_text()
    assert zip_row.get_attribute("data-state") == "done"
    assert zip_row.get_attribute("aria-level") == "3"


def test_console_shows_the_tree_and_the_current_path(page, daphne, artifacts, gated_export):
    sent, gate = gated_export
    log_in(page, daphne.url)
    page.goto(f"{daphne.url}/djenga/console/")
    row = page.locator(f"djenga-task-console tr[data-task-id='{sent.id}']")
    row.wait_for(timeout=15_000)
    page.wait_for_function(
        """(id) => document.querySelector(`djenga-task-console tr[data-task-id='${id}']`)
             ?.cells[3].textContent.includes('row 2 of 2')""",
        arg=sent.id,
        timeout=30_000,
    )
    assert row.locator("td").nth(3).inner_text() == (
        "Export the orders \u203a Write the CSV file — row 2 of 2"
    )
    page.goto(f"{daphne.url}/djenga/console/tasks/{sent.id}/")
    page.wait_for_function(WRITING, timeout=30_000)
    widget = page.locator("djenga-task-progress")
    assert widget.get_by_role("button", name="Export the orders").get_attribute("aria-expanded")
    assert widget.get_by_role("list", name="Export the orders").get_by_role("listitem").count() == 2
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts / "console-nested.png"), full_page=True)
    gate.set()
    page.wait_for_selector("djenga-task-progress[data-state=SUCCESS]", timeout=30_000)
    # The timeline (after the reload at the end) indents each step's key by its depth.
    page.wait_for_selector("table.djenga-timeline tr.djenga-finished", timeout=15_000)
    rows = page.evaluate(
        """() => [...document.querySelectorAll(
             'table.djenga-timeline tr.djenga-step_started td.djenga-step')].map((td) =>
             [td.textContent, parseFloat(getComputedStyle(td).paddingInlineStart)])"""
    )
    assert [key for key, _ in rows] == ["1", "1.1", "1.2", "zip", "2"]
    indent = dict(rows)
    assert indent["1"] == indent["2"] < indent["1.1"] == indent["1.2"] < indent["zip"]


def test_demo_page_launches_the_nested_export(page, daphne):
    page.goto(daphne.url + "/")
    page.get_by_role("button", name="Export with sub-steps").click()
    page.wait_for_url("**/?task=*")
    snapshot = wait_final(page, timeout_ms=60_000)
    assert snapshot["state"] == "SUCCESS"
    widget = page.locator("djenga-task-progress")
    assert widget.get_by_role("progressbar").get_attribute("aria-label") == "Exporting the orders"
    write = widget.get_by_role("list", name="Write the CSV file")
    assert "Compress the file" in write.inner_text()
