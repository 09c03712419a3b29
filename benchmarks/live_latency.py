"""Latency from start_step/update_step in the task process to the frame's arrival at 1, 100
and 1,000 WebSocket clients of ONE daphne, against the same fan-out through group_send."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import redis
import redis.asyncio
from harness import (
    Daphne,
    StampingClient,
    connect,
    daphne_env,
    load_line,
    migrate,
    p50_p99_max,
    paced,
    print_table,
    seq_of,
    setup_django,
)

from djenga.testing import RedisServer

FANOUTS = (1, 100, 1_000)
SINGLES, SINGLES_WARMUP = 55, 5  # phase 1: one update at a time, each awaited by every client
UPDATES, WARMUP = 200, 20  # phase 2: UPDATES at RATE per second, not awaited
RATE = 100.0
GAP = 0.02  # seconds between two updates of phase 1
STEP_EVERY = 50  # start_step for a new step every 50 updates, update_step in between
BATCH = 100  # clients connected at a time
DRAIN = 10.0  # seconds to wait for the last frame of phase 2
SETTLE = 30.0  # seconds daphne may take to go idle before a measurement
RELAYS = ("djenga", "group_send")


# -- clients ------------------------------------------------------------------------------


class Run:
    """What one configuration saw: when each seq was sent, every (seq, arrival time) and the
    last seq each client got."""

    def __init__(self, clients: int = 1) -> None:
        self.sent: dict[int, float] = {}
        self.arrivals: list[tuple[int, float]] = []
        self.last_seq = [-1] * clients
        self._awaited: list = [0, 0, None]  # seq, clients still to get it, event

    def arrived(self, client: int, data: bytes, at: float) -> None:
        """Client number ``client`` got the frame ``data`` at ``at``."""
        seq = seq_of(data)
        if seq is None:
            return
        self.arrivals.append((seq, at))
        self.last_seq[client] = seq
        awaited = self._awaited
        if seq == awaited[0]:
            awaited[1] -= 1
            if awaited[1] == 0:
                awaited[2].set()

    def await_seq(self, seq: int, clients: int) -> asyncio.Event:
        self._awaited = [seq, clients, asyncio.Event()]
        return self._awaited[2]

    async def drained(self, last: int, timeout: float = DRAIN) -> None:
        """Wait until every client got seq ``last``, or ``timeout`` seconds."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and min(self.last_seq) < last:
            await asyncio.sleep(0.01)

    def latencies(self, first: int, last: int) -> list[float]:
        """Milliseconds from send to arrival, for seqs first..last, all clients."""
        sent = self.sent
        return [(at - sent[seq]) * 1000 for seq, at in self.arrivals if first <= seq <= last]


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

    def paced(self, run: Run, updates: int = UPDATES, interval: float = 1 / RATE) -> None:
        """``updates`` sends, ``interval`` seconds apart, whether or not clients keep up."""
        paced(partial(self.send, run), updates, interval)

    async def one_at_a_time(self, run: Run, clients: int, updates: int = SINGLES) -> None:
        """``updates`` sends; the next goes GAP after every client got this one (or 5 s)."""
        for seq in range(self.count + 1, self.count + updates + 1):
            everyone = run.await_seq(seq, clients)
            await self.call(self.send, run)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(everyone.wait(), 5)
            await asyncio.sleep(GAP)

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
        return cls(*p50_p99_max(latencies), len(latencies) / expected, **cpu)


@dataclass
class Result:
    single: Stats  # one update at a time
    paced: Stats  # UPDATES at RATE/s
    seconds: float = field(default=0.0)


