"""djenga's keys on a real three-master Valkey Cluster (DJENGA_CLUSTER_URL), Celery's results
and broker on the standalone server: one slot per Lua call, sharded pub/sub, 300 watched
tasks over every master with a console, and a slot migrated in the middle of a task.

Every server, the worker and daphne are real processes started here; figures are printed
(``pytest -s``)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from websockets.asyncio.client import connect

from djenga.celery.detail import TaskDetail
from djenga.celery.results import AsyncDetailedResult
from djenga.keys import ClusterNames, RedisNames
from djenga.live.auth import make_token
from djenga.store.cluster import cluster_store, sync_cluster_client
from djenga.testing.cluster import RedisCluster
from djenga_tests import tasks
from djenga_tests.reliability.test_watchers import Browser

from .fixtures import Daphne, point_djenga_at_cluster

pytestmark = [pytest.mark.backend, pytest.mark.cluster, pytest.mark.timeout(600)]

ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def cluster(redis_server) -> Iterator[RedisCluster]:
    """The session's cluster (DJENGA_TEST_TOPOLOGY=cluster), or one for this module."""
    if redis_server.cluster is not None:
        yield redis_server.cluster
        return
    started = RedisCluster().start()
    point_djenga_at_cluster(started.urls)
    try:
        yield started
    finally:
        point_djenga_at_cluster(None)
        started.close()


@pytest.fixture(scope="module")
def web(cluster, redis_server, web_data_dir) -> Iterator[Daphne]:
    """A daphne whose hub subscribes on the cluster (its environment names it)."""
    server = Daphne(redis_server.url, web_data_dir).start()
    yield server
    server.stop()


def ws_url(web: Daphne, path: str, **params: str) -> str:
    from urllib.parse import urlencode

    return f"ws://127.0.0.1:{web.port}{path}" + (f"?{urlencode(params)}" if params else "")


def master_of(cluster: RedisCluster, key: str) -> int:
    return cluster.owner(redis.cluster.key_slot(key.encode())).port


def test_one_task_is_one_slot_its_channel_is_sharded_and_standalone_keys_stay(cluster):
    store = cluster_store()
    names = store.names
    assert isinstance(names, ClusterNames) and names.sharded
    task_id = f"slot-{uuid.uuid4()}"
    keys = [
        names.task(task_id), names.log(task_id), names.lease(task_id), names.seen(task_id),
        names.recent_of(task_id), names.channel(task_id), names.firehose_of(task_id),
    ]  # fmt: skip
    assert len({redis.cluster.key_slot(key.encode()) for key in keys}) == 1
    assert ":15:" not in names.channel(task_id)  # no database number on a cluster
    owner = cluster.owner(redis.cluster.key_slot(keys[0].encode()))
    sharded, plain = owner.client().pubsub(), owner.client().pubsub()
    sharded.ssubscribe(names.channel(task_id))
    plain.subscribe(names.channel(task_id))
    detail = TaskDetail(task_id, "cluster.test", [(1, "One")])
    detail.start(worker="w@h")
    assert store.publish(task_id, detail.snapshot(), detail.drain_events(), expires=600) == 1
    message = None
    deadline = time.monotonic() + 10
    while message is None and time.monotonic() < deadline:
        message = sharded.get_sharded_message(ignore_subscribe_messages=True, timeout=1)
    assert message is not None and json.loads(message["data"])["task_id"] == task_id
    assert plain.get_message(ignore_subscribe_messages=True, timeout=0.2) is None  # SPUBLISH
    assert store.read(task_id)["state"] == "STARTED"
    assert task_id in [s["task_id"] for s in store.recent(1000)]
    for pubsub in (sharded, plain):
        pubsub.close()


