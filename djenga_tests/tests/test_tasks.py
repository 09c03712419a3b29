"""DetailTask through a real worker and a real Redis: steps, failures, retries, revokes."""

from __future__ import annotations

from functools import partial

import pytest

from djenga.celery.results import AsyncDetailedResult
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

from . import live_helpers

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]

FOUR = ["Fly to the moon", "Shrink the moon", "Grab the moon", "Sit on the toilet"]


#: The shared wait, with this file's shorter default: its tasks take a fraction of a second.
wait_for = partial(live_helpers.wait_for, timeout=10.0)


def final_details(async_result, timeout=15):
    async_result.get(timeout=timeout, propagate=False)
    result = AsyncDetailedResult(async_result.id)
    return wait_for(
        lambda: (d := result.details())["state"] in ("SUCCESS", "FAILURE", "REVOKED") and d
    )


@pytest.mark.parametrize("task", [tasks.steal_the_moon, tasks.steal_the_moon_declared])
def test_steal_the_moon_both_seed_forms(task):
    sent = task.delay(Gru(), Moon())
    details = final_details(sent)
    assert details["state"] == "SUCCESS"
    assert details["name"] == task.name
    assert details["percent"] == 100.0
    assert [s["description"] for s in details["steps"]] == FOUR
    assert [s["state"] for s in details["steps"]] == ["done"] * 4
    assert [s["message"] for s in details["steps"]] == ["flying to the moon", None, None, None]
    assert [s["key"] for s in details["steps"]] == [1, 2, 3, 4]
    assert all(s["started_at"] <= s["ended_at"] for s in details["steps"])
    assert details["current"] is None
    assert details["error"] is None
    # 1 STARTED + 4 starts + 1 update + 4 ends + SUCCESS (+1 PENDING when declared)
    assert details["seq"] == (12 if task.steps else 11)


def test_seed_monitoring_example_runs_as_written():
    from djenga.celery.results import AsyncDetailedResult
    from djenga_tests.tasks import steal_the_moon

    task = steal_the_moon.delay()
    result = AsyncDetailedResult(task.id)
    result.details()
    task.get(timeout=10)
    assert result.details()["state"] == "SUCCESS"
    assert [s["state"] for s in result.steps] == ["done"] * 4
    assert result.percent == 100.0


def test_declared_steps_show_before_a_worker_picks_the_task_up():
    sent = tasks.steal_the_moon_declared.apply_async(queue="nobody-consumes-this")
    details = AsyncDetailedResult(sent.id).details()
    assert details["state"] == "PENDING"
    assert [(s["description"], s["state"]) for s in details["steps"]] == [
        (d, "pending") for d in FOUR
    ]
    assert details["seq"] == 1


def test_failure_mid_step_marks_that_step_failed():
    details = final_details(tasks.fail_at_step.delay(2))
    assert details["state"] == "FAILURE"
    assert [s["state"] for s in details["steps"]] == ["done", "failed", "pending"]
    assert details["error"] == {"type": "ValueError", "message": "the moon is too heavy"}
    assert "ValueError: the moon is too heavy" in details["private"]["traceback"]
    assert details["current"] is None


def test_retry_then_success_keeps_seq_increasing():
    sent = tasks.retry_once.delay()
    assert sent.get(timeout=15) == "got it"
    result = AsyncDetailedResult(sent.id)
    details = wait_for(lambda: (d := result.details())["state"] == "SUCCESS" and d)
    assert details["attempt"] == 2
    assert [s["state"] for s in details["steps"]] == ["done", "done"]
    backend = tasks.retry_once.backend
    events = backend.get_events(sent.id)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 2
    # RETRY is recorded before the next attempt is sent, so it always sits between them.
    retry = next(i for i, e in enumerate(events) if e["type"] == "finished")
    assert events[retry]["state"] == "RETRY"
    assert events[retry]["error"] == {"type": "ConnectionError", "message": "the moon moved"}
    assert kinds.index("started") < retry < len(kinds) - 1 - kinds[::-1].index("started")
    assert events[-1]["state"] == "SUCCESS"


def test_revoked_before_it_ran():
    sent = tasks.wait_in_step.apply_async((0.1,), countdown=1)
    sent.revoke()
    result = AsyncDetailedResult(sent.id)
    details = wait_for(lambda: (d := result.details())["state"] == "REVOKED" and d, timeout=15)
    assert [s["state"] for s in details["steps"]] == ["pending", "pending"]


