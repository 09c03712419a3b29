"""djenga against celery-progress on one Redis, same 4-step task: the cost of a progress update
inside the task, and the latency until 1 or 100 watchers see it (WebSocket and polling)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

MISSING = [name for name in ("celery_progress", "websockets") if not importlib.util.find_spec(name)]
if MISSING:
    sys.exit(
        f"vs_celery_progress needs {' and '.join(MISSING)} (not installed here): "
        "pip install -e '.[bench]'. This script installs nothing itself."
    )

from harness import (  # noqa: E402
    Daphne,
    StampingClient,
    connect,
    daphne_env,
    machine_line,
    migrate,
    p50_p99_max,
    seq_of,
    setup_django,
)

from djenga.testing import RedisServer  # noqa: E402

STEPS = 4
CALLS = 3 * STEPS  # start, update, end of each step: 12 progress updates per run
WAYS = ("djenga", "cp-ws", "cp-poll")
LABELS = {
    "djenga": "djenga WebSocket (redisd://)",
    "cp-ws": "celery-progress WebSocket",
    "cp-poll": "celery-progress polling",
}
COST_LABELS = {
    "djenga": "djenga start/update/end_step (redisd://)",
    "cp-poll": "celery-progress ProgressRecorder (redis://)",
    "cp-ws": "celery-progress WebSocketProgressRecorder",
}
# (a) cost: rounds interleave the ways; runs of the 4-step task per round and way.
ROUNDS = 9
COST_RUNS = {"djenga": 100, "cp-poll": 100, "cp-ws": 15}
# (b) latency: updates one at a time, each awaited by every watcher (or TIMEOUT) before
# the next, after a gap spread evenly over its range (golden-ratio steps, not random: the
# polling medians of a few dozen updates would wobble); WebSocket ways drop a warm-up run.
FANOUTS = (1, 100)
WS_RUNS, WS_WARMUP_RUNS, WS_GAP = 20, 1, (0.01, 0.03)
POLL_RUNS, POLL_GAP = 4, (0.0, 0.5)  # every phase against the pollers' 500 ms clock
TIMEOUT = 2.0  # seconds an update may take to reach every watcher
PHASE_LIMIT = 45.0  # seconds one (way, watchers) configuration may publish for
GOLDEN = (5**0.5 - 1) / 2
RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")  # a log record's first line
BENCH_APP = "vs_celery_progress_asgi:application"


# -- the same 4-step task, reported three ways --------------------------------------------


def make_tasks(server: RedisServer):
    """A djenga DetailTask on redisd:// and a plain Celery task on redis://, same db."""
    from celery import Celery

    from djenga.celery.app import DjengaCelery
    from djenga.celery.tasks import DetailTask

    djenga_app = DjengaCelery(
        "bench_djenga", broker="memory://", backend=server.url(15, "redisd"), set_as_current=False
    )
    plain_app = Celery(
        "bench_plain", broker="memory://", backend=server.url(15), set_as_current=False
    )

    # min_update_interval=0: no coalescing, every update_step is published (the default).
    @djenga_app.task(bind=True, base=DetailTask, name="bench.djenga", min_update_interval=0)
    def djenga_task(self):  # never run: the benchmark pushes a request and reports
        pass

    @plain_app.task(bind=True, name="bench.celery_progress")
    def plain_task(self):
        pass

    return djenga_task, plain_task


