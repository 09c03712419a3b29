"""A Redis Cluster failover: three masters with a replica each, all real processes, and
djenga's keys on them (Celery's results and broker on a standalone server). The master
holding the task's slot is SIGKILLed in the middle of a task, or just before its final
write; its replica takes over once the others mark it failed (1 s node timeout).

The worker's writes to the dead master fail and are skipped (the task carries on, its
events kept for the next write), the relay's sharded subscription moves to the new
master, and the watcher must end at the exact final snapshot, as behind Sentinel
(test_sentinel.py)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import redis

from djenga.live.auth import make_token
from djenga.store.cluster import cluster_store
from djenga_tests.tests.fixtures import point_djenga_at_cluster

from .stack import (
    FAILOVER_SCENARIOS,
    RECOVERY_BOUND,
    Stack,
    ended_at,
    exact,
    run_through_failover,
    snapshots,
    timed_watch,
)

pytestmark = [pytest.mark.reliability, pytest.mark.cluster, pytest.mark.timeout(180)]


@pytest.fixture
def cluster_stack(tmp_path):
    before = os.environ.get("DJENGA_CLUSTER_URL")
    built = Stack(str(tmp_path), cluster=True)
    point_djenga_at_cluster(built.cluster.urls)  # this process reads the details there too
    try:
        yield built
    finally:
        point_djenga_at_cluster(before.split(",") if before else None)
        built.close()


@pytest.mark.parametrize("when", list(FAILOVER_SCENARIOS))
async def test_a_killed_master_fails_over_to_its_replica_and_loses_nothing(cluster_stack, when):
    cluster = cluster_stack.cluster
    killed: list[int] = []

    def kill_the_tasks_master(task_id: str) -> int:
        master = cluster.owner(redis.cluster.key_slot(cluster_store().names.task(task_id).encode()))
        killed.append(master.port)
        return cluster.kill_and_fail_over(master).port

    run = await run_through_failover(cluster_stack, when, kill_the_tasks_master)
    print(
        f"\n{when}: master :{killed[0]} killed, its replica :{run.outcome} held the slot "
        f"{run.elected - run.started:.2f} s later; the watcher had the exact final snapshot "
        f"{run.final_at - run.started:.2f} s after the kill "
        f"({run.final_at - run.elected:+.2f} s from the takeover; the task ended "
        f"{ended_at(run.details) - run.elected:+.2f} s from it)"
    )
    assert run.within_bound()


async def test_a_replica_that_was_behind_takes_over_and_the_seq_goes_on(cluster_stack):
    """The replica is stopped (SIGSTOP) and cut off while the master takes 1.5 s of
    updates, then the master is killed and the replica resumed: it takes over without
    those writes, so the stored seq is behind what the watcher was shown. The worker's
    next write goes above the highest seq it was given (publish.lua's floor), so the
    watcher never sees a seq twice or goes back, and it ends at the exact final snapshot."""
    import signal

    stack = cluster_stack
    names = cluster_store().names
    task_id = stack.send("gru.export_rows", 100, 10.0)  # an update every 0.1 s
    stack.wait_for(task_id, lambda d: d["state"] == "PROGRESS")
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    watcher = asyncio.create_task(timed_watch(url))
    await asyncio.sleep(1.0)
    master = stack.cluster.owner(redis.cluster.key_slot(names.task(task_id).encode()))
    (replica,) = stack.cluster.replicas_of[master]
    replica.process.send_signal(signal.SIGSTOP)
    # The stopped replica's kernel would still take the replication stream into its socket
    # buffer (and the replica would read it all on SIGCONT): the master drops the link, so
    # what it takes from now on never reaches the replica.
    with master.client() as client:
        client.execute_command("CLIENT", "KILL", "TYPE", "replica")
    held: list[int] = []

    def read_the_replica() -> None:  # resumed, not yet promoted: what it kept of the task
        with replica.client() as client:
            client.execute_command("READONLY")
            held.append(int(client.hget(names.task(task_id), "seq") or 0))

    try:
        await asyncio.sleep(1.5)
        shown = stack.details(task_id)["seq"]  # on the master: the replica has not got it
    finally:
        started = time.monotonic()
        winner = await asyncio.to_thread(
            stack.cluster.kill_and_fail_over, master, resume=[replica], then=read_the_replica
        )
    elected = time.monotonic()
    received, code = await watcher
    details = stack.details(task_id)
    assert winner is replica and details["state"] == "SUCCESS", details
    assert held[0] < shown, (held, shown)  # the replica really was behind
    frames = snapshots([message for _, message in received])
    assert exact(frames[-1], details), (frames[-1], details)
    seqs = [frame["seq"] for frame in frames if frame.get("epoch") == details["epoch"]]
    assert seqs == sorted(set(seqs)), seqs
    assert code == 1000
    # The new master's history goes on above every seq the old one gave out: none of the
    # seqs the replica missed is used again (publish.lua's floor), so a watcher that held
    # one and resumes from it is not told it has what it never saw.
    logged = [event["seq"] for event in cluster_store().events(task_id, held[0])]
    assert logged and not [seq for seq in logged if seq <= shown], (held, shown, logged[:20])
    print(
        f"\nreplica behind: the master was at seq {shown} or later when it was killed, its "
        f"replica (cut off 1.5 s before) at seq {held[0]}; the replica took over "
        f"{elected - started:.2f} s after the kill; the watcher saw {len(frames)} "
        f"snapshots, seqs increasing, and ended exact at seq {details['seq']}"
    )


async def test_follow_and_afollow_ride_through_a_failover(cluster_stack):
    """A developer's ``follow()`` (and ``afollow()``) of a task whose master is killed: the
    re-reads fail while no node holds the slot, and they ask again (they used to raise
    ConnectionError); once the replica takes over, the shard listener subscribes there
    and the snapshots flow again, to the exact final one."""
    from djenga.celery.results import AsyncDetailedResult

    stack = cluster_stack
    task_id = stack.send("gru.wait_in_step", 6)
    stack.wait_for(task_id, lambda d: d["state"] == "PROGRESS")
    result = AsyncDetailedResult(task_id, app=stack.app)
    seen: dict[str, list[tuple[float, dict]]] = {"follow": [], "afollow": []}

    def follow() -> None:
        for snapshot in result.follow(timeout=60):
            seen["follow"].append((time.monotonic(), snapshot))

    async def afollow() -> None:
        async for snapshot in result.afollow(timeout=60):
            seen["afollow"].append((time.monotonic(), snapshot))

    followers = asyncio.gather(asyncio.to_thread(follow), afollow())
    await asyncio.sleep(1.0)
    slot = redis.cluster.key_slot(cluster_store().names.task(task_id).encode())
    master = stack.cluster.owner(slot)
    killed = time.monotonic()
    await asyncio.to_thread(stack.cluster.kill_and_fail_over, master)
    elected = time.monotonic()
    await followers
    details = stack.details(task_id)
    assert details["state"] == "SUCCESS"
    for how, arrivals in seen.items():
        after = [at for at, _ in arrivals if at > killed]
        last = arrivals[-1][1]
        assert (last["seq"], last["steps"]) == (details["seq"], details["steps"]), how
        assert len(after) >= 10, (how, len(after))  # updates as they came, not 5 s re-reads
        print(
            f"\n{how}: first snapshot {after[0] - elected:+.2f} s from the takeover "
            f"({elected - killed:.2f} s after the kill), {len(after)} after the kill"
        )
        assert after[0] - elected <= RECOVERY_BOUND
