"""manage.py watch_task as a subprocess against live tasks: output and exit codes."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid

import pytest

from djenga.celery.detail import TaskDetail
from djenga.wire import TaskState
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

from .fixtures import ROOT

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


def watch(redis_server, *args: str, redis_url: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, REDIS_URL=redis_url or redis_server.url, COLUMNS="100")
    if redis_url:  # that server alone, even when the suite runs behind Sentinel
        env.pop("SENTINEL_MASTER", None)
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


def test_an_unknown_id_exits_1_after_a_short_grace(redis_server):
    # Issue 9: a well-formed id nobody ever sent used to wait at PENDING forever.
    done = watch(redis_server, "not-a-task")
    assert done.returncode == 1, done.stderr
    assert "task not-a-task is unknown" in done.stderr
    assert "after 10 s" in done.stderr and "Traceback" not in done.stderr


def test_a_task_sent_while_waiting_for_its_id_is_followed(redis_server):
    task_id = str(uuid.uuid4())
    env = dict(os.environ, REDIS_URL=redis_server.url, COLUMNS="100")
    watcher = subprocess.Popen(
        [sys.executable, "manage.py", "watch_task", task_id, "--grace", "60", "--json"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watcher.stdout.readline()  # its first line: it is waiting, the id unknown
        tasks.steal_the_moon.apply_async((Gru(), Moon()), task_id=task_id)  # no declared steps
        output, errors = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
    assert watcher.returncode == 0, errors
    assert json.loads(output.splitlines()[-1])["state"] == "SUCCESS"


def test_unreachable_redis_is_one_clear_line_naming_the_url_and_setting(redis_server):
    from djenga.testing.redis_server import free_port

    url = f"redis://127.0.0.1:{free_port()}/15"  # nothing listens there
    for args in (["some-task"], ["some-task", "--json"]):
        done = watch(redis_server, *args, redis_url=url)
        assert done.returncode == 3, done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
        [line] = done.stderr.splitlines()
        assert f"cannot reach Redis at redisd://{url.split('://')[1]}" in line
        assert "CELERY_RESULT_BACKEND" in line


def test_piped_output_prints_one_line_per_update_as_it_comes(redis_server, celery_app):
    """The test plays the worker (djenga's real backend and Redis), so it decides when the
    task moves on: each line must arrive while the task is still running."""
    task_id = str(uuid.uuid4())
    backend = celery_app.backend
    detail = TaskDetail(task_id, "gru.by_hand", [(1, "Fly to the moon"), (2, "Land")])
    detail.start(worker="the test")
    detail.update_step(1, "taking off")
    backend.publish_detail(detail)
    env = dict(os.environ, REDIS_URL=redis_server.url, COLUMNS="100")
    watcher = subprocess.Popen(
        [sys.executable, "manage.py", "watch_task", task_id],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in watcher.stdout])
    reader.daemon = True
    reader.start()

    def next_line() -> str:
        try:
            return lines.get(timeout=60)
        except queue.Empty:
            raise AssertionError("watch_task printed nothing while the task ran") from None

    try:
        first = next_line()
        assert "PROGRESS" in first and "step 1/2 Fly to the moon — taking off" in first
        assert "\x1b" not in first  # plain text, no terminal codes
        detail.update_step(1, "over the clouds")
        backend.publish_detail(detail)
        assert "over the clouds" in next_line()
        detail.start_step(2)
        backend.publish_detail(detail)
        assert "step 2/2 Land" in next_line()
        detail.end_step()
        detail.finish(TaskState.SUCCESS)
        backend.publish_detail(detail)
        last = next_line()
        assert "SUCCESS" in last and "100%" in last
        assert watcher.wait(timeout=60) == 0
        reader.join(timeout=60)
        summary = [lines.get_nowait().strip() for _ in range(lines.qsize())]
        assert summary[0].startswith("✓ Fly to the moon — over the clouds")
        assert summary[1].startswith("✓ Land")
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait()


def test_the_rich_view_puts_the_bar_on_its_own_line():
    from rich.console import Console

    from djenga.management.commands.watch_task import render

    snapshot = {
        "name": "gru.steal_the_moon", "state": "PROGRESS", "percent": 62.5, "current": 2,
        "steps": [
            {"key": 1, "state": "done", "description": "Fly to the moon", "duration": 1.0},
            {"key": 2, "state": "running", "description": "Shrink the moon", "duration": 0.2},
        ],
    }  # fmt: skip
    console = Console(width=100, force_terminal=True, color_system=None)
    with console.capture() as captured:
        console.print(render(snapshot, "t-1"))
    lines = captured.get().splitlines()
    assert lines[0].startswith("gru.steal_the_moon t-1  PROGRESS  62%")
    assert set(lines[1].strip()) <= set("━╸╺ ")  # the bar, and nothing else
    assert lines[2].startswith("✓ Fly to the moon") and lines[3].startswith("… Shrink the moon")


def test_a_nested_task_prints_its_running_path_and_its_sub_steps_indented(redis_server):
    name = f"nested-{uuid.uuid4()}"
    sent = tasks.nested_export.delay(rows=2, gate_name=name)  # waits in 1.2 until the gate opens
    env = dict(os.environ, REDIS_URL=redis_server.url, COLUMNS="100")
    watcher = subprocess.Popen(
        [sys.executable, "manage.py", "watch_task", sent.id],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for line in watcher.stdout:
            if "row 2 of 2" in line:  # piped: one line per update, naming the running path
                assert "step 1/2 Export the orders > Write the CSV file — row 2 of 2" in line
                break
        tasks.gate(name).set()
        rest, _errors = watcher.communicate(timeout=60)
        assert watcher.returncode == 0
    finally:
        tasks.gate(name).set()
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait()
    outcome = rest.splitlines()[-5:]  # then every step's outcome, indented under its parent
    assert outcome[0].startswith("  ✓ Export the orders")
    assert outcome[1].startswith("    ✓ Query the database")
    assert outcome[2].startswith("    ✓ Write the CSV file — row 2 of 2 (2/2)")
    assert outcome[3].startswith("      ✓ Compress the file")
    assert outcome[4].startswith("  ✓ Mail the link")


def test_the_cancel_key_cancels_the_task_being_watched(redis_server):
    """stdin a real terminal (a pty): pressing c cancels; the task ends REVOKED, exit 1."""
    import pty

    from djenga.celery.results import AsyncDetailedResult

    sent = tasks.export_rows.delay(200, 30.0)
    result = AsyncDetailedResult(sent.id)
    deadline = time.monotonic() + 20
    while result.details()["current"] != 2:
        assert time.monotonic() < deadline, "the export never reached step 2"
        time.sleep(0.02)
    leader, follower = pty.openpty()
    env = dict(os.environ, REDIS_URL=redis_server.url, COLUMNS="100")
    watcher = subprocess.Popen(
        [sys.executable, "manage.py", "watch_task", sent.id, "--cancel-key"],
        cwd=ROOT, env=env, stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    os.close(follower)
    try:
        deadline = time.monotonic() + 30
        while result.details().get("cancel") is None and watcher.poll() is None:
            assert time.monotonic() < deadline, "pressing c did not cancel"
            os.write(leader, b"c")
            time.sleep(0.3)
        _out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
        os.close(leader)
    assert watcher.returncode == 1, err
    assert "press c to cancel the task" in err and "cancel: requested" in err
    details = result.details()
    assert details["state"] == "REVOKED" and details["cancel"]["by"].endswith("(watch_task)")


def test_retry_note_counts_down_to_the_due_time_and_never_past_the_delay():
    from djenga.management.commands.watch_task import retry_note

    waiting = {"state": "RETRY", "retry_at": 1_000.0, "retry_in": 12.0}
    assert retry_note(waiting, now=990.2) == "next attempt in 10 s"
    assert retry_note(waiting, now=900.0) == "next attempt in 12 s"  # a clock behind the worker's
    assert retry_note(waiting, now=1_005.0) == "next attempt in 0 s"
    assert retry_note({"state": "RETRY"}) is None  # an eager retry has no due time
    assert retry_note({**waiting, "state": "PROGRESS"}) is None


def test_a_retrying_task_says_when_its_next_attempt_is_due(redis_server):
    sent = tasks.retry_later.delay(3.0)  # fails once, retries in 3 s, then succeeds
    env = dict(os.environ, REDIS_URL=redis_server.url, COLUMNS="100")
    watcher = subprocess.run(
        [sys.executable, "manage.py", "watch_task", sent.id, "--timeout", "60"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert watcher.returncode == 0, watcher.stderr
    retrying = [line for line in watcher.stdout.splitlines() if "  RETRY  " in line]
    assert retrying and "next attempt in " in retrying[0]
    assert int(retrying[0].split("next attempt in ")[1].split()[0]) <= 3
