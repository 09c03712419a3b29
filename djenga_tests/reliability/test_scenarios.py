"""The twelve reliability scenarios: a progress bar never lies and lets no one in.

Every scenario runs real processes (Redis, a Celery worker, daphne) that it kills,
restarts or floods, and is bounded in time. Scenario 9 (HTML payloads rendered inert)
drives a browser: it lives with the widget's tests in frontend/tests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from djenga.live.auth import make_token
from djenga_tests.minions import Gru, Moon

from .stack import ORIGIN, Worker, rss_kib, snapshots, watch

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

FINAL = ("SUCCESS", "FAILURE", "REVOKED", "LOST")


def is_final(details: dict) -> bool:
    return details["state"] in FINAL


def assert_ordered(frames: list[dict]) -> None:
    """Seqs strictly increase within an epoch (a new epoch may restart them)."""
    for before, after in itertools.pairwise(frames):
        if before["epoch"] == after["epoch"]:
            assert after["seq"] > before["seq"], (before["seq"], after["seq"])


async def test_1_client_away_for_3_seconds_gets_what_it_missed(stack):
    task_id = stack.send("gru.wait_in_step", 6)
    stack.wait_for(task_id, lambda d: d["state"] == "PROGRESS")
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    async with connect(url, origin=ORIGIN) as socket:
        held = [json.loads(await socket.recv()) for _ in range(5)]
    epoch, seq = held[-1]["epoch"], held[-1]["seq"]
    await asyncio.sleep(3)
    back = await watch(stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id),
                                    seq=seq, epoch=epoch))  # fmt: skip
    recovery, *rest = back["messages"]
    assert recovery["type"] == "recovery" and recovery["recovered"] is True
    missed = [event["seq"] for event in recovery["events"]]
    assert missed[0] == seq + 1 and missed == sorted(missed)
    assert set(range(seq + 1, missed[-1] + 1)) <= set(missed)  # nothing skipped
    final = snapshots(rest)[-1]
    assert final["state"] == "SUCCESS" and back["code"] == 1000
    assert final["seq"] == stack.details(task_id)["seq"]


async def through_redis_outage(stack, pace: float, outage) -> tuple[list[dict], dict]:
    """Run a 4-step task and a watcher through ``outage(stack)``; the frames seen and the
    stored final snapshot."""
    task_id = stack.send("gru.steal_the_moon_declared", Gru(pace=pace), Moon())
    stack.wait_for(task_id, lambda d: d["state"] == "PROGRESS")
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    watcher = asyncio.create_task(watch(url, timeout=60))
    await outage(stack)
    seen = await watcher
    final = await asyncio.to_thread(stack.wait_for, task_id, is_final, 30)
    assert final["state"] == "SUCCESS"
    frames = snapshots(seen["messages"])
    assert frames[-1]["state"] == "SUCCESS" and frames[-1]["seq"] == final["seq"]
    assert_ordered(frames)
    return frames, final


async def test_2_redis_restarted_mid_task(stack):
    async def restart(stack) -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(stack.redis.restart)  # no persistence: everything is gone

    frames, _final = await through_redis_outage(stack, 0.8, restart)
    assert len({f["epoch"] for f in frames}) == 2  # watchers resynced onto the new history


async def test_3_daphne_restarted_mid_task(stack):
    task_id = stack.send("gru.steal_the_moon_declared", Gru(pace=0.8), Moon())
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    held = []
    async with connect(url, origin=ORIGIN) as socket:
        try:
            while not held or held[-1]["state"] != "PROGRESS":
                held.append(json.loads(await socket.recv()))
            stack.web.kill()
            await socket.recv()
        except ConnectionClosed:
            pass
    await asyncio.to_thread(stack.web.start)
    back = await watch(stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id),
                                    seq=held[-1]["seq"], epoch=held[-1]["epoch"]))  # fmt: skip
    assert back["messages"][0]["recovered"] is True
    final = snapshots(back["messages"])[-1]
    assert final["state"] == "SUCCESS"
    assert final["seq"] == stack.details(task_id)["seq"]
    assert_ordered(held + snapshots(back["messages"]))


@pytest.mark.stack_settings(
    DJENGA_LEASE_TTL="3", DJENGA_LEASE_INTERVAL="1", DJENGA_VISIBILITY_TIMEOUT="5"
)
async def test_4_and_5_worker_killed_is_lost_then_redelivered_run_keeps_order(stack):
    task_id = stack.send("gru.redeliverable", 1.0)
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id), stay=1)
    frames: list[dict] = []

    async def collect() -> None:
        async with connect(url, origin=ORIGIN) as socket:
            async for text in socket:
                frames.append(json.loads(text))
                if frames[-1]["state"] == "SUCCESS":
                    return

    collector = asyncio.create_task(collect())
    await asyncio.to_thread(stack.wait_for, task_id, lambda d: d["current"] == 2, 20)
    stack.workers[0].kill()
    killed_at = time.monotonic()
    while not frames or frames[-1]["state"] != "LOST":
        assert time.monotonic() - killed_at < 3 + 5, "watchers did not see LOST in TTL + 5 s"
        await asyncio.sleep(0.05)
    lost = frames[-1]
    assert [s["state"] for s in lost["steps"]] == ["done", "failed", "pending"]
    # Scenario 5: a new worker gets the unacknowledged message again and runs it.
    stack.workers.append(Worker(stack.env, "worker-2").start())
    await asyncio.wait_for(collector, timeout=60)
    final = frames[-1]
    assert final["state"] == "SUCCESS" and final["attempt"] == lost["attempt"] + 1
    assert_ordered(frames)
    rank = {"pending": 0, "running": 1, "done": 2, "failed": 2, "skipped": 2}
    for before, after in itertools.pairwise(frames):
        if before["attempt"] == after["attempt"]:  # within one run, no step goes back
            for old, new in zip(before["steps"], after["steps"], strict=True):
                assert rank[new["state"]] >= rank[old["state"]], (old, new)


async def test_6_a_thousand_bad_frames_are_closed_and_cost_no_memory(stack):
    task_id = "flood-target"
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    # djenga's answers: 4400 for a bad frame, 4413 over DJENGA_MAX_CLIENT_FRAME (1,024).
    ours = [
        ("garbage", {4400}), (b"\x00\xff binary", {4400}), (json.dumps({"type": "no"}), {4400}),
        ("[" * 500, {4400}), ("x" * 2_000, {4413}),
    ]  # fmt: skip
    # Daphne's own limit (--websocket-max-message-size 65,536) fails the connection before
    # djenga sees the frame: 1009, or dropped without a close frame (1006).
    daphne_limit = [("y" * 70_000, {1009, 1006})]

    async def close_code(frame) -> int:
        async with connect(url, origin=ORIGIN, max_size=None) as socket:
            await socket.recv()  # the snapshot
            await socket.send(frame)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            received = closed.value.rcvd
            return received.code if received else 1006

    unread_closes = 0

    async def one(frame, expected) -> None:
        nonlocal unread_closes
        code = await close_code(frame)
        # 1006: the client read no close frame. Seen once in CI in ~3,000 connections and
        # not reproduced here, even with the cores saturated. The known way to get it:
        # daphne (autobahn) waits 1 s for the reply to its close frame, then resets the
        # connection (abort), and a reset can discard the unread close frame; 50 sockets
        # in one loop on a busy machine can be that late. It tells nothing of djenga, so
        # the frame is sent again on its own and must get its code then.
        for _retry in range(3):
            if code in expected or code != 1006:
                break
            unread_closes += 1
            code = await close_code(frame)
        assert code in expected, (frame[:20], code)

    async def flood(kinds, count: int) -> None:
        for start in range(0, count, 50):
            batch = range(start, min(start + 50, count))
            await asyncio.gather(*(one(*kinds[i % len(kinds)]) for i in batch))

    await flood(daphne_limit, 200)
    # Two thousands bring daphne to its working size (buffers and Python's arenas for
    # 50 sockets at once); a third must not add to it.
    await flood(ours, 2_000)
    before = rss_kib(stack.web.process.pid)
    await flood(ours, 1_000)
    grown = rss_kib(stack.web.process.pid) - before
    print(f"daphne RSS {before} KiB, grew {grown} KiB over 1,000 bad frames")
    print(f"{unread_closes} close frames reset unread by daphne's 1 s close timeout, sent again")
    assert grown < 5 * 1024, f"daphne grew {grown} KiB"
    ok = stack.send("gru.wait_in_step", 0.2)  # and it still serves everyone else
    served = await watch(stack.ws_url(f"/ws/djenga/tasks/{ok}/", token=make_token(ok)))
    assert snapshots(served["messages"])[-1]["state"] == "SUCCESS"


async def test_7_one_slow_watcher_does_not_slow_the_others(stack):
    task_id = "many-watchers"
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id), stay=1)
    sockets = []
    for start in range(0, 999, 100):
        sockets += await asyncio.gather(
            *(connect(url, origin=ORIGIN) for _ in range(min(100, 999 - start)))
        )
    slow = await connect(url, origin=ORIGIN, max_queue=1)  # stops reading after one frame
    for socket in sockets:
        await socket.recv()
    before = rss_kib(stack.web.process.pid)
    sent_at: dict[int, float] = {}
    latencies: list[float] = []

    async def reader(socket) -> None:
        while True:
            frame = json.loads(await socket.recv())
            if frame["seq"] in sent_at:
                latencies.append(time.monotonic() - sent_at[frame["seq"]])
            if frame["state"] == "SUCCESS":
                return

    readers = [asyncio.create_task(reader(s)) for s in sockets[:50]]  # sample of the 999
    backend = stack.app.backend
    from djenga.celery.detail import TaskDetail

    detail = TaskDetail(task_id, "slow-watcher", [(1, "Tick")])
    for i in range(300):
        detail.update_step(1, f"tick {i}")
        seq = await asyncio.to_thread(backend.publish_detail, detail)
        sent_at[seq] = time.monotonic()
        await asyncio.sleep(0.01)
    detail.finish("SUCCESS")
    sent_at[await asyncio.to_thread(backend.publish_detail, detail)] = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*readers), 60)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    grown = rss_kib(stack.web.process.pid) - before
    for socket in [*sockets, slow]:
        await socket.close()
    assert p99 < 1.0, f"p99 {p99 * 1000:.0f} ms with a stalled watcher"
    assert grown < 50 * 1024, f"daphne grew {grown} KiB"


async def test_8_strangers_are_refused(stack):
    from django.contrib.auth.models import User  # noqa: F401  (settings are configured)

    task_id = stack.send("gru.wait_in_step", 0.1)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id)),
                           origin="http://evil.example"):  # fmt: skip
            pass
    assert refused.value.response.status_code == 403

    class Someone:
        pk, is_authenticated = 42, True

    tokens = {
        "missing": None,
        "tampered": make_token(task_id)[:-3] + "abc",
        "other task": make_token("some-other-task"),
        "another user's": make_token(task_id, Someone()),
    }
    for name, token in tokens.items():
        seen = await watch(stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=token), timeout=10)
        assert seen["code"] == 4403, name
    console = await watch(stack.ws_url("/ws/djenga/console/"), timeout=10)
    assert console["code"] == 4403


async def test_8_expired_token_is_refused(stack, settings):
    import django.core.signing

    real = django.core.signing.time.time
    django.core.signing.time.time = lambda: real() - 2 * 24 * 3600
    try:
        token = make_token("expired-task")
    finally:
        django.core.signing.time.time = real
    seen = await watch(stack.ws_url("/ws/djenga/tasks/expired-task/", token=token), timeout=10)
    assert seen["code"] == 4403


async def test_10_burst_of_10000_updates(stack):
    warm = stack.send("gru.burst", 500)
    await watch(stack.ws_url(f"/ws/djenga/tasks/{warm}/", token=make_token(warm)))
    before = rss_kib(stack.web.process.pid)
    task_id = stack.send("gru.burst", 10_000)
    seen = await watch(stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id)))
    frames = snapshots(seen["messages"])
    final = frames[-1]
    assert final["state"] == "SUCCESS" and final["seq"] == stack.details(task_id)["seq"]
    (step,) = final["steps"]
    assert (step["message"], step["done"], step["total"]) == ("update 10000", 10_000, 10_000)
    assert_ordered(frames)
    grown = rss_kib(stack.web.process.pid) - before
    assert grown < 10 * 1024, f"daphne grew {grown} KiB"


async def test_11_redis_away_for_a_while(stack):
    async def away(stack) -> None:
        await asyncio.sleep(0.3)
        stack.redis.stop()
        await asyncio.sleep(2.0)  # the task goes on without Redis
        await asyncio.to_thread(stack.redis.start)

    frames, final = await through_redis_outage(stack, 1.5, away)
    after_outage = [f for f in frames if f["epoch"] == final["epoch"]]
    assert len(after_outage) >= 2  # progress resumed live once Redis came back


async def test_12_idle_for_30_seconds_then_an_update(stack):
    task_id = "idle-30"
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    async with connect(url, origin=ORIGIN) as socket:
        assert json.loads(await socket.recv())["state"] == "PENDING"
        await asyncio.sleep(30)
        from djenga.celery.detail import TaskDetail

        detail = TaskDetail(task_id, "idle", [(1, "Wake up")])
        detail.start_step(1)
        await asyncio.to_thread(stack.app.backend.publish_detail, detail)
        woke = json.loads(await asyncio.wait_for(socket.recv(), 5))
    assert woke["steps"][0]["state"] == "running"
