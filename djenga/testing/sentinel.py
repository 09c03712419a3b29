"""A real Sentinel setup for tests: a master, replicas and sentinels, each a server process
on a free loopback port (the same binary runs as a sentinel), stopped by its pid."""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .processes import Closing, ManagedProcess
from .redis_server import RedisServer, find_redis_server, free_port

__all__ = ["SentinelServer", "SentinelSetup"]


def _command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One inline command's raw reply (for setups, without a client library)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        parts = [f"${len(a.encode())}\r\n{a}\r\n" for a in args]
        sock.sendall(f"*{len(args)}\r\n{''.join(parts)}".encode())
        reply = b""
        sock.settimeout(0.2)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if reply:
                    break
                continue
            if not chunk:
                break
            reply += chunk
        return reply


def _wait(what: str, ready: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout} s")


class SentinelServer(ManagedProcess):
    """One sentinel monitoring ``master_name`` at ``127.0.0.1:master_port``."""

    stop_timeout = 5.0

    def __init__(
        self,
        master_port: int,
        master_name: str,
        *,
        binary: str | None = None,
        port: int | None = None,
        quorum: int = 2,
        down_after_ms: int = 1000,
    ) -> None:
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        self.master_port = master_port
        self.master_name = master_name
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self._dir = tempfile.TemporaryDirectory(prefix="djenga-sentinel-")

    def start(self, timeout: float = 10.0) -> SentinelServer:
        directory = Path(self._dir.name)
        config = directory / "sentinel.conf"  # a sentinel rewrites its own config file
        name = self.master_name
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {directory}\n"
            f"logfile {directory / 'sentinel.log'}\n"
            f"sentinel monitor {name} 127.0.0.1 {self.master_port} {self.quorum}\n"
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}\n"
            f"sentinel failover-timeout {name} 10000\n"
            f"sentinel parallel-syncs {name} 1\n"
        )
        self.process = subprocess.Popen(
            [self.binary, str(config), "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait(
            f"sentinel on port {self.port} answers PING",
            lambda: _command(self.port, "PING").startswith(b"+PONG"),
            timeout,
        )
        return self

    def master_port_now(self) -> int | None:
        """The port of the master this sentinel names now."""
        reply = _command(self.port, "SENTINEL", "get-master-addr-by-name", self.master_name)
        lines = reply.split(b"\r\n")
        return int(lines[4]) if len(lines) > 4 and lines[4].isdigit() else None

    def count(self, what: str) -> int:
        """How many ``replicas`` or ``sentinels`` (other than itself) it knows of."""
        reply = _command(self.port, "SENTINEL", what, self.master_name)
        return int(reply[1 : reply.index(b"\r\n")]) if reply.startswith(b"*") else 0

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


class SentinelSetup(Closing):
    """A master, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority).

    ``url(15)`` is the ``sentinel://…;sentinel://…`` URL of database 15 (``scheme`` e.g.
    ``"sentineld"`` for djenga's backend); ``transport_options`` names the master.
    """

    def __init__(
        self,
        master_name: str = "djenga",
        *,
        replicas: int = 1,
        sentinels: int = 3,
        binary: str | None = None,
        down_after_ms: int = 1000,
    ) -> None:
        self.master_name = master_name
        self.binary = binary or find_redis_server()
        self.master = RedisServer(self.binary)
        self.servers = [self.master] + [
            RedisServer(self.binary, args=("--replicaof", "127.0.0.1", str(self.master.port)))
            for _ in range(replicas)
        ]
        self._frozen: list[subprocess.Popen[bytes]] = []
        self.sentinels = [
            SentinelServer(
                self.master.port,
                master_name,
                binary=self.binary,
                quorum=sentinels // 2 + 1,
                down_after_ms=down_after_ms,
            )
            for _ in range(sentinels)
        ]

    @property
    def transport_options(self) -> dict[str, str]:
        return {"master_name": self.master_name}

    def url(self, db: int = 0, scheme: str = "sentinel") -> str:
        return ";".join(f"{scheme}://127.0.0.1:{s.port}/{db}" for s in self.sentinels)

    def start(self, timeout: float = 30.0) -> SentinelSetup:
        """Start every process; return once the replicas replicate and every sentinel
        knows every replica and every other sentinel (so a failover can be agreed)."""
        for server in self.servers:
            server.start()
        _wait("replicas in sync", self._replicas_in_sync, timeout)
        for sentinel in self.sentinels:
            sentinel.start()
        others, replicas = len(self.sentinels) - 1, len(self.servers) - 1
        _wait(
            "sentinels know each other and the replicas",
            lambda: all(
                s.count("sentinels") >= others and s.count("replicas") >= replicas
                for s in self.sentinels
            ),
            timeout,
        )
        return self

    def master_port(self) -> int:
        """The port of the master the sentinels agree on now."""
        ports = {s.master_port_now() for s in self.sentinels if s.process is not None}
        if len(ports) != 1 or None in ports:
            raise RuntimeError(f"the sentinels do not agree on a master: {ports}")
        return int(ports.pop())  # type: ignore[arg-type]

    def server_on(self, port: int) -> RedisServer:
        return next(server for server in self.servers if server.port == port)

    def failover(self, timeout: float = 30.0) -> int:
        """``SENTINEL FAILOVER``: promote a replica; the new master's port once it serves."""
        old = self.master_port()
        reply = _command(self.sentinels[0].port, "SENTINEL", "FAILOVER", self.master_name)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"SENTINEL FAILOVER refused: {reply!r}")
        return self._wait_for_new_master(old, timeout)

    def kill_master(self, timeout: float = 30.0) -> int:
        """SIGKILL the master, as a crash would; the new master's port once elected."""
        old = self.master_port()
        self.server_on(old).kill()
        return self._wait_for_new_master(old, timeout)

    def freeze_master(self) -> int:
        """SIGSTOP the master: its connections stay open and silent (as in a network
        partition) until :meth:`thaw`; the sentinels fail over. Returns its port."""
        port = self.master_port()
        process = self.server_on(port).process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        self._frozen.append(process)
        return port

    def thaw(self, timeout: float = 30.0) -> None:
        """SIGCONT every server :meth:`freeze_master` stopped, and wait until the sentinels
        have made each a replica (until then it answers, as a master, with old data)."""
        while self._frozen:
            process = self._frozen.pop()
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                port = next(s.port for s in self.servers if s.process is process)
                _wait(
                    f"port {port} demoted to a replica",
                    lambda port=port: b"slave" in _command(port, "ROLE")[:20],
                    timeout,
                )

    def wait_for_new_master(self, old: int, timeout: float = 30.0) -> int:
        """The new master's port, once the sentinels agree on one other than ``old``."""
        return self._wait_for_new_master(old, timeout)

    def _wait_for_new_master(self, old: int, timeout: float) -> int:
        def elected() -> bool:
            try:
                port = self.master_port()
            except RuntimeError:
                return False
            role = _command(port, "ROLE")
            return port != old and b"master" in role[:20]

        _wait(f"a new master instead of port {old}", elected, timeout)
        return self.master_port()

    def _replicas_in_sync(self) -> bool:
        return all(
            b"master_link_status:up" in _command(server.port, "INFO", "replication")
            for server in self.servers[1:]
        )

    def close(self) -> None:
        self.thaw()
        for process in [*self.sentinels, *self.servers]:
            process.close()
