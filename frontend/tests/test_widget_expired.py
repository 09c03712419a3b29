"""<djenga-task-progress> for a task whose record expired: a clear final text, not "Waiting"."""

from __future__ import annotations

import time

import pytest
from test_widget import mount, wait_final

from djenga.celery.app import DjengaCelery
from djenga.celery.detail import TaskDetail

pytestmark = [pytest.mark.browser]


def test_an_expired_task_is_final_and_says_so(page, daphne, redis_server, artifacts):
    app = DjengaCelery("expiry", broker=redis_server.url, backend=redis_server.detail_url,
                       set_as_current=False)  # fmt: skip
    app.conf.result_expires = 1
    detail = TaskDetail("widget-expired", "expiry", [(1, "Export")])
    detail.start_step(1)
    app.backend.publish_detail(detail)
    detail.end_step()
    detail.finish("SUCCESS")
    app.backend.publish_detail(detail)
    deadline = time.monotonic() + 10
    while app.backend.client.exists(app.backend.names.task("widget-expired")):
        assert time.monotonic() < deadline, "the record did not expire"
        time.sleep(0.1)
    mount(page, daphne.url, "widget-expired")
    snapshot = wait_final(page)
    assert snapshot["state"] == "EXPIRED"
    widget = page.locator("djenga-task-progress")
    assert widget.get_attribute("data-state") == "EXPIRED"
    assert "No longer available" in widget.locator("[part=state]").inner_text()
    widget.screenshot(path=str(artifacts / "widget-expired.png"))
