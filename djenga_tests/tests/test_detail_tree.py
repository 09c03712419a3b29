"""Unit tests of nested steps in TaskDetail: the step tree, its rules, percent and wire v2
(pure model, no server needed)."""

from __future__ import annotations

import itertools

import pytest

from djenga.celery.steps import Step, declared_steps, validate_step_declarations
from djenga.celery.tasks import TaskDetail
from djenga.errors import StepError
from djenga.wire import WIRE_VERSION, StepState, TaskState, decode, encode

EXPORT = [
    (1, "Export", [(1.1, "Query"), (1.2, "Write")]),
    (2, "Mail the link"),
]


def make(steps=EXPORT) -> TaskDetail:
    counter = itertools.count()
    detail = TaskDetail("t-1", "demo.export", steps, clock=lambda: 1000.0 + next(counter))
    detail.start()
    return detail


def tree(steps: list[Step]) -> list:
    """(key, state, [children]) of each step, to compare whole trees at once."""
    return [(s.key, s.state.value, tree(s.children)) for s in steps]


# -- declarations ----------------------------------------------------------------------


def test_declared_children_build_the_tree():
    detail = make()
    assert tree(detail.steps) == [
        (1, "pending", [(1.1, "pending", []), (1.2, "pending", [])]),
        (2, "pending", []),
    ]
    assert detail.step(1.2).parent is detail.step(1)
    assert [k for k, _ in declared_steps(validate_step_declarations(EXPORT))] == [1, 1.1, 1.2, 2]


def test_declarations_nest_to_any_depth_and_an_empty_child_list_is_a_leaf():
    declared = validate_step_declarations([("a", "A", [("b", "B", [("c", "C")])]), ("d", "D", [])])
    assert declared == [("a", "A", [("b", "B", [("c", "C")])]), ("d", "D")]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([(1, "A", [(1, "again")])], "step key 1 is declared twice"),
        ([(1, "A", [(2, "B")]), (2, "C")], "step key 2 is declared twice"),
        ([(1, "A", "not a list")], "steps must be a list"),
        ([(1, "A", [(2,)])], r"\(key, description, \[children\]\) triple"),
        ([(1, "A", [(True, "B")])], "must be an int, a float or a str"),
        ([(float("nan"), "A")], "must be a finite number"),
        ([(1, "A", [(2, "B")], "extra")], "pair or a"),
    ],
)
def test_bad_declarations_are_refused_clearly(steps, message):
    with pytest.raises(StepError, match=message):
        validate_step_declarations(steps)


# -- the stack -------------------------------------------------------------------------


def test_a_declared_child_is_pushed_and_end_step_pops_it():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.1)
    assert detail.current.key == 1.1
    assert [s.key for s in detail.running_path] == [1, 1.1]
    detail.end_step()  # pops 1.1: 1 runs on
    assert detail.current.key == 1
    detail.start_step(1.2)
    detail.start_step(2)  # a top-level step: ends 1.2, then 1
    assert tree(detail.steps) == [
        (1, "done", [(1.1, "done", []), (1.2, "done", [])]),
        (2, "running", []),
    ]


def test_a_declared_sibling_child_ends_the_running_child():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.1)
    detail.start_step(1.2)
    assert tree(detail.steps)[0] == (1, "running", [(1.1, "done", []), (1.2, "running", [])])


def test_a_declared_child_of_a_step_that_does_not_run_is_refused():
    detail = make()
    with pytest.raises(StepError, match="declared under step 1, which is not running"):
        detail.start_step(1.2)


def test_flat_start_steps_stay_sequential_as_in_the_seed():
    detail = make(steps=())
    detail.start_step(1, "Fly to the moon")
    detail.start_step(2, "Shrink the moon")  # no end_step: 1 ends, 2 is its sibling
    assert tree(detail.steps) == [(1, "done", []), (2, "running", [])]


def test_a_new_key_inside_a_block_is_its_child():
    detail = make(steps=())
    detail.start_step("export", "Export", block=True)
    detail.start_step("query", "Query")
    detail.start_step("write", "Write")  # a sibling of query, still under export
    assert tree(detail.steps) == [
        ("export", "running", [("query", "done", []), ("write", "running", [])])
    ]
    assert [s.key for s in detail.running_path] == ["export", "write"]
    detail.end_step("export")  # ends write too
    assert tree(detail.steps) == [
        ("export", "done", [("query", "done", []), ("write", "done", [])])
    ]


def test_a_block_is_not_ended_by_a_sibling_start():
    detail = make()
    detail.start_step(1, block=True)
    with pytest.raises(StepError, match=r"cannot start while the `with step\(1\)` block runs"):
        detail.start_step(2)
    assert detail.current.key == 1


def test_end_step_with_a_key_that_does_not_run():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.1)
    with pytest.raises(StepError, match=r"end_step\(2\) but the running step is 1.1 \(inside 1\)"):
        detail.end_step(2)


def test_ending_a_parent_skips_its_children_that_never_ran():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.1)
    detail.end_step(1)
    assert tree(detail.steps)[0] == (1, "done", [(1.1, "done", []), (1.2, "skipped", [])])


# -- failures --------------------------------------------------------------------------


