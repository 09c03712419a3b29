"""Latency from start_step/update_step in the task process to the frame's arrival at 1, 100 and
1,000 WebSocket clients of ONE daphne, against the same fan-out through channels-redis group_send."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python benchmarks/x.py` puts benchmarks/, not the root, first

from websockets.client import ClientProtocol  # noqa: E402
from websockets.frames import Close, Opcode  # noqa: E402
from websockets.http11 import Response  # noqa: E402
from websockets.typing import Origin  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from djenga.testing import RedisServer  # noqa: E402
from djenga.testing.redis_server import free_port  # noqa: E402

FANOUTS = (1, 100, 1_000)
UPDATES = 200  # published per configuration, at RATE per second ...
WARMUP = 20  # ... of which the first WARMUP are not counted
RATE = 100.0
STEP_EVERY = 50  # start_step for a new step every 50 updates, update_step in between
BATCH = 50  # clients connected at a time: djenga fails 1011 past ~99 at once (see docs)
DRAIN = 10.0  # seconds to wait for the last frame after the last update
ORIGIN = "http://127.0.0.1:8000"


@dataclass
class Run:
    """One configuration: when each seq was sent and every (seq, arrival time) seen."""

    sent: dict[int, float] = field(default_factory=dict)
    arrivals: list[tuple[int, float]] = field(default_factory=list)


def seq_of(data: bytes) -> int:
    """The frame's seq: djenga's snapshots (and our group messages) start with it."""
    if data.startswith(b'{"seq":'):
        return int(data[7 : data.index(b",", 7)])
    return int(json.loads(data)["seq"])


class Client(asyncio.Protocol):
    """A bare WebSocket client (websockets' sans-I/O protocol) that stamps frames on arrival,
    before any parsing, so the client's own cost adds as little as possible."""

    def __init__(self, uri: str, run: Run, ready_on_frame: bool) -> None:
        self.ws = ClientProtocol(parse_uri(uri), origin=Origin(ORIGIN))
        self.run = run
        self.ready_on_frame = ready_on_frame  # djenga sends the current snapshot first
        self.ready = asyncio.get_running_loop().create_future()
        self.last_seq = -1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self._fail(self.ws.handshake_exc)
                elif not self.ready_on_frame:
                    self._set_ready()
            elif event.opcode is Opcode.TEXT:
                self.last_seq = seq_of(event.data)
                self.run.arrivals.append((self.last_seq, now))
                self._set_ready()
            elif event.opcode is Opcode.CLOSE:
                self._fail(ConnectionError(f"server closed: {Close.parse(event.data)}"))
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection lost"))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.ws.send_close(1000)
            self._flush()
            self.transport.close()

    def _flush(self) -> None:
        if self.transport is not None:
            self.transport.writelines([chunk for chunk in self.ws.data_to_send() if chunk])

    def _set_ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)


async def connect_clients(port: int, path: str, count: int, run: Run, ready_on_frame: bool):
    loop = asyncio.get_running_loop()
    clients: list[Client] = []
    for start in range(0, count, BATCH):
        batch = [
            Client(f"ws://127.0.0.1:{port}{path}", run, ready_on_frame)
            for _ in range(min(BATCH, count - start))
        ]
        await asyncio.gather(
            *(loop.create_connection(lambda c=c: c, "127.0.0.1", port) for c in batch)
        )
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in batch)), 30)
        clients += batch
    return clients


def paced(run: Run, send: Callable[[int], object]) -> None:
    """Call ``send(i)`` UPDATES times at RATE per second, noting the time of each seq."""
    start = time.perf_counter()
    for i in range(UPDATES):
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        run.sent[i + 1] = time.perf_counter()
        send(i)


def step_change(target, i: int) -> None:
    """What a task does: a new step every STEP_EVERY updates, update_step in between."""
    key = i // STEP_EVERY + 1
    if i % STEP_EVERY == 0:
        target.start_step(key, f"Step number {key}")
    else:
        target.update_step(key, f"working on item {i} of {UPDATES}")


def publish_djenga(task, task_id: str, run: Run) -> None:
    """The task side of djenga: a DetailTask's own start_step/update_step (seq 1, 2, …)."""
    task.push_request(id=task_id, retries=0)  # the request stack is per thread
    try:
        paced(run, lambda i: step_change(task, i))
    finally:
        task.pop_request()


def publish_group(group: str, run: Run) -> None:
    """The same changes sent with group_send: the same snapshot JSON, seq put in front."""
    from channels.layers import get_channel_layer

    from djenga.celery.detail import TaskDetail
    from djenga.wire import encode

    layer = get_channel_layer()
    detail = TaskDetail("bench-group", "bench.group")
    loop = asyncio.new_event_loop()  # one loop for the run: channels-redis pools per loop

    def send(i: int) -> None:
        step_change(detail, i)
        text = '{"seq":%d,' % (i + 1) + encode(detail.snapshot())[1:]
        loop.run_until_complete(layer.group_send(group, {"type": "relay", "text": text}))

    try:
        paced(run, send)
    finally:
        loop.run_until_complete(layer.close_pools())
        loop.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


@dataclass
class Result:
    p50: float
    p99: float
    max: float
    delivered: float  # share of (client, seq) pairs that arrived
    daphne_us: float  # daphne CPU per frame delivered
    bench_us: float  # this process's CPU (publisher + clients) per frame delivered


