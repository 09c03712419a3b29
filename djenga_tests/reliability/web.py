"""Web processes that share one listening socket, as a process manager runs them: daphne
started on an inherited file descriptor (``--fd``), the way supervisord's ``fcgi-program``
and systemd socket activation hand it over (docs/deployment.md).

The test that makes the socket owns it, like the process manager does: a web process that
dies leaves it listening, and the others go on accepting on it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from djenga.testing.processes import ManagedProcess
from djenga_tests.tests.fixtures import ROOT

#: What daphne logs once it listens (on an adopted descriptor too).
LISTENING = b"Listening on TCP address"
#: systemd's first passed descriptor (SD_LISTEN_FDS_START).
SYSTEMD_FD = 3


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free loopback port, inheritable by children."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    listener.set_inheritable(True)
    return listener


def daphne_limits() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from dev import demo_daphne_limits  # the demo's and compose file's daphne limits

    return demo_daphne_limits()


class SharedSocketDaphne(ManagedProcess):
    """``daphne --fd N`` on the listening socket ``fd``, stopped by its pid.

    ``systemd=True`` starts it the way systemd does: the socket moved to descriptor 3,
    ``LISTEN_FDS=1`` and ``LISTEN_PID`` set to daphne's own pid (a launcher that
    ``exec``\\s keeps its pid), and ``endpoint`` chooses how daphne picks it up: ``--fd 3``
    (the default) or a Twisted endpoint string such as ``systemd:domain=INET:index=0``.
    """

    def __init__(
        self,
        env: dict[str, str],
        fd: int,
        name: str,
        *,
        systemd: bool = False,
        endpoint: str | None = None,
    ) -> None:
        self.env, self.fd, self.name = dict(env), fd, name
        self.systemd, self.endpoint = systemd, endpoint
        self.log = Path(env["DJENGA_DATA_DIR"], f"{name}.log")

    def command(self) -> list[str]:
        fd = SYSTEMD_FD if self.systemd else self.fd
        listen = ["-e", self.endpoint] if self.endpoint else ["--fd", str(fd)]
        daphne = [sys.executable, "-m", "daphne", *listen, *daphne_limits(),
                  "djenga_tests.asgi:application"]  # fmt: skip
        if not self.systemd:
            return daphne
        # What systemd does between fork and exec: dup2 the socket to 3, set LISTEN_*.
        move = f"os.dup2({self.fd}, {SYSTEMD_FD}); os.close({self.fd}); "
        launcher = (
            "import os, sys; "
            + (move if self.fd != SYSTEMD_FD else "")
            + "os.environ.update(LISTEN_FDS='1', LISTEN_FDNAMES='web', "
            + "LISTEN_PID=str(os.getpid())); "
            + "os.execv(sys.argv[1], sys.argv[1:])"
        )
        return [sys.executable, "-c", launcher, *daphne]

    def start(self, timeout: float = 30) -> SharedSocketDaphne:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(self.fd,),
            )  # fmt: skip
        # Connecting proves nothing here (the kernel queues connections on the shared
        # socket whoever accepts them): wait for this process to say it listens.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_text()[-2000:]}")
            with self.log.open("rb") as log:
                log.seek(offset)
                if LISTENING in log.read():
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not start listening: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pause(self) -> None:
        """SIGSTOP: the process accepts nothing until :meth:`resume`, so every new
        connection on the shared socket goes to the others (that is how a test places
        clients on a chosen process)."""
        os.kill(self.pid, signal.SIGSTOP)
        self._wait_state(stopped=True)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self._wait_state(stopped=False)

    def _wait_state(self, *, stopped: bool, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            state = stat.rsplit(")", 1)[1].split()[0]
            if (state in ("T", "t")) == stopped:
                return
            time.sleep(0.01)
        raise TimeoutError(f"{self.name} did not {'stop' if stopped else 'continue'}")