class Way:
    """One way of reporting the task: ``begin`` a run, then ``calls[i](n)`` for i in 0..11,
    where ``n`` numbers the update (celery-progress watchers match it in the description)."""

    def __init__(self, key: str, task) -> None:
        self.key, self.task = key, task
        self.calls: list[Callable[[int], object]] = self._calls()
        self.recorder = None
        self.runs = 0

    def begin(self, task_id: str) -> None:
        """A new run of the task (the same id again: the next attempt)."""
        if self.runs:
            self.task.pop_request()
        self.task.push_request(id=task_id, retries=self.runs)  # the request stack is per thread
        self.runs += 1
        if self.key == "cp-poll":
            from celery_progress.backend import ProgressRecorder

            self.recorder = ProgressRecorder(self.task)
        elif self.key == "cp-ws":
            from celery_progress.websockets.backend import WebSocketProgressRecorder

            self.recorder = WebSocketProgressRecorder(self.task)

    def end(self) -> None:
        if self.runs:
            self.task.pop_request()
        self.runs = 0

    def _calls(self) -> list[Callable[[int], object]]:
        calls: list[Callable[[int], object]] = []
        for k in range(1, STEPS + 1):
            if self.key == "djenga":
                calls += [
                    lambda n, k=k: self.task.start_step(k, f"Step {k} of {STEPS}"),
                    lambda n, k=k: self.task.update_step(k, f"working on step {k} #{n}"),
                    lambda n, k=k: self.task.end_step(k),
                ]
            else:  # the same news as set_progress(current, total, description)
                calls += [
                    lambda n, k=k: self.recorder.set_progress(k - 1, STEPS, f"Step {k} #{n}"),
                    lambda n, k=k: self.recorder.set_progress(k - 1, STEPS, f"step {k} #{n}"),
                    lambda n, k=k: self.recorder.set_progress(k, STEPS, f"Step {k} done #{n}"),
                ]
        return calls


# -- (a) cost of one update inside the task -----------------------------------------------


def time_runs(way: Way, runs: int) -> float:
    """Seconds per progress update over ``runs`` runs, each under a new task id."""
    spent = 0.0
    gc.disable()
    try:
        for _ in range(runs):
            way.begin(f"cost-{way.key}-{uuid.uuid4().hex}")
            calls = way.calls
            start = time.perf_counter()
            for n, call in enumerate(calls):
                call(n)
            spent += time.perf_counter() - start
            way.end()
    finally:
        gc.enable()
    return spent / (runs * CALLS)


@dataclass
class Cost:
    seconds: float  # median round, per update
    sent: float  # Redis commands the task's process sends per update (connection set-up too)
    in_lua: float  # Redis commands run inside Lua scripts per update
    connections: float  # Redis connections opened per update


def count_commands(way: Way, port: int, runs: int = 5) -> tuple[float, float]:
    """Commands per update as Redis MONITOR shows them: (sent by clients, run inside Lua)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as monitor:
        monitor.sendall(b"MONITOR\r\n")
        if monitor.recv(5) != b"+OK\r\n":
            raise RuntimeError("Redis refused MONITOR")
        time_runs(way, runs)
        time.sleep(0.1)
        monitor.settimeout(0.3)
        data = b""
        with contextlib.suppress(TimeoutError):
            while chunk := monitor.recv(1 << 16):
                data += chunk
    lines = [line for line in data.split(b"\r\n") if line.startswith(b"+") and b" [" in line]
    in_lua = sum(1 for line in lines if b" lua]" in line)
    updates = runs * CALLS
    return (len(lines) - in_lua) / updates, in_lua / updates


def measure_costs(ways: dict[str, Way], redis_client, port: int) -> dict[str, Cost]:
    for way in ways.values():  # warm up: connections, script load, imports
        time_runs(way, 5)
    rounds: dict[str, list[float]] = {key: [] for key in ways}
    for _ in range(ROUNDS):  # interleaved, so drift hits every way alike
        for key, way in ways.items():
            rounds[key].append(time_runs(way, COST_RUNS[key]))
    costs = {}
    for key, way in ways.items():
        before = int(redis_client.info("stats")["total_connections_received"])
        time_runs(way, 5)
        opened = int(redis_client.info("stats")["total_connections_received"]) - before
        sent, in_lua = count_commands(way, port)
        costs[key] = Cost(statistics.median(rounds[key]), sent, in_lua, opened / (5 * CALLS))
    return costs


# -- (b) latency: watchers in this process, on this process's clock ------------------------


class Watch:
    """What one configuration's watchers saw: first arrival of update n at each watcher."""

    def __init__(self, watchers: int) -> None:
        self.watchers = watchers
        self.sent: dict[int, float] = {}
        self.seen: dict[int, dict[int, float]] = {}
        self.frames = 0  # messages received in all
        self.errors: list[str] = []
        self.timeouts = 0
        self._awaited: tuple[int, asyncio.Event | None] = (0, None)

    def received(
        self, watcher: int, parse: Callable[[bytes], int | None], data: bytes, at: float
    ) -> None:
        """Watcher number ``watcher`` got the message ``data`` at ``at``; ``parse`` finds n."""
        self.frames += 1
        try:
            n = parse(data)
        except (ValueError, KeyError) as exc:
            self.errors.append(f"unparsable frame: {exc!r}")
            return
        if n is not None:
            self.saw(watcher, n, at)

    def saw(self, watcher: int, n: int, at: float) -> None:
        seen = self.seen.setdefault(n, {})
        if watcher in seen:
            return
        seen[watcher] = at
        awaited, event = self._awaited
        if n == awaited and len(seen) == self.watchers and event is not None:
            event.set()

    def expect(self, n: int) -> asyncio.Event:
        event = asyncio.Event()
        self._awaited = (n, event)
        if len(self.seen.get(n, ())) == self.watchers:
            event.set()
        return event

    def latencies(self, counted: list[int]) -> list[float]:
        """Milliseconds from the update call to each watcher's first sight of it."""
        return [(at - self.sent[n]) * 1000 for n in counted for at in self.seen.get(n, {}).values()]


