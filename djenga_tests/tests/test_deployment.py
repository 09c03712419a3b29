"""docker-compose.yml (no Docker engine here): valid against the Compose spec, and coherent."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import uuid

import pytest
import yaml

from .fixtures import ROOT

COMPOSE = ROOT / "docker-compose.yml"


def check_schema(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(path)],
        capture_output=True, text=True,
    )  # fmt: skip


def test_compose_file_matches_the_compose_spec():
    result = check_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_mistakes(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: x\n    restart_policy: sometimes\n")
    assert check_schema(broken).returncode != 0


def test_services_are_wired_together():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"redis", "web", "worker"}
    for name in ("web", "worker"):
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/15"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["web"]["command"][:3] == ["python", "dev.py", "serve-web"]
    assert services["worker"]["command"][:3] == ["celery", "-A", "djenga_tests"]
    assert (ROOT / "Dockerfile").exists()


def compose_web_options():
    """The compose file's web command as dev.py reads it, ${VAR:-default} as Compose
    fills it in when VAR is not set."""
    sys.path.insert(0, str(ROOT))
    import dev

    command = yaml.safe_load(COMPOSE.read_text())["services"]["web"]["command"]
    args = [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", arg) for arg in command[3:]]
    return dev, dev.demo_options(args, "serve-web")


def test_the_compose_web_service_runs_the_demo_web_tier_with_its_limits():
    dev, options = compose_web_options()
    assert (options.web, options.bind, options.port) == (1, "0.0.0.0", 8000)
    assert "${WEB_PROCESSES:-1}" in COMPOSE.read_text()  # the setting, documented
    tier = dev.WebTier(options.web, "127.0.0.1", 0, {})
    tier.listener = socket.create_server(("127.0.0.1", 0))
    try:
        command = [str(part) for part in tier.command()]
    finally:
        tier.listener.close()
    assert command[1:4] == ["-m", "daphne", "--fd"]
    assert " ".join(dev.demo_daphne_limits()) in " ".join(command)
    assert command[-1] == "djenga_tests.asgi:application"


# -- docs/deployment.md: the process managers' configurations -------------------------------

DEPLOYMENT = ROOT / "docs" / "deployment.md"


def deployment_block(path: str) -> str:
    """The fenced block of docs/deployment.md whose first line names ``path``."""
    for block in re.findall(r"```\w*\n(.*?)```", DEPLOYMENT.read_text(), re.S):
        first, _, body = block.partition("\n")
        if first.lstrip("#; ").strip() == path:
            return body
    raise LookupError(f"docs/deployment.md has no block for {path}")


def ini(text: str) -> configparser.ConfigParser:
    """An INI file as supervisord or systemd reads it (systemd joins lines ending in \\)."""
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string(re.sub(r"\\\n\s*", "", text))
    return parser


SOCKET_UNIT = "/etc/systemd/system/djenga-web.socket"
SERVICE_UNIT = "/etc/systemd/system/djenga-web@.service"
SUPERVISORD = "/etc/supervisor/conf.d/djenga-web.conf"


def test_the_systemd_units_fit_together():
    socket_unit, service = ini(deployment_block(SOCKET_UNIT)), ini(deployment_block(SERVICE_UNIT))
    assert service["Service"]["Sockets"] == "djenga-web.socket"
    assert re.fullmatch(r"djenga-web@\w+\.service", socket_unit["Socket"]["Service"])
    assert re.fullmatch(r"127\.0\.0\.1:\d+", socket_unit["Socket"]["ListenStream"])  # IPv4
    assert shlex.split(service["Service"]["ExecStart"])[1:3] == ["--fd", "3"]
    assert "systemctl enable --now djenga-web.socket djenga-web@1" in DEPLOYMENT.read_text()


def test_the_supervisord_program_passes_its_socket_as_descriptor_0():
    config = ini(deployment_block(SUPERVISORD))
    (name,) = config.sections()
    program = config[name]
    assert name.startswith("fcgi-program:")
    assert program["socket"].startswith("tcp://127.0.0.1:")
    assert shlex.split(program["command"])[1:3] == ["--fd", "0"]
    assert int(program["numprocs"]) > 1 and "%(process_num)d" in program["process_name"]


def as_run_here(command: str) -> list[str]:
    """A documented daphne command line, with the example project for ``myproject``."""
    args = shlex.split(command)
    assert args[0].endswith("/bin/daphne") and args[-1] == "myproject.asgi:application"
    sys.path.insert(0, str(ROOT))
    import dev

    assert " ".join(dev.demo_daphne_limits()) in " ".join(args)  # the demo's limits
    return [*args[1:-1], "djenga_tests.asgi:application"]


async def first_frames(port: int, backend) -> list[dict]:
    """A watcher's snapshot of a new task, then one update published to it."""
    from websockets.asyncio.client import connect

    from djenga.celery.detail import TaskDetail
    from djenga.live.auth import make_token

    task_id = f"fd-{uuid.uuid4()}"
    url = f"ws://127.0.0.1:{port}/ws/djenga/tasks/{task_id}/?token={make_token(task_id)}"
    async with connect(url, origin="http://127.0.0.1:8000", open_timeout=10) as s:
        frames = [json.loads(await asyncio.wait_for(s.recv(), 20))]
        detail = TaskDetail(task_id, "fd", [(1, "Adopt the socket")])
        detail.start_step(1)
        await asyncio.to_thread(backend.publish_detail, detail)
        frames.append(json.loads(await asyncio.wait_for(s.recv(), 20)))
    return frames


