"""Latency from start_step/update_step in the task process to the frame's arrival at 1, 100
and 1,000 WebSocket clients of ONE daphne, against the same fan-out through group_send."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python benchmarks/x.py` puts benchmarks/, not the root, first

import redis  # noqa: E402
import redis.asyncio  # noqa: E402
from websockets.client import ClientProtocol  # noqa: E402
from websockets.frames import Close, Opcode  # noqa: E402
from websockets.http11 import Response  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.typing import Origin  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from djenga.testing import RedisServer  # noqa: E402
from djenga.testing.redis_server import free_port  # noqa: E402

FANOUTS = (1, 100, 1_000)
SINGLES, SINGLES_WARMUP = 55, 5  # phase 1: one update at a time, each awaited by every client
UPDATES, WARMUP = 200, 20  # phase 2: UPDATES at RATE per second, not awaited
RATE = 100.0
GAP = 0.02  # seconds between two updates of phase 1
STEP_EVERY = 50  # start_step for a new step every 50 updates, update_step in between
BATCH = 100  # clients connected at a time
DRAIN = 10.0  # seconds to wait for the last frame of phase 2
ORIGIN = "http://127.0.0.1:8000"
RELAYS = ("djenga", "group_send")


# -- clients ------------------------------------------------------------------------------


class Run:
    """What one configuration saw: when each seq was sent and every (seq, arrival time)."""

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.arrivals: list[tuple[int, float]] = []
        self._awaited: list = [0, 0, None]  # seq, clients still to get it, event

    def arrived(self, seq: int, at: float) -> None:
        self.arrivals.append((seq, at))
        awaited = self._awaited
        if seq == awaited[0]:
            awaited[1] -= 1
            if awaited[1] == 0:
                awaited[2].set()

    def await_seq(self, seq: int, clients: int) -> asyncio.Event:
        self._awaited = [seq, clients, asyncio.Event()]
        return self._awaited[2]

    def latencies(self, first: int, last: int) -> list[float]:
        """Milliseconds from send to arrival, for seqs first..last, all clients."""
        sent = self.sent
        return [(at - sent[seq]) * 1000 for seq, at in self.arrivals if first <= seq <= last]


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
                self.run.arrived(self.last_seq, now)
                self._set_ready()
            elif event.opcode is Opcode.CLOSE:
                self._fail(ConnectionError(f"server closed: {Close.parse(event.data)}"))
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection lost"))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.ws.state is State.OPEN:
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


async def connect_clients(url: str, count: int, run: Run, ready_on_frame: bool) -> list[Client]:
    loop = asyncio.get_running_loop()
    port = parse_uri(url).port
    clients: list[Client] = []
    for start in range(0, count, BATCH):
        batch = [Client(url, run, ready_on_frame) for _ in range(min(BATCH, count - start))]
        await asyncio.gather(
            *(loop.create_connection(lambda c=c: c, "127.0.0.1", port) for c in batch)
        )
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in batch)), 30)
        clients += batch
    return clients


# -- publishers: each runs in one thread of its own, as a task would ------------------------


def step_change(target, i: int) -> None:
    """What a task does: a new step every STEP_EVERY updates, update_step in between."""
    key = i // STEP_EVERY + 1
    if i % STEP_EVERY == 0:
        target.start_step(key, f"Step number {key}")
    else:
        target.update_step(key, f"working on item {i} of {SINGLES + UPDATES}")


class Publisher:
    """Sends update number i (seq i + 1) and notes when; all calls run in one thread."""

    def __init__(self) -> None:
        self.count = 0
        self.thread = ThreadPoolExecutor(max_workers=1)

    async def call(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.thread, function, *args)

    def send(self, run: Run) -> None:
        self.count += 1
        run.sent[self.count] = time.perf_counter()
        self.publish(self.count - 1)

    def paced(self, run: Run) -> None:
        start = time.perf_counter()
        for i in range(UPDATES):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.send(run)

    def open(self) -> None: ...

    def publish(self, i: int) -> None: ...

    def close(self) -> None: ...


class DjengaPublisher(Publisher):
    """A DetailTask's own start_step/update_step: seq 1, 2, … of a new task id."""

    def __init__(self, task, task_id: str) -> None:
        super().__init__()
        self.task, self.task_id = task, task_id

    def open(self) -> None:
        self.task.push_request(id=self.task_id, retries=0)  # the request stack is per thread

    def publish(self, i: int) -> None:
        step_change(self.task, i)

    def close(self) -> None:
        self.task.pop_request()


class GroupPublisher(Publisher):
    """The same changes as djenga's, sent with group_send: the snapshot JSON, seq in front."""

    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group

    def open(self) -> None:
        from channels.layers import get_channel_layer

        from djenga.celery.detail import TaskDetail

        self.layer = get_channel_layer()
        self.detail = TaskDetail("bench-group", "bench.group")
        self.loop = asyncio.new_event_loop()  # one loop for the run: channels-redis pools per loop

    def publish(self, i: int) -> None:
        from djenga.wire import encode

        with self.detail.lock:
            step_change(self.detail, i)
            text = f'{{"seq":{i + 1},' + encode(self.detail.snapshot())[1:]
            self.detail.drain_events()
        message = {"type": "relay", "text": text}
        self.loop.run_until_complete(self.layer.group_send(self.group, message))

    def close(self) -> None:
        self.loop.run_until_complete(self.layer.close_pools())
        self.loop.close()


