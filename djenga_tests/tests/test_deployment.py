"""docker-compose.yml (no Docker engine here): valid against the Compose spec, and coherent."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

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
