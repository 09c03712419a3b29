"""The widget's own percent (when a snapshot has none) follows the server's rule: 100 is
SUCCESS only, anything else stops at 99 (docs/snapshot.md, docs/widget.md)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

SUMMARIZE = """async (snapshots) => {
  const { summarize } = await import('/static/djenga/djenga-task-progress.js');
  return snapshots.map((snap) => summarize(snap).percent);
}"""

DONE = [{"key": 1, "state": "done"}, {"key": 2, "state": "done"}]


def test_percent_reaches_100_only_on_success(page, daphne):
    page.goto(daphne.url + "/")
    percents = page.evaluate(
        SUMMARIZE,
        [
            {"state": "PROGRESS", "steps": DONE},  # no percent: every step ended
            {"state": "PROGRESS", "steps": DONE, "percent": 100.0},  # an older server's 100
            {"state": "FAILURE", "steps": DONE},
            {"state": "PROGRESS", "steps": [DONE[0], {"key": 2, "state": "running"}]},
            {"state": "PROGRESS", "steps": DONE, "percent": 37.5},
            {"state": "SUCCESS", "steps": DONE, "percent": 87.5},
        ],
    )
    assert percents == [99, 99, 99, 50, 37, 100]