def make_task(backend_url: str):
    from djenga.celery.app import DjengaCelery
    from djenga.celery.tasks import DetailTask

    app = DjengaCelery("bench", broker="memory://", backend=backend_url, set_as_current=False)

    # min_update_interval=0: no coalescing in the task, every update is published.
    @app.task(bind=True, base=DetailTask, name="bench.live", min_update_interval=0)
    def live(self):  # never run: the benchmark pushes a request and calls the helpers
        pass

    return live


# -- measuring ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def settle(pid: int, limit: float = 30.0) -> None:
    """Wait (up to ``limit`` s) until daphne is idle: nothing left over from the last run."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.25)
        if cpu_seconds(pid) - before < 0.03:
            return


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


@dataclass
class Stats:
    p50: float
    p99: float
    max: float
    delivered: float  # share of (client, update) pairs that arrived
    daphne_us: float = 0.0  # daphne CPU per frame that arrived
    bench_us: float = 0.0  # this process's CPU (publisher and clients) per frame

    @classmethod
    def of(cls, latencies: list[float], expected: int, **cpu: float) -> Stats:
        if not latencies:
            return cls(float("nan"), float("nan"), float("nan"), 0.0, **cpu)
        return cls(
            percentile(latencies, 50),
            percentile(latencies, 99),
            max(latencies),
            len(latencies) / expected,
            **cpu,
        )


@dataclass
class Result:
    single: Stats  # one update at a time
    paced: Stats  # UPDATES at RATE/s
    seconds: float = field(default=0.0)


async def measure(relay: str, count: int, port: int, daphne_pid: int, task) -> Result:
    from djenga.live.auth import make_token

    started = time.monotonic()
    run = Run()
    if relay == "djenga":
        task_id = f"bench-{count}-{uuid.uuid4().hex[:8]}"
        path = f"/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
        publisher: Publisher = DjengaPublisher(task, task_id)
    else:
        path = f"/ws/bench/group/n{count}/"
        publisher = GroupPublisher(f"bench.n{count}")
    clients = await connect_clients(f"ws://127.0.0.1:{port}{path}", count, run, relay == "djenga")
    await publisher.call(publisher.open)
    await settle(daphne_pid)

    # Phase 1: one update at a time; the next goes once every client has this one.
    daphne0, bench0 = cpu_seconds(daphne_pid), time.process_time()
    for seq in range(1, SINGLES + 1):
        everyone = run.await_seq(seq, count)
        await publisher.call(publisher.send, run)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone.wait(), 5)
        await asyncio.sleep(GAP)
    frames = sum(1 for seq, _ in run.arrivals if 1 <= seq <= SINGLES) or 1
    single = Stats.of(
        run.latencies(SINGLES_WARMUP + 1, SINGLES),
        count * (SINGLES - SINGLES_WARMUP),
        daphne_us=(cpu_seconds(daphne_pid) - daphne0) / frames * 1e6,
        bench_us=(time.process_time() - bench0) / frames * 1e6,
    )

    # Phase 2: UPDATES at RATE/s, whether or not the clients keep up.
    await settle(daphne_pid)
    daphne0, bench0 = cpu_seconds(daphne_pid), time.process_time()
    await publisher.call(publisher.paced, run)
    last = publisher.count
    deadline = time.perf_counter() + DRAIN
    while time.perf_counter() < deadline and any(c.last_seq < last for c in clients):
        await asyncio.sleep(0.01)
    frames = sum(1 for seq, _ in run.arrivals if SINGLES < seq <= last) or 1
    paced = Stats.of(
        run.latencies(SINGLES + WARMUP + 1, last),
        count * (UPDATES - WARMUP),
        daphne_us=(cpu_seconds(daphne_pid) - daphne0) / frames * 1e6,
        bench_us=(time.process_time() - bench0) / frames * 1e6,
    )

    for client in clients:
        client.close()
    await publisher.call(publisher.close)
    publisher.thread.shutdown()
    return Result(single, paced, time.monotonic() - started)


async def pubsub_floor(redis_url: str) -> Stats:
    """Bare Redis pub/sub, no daphne: PUBLISH from a thread, a redis.asyncio subscriber
    here; the same payload size and pacing as phase 2. What the machine's hops cost."""
    run = Run()
    subscriber = redis.asyncio.Redis.from_url(redis_url)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe("bench:floor")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    client = redis.Redis.from_url(redis_url)
    payload = b'"x":"' + b"x" * 600 + b'"}'

    def publish(sent: dict[int, float]) -> None:
        start = time.perf_counter()
        for i in range(UPDATES):
            delay = start + i / RATE - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[i + 1] = time.perf_counter()
            client.publish("bench:floor", b'{"seq":%d,' % (i + 1) + payload)

    publishing = asyncio.ensure_future(asyncio.to_thread(publish, run.sent))
    while len(run.arrivals) < UPDATES:
        message = await pubsub.get_message(timeout=5)
        if message is None:
            break
        run.arrived(seq_of(message["data"]), time.perf_counter())
    await publishing
    await pubsub.aclose()
    await subscriber.aclose()
    client.close()
    return Stats.of(run.latencies(WARMUP + 1, UPDATES), UPDATES - WARMUP)


