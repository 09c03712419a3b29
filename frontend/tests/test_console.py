"""The agents' console in a real headless Chromium: live list, task page, staff-only access."""

from __future__ import annotations

import pytest

from djenga.celery.results import AsyncDetailedResult
from djenga.live.auth import make_token
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]


def log_in(page, base_url: str, username: str = "admin", password: str = "admin") -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_staff_see_a_task_appear_and_advance_live(page, daphne, artifacts):
    log_in(page, daphne.url)
    page.get_by_role("link", name="Task console").click()
    page.wait_for_selector("djenga-task-console[data-connection=websocket]")
    sent = tasks.steal_the_moon_declared.delay(Gru(pace=0.6), Moon())
    row = page.locator(f"djenga-task-console tr[data-task-id='{sent.id}']")
    row.wait_for(timeout=10_000)
    states_seen = set()
    steps_seen = set()
    for _ in range(200):
        states_seen.add(row.get_attribute("data-state"))
        steps_seen.add(row.locator("td").nth(3).inner_text())
        if "SUCCESS" in states_seen:
            break
        page.wait_for_timeout(50)
    assert "PROGRESS" in states_seen and "SUCCESS" in states_seen
    assert {"Fly to the moon — flying to the moon", "Grab the moon"} <= steps_seen
    assert row.locator("td").nth(0).inner_text() == "gru.steal_the_moon_declared"
    # Filters: by state, then by id.
    page.select_option("djenga-task-console select[name=state]", "FAILURE")
    assert row.is_hidden()
    page.select_option("djenga-task-console select[name=state]", "")
    page.fill("djenga-task-console input[name=id]", sent.id[:8])
    assert row.is_visible()
    page.locator("djenga-task-console").screenshot(path=str(artifacts / "console.png"))


def test_task_page_shows_the_timeline_and_the_traceback(page, daphne, artifacts):
    sent = tasks.fail_at_step.delay(3, "the moon is made of cheese")
    sent.get(timeout=15, propagate=False)
    log_in(page, daphne.url)
    page.goto(f"{daphne.url}/djenga/console/tasks/{sent.id}/")
    page.wait_for_selector("djenga-task-progress[data-state=FAILURE]")
    if not page.locator("[data-testid=traceback]").count():
        page.reload()  # the page was served a moment before the final snapshot landed
    traceback = page.locator("[data-testid=traceback]").inner_text()
    assert "ValueError: the moon is made of cheese" in traceback
    timeline = page.locator("table.djenga-timeline").inner_text()
    for text in ("Sent to the queue", "Started", "Step started", "Step ended", "Finished"):
        assert text in timeline
    page.wait_for_timeout(600)
    page.screenshot(path=str(artifacts / "console-failed-task.png"), full_page=True)


def test_timeline_grows_live_on_the_task_page(page, daphne):
    sent = tasks.wait_in_step.delay(1.5)
    log_in(page, daphne.url)
    page.goto(f"{daphne.url}/djenga/console/tasks/{sent.id}/")
    page.wait_for_selector("djenga-task-progress[data-state=SUCCESS]", timeout=20_000)
    page.wait_for_function(
        "() => document.querySelector('table.djenga-timeline').innerText.includes('Finished')",
        timeout=10_000,
    )


def test_non_staff_are_refused(page, daphne):
    response = page.goto(f"{daphne.url}/djenga/console/")
    assert "/admin/login/" in page.url and response.ok  # redirected to log in
    page.goto(f"{daphne.url}/")
    page.evaluate(
        """async () => {
             await import('/static/djenga/djenga-task-console.js');
             document.body.append(document.createElement('djenga-task-console'));
           }"""
    )
    page.wait_for_selector("djenga-task-console[data-connection=closed]")
    assert "Only staff" in page.locator("djenga-task-console").inner_text()


