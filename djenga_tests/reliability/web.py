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
    """daphne serving the example project on the inherited listening socket ``fd``,
    stopped by its pid.

    By default it is ``daphne --fd <fd>``. ``child_fd`` moves the socket to another
    descriptor first, as a process manager does (0 for supervisord's ``fcgi-program``,
    3 for systemd), and ``systemd=True`` also sets ``LISTEN_FDS=1`` and ``LISTEN_PID`` to
    daphne's own pid, as systemd does between fork and exec (the launcher execs, so
    the pid stays). ``args`` replaces daphne's arguments (e.g. a unit's ``ExecStart=``).
    """

    def __init__(
        self,
        env: dict[str, str],
        fd: int,
        name: str,
        *,
        args: list[str] | None = None,
        child_fd: int | None = None,
        systemd: bool = False,
    ) -> None:
        self.env, self.fd, self.name = dict(env), fd, name
        self.child_fd = SYSTEMD_FD if systemd and child_fd is None else child_fd
        self.systemd = systemd
        seen_as = self.fd if self.child_fd is None else self.child_fd
        self.args = args or ["--fd", str(seen_as), *daphne_limits(),
                             "djenga_tests.asgi:application"]  # fmt: skip
        self.log = Path(env["DJENGA_DATA_DIR"], f"{name}.log")

    def command(self) -> list[str]:
        daphne = [sys.executable, "-m", "daphne", *self.args]
        if self.child_fd is None and not self.systemd:
            return daphne
        # What the process manager does between fork and exec.
        target = self.fd if self.child_fd is None else self.child_fd
        steps = (
            [] if target == self.fd else [f"os.dup2({self.fd}, {target})", f"os.close({self.fd})"]
        )
        if self.systemd:
            steps.append(
                "os.environ.update(LISTEN_FDS='1', LISTEN_FDNAMES='web', "
                "LISTEN_PID=str(os.getpid()))"
            )
        launcher = "; ".join(["import os, sys", *steps, "os.execv(sys.argv[1], sys.argv[1:])"])
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