def test_an_exception_in_a_child_fails_it_and_its_parents_with_their_elapsed_kept():
    detail = make()
    detail.start_step(1)  # at 1001
    detail.start_step(1.1)  # at 1002
    detail.finish(TaskState.FAILURE, error=ValueError("disk full"))  # at 1003
    assert tree(detail.steps) == [
        (1, "failed", [(1.1, "failed", []), (1.2, "pending", [])]),
        (2, "pending", []),
    ]
    assert detail.step(1).duration(0) == 2.0 and detail.step(1.1).duration(0) == 1.0
    steps = detail.snapshot()["steps"]
    assert steps[0]["duration"] == 2.0 and steps[0]["children"][0]["duration"] == 1.0


def test_fail_step_fails_the_step_and_its_running_children_only():
    detail = make()
    detail.start_step(1, block=True)
    detail.start_step(1.1)
    event = detail.fail_step(1.1, KeyError("id"))
    assert event["state"] == "failed" and event["error"]["type"] == "KeyError"
    assert detail.current.key == 1  # the parent runs on: the exception may be caught
    assert detail.fail_step(1.1) is None  # already ended


def test_success_skips_pending_children_and_ends_running_ones_done():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.1)
    detail.finish(TaskState.SUCCESS)
    assert tree(detail.steps) == [
        (1, "done", [(1.1, "done", []), (1.2, "skipped", [])]),
        (2, "skipped", []),
    ]


# -- percent ---------------------------------------------------------------------------


def test_percent_shares_a_top_level_steps_weight_among_its_children():
    detail = make()
    assert detail.percent == 0.0
    detail.start_step(1)
    detail.start_step(1.1)
    assert detail.percent == 12.5  # half of 1.1 = a quarter of 1 = an eighth of all
    detail.update_step(1.1, done=1, total=2)
    assert detail.percent == 12.5
    detail.start_step(1.2)
    assert detail.percent == 37.5  # 1.1 whole, 1.2 half: 3/4 of step 1, half the task
    detail.start_step(2)
    assert detail.percent == 75.0


def test_percent_never_goes_down_when_children_appear_late():
    detail = make(steps=[(1, "Import"), (2, "Report")])
    detail.start_step(1, block=True)
    detail.update_step(1, done=9, total=10)  # 0.9 of 1 of 2 steps
    seen = [detail.snapshot()["percent"]]
    detail.start_step("1a", "A late sub-step")  # the leaf's fraction gives way to children
    seen.append(detail.snapshot()["percent"])
    detail.end_step("1a")
    detail.start_step("1b", "Another")
    seen.append(detail.snapshot()["percent"])
    detail.end_step(1)
    seen.append(detail.snapshot()["percent"])
    assert seen == sorted(seen) and seen[0] == 45.0 and seen[-1] == 50.0


def test_percent_of_a_rebuilt_tree_is_not_below_the_published_one():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.1)
    published = detail.snapshot()
    rebuilt = TaskDetail.from_snapshot(decode(encode(published)))
    assert rebuilt.percent == published["percent"] == 12.5


# -- wire v2 ---------------------------------------------------------------------------


def test_snapshot_carries_children_and_the_current_path():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.2)
    snapshot = detail.snapshot()
    assert snapshot["v"] == WIRE_VERSION == 2
    assert snapshot["current"] == 1.2 and snapshot["current_path"] == [1, 1.2]
    first, second = snapshot["steps"]
    assert [c["key"] for c in first["children"]] == [1.1, 1.2]
    assert first["children"][1]["state"] == "running" and first["children"][0]["children"] == []
    assert second["children"] == []


def test_from_snapshot_round_trips_the_tree():
    detail = make()
    detail.start_step(1)
    detail.start_step(1.1)
    detail.update_step(1.1, "rows", done=3, total=4)
    snapshot = decode(encode(detail.snapshot()))
    rebuilt = TaskDetail.from_snapshot(snapshot)
    assert tree(rebuilt.steps) == tree(detail.steps)
    assert rebuilt.current.key == 1.1 and rebuilt.step(1.1).parent is rebuilt.step(1)
    assert rebuilt.step(1.1).message == "rows"
    rebuilt.finish(TaskState.REVOKED)  # e.g. a revoke recorded on the stored snapshot
    assert [s.state for s in rebuilt.walk()][:2] == [StepState.FAILED, StepState.FAILED]
    again = rebuilt.snapshot()
    assert again["steps"][0]["children"][0]["state"] == "failed"


def test_a_task_with_bad_nested_steps_fails_when_it_is_defined():
    from djenga.celery.tasks import DetailTask

    with pytest.raises(StepError, match=r"step key 1\.1 is declared twice"):

        class Export(DetailTask):
            steps = [(1, "Export", [(1.1, "Query"), (1.1, "Again")])]


def test_a_v1_snapshot_without_children_is_read_as_leaves():
    v1 = {"v": 1, "task_id": "t", "state": "PROGRESS", "current": 2, "percent": 40.0,
          "steps": [{"key": 1, "state": "done"}, {"key": 2, "state": "running"}]}  # fmt: skip
    detail = TaskDetail.from_snapshot(v1)
    assert tree(detail.steps) == [(1, "done", []), (2, "running", [])]
    assert detail.current.key == 2 and detail.snapshot()["current_path"] == [2]