@pytest.mark.parametrize(
    ("manager", "listen"),
    [("systemd", "--fd 3"), ("systemd", "-e systemd:domain=INET:index=0"),
     ("supervisord", "--fd 0")],
)  # fmt: skip
async def test_daphne_serves_the_socket_a_process_manager_passes(
    manager, listen, redis_server, web_data_dir, celery_app
):
    from djenga_tests.reliability.web import SharedSocketDaphne, listening_socket

    if manager == "systemd":
        command = ini(deployment_block(SERVICE_UNIT))["Service"]["ExecStart"]
    else:
        (name,) = (config := ini(deployment_block(SUPERVISORD))).sections()
        command = config[name]["command"]
    args = as_run_here(command)
    documented = "--fd 3" if manager == "systemd" else "--fd 0"
    args = shlex.split(" ".join(args).replace(documented, listen))
    listener = listening_socket()
    env = dict(os.environ, REDIS_URL=redis_server.url, DJENGA_DATA_DIR=web_data_dir)
    web = SharedSocketDaphne(
        env, listener.fileno(), f"daphne-{manager}", args=args,
        child_fd=3 if manager == "systemd" else 0, systemd=manager == "systemd",
    )  # fmt: skip
    try:
        await asyncio.to_thread(web.start)
        frames = await first_frames(listener.getsockname()[1], celery_app.backend)
    finally:
        await asyncio.to_thread(web.stop)
        listener.close()
    assert [f["state"] for f in frames] == ["PENDING", "PROGRESS"]
    assert frames[1]["steps"][0]["state"] == "running"


def test_the_demo_web_tier_runs_n_daphne_on_one_socket_and_replaces_one_that_dies(
    redis_server, web_data_dir
):
    """``dev.py demo --web 2`` / ``serve-web --web 2``: one listening socket, two daphne
    processes holding it, any of them answering; a killed one is started again."""
    import urllib.request

    sys.path.insert(0, str(ROOT))
    import dev

    env = dict(os.environ, REDIS_URL=redis_server.url, DJENGA_DATA_DIR=web_data_dir)
    tier = dev.WebTier(2, "127.0.0.1", 0, env)
    tier.MIN_UPTIME = 0  # replace it even though it dies young
    tier.start()
    try:
        inode = os.fstat(tier.listener.fileno()).st_ino
        port = tier.listener.getsockname()[1]

        def holders() -> set[int]:
            return {
                child.pid
                for child in tier.processes
                if any(
                    os.readlink(f"/proc/{child.pid}/fd/{fd}") == f"socket:[{inode}]"
                    for fd in os.listdir(f"/proc/{child.pid}/fd")
                )
            }

        assert len(holders()) == 2
        for _ in range(4):  # connections queue on the socket until a process accepts
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).status == 200
        killed = tier.processes[0].process
        killed.kill()  # SIGKILL to its pid, as a crash would
        killed.wait(timeout=10)
        assert tier.keep_up() is True
        assert killed.pid not in {child.pid for child in tier.processes}
        assert len(holders()) == 2
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=60).status == 200
    finally:
        tier.stop()
    assert tier.listener is None