def celery_progress_update(data: bytes) -> int | None:
    """celery-progress sends its get_info() dict: n is in the description we set."""
    info = json.loads(data)
    progress = info.get("progress") if isinstance(info, dict) else None
    description = progress.get("description") if isinstance(progress, dict) else None
    if not description or "#" not in description:
        return None
    return int(description.rsplit("#", 1)[1])


async def connect_ws(uri: str, watch: Watch, parse, hello: str | None) -> list[StampingClient]:
    """``watch.watchers`` clients; ``hello`` is sent once open, as celery-progress's widget does
    (without it, a client is ready at its first frame: djenga's current snapshot)."""

    def send_hello(client: StampingClient) -> None:
        if hello is not None:
            client.send_text(hello)

    clients = [
        StampingClient(
            uri,
            partial(watch.received, i, parse),
            ready_on_frame=hello is None,
            on_open=send_hello,
        )
        for i in range(watch.watchers)
    ]
    await connect(clients, 50)  # not all at once: daphne's accept backlog
    return clients


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response off a keep-alive connection: (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readexactly(2)
        return status, body
    return status, await reader.readexactly(int(headers.get("content-length", 0)))


async def poller(index: int, port: int, path: str, watch: Watch, interval: float, polls: list):
    """celery-progress's widget: fetch get_progress, then setTimeout(pollInterval), again."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    try:
        while True:
            writer.write(request.encode())
            status, body = await read_response(reader)
            now = time.perf_counter()
            polls[index] += 1
            if status != 200:
                watch.errors.append(f"HTTP {status}: {body[:200]!r}")
            else:
                watch.received(index, celery_progress_update, body, now)
            await asyncio.sleep(interval)
    finally:
        writer.close()


def poll_interval() -> float:
    """The widget's default pollInterval (celery_progress.js), in seconds."""
    import celery_progress

    script = Path(celery_progress.__file__).parent / "static/celery_progress/celery_progress.js"
    for line in script.read_text().splitlines():
        if "this.pollInterval" in line and "||" in line:
            return int(line.split("||")[1].strip(" ;")) / 1000
    return 0.5


class CheckedDaphne(Daphne):
    """A daphne whose log is read for errors after each phase it serves."""

    def __init__(self, app: str, env: dict[str, str], log: Path) -> None:
        super().__init__(app, env, log)
        self._read = 0
        self.first_error: list[str] = []
        self.last: Latency | None = None  # the last phase this daphne served

    def new_errors(self) -> list[str]:
        """ERROR/WARNING records daphne logged since the last call; the first one's full
        text (its traceback) is kept in :attr:`first_error`."""
        with self.log.open("rb") as log:
            log.seek(self._read)
            data = log.read()
        self._read += len(data)
        text = data.decode(errors="replace")
        records, block = [], None
        for line in text.splitlines():
            if RECORD.match(line):
                block = None
                if any(f" {level} " in line for level in ("ERROR", "WARNING", "CRITICAL")):
                    records.append(line.split(" ", 2)[2].strip())
                    block = [] if not self.first_error else None
                    if block is not None:
                        self.first_error = block
            if block is not None:
                block.append(line)
        return records

    def attribute_late_errors(self) -> None:
        """Records logged after the last phase's checks (e.g. a consumer daphne killed
        10 s after its client left) go to that phase's notes."""
        late = self.new_errors()
        if late and self.last is not None:
            self.last.notes.append(describe_errors(late, "after the phase"))


def describe_errors(records: list[str], when: str) -> str:
    kinds = sorted({record[:300] for record in records})
    return f"daphne logged {len(records)} error(s) {when}: " + " | ".join(kinds[:3])


def abridge(traceback: list[str]) -> list[str]:
    """A logged traceback's first and last lines and its frames in the libraries compared."""
    shown = traceback[:1]
    for i, line in enumerate(traceback[1:-1], 1):
        ours = any(name in line for name in ("/celery_progress/", "/channels_redis/", "/djenga/"))
        if line.lstrip().startswith("File ") and ours:
            shown += traceback[i : i + 2]
    return [*shown, "    ...", traceback[-1]] if len(traceback) > 1 else shown


@dataclass
class Latency:
    p50: float
    p99: float
    max: float
    samples: int
    delivered: float  # share of (watcher, update) pairs seen
    updates: int
    daphne_ms: float  # daphne CPU per update published (polls included)
    daphne_pct: float  # daphne CPU while publishing, % of one core
    connect_frames: float  # messages each watcher got before the first update
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        return "; ".join(self.notes)


async def measure_latency(
    key: str, count: int, way: Way, daphne: CheckedDaphne, interval: float
) -> Latency:
    from djenga.live.auth import make_token

    started = time.monotonic()
    watch = Watch(count)
    task_id = f"bench-{key}-{count}-{uuid.uuid4().hex[:12]}"
    clients: list[StampingClient] = []
    pollers: list[asyncio.Task] = []
    polls = [0] * count
    base = f"127.0.0.1:{daphne.port}"
    await daphne.settle()
    daphne.attribute_late_errors()
    if key == "djenga":
        uri = f"ws://{base}/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
        clients = await connect_ws(uri, watch, seq_of, None)
    elif key == "cp-ws":
        hello = json.dumps({"type": "check_task_completion"})
        uri = f"ws://{base}/ws/progress/{task_id}/"
        clients = await connect_ws(uri, watch, celery_progress_update, hello)
    else:
        path = f"/celery-progress/{task_id}/"
        for i in range(count):
            pollers.append(
                asyncio.create_task(poller(i, daphne.port, path, watch, interval, polls))
            )
            await asyncio.sleep(interval / count)  # pollers start spread over one interval
        while min(polls) < 2 and time.monotonic() - started < 20:
            await asyncio.sleep(0.05)
    if key != "cp-poll":
        await daphne.settle()  # e.g. celery-progress's check_task_completion broadcasts

    runs, warmup, gap = (
        (POLL_RUNS, 0, POLL_GAP) if key == "cp-poll" else (WS_RUNS, WS_WARMUP_RUNS, WS_GAP)
    )
    thread = ThreadPoolExecutor(max_workers=1)  # the task's thread
    loop = asyncio.get_running_loop()

    def publish(n: int) -> None:
        i = (n - 1) % CALLS
        if i == 0:
            way.begin(task_id)
        watch.sent[n] = time.perf_counter()
        way.calls[i](n)

    total = (warmup + runs) * CALLS
    connect_frames = watch.frames / count
    errors = {"at connect": daphne.new_errors()}
    cpu0, wall0 = daphne.cpu(), time.monotonic()
    published = 0
    for n in range(1, total + 1):
        arrived = watch.expect(n)
        await loop.run_in_executor(thread, publish, n)
        published = n
        try:
            await asyncio.wait_for(arrived.wait(), TIMEOUT)
        except TimeoutError:
            watch.timeouts += 1
        if n % CALLS == 0 and time.monotonic() - wall0 > PHASE_LIMIT:
            break
        low, high = gap
        await asyncio.sleep(low + (n * GOLDEN % 1.0) * (high - low))
    cpu = daphne.cpu() - cpu0
    errors["while publishing"] = daphne.new_errors()
    daphne_ms, daphne_pct = cpu / published * 1000, cpu / (time.monotonic() - wall0) * 100
    await loop.run_in_executor(thread, way.end)
    thread.shutdown()

    for client in clients:
        client.close()
    for task in pollers:
        task.cancel()
    await asyncio.gather(*pollers, return_exceptions=True)
    await asyncio.sleep(0.5)
    await daphne.settle()
    errors["at disconnect"] = daphne.new_errors()

    counted = list(range(warmup * CALLS + 1, published + 1))
    values = watch.latencies(counted)
    notes = []
    if published < total:
        notes.append(f"stopped after {published} of {total} updates ({PHASE_LIMIT:.0f} s limit)")
    if watch.timeouts:
        notes.append(f"{watch.timeouts} updates not seen by all within {TIMEOUT:.0f} s")
    closes = [client.server_close for client in clients if client.server_close is not None]
    if closes:
        notes.append(f"server closes: {sorted({f'{c.code} {c.reason}'.strip() for c in closes})}")
    if watch.errors:
        notes.append(f"{len(watch.errors)} errors, e.g. {watch.errors[0]}")
    for when, records in errors.items():
        if records:
            notes.append(describe_errors(records, when))
    if values and min(values) < 0:  # an update matched to the wrong call
        notes.append(f"negative latency {min(values):.2f} ms: updates mismatched")
    expected = count * len(counted)
    result = Latency(
        *p50_p99_max(values),
        len(values),
        len(values) / expected if expected else 0.0,
        len(counted),
        daphne_ms,
        daphne_pct,
        connect_frames,
        time.monotonic() - started,
        notes,
    )
    print(
        f"  {LABELS[key]:30} {count:3} watcher(s): p50 {result.p50:8.2f} ms  p99 "
        f"{result.p99:8.2f} ms  delivered {result.delivered:6.1%}  ({result.seconds:.1f} s; "
        f"{connect_frames:.0f} messages per watcher before the first update)"
        + (f"  [{result.note}]" if result.note else ""),
        flush=True,
    )
    daphne.last = result
    return result


async def measure_latencies(ways: dict[str, Way], servers: dict[str, CheckedDaphne]):
    interval = poll_interval()
    results: dict[tuple[str, int], Latency] = {}
    for count in FANOUTS:
        for key in WAYS:
            results[key, count] = await measure_latency(
                key, count, ways[key], servers[key], interval
            )
    return results, interval


# -- running it -----------------------------------------------------------------------------


def main() -> None:
    wall = time.monotonic()
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="djenga-vs-cp-") as data_dir:
        env = daphne_env(server.url(15), data_dir, DJANGO_DEBUG="0", PYTHONUNBUFFERED="1")
        migrate(env)
        servers: dict[str, CheckedDaphne] = {}
        try:
            # djenga as the example project serves it; celery-progress's two modes on a
            # daphne each (so each log and CPU figure belongs to one way).
            for key in WAYS:
                app = "djenga_tests.asgi:application" if key == "djenga" else BENCH_APP
                servers[key] = CheckedDaphne(app, env, Path(data_dir, f"{key}.log"))
            setup_django(env)
            import redis

            redis_client = redis.Redis.from_url(server.url(15))
            for daphne in servers.values():
                daphne.wait_ready()
            now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            print(f"# djenga vs celery-progress ({now})")
            dists = ("celery-progress", "channels-redis", "daphne")
            machine = machine_line(redis_client, server.binary, dists)
            print(f"{machine}; load {os.getloadavg()[0]:.2f}")

            djenga_task, plain_task = make_tasks(server)
            ways = {
                "djenga": Way("djenga", djenga_task),
                "cp-poll": Way("cp-poll", plain_task),
                "cp-ws": Way("cp-ws", plain_task),
            }
            print("\n(a) cost of one update inside the task ...", flush=True)
            costs = measure_costs(ways, redis_client, server.port)
            print("(b) latency from the update call to the watchers ...", flush=True)
            latencies, interval = asyncio.run(measure_latencies(ways, servers))
            redis_client.close()
        finally:
            for daphne in servers.values():
                daphne.stop()
        for daphne in servers.values():  # what it logged after its last phase, until stopped
            daphne.attribute_late_errors()
        problems = {LABELS[key]: daphne.first_error for key, daphne in servers.items()}
    report(costs, latencies, interval, problems)
    print(f"\n(whole run {time.monotonic() - wall:.0f} s; load {os.getloadavg()[0]:.2f})")


