"""What the benchmarks share: a frame-stamping WebSocket client, daphne as a subprocess,
CPU time, percentiles and the lines and tables they print."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python benchmarks/x.py` puts benchmarks/, not the root, first

from websockets.client import ClientProtocol  # noqa: E402
from websockets.frames import Close, Opcode  # noqa: E402
from websockets.http11 import Response  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.typing import Origin  # noqa: E402
from websockets.uri import parse_uri  # noqa: E402

from djenga.testing.processes import ManagedProcess  # noqa: E402
from djenga.testing.redis_server import free_port  # noqa: E402

ORIGIN = "http://127.0.0.1:8000"

# -- WebSocket clients ----------------------------------------------------------------------


class StampingClient(asyncio.Protocol):
    """A bare WebSocket client (websockets' sans-I/O protocol) that stamps frames on arrival,
    before any parsing, so the client's own cost adds as little as possible.

    ``on_frame(data, at)`` gets each text frame with its ``time.perf_counter()`` arrival.
    ``ready`` resolves at the first frame when ``ready_on_frame`` (djenga sends the current
    snapshot first), else once the handshake is done, after ``on_open(client)`` ran."""

    def __init__(
        self,
        uri: str,
        on_frame: Callable[[bytes, float], None],
        ready_on_frame: bool = False,
        on_open: Callable[[StampingClient], None] | None = None,
    ) -> None:
        self.uri = parse_uri(uri)
        self.ws = ClientProtocol(self.uri, origin=Origin(ORIGIN))
        self.on_frame, self.ready_on_frame, self.on_open = on_frame, ready_on_frame, on_open
        self.ready = asyncio.get_running_loop().create_future()
        self.server_close: Close | None = None  # the close frame the server sent, if any
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
                    if self.on_open is not None:
                        self.on_open(self)
                    self._set_ready()
            elif event.opcode is Opcode.TEXT:
                self.on_frame(event.data, now)
                self._set_ready()
            elif event.opcode is Opcode.CLOSE:
                self.server_close = Close.parse(event.data)
                self._fail(ConnectionError(f"server closed: {self.server_close}"))
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection lost"))

    def send_text(self, text: str) -> None:
        self.ws.send_text(text.encode())
        self._flush()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.ws.state is State.OPEN:
                self.ws.send_close(1000)
                self._flush()
            self.transport.close()

    def _flush(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines([chunk for chunk in self.ws.data_to_send() if chunk])

    def _set_ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)


async def connect(clients: Sequence[StampingClient], batch: int) -> None:
    """Connect ``clients``, ``batch`` at a time (daphne's accept backlog), each until ready."""
    loop = asyncio.get_running_loop()
    for start in range(0, len(clients), batch):
        group = clients[start : start + batch]
        await asyncio.gather(
            *(loop.create_connection(lambda c=c: c, c.uri.host, c.uri.port) for c in group)
        )
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in group)), 30)


def seq_of(data: bytes) -> int | None:
    """A djenga frame's seq: its snapshots start with it (a new task id: update n is seq n)."""
    if data.startswith(b'{"seq":'):
        return int(data[7 : data.index(b",", 7)])
    seq = json.loads(data).get("seq")
    return seq if isinstance(seq, int) else None


# -- daphne and CPU time ----------------------------------------------------------------------


def daphne_env(redis_url: str, data_dir: str, **extra: str) -> dict[str, str]:
    """The environment for the example project's manage.py and daphne processes."""
    return dict(
        os.environ,
        REDIS_URL=redis_url,
        DJENGA_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="bench_settings",  # the example project's, with a channel layer
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]),
        **extra,
    )


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks", "-v", "0"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip


def setup_django(env: dict[str, str]) -> None:
    """Django in this process, on the settings ``env`` gives the daphnes."""
    os.environ.update(
        {k: v for k, v in env.items() if k.startswith(("DJANGO_", "DJENGA_", "REDIS_"))}
    )
    import django

    django.setup()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (granian and hypercorn serve from child processes)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in children.read_text().split()]
    return pids


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants."""
    total = 0.0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(each)
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its live descendants."""
    total = 0
    for each in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def daphne_command(app: str, port: int) -> list[str]:
    from dev import demo_daphne_limits  # the limits the demo and the compose file use

    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            *demo_daphne_limits(), app]  # fmt: skip


class AsgiServer(ManagedProcess):
    """An ASGI server subprocess serving ``app`` (module:attribute), started by
    ``command(app, port)``, its output in ``log``; stopped by its pid. CPU and memory
    figures cover its process tree (a server may serve from a child process)."""

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        log: Path,
        command: Callable[[str, int], list[str]] = daphne_command,
        name: str = "daphne",
        pass_fds: Sequence[int] = (),
        port: int | None = None,
    ) -> None:
        self.app, self.name, self.log = app, name, log
        self.port = free_port() if port is None else port
        self.argv = command(app, self.port)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                pass_fds=tuple(pass_fds),
            )  # fmt: skip
        self.started_pid = self.process.pid  # pid is None once stopped

    def wait_ready(self, timeout: float = 30.0) -> AsgiServer:
        """Wait until the server accepts connections; stop it if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{self.name} {self.app} exited:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.name} {self.app} did not start")

    def cpu(self) -> float:
        """User + system CPU seconds of the server so far."""
        return tree_cpu_seconds(self.started_pid)

    def rss(self) -> int:
        """Resident bytes of the server now."""
        return tree_rss_bytes(self.started_pid)

    async def settle(self, limit: float = 20.0) -> None:
        """Wait (up to ``limit`` s) until the server is idle: nothing left of the last run."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self.cpu()
            await asyncio.sleep(0.25)
            if self.cpu() - before < 0.03:
                return


class Daphne(AsgiServer):
    """A daphne subprocess serving ``app`` with the demo's limits."""

    def __init__(self, app: str, env: dict[str, str], log: Path) -> None:
        super().__init__(app, env, log)


# -- figures and what is printed ------------------------------------------------------------


def paced(send: Callable[[], None], count: int, interval: float) -> None:
    """Call ``send()`` ``count`` times, ``interval`` seconds apart counted from the first
    (a late call does not push the next ones back), without waiting for any answer."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def p50_p99_max(values: list[float]) -> tuple[float, float, float]:
    """The median, 99th percentile and maximum of ``values``; NaN each when there are none."""
    if not values:
        return float("nan"), float("nan"), float("nan")
    return percentile(values, 50), percentile(values, 99), max(values)


def print_table(header: str, rows: Iterable[str]) -> None:
    """A header line, a rule as long as it, then the rows (formatted to the header's widths)."""
    print(header)
    print("-" * len(header))
    for row in rows:
        print(row)


def load_line() -> str:
    return f"(1-minute load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"


def machine_line(redis_client, binary: str, dists: Iterable[str]) -> str:
    """CPUs, Python, the Redis server's name and version, and the versions of ``dists``."""
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    info = redis_client.info("server")
    server = f"{Path(binary).name} {info.get('valkey_version') or info['redis_version']}"
    versions = "".join(f", {dist} {version(dist)}" for dist in dists)
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {server}{versions}"
