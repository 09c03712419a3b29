"""Cost of one progress update inside a task: djenga's update_step on redisd:// against Celery's
own update_state on redis:// and a bare PING, all on one real Redis in the same run."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import redis
from celery import Celery

from djenga.celery.app import DjengaCelery
from djenga.celery.detail import TaskDetail
from djenga.celery.tasks import DetailTask
from djenga.testing import RedisServer
from djenga.wire import encode

ROUNDS = 5
OPS = 2_000
DECLARED = [(n, f"Step number {n}") for n in range(1, 11)]


def timed(op: Callable[[int], object], ops: int = OPS) -> float:
    """Seconds per call of ``op(i)`` over ``ops`` calls."""
    gc.disable()
    try:
        start = time.perf_counter()
        for i in range(ops):
            op(i)
        return (time.perf_counter() - start) / ops
    finally:
        gc.enable()


def build_cases(server: RedisServer) -> dict[str, Callable[[int], object]]:
    """Each case: a callable doing one operation (its argument is the iteration number)."""
    client = redis.Redis.from_url(server.url(15))

    plain = Celery("plain", broker="memory://", backend=server.url(14), set_as_current=False)
    djenga = DjengaCelery(
        "bench", broker="memory://", backend=server.url(15, "redisd"), set_as_current=False
    )

    @plain.task(bind=True, name="bench.plain")
    def plain_task(self):  # never run: only its request and backend are used
        pass

    # min_update_interval=0: no coalescing, every update_step is published (the default).
    options = {"bind": True, "base": DetailTask, "min_update_interval": 0}

    @djenga.task(name="bench.detail", **options)
    def detail_task(self):
        pass

    @djenga.task(name="bench.declared", steps=DECLARED, **options)
    def declared_task(self):
        pass

    @djenga.task(name="bench.pairs", **options)
    def pairs_task(self):
        pass

    plain_task.push_request(id="bench-plain", retries=0)
    detail_task.push_request(id="bench-1", retries=0)
    detail_task.start_step(1, "Fly to the moon")  # builds this run's TaskDetail
    declared_task.push_request(id="bench-10", retries=0)
    for key, _ in DECLARED[:-1]:
        declared_task.start_step(key)  # 9 done steps, the 10th running: a fuller snapshot
    declared_task.start_step(DECLARED[-1][0])

    def update_state(i: int) -> None:
        plain_task.update_state(
            state="PROGRESS",
            meta={"current": i, "total": OPS, "percent": 50.0, "description": f"flying {i}"},
        )

    pairs = {"n": 0}

    def start_end_pair(i: int) -> None:
        # A fresh run every 10 steps, so the snapshot stays the size of a real task's.
        if i % 10 == 0:
            pairs["n"] += 1
            pairs_task.pop_request()
            pairs_task.push_request(id=f"bench-pair-{pairs['n']}", retries=0)
        pairs_task.start_step(i, "Fly to the moon")
        pairs_task.end_step()

    # The Python half of update_step alone (no Redis): model change, snapshot, JSON,
    # as RedisDetailBackend.publish_detail does it.
    offline = TaskDetail("bench-offline", "bench.detail")
    offline.start_step(1, "Fly to the moon")

    def python_only(i: int) -> None:
        with offline.lock:
            offline.update_step(1, f"flying {i}")
            encode(offline.snapshot())
            events = offline.drain_events()
        for event in events:
            encode(event)

    return {
        "PING (redis-py)": lambda i: client.ping(),
        "update_state (redis://)": update_state,
        "update_step (redisd://, 1 step)": lambda i: detail_task.update_step(1, f"flying {i}"),
        "update_step (redisd://, 10 steps)": lambda i: declared_task.update_step(10, f"fly {i}"),
        "start_step+end_step pair": start_end_pair,
        "  djenga Python part only": python_only,
    }


def main() -> None:
    server = RedisServer().start()
    try:
        print(f"Redis: {server.binary} on 127.0.0.1:{server.port}")
        cases = build_cases(server)
        for op in cases.values():  # warm up: connections, script load, caches
            timed(op, 200)
        rounds: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(ROUNDS):  # interleave the cases so drift hits all of them alike
            for name, op in cases.items():
                rounds[name].append(timed(op))
        report({name: statistics.median(values) for name, values in rounds.items()})
    finally:
        server.close()


def report(median: dict[str, float]) -> None:
    ping = median["PING (redis-py)"]
    state = median["update_state (redis://)"]
    print(f"\n{ROUNDS} rounds x {OPS:,} ops, median round per case\n")
    header = f"{'case':36} {'µs/op':>8} {'ops/s':>9} {'x PING':>7} {'x update_state':>15}"
    print(header)
    print("-" * len(header))
    for name, seconds in median.items():
        print(
            f"{name:36} {seconds * 1e6:8.1f} {1 / seconds:9,.0f} "
            f"{seconds / ping:7.2f} {seconds / state:15.2f}"
        )
    ratio = median["update_step (redisd://, 1 step)"] / state
    verdict = "met" if ratio <= 0.5 else "not met"
    print(f"\nTarget update_step <= 0.5x update_state: {ratio:.2f}x -> {verdict}")


if __name__ == "__main__":
    main()