def test_a_task_on_the_cluster_keeps_celerys_result_on_the_backend(
    cluster, celery_worker, redis_client
):
    sent = tasks.burst.delay(3)
    assert sent.get(timeout=60) == 3  # Celery's result: the standalone backend
    details = AsyncDetailedResult(sent.id).details()
    assert details["state"] == "SUCCESS" and details["steps"][0]["message"] == "update 3"
    client = sync_cluster_client()
    assert client.hget(cluster_store().names.task(sent.id), "snap") is not None
    # the backend's server (standalone, or the Sentinel master) has none of djenga's keys
    assert not redis_client.exists(RedisNames("djenga", 15).task(sent.id))
    assert redis_client.exists(f"celery-task-meta-{sent.id}")


async def test_300_watched_tasks_over_every_master_end_exact_and_the_console_sees_all(
    cluster, web, celery_worker
):
    names = cluster_store().names
    ids = [f"c300-{uuid.uuid4()}" for _ in range(300)]
    masters = {master_of(cluster, names.task(task_id)) for task_id in ids}
    assert masters == {node.port for node in cluster.nodes}  # spread over all three
    browser = Browser(web.url).log_in()
    console = await connect(
        ws_url(web, "/ws/djenga/console/"), origin=ORIGIN,
        additional_headers=browser.headers, open_timeout=30, max_size=None,
    )  # fmt: skip
    first = json.loads(await asyncio.wait_for(console.recv(), 30))
    assert first["reset"] is True
    joining = asyncio.Semaphore(50)

    async def watch(task_id: str, joined: asyncio.Event) -> list[dict]:
        async with joining:
            socket = await connect(
                ws_url(web, f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id)),
                origin=ORIGIN, open_timeout=60,
            )  # fmt: skip
            frames = [json.loads(await socket.recv())]  # the current snapshot: subscribed
        joined.set()
        async for text in socket:
            frames.append(json.loads(text))
        return frames

    joins = [asyncio.Event() for _ in ids]
    watchers = [asyncio.create_task(watch(t, e)) for t, e in zip(ids, joins, strict=True)]
    started = time.monotonic()
    async with asyncio.timeout(300):
        await asyncio.gather(*(event.wait() for event in joins))
        joined = time.monotonic() - started
        for task_id in ids:
            tasks.burst.apply_async((4,), task_id=task_id)
        seen: dict[str, dict] = {}

        async def read_console() -> None:
            while any(seen.get(t, {}).get("state") != "SUCCESS" for t in ids):
                batch = json.loads(await console.recv())
                for snapshot in batch["tasks"]:
                    seen[snapshot["task_id"]] = snapshot

        results, _ = await asyncio.gather(asyncio.gather(*watchers), read_console())
    took = time.monotonic() - started
    await console.close()
    finals = await asyncio.to_thread(
        lambda: [AsyncDetailedResult(t).detail_backend.store.read(t) for t in ids]
    )
    for task_id, frames, final in zip(ids, results, finals, strict=True):
        last = frames[-1]
        assert final["state"] == "SUCCESS", final
        assert (last["seq"], last["epoch"], last["state"], last["steps"]) == (
            final["seq"], final["epoch"], "SUCCESS", final["steps"],
        ), task_id  # fmt: skip
        assert seen[task_id]["seq"] == final["seq"]
    print(f"\n300 watched tasks on a 3-master cluster: joined in {joined:.1f} s, all final in "
          f"{took:.1f} s")  # fmt: skip


