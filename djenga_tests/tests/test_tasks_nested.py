"""Nested sub-steps through a real worker and a real Redis: the snapshots carry the tree."""

from __future__ import annotations

import uuid

import pytest

from djenga.celery.results import AsyncDetailedResult
from djenga.wire import WIRE_VERSION
from djenga_tests import tasks
from djenga_tests.tests.test_tasks import final_details, wait_for

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


def shape(steps):
    """(key, state, [children]) of each step dict, recursively."""
    return [(s["key"], s["state"], shape(s["children"])) for s in steps]


def test_a_nested_task_reports_its_tree():
    details = final_details(tasks.nested_export.delay(rows=2))
    assert details["state"] == "SUCCESS" and details["percent"] == 100.0
    assert details["v"] == WIRE_VERSION
    assert shape(details["steps"]) == [
        (1, "done", [(1.1, "done", []), (1.2, "done", [("zip", "done", [])])]),
        (2, "done", []),
    ]
    export = details["steps"][0]
    write = export["children"][1]
    assert write["description"] == "Write the CSV file" and write["message"] == "row 2 of 2"
    assert (write["done"], write["total"]) == (2.0, 2.0)
    assert write["children"][0]["description"] == "Compress the file"
    assert export["started_at"] <= write["started_at"] <= write["ended_at"] <= export["ended_at"]


def test_an_exception_in_a_child_fails_it_and_its_parents_with_their_times():
    details = final_details(tasks.nested_export.delay(rows=1, fail_at="zip"))
    assert details["state"] == "FAILURE"
    assert details["error"]["message"] == "step zip broke"
    assert shape(details["steps"]) == [
        (1, "failed", [(1.1, "done", []), (1.2, "failed", [("zip", "failed", [])])]),
        (2, "pending", []),
    ]
    export = details["steps"][0]
    for step in (export, export["children"][1], export["children"][1]["children"][0]):
        assert step["ended_at"] is not None and step["duration"] is not None
    assert details["percent"] < 100.0


def test_a_running_nested_task_shows_its_current_path_and_counts_the_tree():
    name = f"nested-{uuid.uuid4()}"
    sent = tasks.nested_export.delay(rows=2, gate_name=name)
    result = AsyncDetailedResult(sent.id)
    try:
        live = wait_for(lambda: (d := result.details())["current_path"] == [1, 1.2] and d)
        assert result.current_step["key"] == 1.2
        # 1.1 done and 1.2 at 2 of 2 rows: step 1 is whole, one of two top-level steps.
        assert live["percent"] == 50.0
        assert shape(live["steps"])[0] == (1, "running", [(1.1, "done", []), (1.2, "running", [])])
    finally:
        tasks.gate(name).set()
    assert final_details(sent)["state"] == "SUCCESS"


def test_later_runs_expect_each_declared_sub_steps_duration():
    final_details(tasks.nested_export.delay(rows=1))
    name = f"nested-{uuid.uuid4()}"
    sent = tasks.nested_export.delay(rows=1, gate_name=name)
    result = AsyncDetailedResult(sent.id)
    try:
        live = wait_for(lambda: (d := result.details())["current_path"] == [1, 1.2] and d)
        children = live["steps"][0]["children"]
        assert all(child["expected"] is not None for child in children)
    finally:
        tasks.gate(name).set()
    final_details(sent)


def test_flat_with_blocks_end_done_on_a_clean_exit():
    details = final_details(tasks.flat_blocks.delay())
    assert details["state"] == "SUCCESS"
    assert shape(details["steps"]) == [(1, "done", []), (2, "done", []), (3, "done", [])]
    assert details["steps"][0]["message"] == "counting"


def test_a_flat_with_block_fails_its_step_and_the_exception_goes_on():
    details = final_details(tasks.flat_blocks.delay(fail=True))
    assert details["state"] == "FAILURE" and details["error"]["type"] == "ValueError"
    assert shape(details["steps"]) == [(1, "done", []), (2, "failed", [])]
    assert details["steps"][1]["ended_at"] is not None


def test_a_caught_exception_leaves_its_step_failed_and_the_task_runs_on():
    from djenga.connection import read_events

    sent = tasks.flat_blocks.delay(catch=True)
    details = final_details(sent)
    assert details["state"] == "SUCCESS"
    assert shape(details["steps"]) == [(1, "done", []), (2, "failed", []), (3, "done", [])]
    failed = [e for e in read_events(sent.id) if e.get("state") == "failed"]
    assert [(e["type"], e["key"], e["error"]["message"]) for e in failed] == [
        ("step_ended", 2, "out of bananas")
    ]