def test_misuse_fails_the_task_with_the_step_error():
    details = final_details(tasks.misuse.delay())
    assert details["state"] == "FAILURE"
    assert details["error"] == {
        "type": "StepError",
        "message": "end_step() was called but no step is running; call start_step first",
    }


def test_direct_call_reports_nothing_and_does_not_crash():
    assert tasks.steal_the_moon(Gru(), Moon()) is None


def test_eager_apply_writes_through_the_real_backend():
    eager = tasks.steal_the_moon_declared.apply(args=(Gru(), Moon()))
    assert eager.successful()
    details = AsyncDetailedResult(eager.id).details()
    assert details["state"] == "SUCCESS"
    assert [s["state"] for s in details["steps"]] == ["done"] * 4


def test_plain_results_work_as_with_redis():
    from celery import chord, group

    assert tasks.plain.delay(21).get(timeout=10) == 42
    assert group(tasks.plain.s(i) for i in range(3))().get(timeout=10) == [0, 2, 4]
    assert chord([tasks.plain.s(1), tasks.plain.s(2)])(tasks.plain.s()).get(timeout=10) == [
        2,
        4,
        2,
        4,
    ]


def test_follow_yields_each_snapshot_in_order_until_the_end():
    sent = tasks.wait_in_step.delay(0.3)
    seen = list(AsyncDetailedResult(sent.id).follow(timeout=15))
    seqs = [s["seq"] for s in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert seen[-1]["state"] == "SUCCESS"
    assert len(seen) >= 3


async def test_afollow_yields_until_the_end():
    sent = tasks.wait_in_step.delay(0.2)
    seen = [s async for s in AsyncDetailedResult(sent.id).afollow(timeout=15)]
    assert seen[-1]["state"] == "SUCCESS"
    assert [s["seq"] for s in seen] == sorted(s["seq"] for s in seen)


def test_follow_times_out():
    sent = tasks.wait_in_step.delay(3)
    with pytest.raises(TimeoutError):
        for _snapshot in AsyncDetailedResult(sent.id).follow(timeout=0.3):
            pass
    sent.get(timeout=10)


def test_chatty_task_is_coalesced_and_ends_exact(redis_client):
    sent = tasks.chatty.delay(10_000)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(tasks.chatty.backend.names.channel(sent.id))
    assert sent.get(timeout=60) == 10_000
    details = wait_for(
        lambda: (d := AsyncDetailedResult(sent.id).details())["state"] == "SUCCESS" and d
    )
    pubsub.close()
    duration = details["ended_at"] - details["started_at"]
    # sent + started + step start + step end + SUCCESS, and one update per 50 ms at most
    assert details["seq"] <= 5 + duration / 0.05 + 1, (details["seq"], duration)
    (step,) = details["steps"]
    assert step["message"] == "minion 10000"
    assert (step["done"], step["total"], step["state"]) == (10_000, 10_000, "done")


def test_eta_comes_from_recent_runs():
    first = tasks.steal_the_moon_declared.delay(Gru(pace=0.05), Moon())
    first.get(timeout=15)
    wait_for(lambda: AsyncDetailedResult(first.id).details()["state"] == "SUCCESS")
    second = tasks.steal_the_moon_declared.delay(Gru(pace=0.05), Moon())
    second.get(timeout=15)
    events = tasks.steal_the_moon_declared.backend.get_events(second.id)
    assert [e["type"] for e in events][:2] == ["sent", "started"]
    started = [s for s in AsyncDetailedResult(second.id).follow(timeout=15)][-1]
    assert all(s["expected"] is not None and s["expected"] >= 0 for s in started["steps"])


@pytest.mark.standalone_keys
def test_recent_index_lists_tasks_newest_first(redis_client):
    sent = tasks.plain.delay(2)  # plain tasks are not detail tasks: not listed
    detailed = tasks.steal_the_moon.delay(Gru(), Moon())
    detailed.get(timeout=10)
    sent.get(timeout=10)
    names = tasks.steal_the_moon.backend.names
    recent = [i.decode() for i in redis_client.zrevrange(names.recent(), 0, 50)]
    assert detailed.id in recent and sent.id not in recent
    assert 0 < redis_client.ttl(names.recent()) <= 86400