async def measure(relay: str, count: int, daphne: Daphne, task) -> Result:
    from djenga.live.auth import make_token

    started = time.monotonic()
    run = Run(count)
    if relay == "djenga":
        task_id = f"bench-{count}-{uuid.uuid4().hex[:8]}"
        path = f"/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
        publisher: Publisher = DjengaPublisher(task, task_id)
    else:
        path = f"/ws/bench/group/n{count}/"
        publisher = GroupPublisher(f"bench.n{count}")
    url, ready_on_frame = f"ws://127.0.0.1:{daphne.port}{path}", relay == "djenga"
    clients = [StampingClient(url, partial(run.arrived, i), ready_on_frame) for i in range(count)]
    await connect(clients, BATCH)
    await publisher.call(publisher.open)
    await daphne.settle(SETTLE)

    # Phase 1: one update at a time; the next goes once every client has this one.
    daphne0, bench0 = daphne.cpu(), time.process_time()
    await publisher.one_at_a_time(run, count)
    frames = sum(1 for seq, _ in run.arrivals if 1 <= seq <= SINGLES) or 1
    single = Stats.of(
        run.latencies(SINGLES_WARMUP + 1, SINGLES),
        count * (SINGLES - SINGLES_WARMUP),
        daphne_us=(daphne.cpu() - daphne0) / frames * 1e6,
        bench_us=(time.process_time() - bench0) / frames * 1e6,
    )

    # Phase 2: UPDATES at RATE/s, whether or not the clients keep up.
    await daphne.settle(SETTLE)
    daphne0, bench0 = daphne.cpu(), time.process_time()
    await publisher.call(publisher.paced, run)
    last = publisher.count
    await run.drained(last)
    frames = sum(1 for seq, _ in run.arrivals if SINGLES < seq <= last) or 1
    paced = Stats.of(
        run.latencies(SINGLES + WARMUP + 1, last),
        count * (UPDATES - WARMUP),
        daphne_us=(daphne.cpu() - daphne0) / frames * 1e6,
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

    def publish() -> None:
        seq = len(run.sent) + 1
        run.sent[seq] = time.perf_counter()
        client.publish("bench:floor", b'{"seq":%d,' % seq + payload)

    publishing = asyncio.ensure_future(asyncio.to_thread(paced, publish, UPDATES, 1 / RATE))
    while len(run.arrivals) < UPDATES:
        message = await pubsub.get_message(timeout=5)
        if message is None:
            break
        run.arrived(0, message["data"], time.perf_counter())
    await publishing
    await pubsub.aclose()
    await subscriber.aclose()
    client.close()
    return Stats.of(run.latencies(WARMUP + 1, UPDATES), UPDATES - WARMUP)


async def run_all(redis_url: str, daphne: Daphne, task):
    floor = await pubsub_floor(redis_url)
    print(f"  Redis pub/sub alone: p50 {floor.p50:.2f} ms  p99 {floor.p99:.2f} ms", flush=True)
    results: dict[tuple[str, int], Result] = {}
    for count in FANOUTS:
        for relay in RELAYS:
            await daphne.settle(SETTLE)
            result = results[relay, count] = await measure(relay, count, daphne, task)
            print(
                f"  {relay:10} {count:5} clients: one at a time p99 {result.single.p99:8.2f} ms, "
                f"at {RATE:.0f}/s p99 {result.paced.p99:8.2f} ms ({result.seconds:.1f} s)",
                flush=True,
            )
    return floor, results


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
        pairs = [
            (n, getattr(results["djenga", n], phase), getattr(results["group_send", n], phase))
            for n in FANOUTS
        ]
        print_table(
            header,
            (
                f"{n:7} | {d.p50:7.2f} {d.p99:7.2f} {d.max:7.2f} | {g.p50:8.2f} "
                f"{g.p99:8.2f} {g.max:8.2f} | {d.p50 / g.p50:9.2f} | {d.p99 / g.p99:9.2f} "
                f"| {d.delivered:6.0%}/{g.delivered:4.0%}"
                for n, d, g in pairs
            ),
        )
    one = results["djenga", 1].paced
    print(
        f"\nRedis pub/sub alone (one subscriber, no daphne, {RATE:.0f}/s): p50 {floor.p50:.2f} "
        f"p99 {floor.p99:.2f} max {floor.max:.2f} ms; djenga with 1 client = "
        f"{one.p50 / floor.p50:.1f}x (p50), {one.p99 / floor.p99:.1f}x (p99) of it"
    )

    print("\nCPU per frame delivered, one update at a time (µs)\n")
    singles = [(n, relay, results[relay, n].single) for n in FANOUTS for relay in RELAYS]
    print_table(
        f"{'clients':>7} | {'relay':10} | {'daphne':>8} | {'bench process':>13}",
        (
            f"{n:7} | {relay:10} | {s.daphne_us:8.1f} | {s.bench_us:13.1f}"
            for n, relay, s in singles
        ),
    )

    print(f"\n{load_line()}")
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
        env = daphne_env(server.url(15), data_dir)
        setup_django(env)
        migrate(env)
        daphne = Daphne("bench_asgi:application", env, Path(data_dir, "daphne.log"))
        try:
            daphne.wait_ready()
            print(
                f"Redis {server.binary} :{server.port}, daphne pid {daphne.pid} :{daphne.port}; "
                f"load {os.getloadavg()[0]:.2f}"
            )
            task = make_task(server.url(15, "redisd"))
            floor, results = asyncio.run(run_all(server.url(15), daphne, task))
        except BaseException:
            lines = daphne.log.read_text().splitlines()[-30:]
            print("daphne's log, last lines:", *lines, sep="\n")
            raise
        finally:
            daphne.stop()
    report(floor, results)


if __name__ == "__main__":
    main()
