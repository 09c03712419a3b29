"""10,000 real WebSocket watchers of one task across P daphne processes sharing one
listening socket (``daphne --fd``), P = 1, 2, 4; the clients live in two processes of
their own. Per P: 1,000 watchers, then 10,000: p50/p99 one update at a time and with
updates 20 ms apart, share delivered, memory per watcher, and that every client ended at
the exact final state. The fan-out floor (watchers x CPU per frame / cores) comes from the
same run, as does the ratio against celery-progress's WebSocket mode (vs_celery_progress)
at 1 and 100 watchers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time
import uuid
from array import array
from collections import Counter
from functools import partial
from pathlib import Path

from harness import (
    AsgiServer,
    StampingClient,
    connect,
    daphne_env,
    load_line,
    migrate,
    p50_p99_max,
    print_table,
    setup_django,
)
from live_latency import DjengaPublisher, make_task

from djenga.testing import RedisServer

PROCESSES = (1, 2, 4)
WATCHERS = (1_000, 10_000)
CLIENT_PROCESSES = 2
SINGLES, SINGLES_WARMUP = 20, 4  # one update at a time, each awaited (or TIMEOUT)
UPDATES, WARMUP, GAP = 100, 10, 0.02  # then 20 ms apart, not awaited
TIMEOUT = 10.0
DRAIN = 20.0
BATCH = 200  # connections opened at a time, per client process
APP = "bench_asgi:application"


# -- the client processes ---------------------------------------------------------------


def client_main(conn, first: int) -> None:
    """A process of watchers; obeys (command, argument) pairs from ``conn``."""
    asyncio.run(_client_loop(conn, first))


async def _client_loop(conn, first: int) -> None:
    clients: list[StampingClient] = []
    arrivals = array("d")  # seq, arrival time, flat
    last: list[bytes] = []  # each watcher's last frame
    last_seq: list[int] = []
    per_seq: Counter = Counter()  # how many watchers here got each seq

    def arrived(index: int, data: bytes, at: float) -> None:
        seq = _seq(data)
        arrivals.append(seq)
        arrivals.append(at)
        last[index], last_seq[index] = data, seq
        per_seq[seq] += 1

    while True:
        command, arg = await asyncio.to_thread(conn.recv)
        if command == "connect":  # arg: (url, count)
            url, count = arg
            new = []
            for _ in range(count):
                last.append(b"")
                last_seq.append(-1)
                new.append(StampingClient(url, partial(arrived, len(last) - 1), True))
            try:
                await connect(new, BATCH)
                error = None
            except Exception as exc:  # reported, not raised: the parent decides
                error = f"{type(exc).__name__}: {exc}"
            clients += new
            conn.send(error)
        elif command == "await":  # arg: seq; answers once every watcher here has it
            deadline = time.perf_counter() + TIMEOUT
            while per_seq[arg] < len(clients) and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            conn.send(per_seq[arg] >= len(clients))
        elif command == "wait_last":  # arg: seq; until every watcher has it (or DRAIN)
            deadline = time.perf_counter() + DRAIN
            while time.perf_counter() < deadline:
                if min(last_seq, default=arg) >= arg:
                    break
                await asyncio.sleep(0.05)
            conn.send(None)
        elif command == "report":  # arg: (first, last seq counted, sent times by seq)
            lo, hi, sent = arg
            latencies = array("d")
            for i in range(0, len(arrivals), 2):
                seq = int(arrivals[i])
                if lo <= seq <= hi:
                    latencies.append((arrivals[i + 1] - sent[seq]) * 1000)
            conn.send((latencies.tobytes(), len(clients)))
        elif command == "cpu":
            conn.send(time.process_time())
        elif command == "finals":
            conn.send(Counter(bytes(data) for data in last))
        elif command == "close":
            for client in clients:
                client.close()
            clients, last[:], last_seq[:] = [], [], []
            per_seq.clear()
            del arrivals[:]
            await asyncio.sleep(0.5)
            conn.send(None)
        elif command == "exit":
            return


def _seq(data: bytes) -> int:
    start = data.index(b'"seq":') + 6
    return int(data[start : data.index(b",", start)])


class Clients:
    """CLIENT_PROCESSES processes holding the watchers, talked to over pipes."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes, self.processes = [], []
        for i in range(CLIENT_PROCESSES):
            parent, child = context.Pipe()
            process = context.Process(target=client_main, args=(child, i), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def ask(self, command: str, args: list) -> list:
        for pipe, arg in zip(self.pipes, args, strict=True):
            pipe.send((command, arg))
        return [pipe.recv() for pipe in self.pipes]

    def all(self, command: str, arg=None) -> list:
        return self.ask(command, [arg] * len(self.pipes))

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit", None))
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


# -- the web processes ------------------------------------------------------------------


def shared_socket() -> socket.socket:
    """One listening socket that every daphne accepts on (``--fd``)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    listener.set_inheritable(True)
    return listener


def start_daphnes(count: int, env: dict[str, str], data: str, listener) -> list[AsgiServer]:
    from dev import demo_daphne_limits

    fd = listener.fileno()

    def command(app: str, port: int) -> list[str]:
        return [sys.executable, "-m", "daphne", "--fd", str(fd), *demo_daphne_limits(), app]

    port = listener.getsockname()[1]
    servers = [
        AsgiServer(
            APP,
            env,
            Path(data, f"daphne-{count}-{i}.log"),
            command,
            f"daphne {i}",
            pass_fds=[fd],
            port=port,
        )
        for i in range(count)
    ]
    time.sleep(1.0)
    for server in servers:
        server.wait_ready()
    return servers


def sockets_held(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


# -- one configuration ------------------------------------------------------------------


def measure(servers: list[AsgiServer], clients: Clients, task, watchers: int, port: int):
    from djenga.live.auth import make_token

    task_id = f"tenk-{len(servers)}-{watchers}-{uuid.uuid4().hex[:8]}"
    url = f"ws://127.0.0.1:{port}/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
    publisher = DjengaPublisher(task, task_id)
    asyncio.run(_settle(servers))
    rss0 = sum(s.rss() for s in servers)
    sockets0 = [sockets_held(s.started_pid) for s in servers]
    share = [watchers // CLIENT_PROCESSES] * CLIENT_PROCESSES
    share[0] += watchers - sum(share)
    started = time.monotonic()
    errors = [e for e in clients.ask("connect", [(url, n) for n in share]) if e]
    connect_s = time.monotonic() - started
    asyncio.run(_settle(servers))
    rss_per = (sum(s.rss() for s in servers) - rss0) / watchers
    spread = [sockets_held(s.started_pid) - b for s, b in zip(servers, sockets0, strict=True)]

    sent: dict[int, float] = {}
    run = _Sent(sent)
    publisher.thread.submit(publisher.open).result()
    cpu0 = sum(s.cpu() for s in servers)
    clients0 = sum(clients.all("cpu"))
    timeouts = 0
    for seq in range(1, SINGLES + 1):
        publisher.thread.submit(publisher.send, run).result()
        timeouts += not all(clients.all("await", seq))
        time.sleep(GAP)
    single_cpu = sum(s.cpu() for s in servers) - cpu0
    clients_cpu = sum(clients.all("cpu")) - clients0
    single = _latencies(clients, SINGLES_WARMUP + 1, SINGLES, sent)
    frames_single = (
        watchers * SINGLES * min(1.0, len(single) / (watchers * (SINGLES - SINGLES_WARMUP)))
    )

    asyncio.run(_settle(servers))
    cpu0 = sum(s.cpu() for s in servers)

    publisher.thread.submit(publisher.paced, run, UPDATES, GAP).result()
    last = publisher.count
    clients.all("wait_last", last)
    paced_cpu = sum(s.cpu() for s in servers) - cpu0
    paced_lat = _latencies(clients, SINGLES + WARMUP + 1, last, sent)

    # The task's end, as a worker records it (the backend's own store_result).
    def finish() -> None:
        task.backend.store_result(task_id, "done", "SUCCESS", request=task.request)

    publisher.thread.submit(finish).result()
    stored = task.backend.get_detail(task_id)
    clients.all("wait_last", stored["seq"])
    finals: Counter = Counter()
    for counter in clients.all("finals"):
        finals.update(counter)
    exact = sum(n for data, n in finals.items() if data and _exact(json.loads(data), stored))
    publisher.thread.submit(publisher.close).result()
    publisher.thread.shutdown()
    clients.all("close")
    return {
        "P": len(servers),
        "watchers": watchers,
        "connect_s": connect_s,
        "errors": errors,
        "spread": spread,
        "rss_per": rss_per,
        "single": p50_p99_max(single),
        "single_delivered": len(single) / (watchers * (SINGLES - SINGLES_WARMUP)),
        "single_timeouts": timeouts,
        "cpu_per_frame_us": single_cpu / frames_single * 1e6,
        "client_us": clients_cpu / frames_single * 1e6,
        "paced": p50_p99_max(paced_lat),
        "paced_delivered": len(paced_lat) / (watchers * (UPDATES - WARMUP)),
        "paced_cpu_s": paced_cpu,
        "exact_final": exact,
    }


class _Sent:
    """What DjengaPublisher.send writes to: the send time of each seq."""

    def __init__(self, sent: dict[int, float]) -> None:
        self.sent = sent


def _latencies(clients: Clients, lo: int, hi: int, sent: dict[int, float]) -> list[float]:
    values: list[float] = []
    for data, _count in clients.all("report", (lo, hi, sent)):
        values += array("d", data).tolist()
    return values


def _exact(frame: dict, stored: dict) -> bool:
    """The customer's view of the stored final snapshot, field for field."""
    from djenga.wire import for_viewer

    return frame == json.loads(json.dumps(for_viewer(stored, staff=False), default=str))


async def _settle(servers: list[AsgiServer]) -> None:
    for server in servers:
        await server.settle()


# -- celery-progress at 1 and 100 watchers, in the same run ------------------------------


def versus_celery_progress() -> dict:
    """vs_celery_progress's WebSocket latencies, in a process of their own (Django's
    settings there point at their own Redis)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_versus)


def _versus() -> dict:
    """vs_celery_progress's latency part, as it runs on its own (its daphnes, its Redis):
    (way, watchers) -> (p50, p99, delivered, note)."""
    import vs_celery_progress as vs

    results: dict = {}
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="djenga-vs-cp-") as data:
        env = daphne_env(server.url(15), data, DJANGO_DEBUG="0", PYTHONUNBUFFERED="1")
        migrate(env)
        setup_django(env)
        servers = {}
        try:
            for key in ("djenga", "cp-ws"):
                app = "djenga_tests.asgi:application" if key == "djenga" else vs.BENCH_APP
                servers[key] = vs.CheckedDaphne(app, env, Path(data, f"{key}.log"))
            for daphne in servers.values():
                daphne.wait_ready()
            djenga_task, plain_task = vs.make_tasks(server)
            ways = {"djenga": vs.Way("djenga", djenga_task), "cp-ws": vs.Way("cp-ws", plain_task)}

            async def both():
                for count in vs.FANOUTS:
                    for key in ways:
                        r = await vs.measure_latency(key, count, ways[key], servers[key], 0.5)
                        results[key, count] = (r.p50, r.p99, r.delivered, r.note)

            asyncio.run(both())
        finally:
            for daphne in servers.values():
                daphne.stop()
    return results


# -- running it -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--processes",
        type=int,
        nargs="*",
        default=list(PROCESSES),
        help="none: only celery-progress",
    )
    parser.add_argument("--watchers", type=int, nargs="*", default=list(WATCHERS))
    parser.add_argument("--no-celery-progress", action="store_true")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # daphnes and clients inherit it
    need = max(args.watchers) + 512
    if hard < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need}: raise it (ulimit -Hn)")
    print(
        f"# 10,000 watchers ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); "
        f"load {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; RLIMIT_NOFILE {hard}"
    )
    rows = []
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="djenga-10k-") as data:
        env = daphne_env(redis.url(15), data, DJANGO_DEBUG="0", DJENGA_MAX_WATCHERS="20000")
        env["DJENGA_BENCH_SEND"] = "direct"
        setup_django(env)
        migrate(env)
        task = make_task(redis.url(15, "redisd"))
        clients = Clients()
        try:
            for count in args.processes:
                listener = shared_socket()
                servers = start_daphnes(count, env, data, listener)
                try:
                    for watchers in args.watchers:
                        row = measure(servers, clients, task, watchers, listener.getsockname()[1])
                        rows.append(row)
                        print(_line(row), flush=True)
                finally:
                    for server in servers:
                        server.stop()
                    listener.close()
        finally:
            clients.stop()
    versus = {} if args.no_celery_progress else versus_celery_progress()
    report(rows, versus)


def _line(row: dict) -> str:
    return (
        f"  P={row['P']} {row['watchers']:6,} watchers (connected in {row['connect_s']:.1f} s, "
        f"spread {row['spread']}): one at a time p50 {row['single'][0]:.1f} p99 "
        f"{row['single'][1]:.1f} ms, {row['cpu_per_frame_us']:.1f} µs/frame; 20 ms apart p50 "
        f"{row['paced'][0]:.1f} p99 {row['paced'][1]:.1f} ms, delivered "
        f"{row['paced_delivered']:.1%}; exact final {row['exact_final']:,}"
        + (f"; errors {row['errors']}" if row["errors"] else "")
    )


def report(rows: list[dict], versus: dict) -> None:
    cores = os.cpu_count() or 1
    print(
        "\nLatency in ms over every (watcher, update) pair. Floor = watchers x the CPU per "
        f"frame measured in the same row ÷ {cores} cores (the least time one update takes "
        "to reach every watcher when the web processes' CPU is the limit); +clients: the same "
        "with the client processes' CPU per frame added, as they share the cores here.\n"
    )
    header = (
        f"{'P':>2} | {'watchers':>8} | {'µs/frame':>8} | {'floor ms':>8} | {'+clients':>8} | "
        f"{'1-at-a-time p50/p99':>19} | {'p99/floor':>9} | {'20 ms apart p50/p99':>19} | "
        f"{'delivered':>9} | {'KiB/watcher':>11} | {'exact final':>11} | spread"
    )
    lines = []
    for r in rows:
        floor = r["watchers"] * r["cpu_per_frame_us"] / 1000 / cores
        lines.append(
            f"{r['P']:2} | {r['watchers']:8,} | {r['cpu_per_frame_us']:8.1f} | {floor:8.1f} | "
            f"{floor + r['watchers'] * r['client_us'] / 1000 / cores:8.1f} | "
            f"{r['single'][0]:9.1f} {r['single'][1]:9.1f} | {r['single'][1] / floor:9.2f} | "
            f"{r['paced'][0]:9.1f} {r['paced'][1]:9.1f} | {r['paced_delivered']:9.1%} | "
            f"{r['rss_per'] / 1024:11.1f} | {r['exact_final']:11,} | {r['spread']}"
        )
    print_table(header, lines)
    for r in rows:
        if r["P"] == 2 and r["watchers"] == 1_000:
            floor = r["watchers"] * r["cpu_per_frame_us"] / 1000 / cores
            ratio = r["single"][1] / floor
            verdict = "met" if ratio <= 2 else "not met"
            print(f"\nTarget p99 at 1,000 watchers, P=2, within 2x the floor: {ratio:.2f}x "
                  f"-> {verdict}")  # fmt: skip
        if r["watchers"] == 10_000:
            ok = r["exact_final"] == r["watchers"] and not r["errors"]
            print(
                f"Target 10,000 held, every final state exact, P={r['P']}: "
                f"{r['exact_final']:,} of {r['watchers']:,} -> {'met' if ok else 'not met'}"
            )
    if versus:
        print("\nAgainst celery-progress's WebSocket mode (one daphne each, same run):\n")
        lines = []
        for count, goal in ((1, 5), (100, 10)):
            (d50, d99, _, _), (c50, c99, _, _) = versus["djenga", count], versus["cp-ws", count]
            ratio = c99 / d99
            lines.append(
                f"{count:8} | {d50:7.2f} {d99:7.2f} | {c50:7.2f} {c99:7.2f} | "
                f"{c50 / d50:6.1f} {ratio:6.1f} | >= {goal}x: "
                + ("met" if ratio >= goal else "not met")
            )
        print_table(
            f"{'watchers':>8} | {'djenga p50/p99':>15} | {'c-p p50/p99':>15} | "
            f"{'x p50/p99':>13} | target (p99)",
            lines,
        )
    print(f"\n{load_line()}")


if __name__ == "__main__":
    main()
