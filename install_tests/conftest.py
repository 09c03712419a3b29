"""Fixtures of the install tests: the built wheel, docs/quickstart.md's blocks, real processes."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from djenga.testing.browser import launch_chromium, new_page
from djenga.testing.processes import ManagedProcess
from djenga.testing.redis_server import free_port

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "docs" / "quickstart.md"
BIN = Path(sys.executable).parent

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
FILE_MARKER = re.compile(
    r"^(?:#|\{#) (?P<path>[\w./-]+): (?P<production>for production, )?"
    r"(?P<action>new file|add at the end|replace the whole file)(?: #\})?$"
)
SHELL_MARKER = re.compile(r"^# (?P<kind>run|terminal \d+)(?P<production> for production)?(?::.*)?$")
#: The doc's placeholder for the wheel a reader built or was given.
WHEEL_PLACEHOLDER = re.compile(r"/path/to/djenga-[\w.]+-py3-none-any\.whl")
#: Generous: only a hang ends a wait, never a slow machine.
START_TIMEOUT = 300.0


# Debian's Chromium as frontend/tests/conftest.py launches it (that file is not installed).
@dataclass
class Block:
    """One fenced block of the quickstart, by the marker on its first line."""

    kind: str  # "file", "run" or "terminal"
    body: str
    path: str = ""
    action: str = ""
    production: bool = False
    name: str = ""


def quickstart_blocks() -> list[Block]:
    """Every fenced block of docs/quickstart.md; one without a marker is an error."""
    blocks = []
    for match in FENCE.finditer(QUICKSTART.read_text()):
        first, _, body = match.group(2).partition("\n")
        if marker := FILE_MARKER.match(first):
            blocks.append(Block("file", body, path=marker["path"], action=marker["action"],
                                production=bool(marker["production"])))  # fmt: skip
        elif marker := SHELL_MARKER.match(first):
            kind = "run" if marker["kind"] == "run" else "terminal"
            blocks.append(Block(kind, body, production=bool(marker["production"]),
                                name=marker["kind"]))  # fmt: skip
        else:
            raise AssertionError(
                f"docs/quickstart.md: a ```{match.group(1)} block starts with {first!r}, not a "
                "marker ('# path: new file', '# path: add at the end', '# path: replace the "
                "whole file', '# run', '# terminal N: what'): the test cannot apply it."
            )
    return blocks


def user_env() -> dict[str, str]:
    """A shell with this venv active, as the reader's would be; none of the checkout's."""
    dropped = {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "REDIS_URL", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(BIN.parent))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Reader:
    """Follows the quickstart: applies its files and runs its commands, in document order.

    The only liberties: the reader's free ports replace 6379 and 8000, and the wheel under
    test replaces the doc's /path/to/ placeholder.
    """

    def __init__(self, home: Path, wheel: Path) -> None:
        self.cwd = home
        self.home = home
        self.wheel = wheel
        self.redis_port = free_port()
        self.web_port = free_port()
        self.env = user_env()
        self.children: list[tuple[str, ManagedProcess, Path]] = []
        self.files: set[str] = set()

    def fill(self, text: str) -> str:
        text = WHEEL_PLACEHOLDER.sub(str(self.wheel), text)
        return text.replace("6379", str(self.redis_port)).replace("8000", str(self.web_port))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def apply(self, block: Block) -> None:
        if block.kind == "file":
            self.write(block)
        elif block.kind == "run":
            self.run(block.body)
        else:
            self.start(block)

    def write(self, block: Block) -> None:
        target = self.cwd / block.path
        body = self.fill(block.body)
        exists = target.exists()
        if block.action == "new file":
            assert not exists, f"the quickstart calls {block.path} new, but it exists already"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)
        else:
            assert exists, f"the quickstart edits {block.path}, which does not exist here"
            if block.action == "replace the whole file":
                target.write_text(body)
            else:
                target.write_text(target.read_text().rstrip("\n") + "\n\n" + body)
        self.files.add(block.path)

    def run(self, script: str) -> None:
        """One `# run` block in bash, from where the last one left off (it may `cd`)."""
        state = self.home / ".cwd"
        here = shlex.quote(str(self.cwd))
        full = f"set -euo pipefail\ncd {here}\n{self.fill(script)}\npwd > {state}\n"
        done = subprocess.run(["bash", "-c", full], env=self.env, capture_output=True, text=True)
        assert done.returncode == 0, (
            f"quickstart commands failed (exit {done.returncode}):\n{script}\n"
            f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
        )
        self.cwd = Path(state.read_text().strip())

    def start(self, block: Block) -> ManagedProcess:
        """A `# terminal N` block: its one command, as a process stopped later by its pid."""
        lines = [ln for ln in block.body.splitlines() if ln.strip() and not ln.startswith("#")]
        assert len(lines) == 1, f"a terminal block runs one command, not {lines}"
        argv = shlex.split(self.fill(lines[0]))
        log = self.home / f"{block.name.replace(' ', '-')}.log"
        child = ManagedProcess()
        with log.open("wb") as out:
            child.process = subprocess.Popen(
                argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.children.append((lines[0], child, log))
        ports = [p for p in (self.redis_port, self.web_port) if str(p) in argv]
        for port in ports:
            self.wait_for_port(port, child, log, lines[0])
        return child

    def wait_for_port(self, port: int, child: ManagedProcess, log: Path, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert child.process is not None
            if child.process.poll() is not None:
                code = child.process.returncode
                raise AssertionError(f"`{what}` exited with {code}:\n{tail(log)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        waited = f"{START_TIMEOUT:.0f} s"
        raise AssertionError(f"`{what}` did not listen on {port} in {waited}:\n{tail(log)}")

    def logs(self) -> str:
        return "\n".join(f"--- {what}\n{tail(log)}" for what, _, log in self.children)

    def stop(self) -> None:
        for _what, child, _log in reversed(self.children):
            child.stop()


@pytest.fixture(scope="session")
def wheel() -> Path:
    return _built("DJENGA_WHEEL")


@pytest.fixture(scope="session")
def sdist() -> Path:
    return _built("DJENGA_SDIST")


def _built(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value or not Path(value).is_file():
        raise RuntimeError(
            f"${variable} names no built file ({value!r}): run these tests with "
            "`python3 .ci/matrix.py`, which builds the sdist and wheel and installs them."
        )
    return Path(value)


@pytest.fixture
def reader(tmp_path, wheel):
    reader = Reader(tmp_path, wheel)
    yield reader
    reader.stop()


@pytest.fixture(scope="session")
def browser():
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    with new_page(browser) as page:
        yield page
