"""A whole djenga deployment in processes of its own: Redis, a Celery worker, daphne.

Each part can be killed, stopped and started again, always by the pid it was started
with, so failure scenarios act on real processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from djenga.celery.app import DjengaCelery
from djenga.celery.results import AsyncDetailedResult
from djenga.live.auth import make_token
from djenga.testing import RedisServer
from djenga.testing.cluster import RedisCluster
from djenga.testing.processes import ManagedProcess
from djenga.testing.sentinel import SentinelSetup
from djenga_tests.tests.fixtures import ROOT, Daphne

ORIGIN = "http://127.0.0.1:8000"


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Worker(ManagedProcess):
    """``celery -A djenga_tests worker`` in a process of its own."""

    stop_timeout = 20.0

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.env, self.name = env, name
        self.log = Path(env["DJENGA_DATA_DIR"], f"{name}.log")

    def start(self) -> Worker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "djenga_tests", "worker", "-l", "INFO",
                 "--pool", "threads", "--concurrency", "4", "-n", f"{self.name}@%h",
                 "--without-gossip", "--without-mingle"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self


class Stack:
    """Redis + worker + daphne for one scenario; ``app`` sends tasks to it."""

    def __init__(
        self, data_dir: str, *, sentinel: bool = False, cluster: bool = False, **settings: str
    ) -> None:
        """``sentinel``: Redis is a master, a replica and three sentinels; the worker and
        daphne reach it through them (``sentineld://`` and ``sentinel://`` for the broker).
        ``cluster``: djenga's keys are on a Cluster of three masters with a replica each,
        which takes over 1 s after its master stops answering (``DJENGA_CLUSTER_URL``);
        Celery's results and broker stay on a standalone server."""
        self.sentinel = SentinelSetup().start() if sentinel else None
        self.cluster = RedisCluster(replicas=1, node_timeout_ms=1000).start() if cluster else None
        if self.cluster is not None:
            settings = dict(settings, DJENGA_CLUSTER_URL=",".join(self.cluster.urls))
        self.redis = self.sentinel.master if self.sentinel else RedisServer().start()
        self.url = self.redis.url(15)
        backend, broker = "redisd://" + self.url.split("://", 1)[1], self.url
        options: dict[str, str] = {}
        if self.sentinel is not None:
            backend, broker = self.sentinel.url(15, "sentineld"), self.sentinel.url(15)
            options = self.sentinel.transport_options
            settings = dict(
                settings, SENTINEL_MASTER=self.sentinel.master_name,
                SENTINEL_BACKEND_URL=backend, SENTINEL_BROKER_URL=broker,
            )  # fmt: skip
        self.env = dict(
            os.environ, REDIS_URL=self.url, DJENGA_DATA_DIR=data_dir, PYTHONUNBUFFERED="1",
            **settings,
        )  # fmt: skip
        for command in (["migrate", "--noinput", "-v", "0"], ["demo_user"]):
            subprocess.run(
                [sys.executable, "manage.py", *command], cwd=ROOT, env=self.env, check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        self.workers = [Worker(self.env, "worker-1").start()]
        self.web = Daphne(self.url, data_dir)
        self.web.env.update(settings)
        self.web.start()
        self.app = DjengaCelery("reliability", broker=broker, backend=backend, set_as_current=False)
        self.app.conf.broker_transport_options = {
            "visibility_timeout": float(settings.get("DJENGA_VISIBILITY_TIMEOUT", 3600)),
            **options,
        }
        if options:
            self.app.conf.result_backend_transport_options = options
            self.app.conf.redis_socket_timeout = 5.0
        self.wait_for_worker()

    def wait_for_worker(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.app.control.ping(timeout=0.5):
                return
        raise TimeoutError("the worker did not answer")

    def send(self, name: str, *args, **options) -> str:
        return self.app.send_task(name, args=args, **options).id

    def details(self, task_id: str) -> dict:
        return AsyncDetailedResult(task_id, app=self.app).details()

    def wait_for(self, task_id: str, predicate, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            details = self.details(task_id)
            if predicate(details):
                return details
            time.sleep(0.05)
        raise AssertionError(f"{task_id}: condition not met; last {self.details(task_id)}")

    def ws_url(self, path: str, **params) -> str:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return f"ws://127.0.0.1:{self.web.port}{path}" + (f"?{query}" if query else "")

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.web.stop()
        if self.cluster is not None:
            self.cluster.close()
        if self.sentinel is not None:
            self.sentinel.close()
        else:
            self.redis.close()


async def watch(url: str, *, timeout: float = 60, **connect) -> dict:
    """Connect, collect every message until the server closes; returns messages and code."""
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import ConnectionClosed

    messages: list[dict] = []
    async with ws_connect(url, origin=ORIGIN, open_timeout=10, **connect) as socket:
        try:
            async with asyncio.timeout(timeout):
                async for text in socket:
                    messages.append(json.loads(text))
        except ConnectionClosed:
            pass
        code = socket.close_code
    return {"messages": messages, "code": code}


def snapshots(messages: list[dict]) -> list[dict]:
    """The task snapshots among ``messages`` (every frame has a type; a missing one is a
    snapshot, docs/protocol.md)."""
    return [m for m in messages if m.get("type", "snapshot") == "snapshot"]


# -- failovers (test_sentinel.py, test_cluster_failover.py) ------------------------------

#: How long after the new master is elected a watcher may take to reach the final state.
RECOVERY_BOUND = 10.0

FAILOVER_SCENARIOS = {
    # task, its args, seconds from PROGRESS to the failover
    "mid-task": ("gru.wait_in_step", (8,), 1.5),
    # the task holds its step 3 s, then ends: its final writes meet the failover
    "before the final write": ("gru.say", ("Fly to the moon", "holding", 3.0), 1.5),
}


async def timed_watch(url: str, timeout: float = 90) -> tuple[list[tuple[float, dict]], int]:
    """Every message with the monotonic time it arrived, until the server closes."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    received: list[tuple[float, dict]] = []
    async with connect(url, origin=ORIGIN, open_timeout=10) as socket:
        try:
            async with asyncio.timeout(timeout):
                async for text in socket:
                    received.append((time.monotonic(), json.loads(text)))
        except ConnectionClosed:
            pass
        return received, socket.close_code or 0


def exact(frame: dict, details: dict) -> bool:
    """The watcher's last frame is the stored final snapshot (as a customer sees it)."""
    keys = ("state", "seq", "epoch", "percent", "finished")
    same = all(frame.get(key) == details.get(key) for key in keys if key in frame)
    steps = [(s["key"], s["state"], s.get("message")) for s in frame["steps"]]
    stored = [(s["key"], s["state"], s.get("message")) for s in details["steps"]]
    return same and steps == stored


def ended_at(details: dict) -> float:
    """The task's end, on this process's monotonic clock."""
    return details["ended_at"] - time.time() + time.monotonic()


@dataclass
class FailoverRun:
    """What :func:`run_through_failover` saw, on this process's monotonic clock."""

    started: float  # the failover began
    elected: float  # the new master took over (the act returned)
    final_at: float  # the watcher had the final snapshot
    details: dict
    frames: list[dict]
    outcome: Any  # what the act returned

    def within_bound(self) -> bool:
        """The exact final snapshot came within RECOVERY_BOUND of the takeover (or of the
        task's end, if it ended later)."""
        late = max(0.0, ended_at(self.details) - self.elected)
        return self.final_at - self.elected <= RECOVERY_BOUND + late


async def run_through_failover(
    stack: Stack, scenario: str, act: Callable[[str], Any]
) -> FailoverRun:
    """Send ``FAILOVER_SCENARIOS[scenario]``'s task, watch it, run ``act(task_id)`` (in a
    thread) while it runs, and check what every failover test checks: the task and
    Celery's result succeeded, the watcher ended at the exact final snapshot with 1000,
    and its seqs only increased."""
    name, args, after = FAILOVER_SCENARIOS[scenario]
    task_id = stack.send(name, *args)
    stack.wait_for(task_id, lambda d: d["state"] == "PROGRESS")
    url = stack.ws_url(f"/ws/djenga/tasks/{task_id}/", token=make_token(task_id))
    watcher = asyncio.create_task(timed_watch(url))
    await asyncio.sleep(after)
    started = time.monotonic()
    outcome = await asyncio.to_thread(act, task_id)
    elected = time.monotonic()
    received, code = await watcher
    details = stack.details(task_id)
    assert details["state"] == "SUCCESS", details
    assert stack.app.AsyncResult(task_id).state == "SUCCESS"  # Celery's own result too
    frames = snapshots([message for _, message in received])
    final_at = next(t for t, m in received if snapshots([m]) and m["state"] == "SUCCESS")
    assert exact(frames[-1], details), (frames[-1], details)
    assert code == 1000
    seqs = [frame["seq"] for frame in frames if frame.get("epoch") == details["epoch"]]
    assert seqs == sorted(set(seqs)), seqs  # a new master's history never reuses a seq
    return FailoverRun(started, elected, final_at, details, frames, outcome)
