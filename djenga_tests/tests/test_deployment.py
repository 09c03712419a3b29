"""docker-compose.yml (no Docker engine here): valid against the Compose spec, and coherent."""

from __future__ import annotations

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
    assert "djenga_tests.asgi:application" in services["web"]["command"]
    assert services["worker"]["command"][:3] == ["celery", "-A", "djenga_tests"]
    assert (ROOT / "Dockerfile").exists()


def test_daphne_limits_match_the_demo():
    sys.path.insert(0, str(ROOT))
    import dev

    command = " ".join(yaml.safe_load(COMPOSE.read_text())["services"]["web"]["command"].split())
    assert " ".join(dev.demo_daphne_limits()) in command
