"""Every example of the seed document, run as written against a real Redis and real workers.

The two app forms live verbatim in djenga_tests/seed/ and run in real worker processes
(one in-process test worker at a time is all Celery's test helper allows).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys

import pytest

from djenga.celery.results import AsyncDetailedResult
from djenga.celery.tasks import DetailTask

from .fixtures import ROOT

pytestmark = pytest.mark.backend


@pytest.fixture
def seed_module(redis_server, request):
    """Import a seed form (its MyCeleryApp() makes itself current, as Celery apps do) and
    run a real worker process for it; restore the project's app afterwards."""
    from djenga_tests.celery import app as project_app

    name = f"djenga_tests.seed.{request.param}"
    module = importlib.import_module(name)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", name, "worker", "--pool", "solo",
         "-l", "INFO", "-n", f"{request.param}@%h"],
        cwd=ROOT, env=dict(os.environ, REDIS_URL=redis_server.url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield module
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=20)
    project_app.set_current()
    assert worker.returncode == 0, output
    assert "celery rocks!" in output


@pytest.mark.parametrize("seed_module", ["first_form", "second_form"], indirect=True)
def test_seed_app_forms_run_my_cool_task(seed_module):
    sent = seed_module.my_cool_task.delay()
    assert sent.get(timeout=30) is None
    details = AsyncDetailedResult(sent.id, app=seed_module.app).details()
    assert details["state"] == "SUCCESS"
    assert (
        details["name"]
        == "djenga_tests.seed." + seed_module.__name__.rsplit(".", 1)[1] + ".my_cool_task"
    )
    assert isinstance(seed_module.my_cool_task, DetailTask)
    behind_sentinel = bool(os.environ.get("SENTINEL_MASTER"))  # DJENGA_TEST_TOPOLOGY=sentinel
    assert type(seed_module.app.backend).__name__ == (
        "SentinelDetailBackend" if behind_sentinel else "RedisDetailBackend"
    )
    default_is_detail = seed_module.__name__.endswith("first_form")
    assert isinstance(seed_module.no_base_given, DetailTask) is default_is_detail


def test_string_base_and_declared_steps_on_the_project_app():
    """`base='djenga.celery.tasks.DetailTask'` and `steps=[...]` with the project's app."""
    from djenga_tests.tasks import steal_the_moon, steal_the_moon_declared

    assert isinstance(steal_the_moon, DetailTask)
    assert steal_the_moon.name == "gru.steal_the_moon"
    assert steal_the_moon_declared.steps == [
        (1, "Fly to the moon"),
        (2, "Shrink the moon"),
        (3, "Grab the moon"),
        (4, "Sit on the toilet"),
    ]


def test_plain_celery_cannot_take_a_string_base():
    """Why DjengaCelery exists: plain Celery fails on the seed's string base."""
    from celery import Celery

    app = Celery(set_as_current=False)
    with pytest.raises(TypeError, match="metaclass conflict"):

        @app.task(bind=True, base="djenga.celery.tasks.DetailTask", shared=False)
        def nope(self):
            pass

        nope.name
