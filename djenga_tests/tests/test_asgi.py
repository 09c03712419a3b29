"""djenga.asgi.lifespan and the relay's one gc.freeze() per process (djenga.live.collector)."""

from __future__ import annotations

import os
import subprocess
import sys

from asgiref.testing import ApplicationCommunicator

from .fixtures import ROOT

# In a process of its own: this one does not freeze (see no_gc_freeze_in_the_test_process).
FIRST_WATCHER = """
import asyncio, gc, django
django.setup()
from djenga.live.hub import get_hub

async def main():
    before = gc.get_freeze_count()
    get_hub()  # what the first consumer of a process does
    first = gc.get_freeze_count()
    get_hub()
    print(before, first, gc.get_freeze_count())

asyncio.run(main())
"""

LIFESPAN = """
import asyncio, gc
from asgiref.testing import ApplicationCommunicator
from djenga_tests.asgi import application

async def main():
    talk = ApplicationCommunicator(application, {"type": "lifespan", "asgi": {"version": "3.0"}})
    await talk.send_input({"type": "lifespan.startup"})
    started = await talk.receive_output(5)
    frozen = gc.get_freeze_count()
    await talk.send_input({"type": "lifespan.shutdown"})
    print(started["type"], frozen > 0, (await talk.receive_output(5))["type"])

asyncio.run(main())
"""


def run_python(code: str, redis_url: str, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="djenga_tests.settings",
                 REDIS_URL=redis_url, **env),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_web_process_freezes_its_start_up_objects_once_at_its_first_watcher(redis_server):
    before, first, second = map(int, run_python(FIRST_WATCHER, redis_server.url))
    assert before == 0 and first > 10_000  # Django, Channels, redis-py, the project…
    assert second == first  # once: later objects are the collector's again


def test_djenga_gc_freeze_false_leaves_the_collector_alone(redis_server):
    assert run_python(FIRST_WATCHER, redis_server.url, DJENGA_GC_FREEZE="False") == ["0"] * 3


def test_the_lifespan_entry_completes_start_up_and_shutdown(redis_server):
    started, frozen, stopped = run_python(LIFESPAN, redis_server.url)
    assert (started, stopped) == ("lifespan.startup.complete", "lifespan.shutdown.complete")
    assert frozen == "True"


async def test_the_example_router_answers_lifespan_in_this_process():
    from djenga_tests.asgi import application

    talk = ApplicationCommunicator(application, {"type": "lifespan", "asgi": {"version": "3.0"}})
    await talk.send_input({"type": "lifespan.startup"})
    assert await talk.receive_output(5) == {"type": "lifespan.startup.complete"}
    await talk.send_input({"type": "lifespan.shutdown"})
    assert await talk.receive_output(5) == {"type": "lifespan.shutdown.complete"}
    await talk.wait(5)  # the application returned: the server may exit
