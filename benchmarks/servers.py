"""djenga's consumer under several ASGI servers in ONE run: daphne (the default), uvicorn
(websockets-sansio and wsproto), hypercorn and granian. Per server: CPU per frame
delivered, p50/p99 at 1, 100 and 1,000 watchers, share of updates delivered and memory
per idle watcher. Baseline: daphne, with djenga's old send path (every frame through
Channels' ``send``) in the same run, so the cut in djenga's share shows as a ratio."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from harness import (
    AsgiServer,
    StampingClient,
    connect,
    daphne_command,
    daphne_env,
    load_line,
    migrate,
    p50_p99_max,
    print_table,
    setup_django,
)
from live_latency import DjengaPublisher, Run, make_task

from djenga.testing import RedisServer
from djenga_tests.servers import SERVERS as SERVER_COMMANDS

FANOUTS = (1, 100, 1_000)
SINGLES, SINGLES_WARMUP = 30, 5  # one update at a time, each awaited by every watcher
UPDATES, WARMUP, GAP = 150, 20, 0.02  # then UPDATES 20 ms apart, not awaited (as in issue 13)
BATCH = 100
DRAIN = 10.0
APP = "bench_asgi:application"  # the example project's, with a switch for the old paths


#: name -> (command, extra environment). "daphne, ASGI send" is the baseline: the same
#: daphne with djenga's direct send turned off (every frame through Channels' send());
#: "daphne, framed": one frame built per snapshot, but written through autobahn/Twisted.
SERVERS = {
    "daphne, ASGI send": (daphne_command, {"DJENGA_BENCH_SEND": "asgi"}),
    "daphne, framed": (daphne_command, {"DJENGA_BENCH_SEND": "framed"}),
    **{name: (command, {}) for name, command in SERVER_COMMANDS.items()},
}


@dataclass
class Phase:
    p50: float
    p99: float
    max: float
    delivered: float
    cpu_us: float  # server CPU per frame delivered


@dataclass
class Result:
    single: Phase
    paced: Phase
    rss_per_watcher: float  # bytes, idle watchers (connected, before any update)
    final_ok: bool  # every watcher ended at the last seq


async def measure(server: AsgiServer, count: int, task) -> Result:
    from djenga.live.auth import make_token

    run = Run(count)
    task_id = f"srv-{count}-{uuid.uuid4().hex[:8]}"
    url = f"ws://127.0.0.1:{server.port}/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
    publisher = DjengaPublisher(task, task_id)
    await server.settle()
    rss0 = server.rss()
    clients = [StampingClient(url, partial(run.arrived, i), True) for i in range(count)]
    await connect(clients, BATCH)
    await publisher.call(publisher.open)
    await server.settle()
    rss_per = (server.rss() - rss0) / count

    cpu0 = server.cpu()
    await publisher.one_at_a_time(run, count, SINGLES)
    frames = sum(1 for seq, _ in run.arrivals if 1 <= seq <= SINGLES) or 1
    lat = run.latencies(SINGLES_WARMUP + 1, SINGLES)
    single = Phase(
        *p50_p99_max(lat),
        len(lat) / (count * (SINGLES - SINGLES_WARMUP)),
        (server.cpu() - cpu0) / frames * 1e6,
    )

    await server.settle()
    cpu0 = server.cpu()

    await publisher.call(publisher.paced, run, UPDATES, GAP)
    last = publisher.count
    await run.drained(last, DRAIN)
    frames = sum(1 for seq, _ in run.arrivals if SINGLES < seq <= last) or 1
    lat = run.latencies(SINGLES + WARMUP + 1, last)
    paced_phase = Phase(
        *p50_p99_max(lat),
        len(lat) / (count * (UPDATES - WARMUP)),
        (server.cpu() - cpu0) / frames * 1e6,
    )
    final_ok = min(run.last_seq) == last
    for client in clients:
        client.close()
    await publisher.call(publisher.close)
    publisher.thread.shutdown()
    return Result(single, paced_phase, rss_per, final_ok)


async def run_round(servers: dict[str, AsgiServer], task, results: dict) -> None:
    for count in FANOUTS:
        for name, server in servers.items():
            result = await measure(server, count, task)
            results.setdefault((name, count), []).append(result)
            print(
                f"  {name:26} {count:5}: one at a time p50 {result.single.p50:7.2f} p99 "
                f"{result.single.p99:7.2f} ms, {result.single.cpu_us:6.1f} µs/frame; 20 ms "
                f"apart p99 {result.paced.p99:7.2f} ms, delivered {result.paced.delivered:5.0%}, "
                f"{result.rss_per_watcher / 1024:.1f} KiB/watcher"
                f"{'' if result.final_ok else ', FINAL STATE MISSED'}",
                flush=True,
            )


def median(values) -> float:
    return statistics.median(values)


def report(results: dict, rounds: int, names: list[str]) -> None:
    base = "daphne, ASGI send" if "daphne, ASGI send" in names else names[0]
    print(
        f"\nMedians over {rounds} round(s). Latency in ms over every (watcher, update) pair; "
        f"CPU: the server's process tree per frame delivered; x base: ÷ '{base}' at the "
        "same fan-out in the same run. KiB/idle watcher: the first round's (later rounds "
        "reuse the memory the first one took). At 1 watcher the CPU figures are at the "
        "resolution of /proc's clock ticks."
    )
    for count in FANOUTS:
        print(f"\n{count:,} watcher(s)\n")
        header = (
            f"{'server':26} | {'1-at-a-time p50/p99':>19} | {'µs/frame':>8} | {'x base':>6} "
            f"| {'20 ms apart p50/p99':>19} | {'µs/frame':>8} | {'delivered':>9} | "
            f"{'KiB/idle watcher':>16} | final"
        )
        base_cpu = median(r.single.cpu_us for r in results[base, count])
        rows = []
        for name in names:
            rs = results[name, count]
            rows.append(
                f"{name:26} | {median(r.single.p50 for r in rs):9.2f} "
                f"{median(r.single.p99 for r in rs):9.2f} | "
                f"{median(r.single.cpu_us for r in rs):8.1f} | "
                f"{median(r.single.cpu_us for r in rs) / base_cpu:6.2f} | "
                f"{median(r.paced.p50 for r in rs):9.2f} {median(r.paced.p99 for r in rs):9.2f} "
                f"| {median(r.paced.cpu_us for r in rs):8.1f} | "
                f"{median(r.paced.delivered for r in rs):9.1%} | "
                f"{rs[0].rss_per_watcher / 1024:16.1f} | "
                f"{'all' if all(r.final_ok for r in rs) else 'MISSED'}"
            )
        print_table(header, rows)
    print(f"\n{load_line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="server names to run (default: all)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * max(FANOUTS) + 256
    if soft < wanted:  # the servers inherit it too
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    chosen = {k: v for k, v in SERVERS.items() if not args.only or k in args.only}
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="djenga-servers-") as data:
        env = daphne_env(redis.url(15), data, DJANGO_DEBUG="0")
        setup_django(env)
        migrate(env)
        servers: dict[str, AsgiServer] = {}
        try:
            for i, (name, (command, extra)) in enumerate(chosen.items()):
                log = Path(data, f"server{i}.log")
                servers[name] = AsgiServer(APP, dict(env, **extra), log, command, name)
            for server in servers.values():
                server.wait_ready()
            now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            print(f"# djenga under {len(servers)} ASGI servers ({now}); load {os.getloadavg()}")
            task = make_task(redis.url(15, "redisd"))
            results: dict = {}
            for round_ in range(args.rounds):
                print(f"round {round_ + 1}", flush=True)
                asyncio.run(run_round(servers, task, results))
        except BaseException:
            for server in servers.values():
                print(f"--- {server.name}'s log, last lines:", flush=True)
                print(*server.log.read_text().splitlines()[-15:], sep="\n")
            raise
        finally:
            for server in servers.values():
                server.stop()
        for server in servers.values():
            text = server.log.read_text().strip()
            if text:
                print(f"--- {server.name} logged:\n{text[-1500:]}")
    report(results, args.rounds, list(chosen))


if __name__ == "__main__":
    main()
