"""Every reader applies the store's LOST rule: a page that polls the JSON view (the
widget's fallback when WebSockets are blocked) sees a task whose worker was SIGKILLed
turn LOST, with no WebSocket watcher whose relay hub would record it."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from djenga.live.auth import make_token

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

#: The lease TTL of the stack below, and the margin the issue allows after it.
LEASE_TTL = 3.0
MARGIN = 5.0


class Poller(threading.Thread):
    """GETs the JSON view every 0.2 s, as the widget's polling fallback does, and keeps
    each answer's state with the monotonic time it arrived."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with urllib.request.urlopen(self.url, timeout=10) as response:
                state = json.loads(response.read())["state"]
            self.seen.append((time.monotonic(), state))
            if state == "LOST":
                return
            self.stop.wait(0.2)


@pytest.mark.stack_settings(DJENGA_LEASE_TTL=str(LEASE_TTL), DJENGA_LEASE_INTERVAL="1")
def test_the_polling_json_view_turns_lost_after_its_worker_is_killed(stack):
    task_id = stack.send("gru.wait_in_step", 60)
    stack.wait_for(task_id, lambda d: d["state"] == "PROGRESS")  # before the kill only
    poller = Poller(f"{stack.web.url}/djenga/tasks/{task_id}/?token={make_token(task_id)}")
    poller.start()
    while not poller.seen:
        assert poller.is_alive(), "the JSON view did not answer"
        time.sleep(0.05)
    stack.workers[0].kill()
    killed_at = time.monotonic()
    poller.join(timeout=LEASE_TTL + MARGIN + 10)
    poller.stop.set()
    states = [state for _at, state in poller.seen]
    assert states[0] == "PROGRESS" and states[-1] == "LOST", states
    lost_at = poller.seen[-1][0]
    assert lost_at - killed_at < LEASE_TTL + MARGIN, "the JSON view did not say LOST in TTL + 5 s"
    assert set(states[:-1]) == {"PROGRESS"}  # nothing else before LOST
