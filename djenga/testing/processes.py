"""Processes the tests and the demo start, and stop by the pid they recorded (never by name)."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Self


class Closing:
    """``with thing:`` starts it (``start()``) and closes it (``close()``) on the way out."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ManagedProcess:
    """Holds one child process; ``stop()`` asks it to exit, ``kill()`` is a crash."""

    #: Seconds ``stop()`` waits after SIGTERM before it kills.
    stop_timeout = 10.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean-up, no goodbye."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within :attr:`stop_timeout`."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