async def measure(relay: str, count: int, port: int, daphne_pid: int, task) -> Result:
    from djenga.live.auth import make_token

    run = Run()
    if relay == "djenga":
        task_id = f"bench-{count}-{uuid.uuid4().hex[:8]}"
        path = f"/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
        publish = lambda: publish_djenga(task, task_id, run)  # noqa: E731
    else:
        group = f"bench.n{count}"
        path = f"/ws/bench/group/n{count}/"
        publish = lambda: publish_group(group, run)  # noqa: E731
    clients = await connect_clients(port, path, count, run, ready_on_frame=relay == "djenga")
    await asyncio.sleep(0.5)
    daphne0, bench0 = cpu_seconds(daphne_pid), time.process_time()
    await asyncio.to_thread(publish)
    deadline = time.perf_counter() + DRAIN
    while time.perf_counter() < deadline and any(c.last_seq < UPDATES for c in clients):
        await asyncio.sleep(0.01)
    daphne_cpu, bench_cpu = cpu_seconds(daphne_pid) - daphne0, time.process_time() - bench0
    for client in clients:
        client.close()
    await asyncio.sleep(0.5 + count / 1000)  # let daphne see them go
    latencies = [
        (t - run.sent[seq]) * 1000 for seq, t in run.arrivals if WARMUP < seq <= UPDATES
    ]
    frames = sum(1 for seq, _ in run.arrivals if 0 < seq <= UPDATES) or 1
    return Result(
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        max=max(latencies),
        delivered=len(latencies) / (count * (UPDATES - WARMUP)),
        daphne_us=daphne_cpu / frames * 1e6,
        bench_us=bench_cpu / frames * 1e6,
    )


def start_daphne(redis_url: str, data_dir: str, log: Path) -> tuple[subprocess.Popen, int]:
    env = dict(
        os.environ,
        REDIS_URL=redis_url,
        DJENGA_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="djenga_tests.settings",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]),
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks", "-v", "0"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             "bench_asgi:application"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise TimeoutError("daphne did not start")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def make_task(redis_url: str):
    from djenga.celery.app import DjengaCelery
    from djenga.celery.tasks import DetailTask

    app = DjengaCelery("bench", broker="memory://", backend=redis_url, set_as_current=False)

    @app.task(bind=True, base=DetailTask, name="bench.live")
    def live(self):  # never run: the benchmark pushes a request and calls the helpers
        pass

    return live


async def run_all(port: int, daphne_pid: int, task) -> dict[tuple[str, int], Result]:
    results = {}
    for count in FANOUTS:
        for relay in ("djenga", "group_send"):
            started = time.monotonic()
            results[relay, count] = result = await measure(relay, count, port, daphne_pid, task)
            print(
                f"  {relay:10} {count:5} clients: p50 {result.p50:7.2f} ms  "
                f"p99 {result.p99:7.2f} ms  max {result.max:7.2f} ms  "
                f"({time.monotonic() - started:.1f} s)",
                flush=True,
            )
    return results


def report(results: dict[tuple[str, int], Result]) -> None:
    print(f"\n{UPDATES - WARMUP} updates counted per configuration ({WARMUP} warm-up), "
          f"{RATE:.0f}/s; latency in ms, all (client, update) pairs\n")  # fmt: skip
    header = (
        f"{'clients':>7} | {'djenga p50/p99/max':>22} | {'group_send p50/p99/max':>22} "
        f"| {'p50 ratio':>9} | {'p99 ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    for count in FANOUTS:
        d, g = results["djenga", count], results["group_send", count]
        print(
            f"{count:7} | {d.p50:6.2f} {d.p99:7.2f} {d.max:7.2f} | {g.p50:6.2f} {g.p99:7.2f} "
            f"{g.max:7.2f} | {d.p50 / g.p50:9.2f} | {d.p99 / g.p99:9.2f}"
        )
    print("\n(ratio = djenga / group_send; below 1 means djenga is faster)\n")
    header = (
        f"{'clients':>7} | {'relay':10} | {'delivered':>9} | {'daphne CPU µs/frame':>19} "
        f"| {'bench CPU µs/frame':>18}"
    )
    print(header)
    print("-" * len(header))
    for count in FANOUTS:
        for relay in ("djenga", "group_send"):
            r = results[relay, count]
            print(
                f"{count:7} | {relay:10} | {r.delivered:9.1%} | {r.daphne_us:19.1f} "
                f"| {r.bench_us:18.1f}"
            )
    one, many = results["djenga", 1].p99, results["djenga", FANOUTS[-1]].p99
    print(f"\nTarget djenga p99 < 2 ms with 1 client: {one:.2f} ms -> "
          f"{'met' if one < 2 else 'not met'}")  # fmt: skip
    print(f"Target djenga p99 < 10 ms with {FANOUTS[-1]:,} clients: {many:.2f} ms -> "
          f"{'met' if many < 10 else 'not met'}")  # fmt: skip


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * max(FANOUTS) + 256
    if soft < wanted:  # daphne inherits it too
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="djenga-bench-") as data_dir:
        os.environ.update(
            REDIS_URL=server.url(15),
            DJENGA_DATA_DIR=data_dir,
            DJANGO_SETTINGS_MODULE="djenga_tests.settings",
        )
        import django

        django.setup()
        log = Path(data_dir, "daphne.log")
        daphne, port = start_daphne(server.url(15), data_dir, log)
        try:
            print(f"Redis {server.binary} :{server.port}, daphne pid {daphne.pid} :{port}")
            task = make_task(server.url(15, "redisd"))
            results = asyncio.run(run_all(port, daphne.pid, task))
        except BaseException:
            print("daphne's log, last lines:", *log.read_text().splitlines()[-30:], sep="\n")
            raise
        finally:
            stop(daphne)
    report(results)


if __name__ == "__main__":
    main()
