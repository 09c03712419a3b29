"""manage.py watch_task as a subprocess against live tasks: output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

from .fixtures import ROOT

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


def watch(redis_server, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, REDIS_URL=redis_server.url, COLUMNS="100")
    return subprocess.run(
        [sys.executable, "manage.py", "watch_task", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_watching_a_live_task_shows_its_steps_and_exits_0(redis_server):
    sent = tasks.steal_the_moon_declared.delay(Gru(pace=0.3), Moon())
    done = watch(redis_server, sent.id)
    assert done.returncode == 0, done.stderr
    for text in ("Fly to the moon", "Sit on the toilet", "SUCCESS", "100%", "flying to the moon"):
        assert text in done.stdout


def test_a_failing_task_exits_1_and_shows_the_error(redis_server):
    sent = tasks.fail_at_step.delay(2)
    done = watch(redis_server, sent.id)
    assert done.returncode == 1
    assert "FAILURE" in done.stdout and "ValueError: the moon is too heavy" in done.stdout


def test_json_lines(redis_server):
    sent = tasks.wait_in_step.delay(0.3)
    done = watch(redis_server, sent.id, "--json")
    assert done.returncode == 0
    snapshots = [json.loads(line) for line in done.stdout.splitlines()]
    assert snapshots[-1]["state"] == "SUCCESS"
    assert [s["seq"] for s in snapshots] == sorted(s["seq"] for s in snapshots)


def test_timeout_exits_2(redis_server):
    done = watch(redis_server, "never-sent-task", "--timeout", "0.5")
    assert done.returncode == 2
    assert "gave up after 0.5 s" in done.stderr


def test_bad_task_id(redis_server):
    done = watch(redis_server, "not a task id")
    assert done.returncode == 1 and "is not a valid task id" in done.stderr
