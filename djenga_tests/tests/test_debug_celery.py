"""manage.py debug_celery: clear errors for a bad setting; a real worker for a good one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "DJENGA_CELERY_MODULE is None: set it to the module that creates your Celery app"),
        ("no.such.module", "DJENGA_CELERY_MODULE is 'no.such.module', which cannot be imported"),
        ("djenga.conf", "DJENGA_CELERY_MODULE is 'djenga.conf', but no Celery app was found in it"),
    ],
)
def test_bad_setting_is_a_command_error_naming_it(value, message):
    with override_settings(DJENGA_CELERY_MODULE=value), pytest.raises(CommandError) as caught:
        call_command("debug_celery")
    assert str(caught.value).startswith(message)


@pytest.mark.backend
def test_good_setting_runs_a_worker_that_runs_a_task(redis_server, celery_app):
    from djenga_tests import tasks

    queue = "debug-celery-test"
    env = dict(os.environ, REDIS_URL=redis_server.url, PYTHONUNBUFFERED="1")
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "debug_celery", "--", "-Q", queue, "-n", "debug@%h"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        sent = tasks.plain.apply_async((21,), queue=queue)
        assert sent.get(timeout=30) == 42
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown, by the pid we started
        try:
            output, _ = worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
    assert worker.returncode == 0, output
    assert "concurrency: 1 (solo)" in output  # the debugger-friendly pool, one at a time
    assert "Task gru.plain[" in output  # the worker logged running the task


def test_autoreload_option_is_offered():
    from djenga.management.commands.debug_celery import Command

    parser = Command().create_parser("manage.py", "debug_celery")
    assert "--autoreload" in parser.format_help()


@pytest.mark.backend
def test_autoreload_restarts_the_worker_when_code_changes(redis_server, tmp_path):
    env = dict(os.environ, REDIS_URL=redis_server.url, PYTHONUNBUFFERED="1")
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "debug_celery", "--autoreload", "--",
             "-Q", "autoreload-test", "-n", "autoreload@%h"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    watched = ROOT / "djenga_tests" / "minions.py"
    try:
        wait_for_text(log, "ready.", count=1)
        os.utime(watched)  # a code change, as far as the reloader can tell
        wait_for_text(log, "changed, reloading", count=1)
        wait_for_text(log, "ready.", count=2)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def wait_for_text(log, text: str, count: int, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text().count(text) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} x{count} not in the worker's output:\n{log.read_text()}")