def report(costs, latencies, interval: float, problems: dict[str, list[str]]) -> None:
    base = costs["djenga"].seconds
    print(
        f"\n## (a) Cost of one progress update inside the task\n\n{ROUNDS} rounds, median; "
        f"one run = {STEPS} steps x (start, update, end) = {CALLS} updates; no watchers.\n"
    )
    print("| way | µs / update | ms / 4-step run | x djenga | Redis commands sent / update "
          "| run inside Lua / update | Redis connections opened / update |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in ("djenga", "cp-poll", "cp-ws"):
        c = costs[key]
        print(
            f"| {COST_LABELS[key]} | {c.seconds * 1e6:.0f} | {c.seconds * CALLS * 1e3:.2f} "
            f"| {c.seconds / base:.2f} | {c.sent:.1f} | {c.in_lua:.1f} | {c.connections:.2f} |"
        )

    print(
        f"\n## (b) Latency from the update call to a watcher seeing it (ms)\n\nUpdates one at a "
        f"time, each awaited by every watcher; WebSocket: {WS_RUNS * CALLS} updates after "
        f"{WS_WARMUP_RUNS * CALLS} warm-up; polling: {POLL_RUNS * CALLS} updates, every "
        f"{interval * 1000:.0f} ms + response time (the widget's default). Ratios: "
        "x djenga's figure at the same number of watchers. Under 100 samples, p99 is the max. "
        "Polling's daphne CPU is mostly its polls (2 a second per watcher), updates or not.\n"
    )
    print("| watchers | way | p50 | p99 | max | samples | delivered | p50 x djenga "
          "| p99 x djenga | daphne CPU ms / update | daphne CPU % |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for count in FANOUTS:
        d = latencies["djenga", count]
        for key in WAYS:
            r = latencies[key, count]
            print(
                f"| {count} | {LABELS[key]} | {r.p50:.2f} | {r.p99:.2f} | {r.max:.2f} "
                f"| {r.samples} | {r.delivered:.1%} | {r.p50 / d.p50:.1f} "
                f"| {r.p99 / d.p99:.1f} | {r.daphne_ms:.2f} | {r.daphne_pct:.0f} |"
            )
    notes = [(k, n, r.note) for (k, n), r in latencies.items() if r.note]
    for key, count, note in notes:
        print(f"\nNote, {LABELS[key]} with {count} watcher(s): {note}")
    for key, lines in problems.items():
        if lines:
            print(f"\nThe first error in the {key} daphne's log (abridged):\n")
            print("```", *abridge(lines), "```", sep="\n")

    print("\n## Targets\n")
    ratios = [
        getattr(latencies["cp-ws", n], p) / getattr(latencies["djenga", n], p)
        for n in FANOUTS
        for p in ("p50", "p99")
    ]
    worst = min(ratios)
    print(
        f"- djenga latency >= 20x lower than celery-progress WebSocket mode (p50 and p99, "
        f"1 and {FANOUTS[-1]} watchers): lowest ratio {worst:.1f}x -> "
        + ("met" if worst >= 20 else "not met")
    )
    for key in ("cp-poll", "cp-ws"):
        ratio = base / costs[key].seconds
        print(
            f"- djenga update cost <= 0.5x {COST_LABELS[key]}: {ratio:.2f}x -> "
            + ("met" if ratio <= 0.5 else "not met")
        )


if __name__ == "__main__":
    main()
