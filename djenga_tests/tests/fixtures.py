"""Shared fixtures: real Redis/Valkey, an in-process Celery worker, daphne subprocesses."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from djenga.conf import reset_settings
from djenga.testing import RedisServer
from djenga.testing.processes import ManagedProcess
from djenga.testing.sentinel import SentinelSetup

ROOT = Path(__file__).resolve().parents[2]


#: ``DJENGA_TEST_TOPOLOGY=sentinel`` runs the tests behind Sentinel: a master, a replica
#: and three sentinels, with the backend on ``sentineld://`` and the broker on
#: ``sentinel://`` (the tests' own client still talks to the master directly).
TOPOLOGY_ENV = "DJENGA_TEST_TOPOLOGY"


@pytest.fixture(scope="session", autouse=True)
def no_gc_freeze_in_the_test_process() -> None:
    """djenga freezes a web process's start-up objects out of the garbage collector at
    its first watcher (DJENGA_GC_FREEZE): not this process's, which must go on collecting
    what its tests leave behind. The daphne processes it starts keep the default."""
    settings.DJENGA_GC_FREEZE = False
    reset_settings()


@dataclass
class RedisHandle:
    """The Redis the tests talk to: ours (``server``) or the one ``REDIS_URL`` names."""

    url: str
    server: RedisServer | None
    sentinel: SentinelSetup | None = None

    @property
    def detail_url(self) -> str:
        if self.sentinel is not None:
            return self.sentinel.url(15, "sentineld")
        return "redisd://" + self.url.split("://", 1)[1]

    @property
    def broker_url(self) -> str:
        return self.sentinel.url(15, "sentinel") if self.sentinel is not None else self.url


def point_project_at(url: str, sentinel: SentinelSetup | None = None) -> None:
    """Point the example project (Django settings, Celery app, subprocesses) at ``url``,
    or at the master behind ``sentinel``."""
    from djenga_tests.celery import app

    handle = RedisHandle(url, None, sentinel)
    os.environ["REDIS_URL"] = url
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = handle.broker_url
    settings.CELERY_RESULT_BACKEND = handle.detail_url
    conf = {"broker_url": handle.broker_url, "result_backend": handle.detail_url}
    if sentinel is not None:
        os.environ.update(
            SENTINEL_BROKER_URL=handle.broker_url,
            SENTINEL_BACKEND_URL=handle.detail_url,
            SENTINEL_MASTER=sentinel.master_name,
        )
        options = sentinel.transport_options
        settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = options
        conf.update(
            result_backend_transport_options=options,
            broker_transport_options={**app.conf.broker_transport_options, **options},
        )
    reset_settings()
    app.conf.update(**conf)
    app._local.__dict__.pop("backend", None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisHandle]:
    """A real server: REDIS_URL if set, else one we start on a free port and stop by pid
    (behind Sentinel with ``DJENGA_TEST_TOPOLOGY=sentinel``)."""
    external = os.environ.get("REDIS_URL")
    if external:
        handle = RedisHandle(external, None)
        point_project_at(external)
        yield handle
        return
    topology = os.environ.get(TOPOLOGY_ENV, "standalone")
    sentinel = SentinelSetup().start() if topology == "sentinel" else None
    server = sentinel.master if sentinel is not None else RedisServer().start()
    try:
        handle = RedisHandle(server.url(15), server, sentinel)
        point_project_at(handle.url, sentinel)
        yield handle
    finally:
        # Results unsubscribe from Redis when collected: collect them while it still runs,
        # or each waits out Celery's 20 reconnect attempts at exit.
        gc.collect()
        if sentinel is not None:
            sentinel.close()
        else:
            server.close()


@pytest.fixture(scope="session")
def celery_app(redis_server: RedisHandle):
    from djenga_tests import tasks  # noqa: F401  (registers the example tasks)
    from djenga_tests.celery import app

    app.loader.import_module("celery.contrib.testing.tasks")
    return app


@pytest.fixture(scope="session")
def celery_worker(celery_app, tmp_path_factory):
    """A real Celery worker in this process (thread pool, so tests can run tasks side by side).

    Its log goes to a file: the tracebacks of tasks that fail on purpose would otherwise
    land between pytest's progress dots, printed after their test ended.
    """
    logfile = tmp_path_factory.mktemp("worker") / "worker.log"
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=True,
        shutdown_timeout=15,
        loglevel="WARNING",
        logfile=str(logfile),
    ) as worker:
        yield worker


@pytest.fixture
def redis_client(redis_server: RedisHandle):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


class Daphne(ManagedProcess):
    """A real daphne process serving the example project, stopped by its pid."""

    def __init__(self, redis_url: str, data_dir: str, port: int | None = None) -> None:
        from djenga.testing.redis_server import free_port

        self.port = port or free_port()
        self.env = dict(
            os.environ, REDIS_URL=redis_url, DJENGA_DATA_DIR=data_dir, PYTHONUNBUFFERED="1"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Daphne:
        sys.path.insert(0, str(ROOT))
        from dev import demo_daphne_limits  # the demo's and compose file's daphne limits

        with Path(self.env["DJENGA_DATA_DIR"], "daphne.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                 *demo_daphne_limits(), "djenga_tests.asgi:application"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("daphne did not start")


@pytest.fixture(scope="session")
def web_data_dir(redis_server, tmp_path_factory) -> str:
    """A migrated database for daphne subprocesses."""
    data_dir = str(tmp_path_factory.mktemp("web-data"))
    env = dict(os.environ, REDIS_URL=redis_server.url, DJENGA_DATA_DIR=data_dir)
    for command in (["migrate", "--noinput", "-v", "0"], ["demo_user"]):  # staff: admin / admin
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True)
    return data_dir


@pytest.fixture(scope="session")
def daphne(redis_server, web_data_dir) -> Iterator[Daphne]:
    """One daphne for the session's browser tests."""
    server = Daphne(redis_server.url, web_data_dir).start()
    yield server
    server.stop()
