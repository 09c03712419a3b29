"""Garbage-collection pauses in a daphne that relays many frames, started the way the
quickstart says (its ``asgi.py`` as the page gives it: see gc_asgi.py).

Two web processes in one run, on the same Redis: djenga as it ships, and the same with
``DJENGA_GC_FREEZE=False`` (what every quickstart user had before djenga froze the
start-up objects itself). For each, W watchers of one task while a thread publishes
updates at a steady pace; daphne times every collection through ``gc.callbacks``.
Reports, per process and W: collections per generation, the longest pause of each
generation (wall clock, and the CPU time the longest one of each took), and the frames'
p50/p99/max latency; then "full": a full collection forced with the watchers still
connected (SIGUSR1, the shortest of 3), which is what any full collection stalls then;
last, the maxima over the whole run (joins and leaves too).
Measurements, not a test.

    .venv/bin/python benchmarks/gc_pause.py          # about 1 minute
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

from harness import (
    Daphne,
    StampingClient,
    connect,
    daphne_env,
    load_line,
    migrate,
    p50_p99_max,
    print_table,
    seq_of,
    setup_django,
)

from djenga.testing import RedisServer

#: (watchers, updates, seconds between two updates). Collections counted: those of 0.1 ms
#: or more, while the updates were being relayed.
PHASES = [(1, 1000, 0.005), (100, 400, 0.02), (500, 150, 0.06)]
WARM_UP = 20  # updates before the counted ones: the first joins load code


def publish(backend, task_id: str, updates: int, pace: float, sent: dict[int, float]) -> int:
    """``updates`` updates of one task, ``pace`` s apart; the perf_counter of each seq."""
    from djenga.celery.detail import TaskDetail

    detail = TaskDetail(task_id, "gc.pause", [(1, "Relay")])
    detail.start_step(1)
    backend.publish_detail(detail)
    next_at = time.perf_counter()
    for n in range(updates):
        detail.update_step(1, f"update {n}", done=n, total=updates)
        now = time.perf_counter()
        seq = backend.publish_detail(detail)
        sent[seq] = now
        next_at += pace
        time.sleep(max(0.0, next_at - time.perf_counter()))
    detail.end_step()
    detail.finish("SUCCESS")
    return backend.publish_detail(detail)


async def phase(web: Daphne, stats: Path, backend, watchers: int, updates: int, pace: float):
    from djenga.live.auth import make_token

    task_id = f"gc-{uuid.uuid4()}"
    url = f"ws://127.0.0.1:{web.port}/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
    arrivals: list[tuple[int, float]] = []

    def on_frame(data: bytes, at: float) -> None:
        seq = seq_of(data)
        if seq is not None:
            arrivals.append((seq, at))

    clients = [StampingClient(url, on_frame, ready_on_frame=True) for _ in range(watchers)]
    await connect(clients, 100)
    await web.settle()
    sent: dict[int, float] = {}
    began = time.time()
    final = await asyncio.to_thread(publish, backend, task_id, updates, pace, sent)
    deadline = time.monotonic() + 30
    while sum(1 for seq, _ in arrivals if seq == final) < watchers:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    ended = time.time()
    # A full collection now, with the watchers still connected: what one stalls.
    forced_from = time.time()
    for _ in range(3):
        os.kill(web.started_pid, signal.SIGUSR1)
        await asyncio.sleep(0.3)
    await asyncio.sleep(0.5)  # the stats file is written every 0.2 s
    for client in clients:
        client.close()
    data = json.loads(stats.read_text())
    window = [(g, d, c) for at, g, d, c in data["pauses"] if began <= at <= ended]
    forced = [(d, c) for at, g, d, c in data["pauses"] if g == 2 and at >= forced_from]
    full = (min(d for d, _ in forced) * 1000, min(c for _, c in forced) * 1000)
    counted = sorted(sent)[WARM_UP:]
    first = counted[0] if counted else 0
    latencies = [(at - sent[seq]) * 1000 for seq, at in arrivals if seq in sent and seq >= first]
    worst = [max((d for g, d, _ in window if g == gen), default=0.0) * 1000 for gen in range(3)]
    cpu = [max((c for g, _, c in window if g == gen), default=0.0) * 1000 for gen in range(3)]
    collections = [sum(1 for g, _, _ in window if g == gen) for gen in range(3)]
    delivered = len(latencies) / max(1, len(counted) * watchers)
    return worst, cpu, full, collections, p50_p99_max(latencies), delivered, data["frozen"]


async def main() -> None:
    server = RedisServer().start()
    tmp = tempfile.TemporaryDirectory()
    webs: list[tuple[str, Daphne, Path]] = []
    try:
        base = daphne_env(server.url(15), tmp.name)
        migrate(base)
        setup_django(base)
        from djenga.celery.app import DjengaCelery

        app = DjengaCelery(
            "gc", broker=server.url(15), backend="redisd://" + server.url(15).split("://")[1],
            set_as_current=False,
        )  # fmt: skip
        for label, extra in (("as shipped", {}), ("no freeze", {"DJENGA_GC_FREEZE": "False"})):
            stats = Path(tmp.name, f"gc-{len(webs)}.json")
            env = dict(base, GC_STATS=str(stats), **extra)
            web = Daphne("gc_asgi:application", env, Path(tmp.name, f"daphne-{len(webs)}.log"))
            webs.append((label, web.wait_ready(), stats))
        rows = []
        serving_since = time.time()
        for watchers, updates, pace in PHASES:
            for label, web, stats in webs:
                worst, cpu, full, collections, (p50, p99, top), delivered, frozen = await phase(
                    web, stats, app.backend, watchers, updates, pace
                )
                rows.append(
                    f"{watchers:8} | {label:11} | {frozen:7} | "
                    + " ".join(f"{c:6}" for c in collections)
                    + "  | "
                    + " ".join(f"{w:6.1f}" for w in worst)
                    + " | "
                    + " ".join(f"{c:6.1f}" for c in cpu)
                    + f" | {full[0]:6.1f} {full[1]:6.1f}"
                    + f" | {p50:6.2f} {p99:7.2f} {top:7.2f} | {delivered:6.1%}"
                )
        for label, _web, stats in webs:  # joins and leaves too, not only the relaying
            pauses = json.loads(stats.read_text())["pauses"]
            since = [(g, d, c) for at, g, d, c in pauses if at >= serving_since]
            worst = [
                max((d for g, d, _ in since if g == gen), default=0) * 1000 for gen in range(3)
            ]
            cpu = [max((c for g, _, c in since if g == gen), default=0) * 1000 for gen in range(3)]
            full = sum(1 for g, _, _ in since if g == 2)
            rows.append(
                f"     all | {label:11} |         | {full:5} full collections  | "
                + " ".join(f"{w:6.1f}" for w in worst)
                + " | "
                + " ".join(f"{c:6.1f}" for c in cpu)
                + " |               |"
            )
        print(load_line())
        print_table(
            "watchers | daphne      |  frozen | collections g0/g1/g2 | max pause ms g0/g1/g2"
            " |  its CPU ms g0/g1/g2 | full: ms   CPU | frame ms p50/p99/max   | delivered",
            rows,
        )
    finally:
        for _label, web, _stats in webs:
            web.stop()
        server.close()
        tmp.cleanup()


if __name__ == "__main__":
    threading.excepthook = lambda args: print("publisher failed:", args.exc_value)
    asyncio.run(main())