def test_the_customer_widget_never_shows_the_traceback(page, daphne):
    sent = tasks.fail_at_step.delay(1, "internal: db password is hunter2")
    page.goto(f"{daphne.url}/")
    page.evaluate(
        """async ([id, token]) => {
             await import('/static/djenga/djenga-task-progress.js');
             const el = document.createElement('djenga-task-progress');
             el.setAttribute('task-id', id);
             el.setAttribute('token', token);
             document.body.append(el);
           }""",
        [sent.id, make_token(sent.id)],
    )
    page.wait_for_selector("djenga-task-progress[data-state=FAILURE]", timeout=15_000)
    text = page.evaluate(
        "() => document.querySelector('djenga-task-progress').shadowRoot.textContent"
    )
    assert "hunter2" not in text and "Traceback" not in text
    assert "The task failed." in text


def test_html_in_task_data_is_inert_in_the_console(page, daphne):
    """Reliability scenario 9, for the console (the widget's twin is in test_widget.py)."""
    payload = '<img src=x onerror="window.__pwned=1">'
    sent = tasks.say.delay(payload, "<script>window.__pwned=2</script>", 0.2)
    sent.get(timeout=15)
    log_in(page, daphne.url)
    page.goto(f"{daphne.url}/djenga/console/")
    row = page.locator(f"djenga-task-console tr[data-task-id='{sent.id}']")
    row.wait_for(timeout=10_000)
    assert page.locator("djenga-task-console img").count() == 0
    page.goto(f"{daphne.url}/djenga/console/tasks/{sent.id}/")
    page.wait_for_selector("djenga-task-progress[data-state=SUCCESS]")
    timeline = page.locator("table.djenga-timeline").inner_text()
    assert payload in timeline
    assert page.locator("table.djenga-timeline img").count() == 0
    assert page.evaluate("() => window.__pwned") is None


ADMIN_LAYOUT = """() => {
  const box = (el) => (el ? el.getBoundingClientRect() : {});
  const djenga = document.querySelector('#djenga-console-link');
  const apps = [...document.querySelectorAll('#content-main .module')].filter((m) => m !== djenga);
  const recent = document.querySelector('#recent-actions-module');
  return {
    inMain: Boolean(djenga && djenga.closest('#content-main')),
    caption: djenga?.querySelector('caption')?.textContent.trim() ?? null,
    captionHeight: box(djenga?.querySelector('caption')).height,
    appCaptionHeight: box(apps[0]?.querySelector('caption')).height,
    djengaWidth: box(djenga).width,
    appWidth: box(apps[0]).width,
    recentTop: box(recent).top,
    mainTop: box(document.querySelector('#content-main')).top,
  };
}"""


def test_admin_index_links_the_console_in_an_app_module(page, daphne, artifacts):
    log_in(page, daphne.url)
    layout = page.evaluate(ADMIN_LAYOUT)
    assert layout["inMain"] and layout["caption"] == "Djenga", layout
    # Laid out as the apps' modules are: same header height and width...
    assert layout["captionHeight"] == layout["appCaptionHeight"]
    assert layout["djengaWidth"] == layout["appWidth"]
    # ...and "Recent actions" stays level with the top of the main column.
    assert abs(layout["recentTop"] - layout["mainTop"]) < 2
    page.get_by_role("link", name="Task console").click()
    page.wait_for_url("**/djenga/console/")
    page.goto(f"{daphne.url}/admin/")
    page.screenshot(path=str(artifacts / "admin-index.png"), full_page=True)


def console_order(page, ids: list[str]) -> list[str]:
    """The order in which the console lists the tasks ``ids`` (others left out)."""
    shown = page.eval_on_selector_all(
        "djenga-task-console tbody tr[data-task-id]", "rows => rows.map(r => r.dataset.taskId)"
    )
    return [task_id for task_id in shown if task_id in ids]


def test_the_list_is_newest_first_on_load_and_live(page, daphne):
    sent = []
    for n in range(3):  # one after the other: each one's last change is the newest
        sent.append(tasks.say.delay("Order", f"task {n}"))
        sent[-1].get(timeout=15)
    ids = [result.id for result in sent]
    log_in(page, daphne.url)
    page.goto(f"{daphne.url}/djenga/console/")
    page.locator(f"djenga-task-console tr[data-task-id='{ids[0]}']").wait_for(timeout=10_000)
    assert console_order(page, ids) == ids[::-1]
    live = tasks.say.delay("Order", "the newest")
    live.get(timeout=15)
    page.wait_for_function(
        """(id) => { const row = document.querySelector(
             `djenga-task-console tr[data-task-id='${id}']`);
           return row && row.dataset.state === 'SUCCESS'; }""",
        arg=live.id,
        timeout=10_000,
    )
    assert console_order(page, [live.id, *ids]) == [live.id, *ids[::-1]]
    page.reload()
    page.locator(f"djenga-task-console tr[data-task-id='{live.id}']").wait_for(timeout=10_000)
    assert console_order(page, [live.id, *ids]) == [live.id, *ids[::-1]]


