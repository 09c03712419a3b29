"""The widget shows the server's percent (every v1 frame carries one) and computes none of its
own: floored, 100 for SUCCESS only, anything else stops at 99 (docs/snapshot.md, docs/widget.md)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

SUMMARIZE = """async (snapshots) => {
  const { summarize } = await import('/static/djenga/djenga-task-progress.js');
  return snapshots.map((snap) => summarize(snap).percent);
}"""

DONE = [{"key": 1, "state": "done"}, {"key": 2, "state": "done"}]


def test_percent_is_the_servers_and_reaches_100_only_on_success(page, daphne):
    page.goto(daphne.url + "/")
    percents = page.evaluate(
        SUMMARIZE,
        [
            {"state": "PROGRESS", "steps": DONE},  # no percent: nothing to show, no guess
            {"state": "PROGRESS", "steps": DONE, "percent": 100.0},  # an older server's 100
            {"state": "FAILURE", "steps": DONE, "percent": 50.0},
            {"state": "PROGRESS", "steps": DONE, "percent": 37.5},
            {"state": "PROGRESS", "steps": DONE, "percent": 57.99999999999999},
            {"state": "SUCCESS", "steps": DONE, "percent": 87.5},
        ],
    )
    assert percents == [None, 99, 50, 37, 58, 100]