async def test_a_slot_migrated_in_the_middle_of_a_task_resyncs_its_watcher(
    cluster, web, celery_worker
):
    names = cluster_store().names
    task_id = f"move-{uuid.uuid4()}"
    slot = redis.cluster.key_slot(names.task(task_id).encode())
    source = cluster.owner(slot)
    target = next(node for node in cluster.nodes if node is not source)
    socket = await connect(
        ws_url(web, f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id)),
        origin=ORIGIN, open_timeout=30,
    )  # fmt: skip
    frames = [json.loads(await socket.recv())]
    tasks.wait_in_step.apply_async((6.0,), task_id=task_id)  # updates every 0.05 s
    async with asyncio.timeout(120):
        while frames[-1]["state"] != "PROGRESS" or frames[-1]["seq"] < 5:
            frames.append(json.loads(await socket.recv()))
        moved = await asyncio.to_thread(cluster.migrate_slot, slot, target)
        moved_at, seq_at_move = time.monotonic(), frames[-1]["seq"]
        assert moved >= 3 and cluster.owner(slot) is target
        during = await asyncio.to_thread(AsyncDetailedResult(task_id).details)
        assert during["state"] == "PROGRESS"  # the slot moved in the middle of the task
        resynced_in = None
        async for text in socket:
            frames.append(json.loads(text))
            if resynced_in is None and frames[-1]["seq"] > seq_at_move:
                resynced_in = time.monotonic() - moved_at
    final = await asyncio.to_thread(AsyncDetailedResult(task_id).details)
    assert final["state"] == "SUCCESS"
    last = frames[-1]
    assert (last["seq"], last["epoch"], last["state"], last["steps"]) == (
        final["seq"], final["epoch"], final["state"], final["steps"],
    )  # fmt: skip
    seqs = [frame["seq"] for frame in frames]
    assert seqs == sorted(seqs)  # never backwards
    log = web.env["DJENGA_DATA_DIR"] + "/daphne.log"
    with open(log, errors="replace") as handle:
        assert "resubscribing" in handle.read()  # the hub followed the slot
    print(f"\nslot {slot} moved with {moved} keys: the watcher had a newer snapshot "
          f"{resynced_in:.3f} s later; {len(frames)} frames, final seq {final['seq']}")  # fmt: skip


def test_a_cluster_that_went_away_is_a_warning_naming_the_setting(
    cluster, celery_app, settings, caplog
):
    from djenga.testing.redis_server import free_port

    backend = celery_app.backend
    detail = TaskDetail(f"gone-{uuid.uuid4()}", "t", [(1, "a")])
    detail.start()
    backend._last_warning = 0.0  # the warning is rate-limited per backend
    settings.DJENGA_CLUSTER_URL = f"redis://127.0.0.1:{free_port()}"
    with caplog.at_level("WARNING", logger="djenga.celery.backends"):
        assert backend.publish_detail(detail) is None  # the task carries on
    (record,) = [r for r in caplog.records if "could not record progress" in r.getMessage()]
    assert "DJENGA_CLUSTER_URL" in record.getMessage()
    assert "127.0.0.1" in record.getMessage()


async def test_a_watcher_joining_after_an_unseen_slot_move_follows_moved(
    cluster, web, celery_worker
):
    names = cluster_store().names
    warm = f"warm-{uuid.uuid4()}"  # the hub reads the slot map now
    socket = await connect(
        ws_url(web, f"/ws/djenga/tasks/{warm}/", token=make_token(warm)), origin=ORIGIN
    )
    await socket.recv()
    await socket.close()
    task_id = f"stale-{uuid.uuid4()}"
    slot = redis.cluster.key_slot(names.task(task_id).encode())
    source = cluster.owner(slot)
    target = next(node for node in cluster.nodes if node is not source)
    await asyncio.to_thread(cluster.migrate_slot, slot, target)  # the hub does not know
    joined = time.monotonic()
    socket = await connect(
        ws_url(web, f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id)), origin=ORIGIN
    )
    frames = [json.loads(await socket.recv())]
    waited = time.monotonic() - joined
    tasks.burst.apply_async((5,), task_id=task_id)
    async with asyncio.timeout(120):
        async for text in socket:
            frames.append(json.loads(text))
    final = await asyncio.to_thread(AsyncDetailedResult(task_id).details)
    assert final["state"] == "SUCCESS"
    assert (frames[-1]["seq"], frames[-1]["steps"]) == (final["seq"], final["steps"])
    with open(web.env["DJENGA_DATA_DIR"] + "/daphne.log", errors="replace") as handle:
        assert "MovedError" in handle.read()  # the stale owner redirected the SSUBSCRIBE
    print(f"\njoined through MOVED in {waited:.3f} s; final seq {final['seq']}")


