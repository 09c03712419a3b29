#!/usr/bin/env python3
"""Bootstrap and run djenga's demo or test suite: `python3 dev.py demo` / `python3 dev.py test`.

Creates .venv and installs djenga with its test extras when pyproject.toml changed,
installs Debian's Chromium (browser tests, demo) and Node.js with npm (the framework tests)
with apt when they are missing, and stops every process it started, by pid, when it ends
or on Ctrl-C.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
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
    ensure_venv()
    # The rest runs on the venv's Python, which has djenga and the embedded server.
    os.execv(str(PYTHON), [str(PYTHON), str(Path(__file__).resolve()), "_demo", *args])
    return 1  # not reached


def run_demo(args: list[str]) -> int:
    """Redis (embedded unless REDIS_URL), a worker and daphne; Ctrl-C stops them all."""
    from djenga.testing import RedisServer
    from djenga.testing.processes import ManagedProcess

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # stopped by a supervisor: clean up too
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even if inherited ignored
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    server = None
    children: list[ManagedProcess] = []
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
        web = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", "8000",
               *demo_daphne_limits(), "djenga_tests.asgi:application"]  # fmt: skip
        for command in (worker, web):
            child = ManagedProcess()
            child.process = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=env)
            children.append(child)
            log(f"started {' '.join(str(c) for c in command[1:4])} (pid {child.pid})")
        log("demo running at http://127.0.0.1:8000  (staff: admin / admin; Ctrl-C stops all)")
        while all(child.process.poll() is None for child in children):
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


def demo_daphne_limits() -> list[str]:
    """Daphne's own limits, set explicitly (see docs/deployment.md)."""
    return ["--websocket_timeout", "86400", "--websocket_connect_timeout", "10",
            "--ping-interval", "20", "--ping-timeout", "30",
            "--websocket-max-message-size", "65536"]  # fmt: skip


COMMANDS = {"test": test, "demo": demo, "_demo": run_demo}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit("usage: python3 dev.py {demo|test} [pytest args]")
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
