"""Behind Sentinel: a master, a replica and three sentinels, all real processes, with the
worker on ``sentineld://`` (broker on ``sentinel://``) and daphne following the master.

A failover in the middle of a task and one just before its final write, each by
``SENTINEL FAILOVER`` and by SIGKILL of the master; and a master that goes silent
(SIGSTOP: its connections stay open) to show the hub's pub/sub probe. In each, a
websocket client watches: it must end at the exact final snapshot, and the task and
``AsyncDetailedResult(id).details()`` must be final and exact.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from djenga.live.auth import make_token

from .stack import (
    FAILOVER_SCENARIOS,
    Stack,
    ended_at,
    exact,
    run_through_failover,
    snapshots,
    timed_watch,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]


@pytest.fixture
def sentinel_stack(tmp_path):
    built = Stack(str(tmp_path), sentinel=True)
    yield built
    built.close()


@pytest.mark.parametrize("how", ["SENTINEL FAILOVER", "SIGKILL"])
@pytest.mark.parametrize("when", list(FAILOVER_SCENARIOS))
async def test_a_failover_loses_nothing(sentinel_stack, when, how):
    sentinel = sentinel_stack.sentinel
    act = sentinel.failover if how == "SENTINEL FAILOVER" else sentinel.kill_master
    run = await run_through_failover(sentinel_stack, when, lambda _task_id: act())
    print(
        f"\n{when}, {how}: the sentinels agreed on a new master "
        f"{run.elected - run.started:.2f} s after the failover began; the watcher had the "
        f"exact final snapshot {run.final_at - run.started:.2f} s after it began "
        f"({run.final_at - run.elected:+.2f} s from the election; the task ended "
        f"{ended_at(run.details) - run.elected:+.2f} s from it)"
    )
    assert run.within_bound()


async def test_a_silent_master_is_found_by_the_probe(sentinel_stack):
    """SIGSTOP keeps the master's sockets open: nothing fails, nothing arrives. The
    hub's probe finds its pub/sub connection dead, and it resubscribes on the new master."""
    stack = sentinel_stack
    task_id = stack.send("gru.wait_in_step", 12)
    stack.wait_for(task_id, lambda d: d["state"] == "PROGRESS")
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    watcher = asyncio.create_task(timed_watch(url))
    await asyncio.sleep(1.5)
    frozen_at, frozen_wall = time.monotonic(), time.time()
    old = stack.sentinel.freeze_master()
    try:
        await asyncio.to_thread(stack.sentinel.wait_for_new_master, old)
        elected = time.monotonic()
        received, code = await watcher
    finally:
        stack.sentinel.thaw()
    details = stack.details(task_id)
    assert details["state"] == "SUCCESS", (code, received[-3:], details)
    frames = snapshots([message for _, message in received])
    assert exact(frames[-1], details) and code == 1000
    after = [t for t, m in received if t > elected and snapshots([m])]
    log = Path(stack.env["DJENGA_DATA_DIR"], "daphne.log").read_text()
    found = re.search(r"^(\S+ \S+) WARNING .*no answer to PING on the pub/sub", log, re.M)
    assert found, log[-2000:]
    noticed = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    print(
        f"\nSIGSTOP: the probe dropped the silent subscription "
        f"{noticed.timestamp() - frozen_wall:.2f} s after the freeze; the sentinels elected "
        f"a new master {elected - frozen_at:.2f} s after it; first frame after the "
        f"election {after[0] - elected:.2f} s later"
    )
