#!/usr/bin/env python3
"""Bootstrap and run djenga's demo or test suite: `python3 dev.py demo` / `python3 dev.py test`.

Creates .venv and installs djenga with its test extras when pyproject.toml changed,
installs Debian's Chromium (browser tests, demo) and Node.js with npm (the framework tests)
with apt when they are missing, and stops every process it started, by pid, when it ends
or on Ctrl-C. `demo --web N` runs N daphne processes on one listening socket; `serve-web`
runs only those, in the Python that runs it (the compose file's web service).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def log(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(*args: str | Path, **kwargs) -> None:
    subprocess.run([str(a) for a in args], check=True, **kwargs)


def ensure_venv() -> None:
    """Create .venv and (re)install djenga[test] when pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036  (this script runs before the venv)
        sys.exit(f"djenga needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        log("creating .venv")
        run(sys.executable, "-m", "venv", VENV)
    stamp = VENV / ".djenga-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        log("installing djenga[test] into .venv (first run takes a minute)")
        run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(PYTHON, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]")
        stamp.write_text(digest)


def apt_install(what: str, *packages: str) -> None:
    """Install Debian packages (``what`` names them for the messages), with sudo if needed."""
    if not shutil.which("apt-get"):
        sys.exit(f"{what} is missing and there is no apt-get: install {what} yourself.")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    log(f"installing Debian's {' and '.join(packages)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(*sudo, "apt-get", "update", "-q", env=env)
    run(*sudo, "apt-get", "install", "-y", "-q", *packages, env=env)


def ensure_chromium() -> None:
    """Debian's chromium for the browser tests (Playwright cannot download browsers here);
    or set CHROMIUM."""
    if not find_chromium():
        apt_install("Chromium", "chromium")


def ensure_npm() -> None:
    """Node.js and npm: the framework tests install React, htmx and TypeScript with npm."""
    if not shutil.which("npm"):
        apt_install("Node.js with npm", "nodejs", "npm")


def find_chromium() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


def test(args: list[str]) -> int:
    ensure_venv()
    ensure_chromium()
    ensure_npm()
    env = dict(os.environ, CHROMIUM=find_chromium() or "")
    log("ruff check and format check")
    lint = subprocess.run([PYTHON, "-m", "ruff", "check", "."], cwd=ROOT).returncode
    lint = (
        lint
        or subprocess.run([PYTHON, "-m", "ruff", "format", "--check", "."], cwd=ROOT).returncode
    )
    if lint:
        return lint
    log("pytest " + " ".join(args))
    code = subprocess.run([PYTHON, "-m", "pytest", *args], cwd=ROOT, env=env).returncode
    if code == 5:
        log("pytest collected no tests: that is a failure")
        return 1
    return code


def demo(args: list[str]) -> int:
    demo_options(args)  # a bad option fails here, before the venv is made
    ensure_venv()
    # The rest runs on the venv's Python, which has djenga and the embedded server.
    os.execv(str(PYTHON), [str(PYTHON), str(Path(__file__).resolve()), "_demo", *args])
    return 1  # not reached


def demo_options(args: list[str], prog: str = "demo") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"dev.py {prog}")
    parser.add_argument(
        "--web", type=int, default=1, metavar="N",
        help="daphne processes sharing one listening socket (default 1)",
    )  # fmt: skip
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args(args)
    if options.web < 1:
        parser.error("--web must be at least 1")
    return options


def run_demo(args: list[str]) -> int:
    """Redis (embedded unless REDIS_URL), a worker and daphne; Ctrl-C stops them all."""
    from djenga.testing import RedisServer

    options = demo_options(args)
    catch_stop_signals()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = None
    children: list = []
    try:
        if not env.get("REDIS_URL"):
            server = RedisServer().start()
            env["REDIS_URL"] = server.url(15)
            log(f"started {Path(server.binary).name} (pid {server.pid}) at {env['REDIS_URL']}")
        else:
            log(f"using REDIS_URL={env['REDIS_URL']}")
        run(PYTHON, "manage.py", "migrate", "--noinput", "-v", "0", cwd=ROOT, env=env)
        run(PYTHON, "manage.py", "demo_user", cwd=ROOT, env=env)
        worker = [PYTHON, "-m", "celery", "-A", "djenga_tests", "worker", "-l", "INFO",
                  "--pool", "threads", "--concurrency", "4"]  # fmt: skip
        children.append(start(worker, env))
        web = WebTier(options.web, options.bind, options.port, env)
        children.append(web)
        web.start()
        log(f"demo running at http://{options.bind}:{options.port}  "
            "(staff: admin / admin; Ctrl-C stops all)")  # fmt: skip
        while children[0].process.poll() is None and web.keep_up():
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        if server is not None:
            server.close()
        log("stopped everything the demo started")


def serve_web(args: list[str]) -> int:
    """Only the web tier (migrations and the demo user first), in this Python."""
    options = demo_options(args, "serve-web")
    catch_stop_signals()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    python = sys.executable
    run(python, "manage.py", "migrate", "--noinput", "-v", "0", cwd=ROOT, env=env)
    run(python, "manage.py", "demo_user", cwd=ROOT, env=env)
    web = WebTier(options.web, options.bind, options.port, env)
    try:
        web.start()
        while web.keep_up():
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        web.stop()
        log("stopped the web processes")


def catch_stop_signals() -> None:
    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # stopped by a supervisor: clean up too
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if inherited ignored


def start(command: list, env: dict[str, str], **popen):
    """One child process, recorded by its pid."""
    from djenga.testing.processes import ManagedProcess

    child = ManagedProcess()
    child.process = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=env, **popen)
    log(f"started {' '.join(str(c) for c in command[1:4])} (pid {child.pid})")
    return child