def test_a_filter_that_matches_nothing_says_so(page, daphne):
    tasks.say.delay("Filter", "me").get(timeout=15)
    log_in(page, daphne.url)
    page.goto(f"{daphne.url}/djenga/console/")
    page.wait_for_selector("djenga-task-console tr[data-task-id]")
    empty = page.locator("djenga-task-console .djenga-console-empty")
    assert empty.is_hidden()
    page.fill("djenga-task-console input[name=id]", "no-such-task")
    assert empty.is_visible() and empty.inner_text() == "No tasks match these filters."
    page.fill("djenga-task-console input[name=id]", "")
    assert empty.is_hidden()
    page.select_option("djenga-task-console select[name=state]", "REVOKED")
    page.fill("djenga-task-console input[name=name]", "gru.nothing-has-this-name")
    assert empty.is_visible()


def test_console_pages_show_the_user_and_log_out(page, daphne):
    sent = tasks.say.delay("User", "tools")
    sent.get(timeout=15)
    log_in(page, daphne.url)
    for path in ("/djenga/console/", f"/djenga/console/tasks/{sent.id}/"):
        page.goto(daphne.url + path)
        tools = page.locator("#user-tools")
        assert "admin" in tools.inner_text().lower()
        assert tools.get_by_role("link", name="View site").is_visible()
    page.locator("#logout-form").get_by_role("button", name="Log out").click()  # a POST
    page.wait_for_url("**/admin/logout/")
    page.goto(f"{daphne.url}/djenga/console/")
    assert "/admin/login/" in page.url


def test_success_is_green_as_in_the_widget(page, daphne):
    sent = tasks.say.delay("Colour", "green")
    sent.get(timeout=15)
    failed = tasks.fail_at_step.delay(1, "red")
    failed.get(timeout=15, propagate=False)
    log_in(page, daphne.url)
    page.goto(f"{daphne.url}/djenga/console/")
    colours = {}
    for result in (sent, failed):
        row = page.locator(f"djenga-task-console tr[data-task-id='{result.id}']")
        row.wait_for(timeout=10_000)
        colours[row.get_attribute("data-state")] = (
            row.locator("td").nth(2).evaluate("td => getComputedStyle(td).color"),
            row.locator("progress").evaluate("p => getComputedStyle(p).accentColor"),
        )
    green, red = "rgb(26, 127, 55)", "rgb(207, 34, 46)"  # --djenga-done, --djenga-failed
    assert colours == {"SUCCESS": (green, green), "FAILURE": (red, red)}


def test_the_list_shows_utc_like_the_task_page_whatever_the_browser_zone(browser, daphne):
    from datetime import UTC, datetime

    sent = tasks.say.delay("Clock", "tick")
    sent.get(timeout=15)
    started = AsyncDetailedResult(sent.id).details()["started_at"]
    context = browser.new_context(timezone_id="America/Chicago")
    try:
        page = context.new_page()
        log_in(page, daphne.url)
        page.goto(f"{daphne.url}/djenga/console/")
        row = page.locator(f"djenga-task-console tr[data-task-id='{sent.id}']")
        row.wait_for(timeout=10_000)
        assert "Started (UTC)" in page.locator("djenga-task-console thead").text_content()
        expected = datetime.fromtimestamp(started, UTC).strftime("%H:%M:%S")
        assert row.locator("td").nth(5).inner_text() == expected
        page.goto(f"{daphne.url}/djenga/console/tasks/{sent.id}/")
        assert "At (UTC)" in page.locator("table.djenga-timeline thead").text_content()
    finally:
        context.close()
