"""Cost of one progress update inside a task: djenga's update_step on redisd:// against Celery's
own update_state on redis:// and a bare PING, all on one real Redis in the same run."""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable

import redis
from celery import Celery
from django.conf import settings
from harness import load_line, print_table

from djenga.celery.app import DjengaCelery
from djenga.celery.detail import TaskDetail
from djenga.celery.tasks import DetailTask
from djenga.testing import RedisServer
from djenga.wire import encode

ROUNDS = 5
OPS = 2_000
PING = "PING (redis-py)"
STATE = "update_state (redis://)"
STEP = "update_step (redisd://, 1 step)"
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
        PING: lambda i: client.ping(),
        STATE: update_state,
        STEP: lambda i: detail_task.update_step(1, f"flying {i}"),
        "update_step (redisd://, 10 steps)": lambda i: declared_task.update_step(10, f"fly {i}"),
        "start_step+end_step pair": start_end_pair,
        "  djenga Python part only": python_only,
    }


#: Round trips to Redis per operation: update_state is a GET (is it SUCCESS already?) then
#: MULTI/SETEX/PUBLISH/EXEC; each djenga helper is one EVALSHA of publish.lua.
ROUND_TRIPS = {PING: 1, STATE: 2, STEP: 1, "update_step (redisd://, 10 steps)": 1}
ROUND_TRIPS |= {"start_step+end_step pair": 2, "  djenga Python part only": 0}
#: Commands a client sends itself; their server time includes what runs inside them.
TOP_LEVEL = ("ping", "get", "multi", "exec", "evalsha")


def server_time(client: redis.Redis, op: Callable[[int], object]) -> float:
    """Seconds Redis itself spends per call of ``op`` (INFO commandstats)."""
    client.config_resetstat()
    timed(op, 1_000)
    stats = client.info("commandstats")
    micros = sum(stats.get(f"cmdstat_{name}", {}).get("usec", 0) for name in TOP_LEVEL)
    return micros / 1e6 / 1_000


def main() -> None:
    # As in a worker, Django's settings are configured (here with djenga's defaults), so
    # djenga reads its settings once, not on every update as it must before Django is set up.
    settings.configure()
    server = RedisServer().start()
    try:
        print(f"Redis: {server.binary} on 127.0.0.1:{server.port}; load {os.getloadavg()[0]:.2f}")
        cases = build_cases(server)
        for op in cases.values():  # warm up: connections, script load, caches
            timed(op, 200)
        rounds: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(ROUNDS):  # interleave the cases so drift hits all of them alike
            for name, op in cases.items():
                rounds[name].append(timed(op))
        client = redis.Redis.from_url(server.url(15))
        on_server = {name: server_time(client, op) for name, op in cases.items()}
        report({name: statistics.median(values) for name, values in rounds.items()}, on_server)
    finally:
        server.close()


def report(median: dict[str, float], on_server: dict[str, float]) -> None:
    ping, state = median[PING], median[STATE]
    print(f"\n{ROUNDS} rounds x {OPS:,} ops, median round per case; Redis µs: server time\n")
    header = (
        f"{'case':34} {'µs/op':>7} {'ops/s':>8} {'x PING':>7} {'x update_state':>14} "
        f"{'RTs':>3} {'Redis µs':>8}"
    )
    print_table(
        header,
        (
            f"{name:34} {seconds * 1e6:7.1f} {1 / seconds:8,.0f} {seconds / ping:7.2f} "
            f"{seconds / state:14.2f} {ROUND_TRIPS[name]:3} {on_server[name] * 1e6:8.1f}"
            for name, seconds in median.items()
        ),
    )
    ratio = median[STEP] / state
    verdict = "met" if ratio <= 0.5 else "not met"
    print(f"\nTarget update_step <= 0.5x update_state: {ratio:.2f}x -> {verdict}")
    print(load_line())


if __name__ == "__main__":
    main()
