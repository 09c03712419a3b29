"""The relay and the widget under every ASGI server of djenga_tests.servers (daphne,
uvicorn with websockets-sansio and wsproto, hypercorn, granian): a real server process,
a real worker, real sockets and a real Chromium. What passes here is what
docs/deployment.md ("Other ASGI servers") supports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_widget import RECORD_EVENTS, mount, wait_final
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from djenga.celery.results import AsyncDetailedResult
from djenga.live.auth import make_token
from djenga.testing.processes import ManagedProcess
from djenga.testing.redis_server import free_port
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon
from djenga_tests.servers import APP, SERVERS
from djenga_tests.tests.fixtures import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("celery_worker")]

ORIGIN = "http://127.0.0.1:8000"


class Served(ManagedProcess):
    """One ASGI server process serving the example project, stopped by its pid."""

    def __init__(self, name: str, redis_url: str, data_dir: str) -> None:
        self.name, self.port = name, free_port()
        self.log = Path(data_dir, f"{name.replace(' ', '-')}.log")
        env = dict(os.environ, REDIS_URL=redis_url, DJENGA_DATA_DIR=data_dir, PYTHONUNBUFFERED="1")
        sys.path.insert(0, str(ROOT))  # dev.py, for daphne's limits
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                SERVERS[name](APP, self.port), cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{name} did not start:\n{self.log.read_text()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, task_id: str, **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"ws://127.0.0.1:{self.port}/ws/djenga/tasks/{task_id}/?{query}"


@pytest.fixture(scope="module", params=list(SERVERS))
def served(request, redis_server, web_data_dir) -> Iterator[Served]:
    server = Served(request.param, redis_server.url, web_data_dir)
    yield server
    server.stop()


def watch(url: str, timeout: float = 30) -> tuple[list[dict], int | None]:
    """Every message until the server closes, and its close code."""
    messages = []
    with connect(url, origin=ORIGIN, open_timeout=10, close_timeout=5) as ws:
        try:
            while True:
                messages.append(json.loads(ws.recv(timeout=timeout)))
        except ConnectionClosed:
            pass
        return messages, ws.close_code


def test_a_watcher_gets_every_step_then_the_exact_final_state_and_1000(served):
    sent = tasks.steal_the_moon_declared.delay(Gru(pace=0.1), Moon())
    messages, code = watch(served.ws(sent.id, token=make_token(sent.id)))
    stored = AsyncDetailedResult(sent.id).details()
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(set(seqs)), seqs
    assert messages[-1]["state"] == "SUCCESS" and messages[-1]["seq"] == stored["seq"]
    assert code == 1000


def test_resume_gets_the_missed_events_then_the_final_snapshot(served):
    sent = tasks.steal_the_moon.delay(Gru(), Moon())
    sent.get(timeout=20)
    done = AsyncDetailedResult(sent.id).details()
    url = served.ws(sent.id, token=make_token(sent.id), seq="3", epoch=done["epoch"])
    messages, code = watch(url)
    recovery, snapshot = messages
    assert recovery["type"] == "recovery" and recovery["recovered"] is True
    seqs = [event["seq"] for event in recovery["events"]]
    assert seqs[0] == 4 and seqs[-1] == done["seq"]
    assert snapshot["seq"] == done["seq"] and snapshot["state"] == "SUCCESS"
    assert code == 1000


def test_a_forged_token_is_refused_with_4403_after_accept(served):
    messages, code = watch(served.ws("somebody-elses-task", token="forged"))
    assert (messages, code) == ([], 4403)


def test_a_cross_origin_handshake_is_refused(served):
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(served.ws("any-task"), origin="http://evil.example", open_timeout=10),
    ):
        pass
    assert refused.value.response.status_code == 403


def test_the_demo_page_shows_the_task_to_its_end(page, served):
    page.add_init_script(RECORD_EVENTS)
    page.goto(served.url + "/")
    page.get_by_role("button", name="Steal the moon").click()
    page.wait_for_url("**/?task=*")
    snapshot = wait_final(page)
    assert snapshot["state"] == "SUCCESS"
    events = page.evaluate("() => window.__djenga")
    assert events[-1]["name"] == "djenga:done"
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"


def test_the_widget_ends_on_the_stored_state(page, served):
    sent = tasks.steal_the_moon_declared.delay(Gru(pace=0.2), Moon())
    mount(page, served.url, sent.id)
    snapshot = wait_final(page)
    assert snapshot["seq"] == AsyncDetailedResult(sent.id).details()["seq"]
    assert page.locator("djenga-task-progress").get_attribute("data-connection") != "polling"
