"""Cancel in a real headless Chromium: the customer's button on the demo page, and the
console's Cancel, Revoke, Terminate and Retry, against real daphne, worker and Redis."""

from __future__ import annotations

import uuid

import pytest
from test_console import log_in
from test_widget import mount, wait_final

from djenga.live.auth import make_token
from djenga_tests import tasks

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]


def test_a_customer_cancels_the_export_on_the_demo_page_within_one_step(page, daphne, artifacts):
    page.goto(daphne.url + "/")
    page.get_by_role("button", name="Export the minions").click()
    page.wait_for_url("**/?task=*")
    widget = page.locator("djenga-task-progress")
    page.wait_for_function(
        "() => document.querySelector('djenga-task-progress')?.snapshot?.current === 2"
    )
    button = widget.get_by_role("button", name="Cancel this task")
    button.wait_for()
    page.wait_for_timeout(400)
    widget.screenshot(path=str(artifacts / "widget-cancel.png"))
    button.click()
    snapshot = wait_final(page)
    assert snapshot["state"] == "REVOKED"
    assert snapshot["cancel"] == {"at": snapshot["cancel"]["at"]}  # customers never see who
    states = [step["state"] for step in snapshot["steps"]]
    assert states == ["done", "failed", "pending"]  # stopped inside step 2, step 3 never ran
    assert snapshot["steps"][1]["done"] < snapshot["steps"][1]["total"]
    assert widget.locator("[part=state]").inner_text() == "Cancelled"
    assert button.is_hidden()


def test_the_widget_says_cancelling_until_the_task_sees_it(page, daphne, artifacts):
    name = f"cancel-{uuid.uuid4()}"
    sent = tasks.gated.delay(name)
    mount(page, daphne.url, sent.id, token=make_token(sent.id, cancel=True), cancel="",
          label="Exporting the minions")  # fmt: skip
    widget = page.locator("djenga-task-progress")
    page.wait_for_function(
        "() => document.querySelector('djenga-task-progress')?.snapshot?.state === 'PROGRESS'"
    )
    widget.get_by_role("button", name="Cancel this task").click()
    status = widget.locator("[part=cancel-status]")
    status.wait_for()
    assert status.inner_text() == "Cancelling…"
    # Every watcher learns it from the snapshot (the request rides on it), not only this page.
    page.wait_for_function(
        "() => !!document.querySelector('djenga-task-progress')?.snapshot?.cancel"
    )
    page.wait_for_timeout(300)
    widget.screenshot(path=str(artifacts / "widget-cancelling.png"))
    tasks.gate(name).set()  # the task goes on to its next start_step, and sees the request
    snapshot = wait_final(page)
    assert snapshot["state"] == "REVOKED"
    # The next helper is end_step(1): step 1 ends done, step 2 never starts.
    assert [step["state"] for step in snapshot["steps"]] == ["done", "pending"]
    page.wait_for_timeout(400)
    widget.screenshot(path=str(artifacts / "widget-cancelled.png"))


def test_no_button_without_the_permission(page, daphne):
    name = f"nocancel-{uuid.uuid4()}"
    sent = tasks.gated.delay(name)
    mount(page, daphne.url, sent.id)  # a watch-only token, no cancel attribute
    page.wait_for_function(
        "() => document.querySelector('djenga-task-progress')?.snapshot?.state === 'PROGRESS'"
    )
    assert page.locator("djenga-task-progress").get_by_role("button").count() == 0
    tasks.gate(name).set()
    wait_final(page)


def test_staff_cancel_retry_and_terminate_from_the_console(page, daphne, artifacts):
    log_in(page, daphne.url)
    sent = tasks.export_rows.delay(200, 60.0)
    page.goto(f"{daphne.url}/djenga/console/tasks/{sent.id}/")
    page.wait_for_function(
        "() => document.querySelector('djenga-task-progress')?.snapshot?.current === 2"
    )
    actions = page.locator("[data-testid=actions]")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    actions.get_by_role("button", name="Terminate").click()
    page.wait_for_timeout(300)
    assert dialogs and "Terminate this task?" in dialogs[0]
    assert page.locator("[data-testid=action-result]").inner_text() == ""  # dismissed: nothing sent
    actions.get_by_role("button", name="Cancel").click()
    result = page.locator("[data-testid=action-result]")
    result.get_by_text("Cancel requested").wait_for()
    page.wait_for_selector("djenga-task-progress[data-state=REVOKED]")
    page.reload()
    timeline = page.locator("table.djenga-timeline").inner_text()
    assert "cancel by admin (console)" in timeline
    assert "REVOKED: TaskRevokedError: cancelled by admin at" in timeline
    # Retry: a failed task is sent again with its arguments, under a new id.
    failed = tasks.fail_at_step.delay(2, "the moon is made of cheese")
    failed.get(timeout=15, propagate=False)
    page.goto(f"{daphne.url}/djenga/console/tasks/{failed.id}/")
    page.wait_for_selector("djenga-task-progress[data-state=FAILURE]")
    actions.get_by_role("button", name="Retry").click()
    link = page.locator("[data-testid=new-task]")
    link.wait_for()
    new_id = link.inner_text()
    assert new_id != failed.id
    from celery.result import AsyncResult

    again = AsyncResult(new_id)
    again.get(timeout=15, propagate=False)
    assert again.args == [2, "the moon is made of cheese"] and again.name == "gru.fail_at_step"
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "console-actions.png"), full_page=True)
    # The ended task sends no more updates: the timeline fetches the action's row itself.
    retry_row = page.locator("table.djenga-timeline tr.djenga-action").last
    retry_row.wait_for()
    assert "retry by admin (console) → " + new_id in retry_row.inner_text()
    page.screenshot(path=str(artifacts / "console-actions-timeline.png"), full_page=True)
    retry_row.locator("[data-testid=retried-as]").click()
    page.wait_for_url(f"**/djenga/console/tasks/{new_id}/")
    # ...and the new task's page links back to the one it was sent again from.
    back = page.locator("[data-testid=retry-of]")
    assert back.inner_text() == failed.id
    started = page.locator("table.djenga-timeline tr.djenga-started").first
    assert f"a retry of {failed.id}" in started.inner_text()
    page.screenshot(path=str(artifacts / "console-retry-of.png"), full_page=True)
    back.click()
    page.wait_for_url(f"**/djenga/console/tasks/{failed.id}/")


def test_while_polling_the_button_posts_with_the_csrf_cookie(page, daphne):
    name = f"poll-cancel-{uuid.uuid4()}"
    sent = tasks.gated.delay(name)
    # Nothing listens on port 9: the widget polls, so Cancel goes by POST (Django's CSRF).
    mount(page, daphne.url, sent.id, token=make_token(sent.id, cancel=True), cancel="",
          **{"cancel-url": f"/djenga/tasks/{sent.id}/actions/cancel/",
             "ws-url": "ws://127.0.0.1:9/", "poll-interval": "200"})  # fmt: skip
    widget = page.locator("djenga-task-progress")
    page.wait_for_function(
        "() => document.querySelector('djenga-task-progress')?.snapshot?.state === 'PROGRESS'"
    )
    assert widget.get_attribute("data-connection") in ("polling", "connecting")
    with page.expect_response(lambda r: "/actions/cancel/" in r.url) as answer:
        widget.get_by_role("button", name="Cancel this task").click()
    assert answer.value.status == 200 and answer.value.json()["outcome"] == "requested"
    assert widget.locator("[part=cancel-status]").inner_text() == "Cancelling…"
    tasks.gate(name).set()
    assert wait_final(page)["state"] == "REVOKED"