class WebTier:
    """``count`` daphne processes that share one listening socket, made here and passed
    to each as ``daphne --fd N`` (supervisord's fcgi-program does the same with fd 0,
    see docs/deployment.md). One that dies is started again, like supervisord would."""

    #: A process that dies sooner than this after its start is not restarted (it is broken).
    MIN_UPTIME = 10.0

    def __init__(self, count: int, host: str, port: int, env: dict[str, str]) -> None:
        self.count, self.host, self.port, self.env = count, host, port, env
        self.listener: socket.socket | None = None
        self.processes: list = []
        self.started: list[float] = []

    def command(self) -> list:
        return [sys.executable, "-m", "daphne", "--fd", str(self.listener.fileno()),
                *demo_daphne_limits(), "djenga_tests.asgi:application"]  # fmt: skip

    def start(self) -> None:
        self.listener = socket.create_server((self.host, self.port), backlog=1024)
        self.listener.set_inheritable(True)
        log(f"listening on {self.host}:{self.port} for {self.count} web process(es)")
        for _ in range(self.count):
            self._start_one()

    def _start_one(self) -> None:
        fd = self.listener.fileno()
        self.processes.append(start(self.command(), self.env, pass_fds=(fd,)))
        self.started.append(time.monotonic())

    def keep_up(self) -> bool:
        """Start again a web process that exited; False if one exited right after its
        start (then the demo stops: something is wrong with it)."""
        for index, child in enumerate(list(self.processes)):
            code = child.process.poll()
            if code is None:
                continue
            log(f"web process pid {child.pid} exited with code {code}")
            if time.monotonic() - self.started[index] < self.MIN_UPTIME:
                return False
            del self.processes[index], self.started[index]
            self._start_one()
            return True
        return True

    def stop(self) -> None:
        for child in reversed(self.processes):
            child.stop()
        if self.listener is not None:
            self.listener.close()
            self.listener = None


def demo_daphne_limits() -> list[str]:
    """Daphne's own limits, set explicitly (see docs/deployment.md)."""
    return ["--websocket_timeout", "86400", "--websocket_connect_timeout", "10",
            "--ping-interval", "20", "--ping-timeout", "30",
            "--websocket-max-message-size", "65536"]  # fmt: skip


COMMANDS = {"test": test, "demo": demo, "_demo": run_demo, "serve-web": serve_web}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(
            "usage: python3 dev.py test [pytest args] | demo [--web N] [--bind H] [--port P]"
            " | serve-web [--web N] [--bind H] [--port P]"
        )
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
