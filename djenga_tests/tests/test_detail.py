"""Unit tests of TaskDetail, the pure model of one run's steps (no server needed)."""

from __future__ import annotations

import itertools
import re

import pytest

from djenga.celery.tasks import TaskDetail
from djenga.errors import StepError
from djenga.wire import StepState, TaskState

DECLARED = [(1, "Fly to the moon"), (2, "Shrink the moon"), (3, "Grab the moon"), (4, "Sit")]


def ticking_clock(start: float = 1000.0):
    counter = itertools.count()
    return lambda: start + next(counter)


def make(steps=DECLARED, **kwargs) -> TaskDetail:
    return TaskDetail("t-1", "gru.steal_the_moon", steps, clock=ticking_clock(), **kwargs)


def states(detail: TaskDetail) -> list[str]:
    return [step.state.value for step in detail.steps]


def test_declared_steps_start_pending():
    detail = make()
    snapshot = detail.snapshot()
    assert snapshot["state"] == "PENDING"
    assert [s["description"] for s in snapshot["steps"]] == [d for _k, d in DECLARED]
    assert states(detail) == ["pending"] * 4
    assert snapshot["percent"] == 0.0
    assert snapshot["current"] is None


def test_seed_flow_with_descriptions():
    detail = make(steps=())
    detail.start()
    detail.start_step(1, "Fly to the moon")
    detail.update_step(1, "flying to the moon")
    assert detail.percent == 50.0  # one running step of one known step counts half
    detail.end_step()
    detail.start_step(2, "Shrink the moon")
    snapshot = detail.snapshot()
    assert snapshot["current"] == 2
    assert snapshot["state"] == "PROGRESS"
    assert snapshot["steps"][0] == {
        "key": 1,
        "description": "Fly to the moon",
        "state": "done",
        "message": "flying to the moon",
        "started_at": 1001.0,
        "ended_at": 1003.0,
        "duration": 2.0,
        "done": None,
        "total": None,
        "expected": None,
    }


def test_percent_counts_running_steps_half():
    detail = make()
    detail.start_step(1)
    detail.end_step()
    detail.start_step(2)
    assert detail.percent == 37.5
    assert detail.snapshot()["percent"] == 37.5


def test_start_step_ends_the_running_step():
    detail = make()
    detail.start_step(1)
    detail.start_step(2)
    assert states(detail) == ["done", "running", "pending", "pending"]


def test_update_step_starts_a_pending_step():
    detail = make()
    event = detail.update_step(2, "shrinking")
    assert detail.current.key == 2
    assert event == {
        "type": "step_updated",
        "at": detail.updated_at,
        "key": 2,
        "message": "shrinking",
    }


def test_success_marks_running_done_and_unrun_skipped():
    detail = make()
    detail.start_step(1)
    detail.end_step()
    detail.start_step(2)
    detail.finish(TaskState.SUCCESS, result={"moon": "stolen"})
    assert states(detail) == ["done", "done", "skipped", "skipped"]
    assert detail.percent == 100.0
    assert detail.snapshot()["private"] == {"result": "{'moon': 'stolen'}"}


def test_failure_marks_running_step_failed_and_keeps_error():
    detail = make()
    detail.start_step(1)
    detail.finish(TaskState.FAILURE, error=ValueError("too heavy"), traceback="Traceback …")
    assert states(detail) == ["failed", "pending", "pending", "pending"]
    snapshot = detail.snapshot()
    assert snapshot["error"] == {"type": "ValueError", "message": "too heavy"}
    assert snapshot["private"]["traceback"] == "Traceback …"
    assert snapshot["percent"] == 12.5


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            lambda d: d.start_step(9),
            "step 9 was not declared in steps=[...]; give it a description",
        ),
        (lambda d: d.end_step(), "end_step() was called but no step is running"),
        (lambda d: d.update_step(7, "x"), "step 7 is unknown (known steps: 1, 2, 3, 4)"),
    ],
)
def test_misuse_raises_a_clear_step_error(action, message):
    with pytest.raises(StepError, match=re.escape(message)):
        action(make())


def test_a_step_starts_only_once():
    detail = make()
    detail.start_step(1)
    detail.end_step()
    with pytest.raises(StepError, match=r"step 1 was already started \(it is done\)"):
        detail.start_step(1)


def test_end_step_with_the_wrong_key():
    detail = make()
    detail.start_step(1)
    with pytest.raises(StepError, match=r"end_step\(2\) but the running step is 1"):
        detail.end_step(2)


def test_duplicate_declared_keys_are_refused():
    with pytest.raises(StepError, match="step key 1 is declared twice"):
        make(steps=[(1, "a"), (1, "b")])


def test_undeclared_step_with_description_is_appended():
    detail = make()
    detail.start_step("extra", "One more thing")
    assert detail.steps[-1].key == "extra"
    assert detail.steps[-1].state is StepState.RUNNING


def test_round_trip_through_a_snapshot():
    detail = make()
    detail.start_step(1)
    detail.update_step(1, "flying")
    copy = TaskDetail.from_snapshot(detail.snapshot())
    assert copy.snapshot() == detail.snapshot()
    copy.finish(TaskState.REVOKED)
    assert states(copy) == ["failed", "pending", "pending", "pending"]


def test_long_messages_are_clipped():
    detail = make()
    detail.update_step(1, "x" * 20_000)
    assert len(detail.steps[0].message) == 10_000


def test_sub_progress_drives_the_step_and_the_overall_percent():
    detail = make()
    detail.start_step(1)
    detail.end_step()
    detail.update_step(2, "files", done=3, total=10)
    assert detail.steps[1].fraction == 0.3
    assert detail.percent == round(100 * (1 + 0.3) / 4, 2)
    event = detail.update_step(2, done=5)
    assert (event["done"], event["total"], event["message"]) == (5.0, 10.0, "files")
    detail.end_step()
    assert (detail.steps[1].done, detail.percent) == (10.0, 50.0)


def test_sub_progress_total_must_be_positive():
    detail = make()
    with pytest.raises(StepError, match="total must be a positive number, not 0"):
        detail.update_step(1, done=1, total=0)


def test_eta_from_expected_durations():
    detail = make()
    assert detail.eta is None  # nothing known about this task's runs
    detail.expect({1: 2.0, 2: 4.0, 3: 1.0, 4: 1.0})
    detail.start_step(1)  # at 1000
    detail.update_step(1, "x")  # at 1001: one of two seconds spent
    assert detail.eta == 1.0 + 4.0 + 1.0 + 1.0
    detail.update_step(1, done=3, total=4)  # sub-progress wins: a quarter of 2 s left
    assert detail.eta == 0.5 + 6.0
    detail.finish("SUCCESS")
    assert detail.eta is None


def test_timing_fields():
    detail = make()
    detail.start(worker="w1@host", args="(1,)", kwargs="{}")
    detail.start_step(1)
    detail.finish("SUCCESS")
    snapshot = detail.snapshot()
    assert (snapshot["started_at"], snapshot["ended_at"]) == (1000.0, 1002.0)
    assert snapshot["private"]["worker"] == "w1@host"
    assert snapshot["steps"][0]["duration"] == 1.0


def test_restored_events_keep_the_newest():
    detail = make()
    for _ in range(150):
        detail.update_step(1, "x")
    events = detail.drain_events()
    assert len(events) == 100
    detail.update_step(1, "y")
    detail.restore_events(events)
    assert len(detail.events) == 100 and detail.events[-1]["message"] == "y"
