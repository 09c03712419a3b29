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
    # One step known and running (half), plus one more counted because the task did not
    # declare how many come: 0.5 of 2.
    assert detail.percent == 25.0
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
        "children": [],
    }


def test_percent_counts_running_steps_half():
    detail = make()
    detail.start_step(1)
    detail.end_step()
    detail.start_step(2)
    assert detail.percent == 37.5
    assert detail.snapshot()["percent"] == 37.5


def percents_of_the_seed_flow(detail: TaskDetail, declared: bool) -> list[float]:
    """The percent after every call of the seed's four steps, then SUCCESS."""
    seen = [detail.percent]
    detail.start()
    for key, description in DECLARED:
        detail.start_step(key, None if declared else description)
        seen.append(detail.snapshot()["percent"])
        detail.update_step(key, "working")
        seen.append(detail.snapshot()["percent"])
        detail.end_step()
        seen.append(detail.snapshot()["percent"])
    detail.finish(TaskState.SUCCESS)
    seen.append(detail.snapshot()["percent"])
    return seen


def test_undeclared_steps_percent_never_goes_down_nor_reaches_100_before_success():
    # Issue 9: the total known so far grows with each new step, so 3 of 3 done (100) used to
    # become 3.5 of 4 (87.5) when step 4 started.
    seen = percents_of_the_seed_flow(make(steps=()), declared=False)
    assert seen == sorted(seen), seen
    assert max(seen[:-1]) < 100.0 and seen[-1] == 100.0
    assert seen[1:4] == [25.0, 25.0, 50.0]  # step 1 of (1 + the one that may come)


def test_declared_steps_stay_below_100_after_the_last_end_step_until_success():
    seen = percents_of_the_seed_flow(make(), declared=True)
    assert seen == sorted(seen), seen
    assert seen[-2] == 99.0  # all four steps ended, the task is still PROGRESS
    assert seen[-1] == 100.0
    assert seen[1:4] == [12.5, 12.5, 25.0]


def test_percent_never_goes_down_when_a_step_fails_or_the_total_grows():
    detail = make(steps=DECLARED[:2])
    detail.start_step(1)
    detail.end_step()
    detail.update_step(2, done=9, total=10)
    assert detail.snapshot()["percent"] == 95.0
    detail.start_step(3, "An extra step, not declared")  # 2 of 3 known steps done: 66.67
    assert detail.snapshot()["percent"] == 95.0
    detail.finish(TaskState.FAILURE, error=ValueError("no"))  # 2.5 of 3
    assert detail.snapshot()["percent"] == 95.0


def test_the_floor_is_what_a_snapshot_showed_not_the_steps_in_between():
    # update_step on a pending step starts it (half) and then sets 3 of 10 in one call: only
    # the 3 of 10 is ever published, so it is not held up by the half.
    detail = make()
    detail.start_step(1)
    detail.end_step()
    assert detail.snapshot()["percent"] == 25.0
    detail.update_step(2, "files", done=3, total=10)
    assert detail.snapshot()["percent"] == 32.5
    detail.update_step(2, done=1)  # the count went back: the bar does not
    assert detail.snapshot()["percent"] == 32.5


def test_a_rebuilt_detail_keeps_the_published_percent_as_its_floor():
    detail = make(steps=())
    for key in (1, 2, 3):
        detail.start_step(key, f"step {key}")
        detail.end_step()
    published = detail.snapshot()["percent"]
    assert published == 75.0  # 3 of (3 + 1 that may come)
    copy = TaskDetail.from_snapshot(detail.snapshot())
    copy.finish(TaskState.LOST)  # counts the three steps it sees: 3 of 3, capped
    assert copy.snapshot()["percent"] == 99.0
    running = make(steps=())
    running.start_step(1, "one")
    running.update_step(1, done=9, total=10)  # 0.9 of 2: 45
    lost = TaskDetail.from_snapshot(running.snapshot())
    lost.finish(TaskState.LOST)  # the running step failed: 0.5 of 1 = 50, not below 45
    assert lost.percent == 50.0
    revoked = TaskDetail.from_snapshot({**running.snapshot(), "percent": 80.0})
    revoked.finish(TaskState.REVOKED)  # 0.5 of 1 = 50, but 80 was published
    assert revoked.percent == 80.0


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