async def run_all(redis_url: str, port: int, daphne_pid: int, task):
    floor = await pubsub_floor(redis_url)
    print(f"  Redis pub/sub alone: p50 {floor.p50:.2f} ms  p99 {floor.p99:.2f} ms", flush=True)
    results: dict[tuple[str, int], Result] = {}
    for count in FANOUTS:
        for relay in RELAYS:
            await settle(daphne_pid)
            result = results[relay, count] = await measure(relay, count, port, daphne_pid, task)
            print(
                f"  {relay:10} {count:5} clients: one at a time p99 {result.single.p99:8.2f} ms, "
                f"at {RATE:.0f}/s p99 {result.paced.p99:8.2f} ms ({result.seconds:.1f} s)",
                flush=True,
            )
    return floor, results


# -- processes ----------------------------------------------------------------------------


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


# -- report -------------------------------------------------------------------------------


def report(floor: Stats, results: dict[tuple[str, int], Result]) -> None:
    print(
        "\nLatency in ms over every (client, update) pair. Baseline: the same fan-out through "
        "channels-redis group_send; ratio = djenga / group_send (< 1: djenga faster)."
    )
    single = f"One update at a time ({SINGLES - SINGLES_WARMUP} counted, each reaching every "
    paced = f"{UPDATES - WARMUP} updates counted at {RATE:.0f}/s ({WARMUP} warm-up dropped), "
    phases = (
        ("single", single + "client before the next)"),
        ("paced", paced + "not waiting for clients"),
    )
    for phase, title in phases:
        print(f"\n{title}\n")
        header = (
            f"{'clients':>7} | {'djenga p50/p99/max':>23} | {'group_send p50/p99/max':>26} "
            f"| {'p50 ratio':>9} | {'p99 ratio':>9} | {'delivered d/g':>13}"
        )
        print(header)
        print("-" * len(header))
        for count in FANOUTS:
            d = getattr(results["djenga", count], phase)
            g = getattr(results["group_send", count], phase)
            print(
                f"{count:7} | {d.p50:7.2f} {d.p99:7.2f} {d.max:7.2f} | {g.p50:8.2f} "
                f"{g.p99:8.2f} {g.max:8.2f} | {d.p50 / g.p50:9.2f} | {d.p99 / g.p99:9.2f} "
                f"| {d.delivered:6.0%}/{g.delivered:4.0%}"
            )
    one = results["djenga", 1].paced
    print(
        f"\nRedis pub/sub alone (one subscriber, no daphne, {RATE:.0f}/s): p50 {floor.p50:.2f} "
        f"p99 {floor.p99:.2f} max {floor.max:.2f} ms; djenga with 1 client = "
        f"{one.p50 / floor.p50:.1f}x (p50), {one.p99 / floor.p99:.1f}x (p99) of it"
    )

    print("\nCPU per frame delivered, one update at a time (µs)\n")
    header = f"{'clients':>7} | {'relay':10} | {'daphne':>8} | {'bench process':>13}"
    print(header)
    print("-" * len(header))
    for count in FANOUTS:
        for relay in RELAYS:
            s = results[relay, count].single
            print(f"{count:7} | {relay:10} | {s.daphne_us:8.1f} | {s.bench_us:13.1f}")

    load = os.getloadavg()[0]
    print(f"\n(1-minute load average at the end: {load:.2f} on {os.cpu_count()} CPUs)")
    top = FANOUTS[-1]
    for count, limit in ((1, 2.0), (top, 10.0)):
        for phase, label in (("paced", f"at {RATE:.0f}/s"), ("single", "one at a time")):
            p99 = getattr(results["djenga", count], phase).p99
            verdict = "met" if p99 < limit else "not met"
            print(
                f"Target djenga p99 < {limit:g} ms with {count:,} client(s), {label}: "
                f"{p99:.2f} ms -> {verdict}"
            )


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
            print(
                f"Redis {server.binary} :{server.port}, daphne pid {daphne.pid} :{port}; "
                f"load {os.getloadavg()[0]:.2f}"
            )
            task = make_task(server.url(15, "redisd"))
            floor, results = asyncio.run(run_all(server.url(15), port, daphne.pid, task))
        except BaseException:
            print("daphne's log, last lines:", *log.read_text().splitlines()[-30:], sep="\n")
            raise
        finally:
            stop(daphne)
    report(floor, results)


if __name__ == "__main__":
    main()