async def test_follow_and_afollow_hear_the_shard_channel(cluster, celery_worker):
    sent = tasks.wait_in_step.delay(1.0)
    result = AsyncDetailedResult(sent.id)
    seen_async = [snapshot async for snapshot in result.afollow(timeout=60)]
    seen_sync = await asyncio.to_thread(lambda: list(AsyncDetailedResult(sent.id).follow(60)))
    assert seen_async[-1]["state"] == seen_sync[-1]["state"] == "SUCCESS"
    assert seen_async[-1]["seq"] == seen_sync[-1]["seq"]
    # afollow heard updates as they came (pub/sub), not only its 5 s re-reads
    assert len(seen_async) > 3


async def test_a_master_that_goes_silent_mid_task_the_watcher_still_ends_exact(
    cluster, web, celery_worker
):
    """SIGSTOP of the master holding the task's slot for 6 s (a partition: no reset, no
    reply): the worker's writes time out and are skipped (the task carries on), the relay's
    probe drops the silent connection, and after SIGCONT the watcher resyncs and ends at
    the exact final snapshot."""
    import signal

    names = cluster_store().names
    task_id = f"frozen-{uuid.uuid4()}"
    node = cluster.owner(redis.cluster.key_slot(names.task(task_id).encode()))
    socket = await connect(
        ws_url(web, f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id)),
        origin=ORIGIN, open_timeout=30,
    )  # fmt: skip
    frames = [json.loads(await socket.recv())]
    sent = tasks.wait_in_step.apply_async((8.0,), task_id=task_id)
    async with asyncio.timeout(180):
        while frames[-1]["state"] != "PROGRESS":
            frames.append(json.loads(await socket.recv()))
        node.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(6)
        finally:
            node.process.send_signal(signal.SIGCONT)
        thawed = time.monotonic()
        async for text in socket:
            frames.append(json.loads(text))
        await asyncio.to_thread(sent.get, timeout=120)
    final = await asyncio.to_thread(AsyncDetailedResult(task_id).details)
    assert final["state"] == "SUCCESS"
    assert (frames[-1]["seq"], frames[-1]["steps"]) == (final["seq"], final["steps"])
    print(f"\nmaster frozen 6 s: the watcher ended exact {time.monotonic() - thawed:.1f} s "
          f"after SIGCONT (final seq {final['seq']})")  # fmt: skip


@pytest.mark.parametrize("how", ["follow", "afollow"])
async def test_follow_hears_on_after_the_slot_moves(cluster, celery_worker, how):
    """The shard listener follows the slot: the node's ``sunsubscribe`` makes it re-read
    the slot map and subscribe on the new owner, so updates keep arriving as they come
    (before, nothing more arrived but the re-read every 5 s)."""
    names = cluster_store().names
    task_id = f"follow-move-{uuid.uuid4()}"
    slot = redis.cluster.key_slot(names.task(task_id).encode())
    source = cluster.owner(slot)
    target = next(node for node in cluster.nodes if node is not source)
    tasks.wait_in_step.apply_async((4.0,), task_id=task_id)  # an update every 0.05 s
    arrivals: list[tuple[float, dict]] = []
    moved_at: list[float] = []

    def seen(snapshot: dict) -> None:
        arrivals.append((time.monotonic(), snapshot))
        if not moved_at and snapshot["state"] == "PROGRESS" and snapshot["seq"] >= 5:
            cluster.migrate_slot(slot, target)
            moved_at.append(time.monotonic())

    result = AsyncDetailedResult(task_id)
    if how == "follow":
        await asyncio.to_thread(lambda: [seen(s) for s in result.follow(timeout=60)])
    else:
        async for snapshot in result.afollow(timeout=60):
            await asyncio.to_thread(seen, snapshot)
    assert cluster.owner(slot) is target and arrivals[-1][1]["state"] == "SUCCESS"
    after = [at for at, _ in arrivals if at > moved_at[0]]
    gaps = [b - a for a, b in zip([moved_at[0], *after], after, strict=False)]
    print(f"\n{how}: {len(after)} snapshots after the slot moved, the longest wait "
          f"{max(gaps):.2f} s")  # fmt: skip
    assert len(after) >= 10 and max(gaps) < 2.5, (len(after), gaps)
