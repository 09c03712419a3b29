"""Shared fixtures: a real Redis/Valkey server process and a real in-process Celery worker."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from djenga.conf import reset_settings
from djenga.testing import RedisServer


@dataclass
class RedisHandle:
    """The Redis the tests talk to: ours (``server``) or the one ``REDIS_URL`` names."""

    url: str
    server: RedisServer | None

    @property
    def detail_url(self) -> str:
        return "redisd://" + self.url.split("://", 1)[1]


def point_project_at(url: str) -> None:
    """Point the example project (Django settings, Celery app, subprocesses) at ``url``."""
    from djenga_tests.celery import app

    detail_url = "redisd://" + url.split("://", 1)[1]
    os.environ["REDIS_URL"] = url
    settings.REDIS_URL = url
    settings.CELERY_BROKER_URL = url
    settings.CELERY_RESULT_BACKEND = detail_url
    reset_settings()
    app.conf.update(broker_url=url, result_backend=detail_url)
    app._local.__dict__.pop("backend", None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisHandle]:
    """A real server: REDIS_URL if set, else one we start on a free port and stop by pid."""
    external = os.environ.get("REDIS_URL")
    if external:
        handle = RedisHandle(external, None)
        point_project_at(external)
        yield handle
        return
    server = RedisServer().start()
    try:
        handle = RedisHandle(server.url(15), server)
        point_project_at(handle.url)
        yield handle
    finally:
        # Results unsubscribe from Redis when collected: collect them while it still runs,
        # or each waits out Celery's 20 reconnect attempts at exit.
        gc.collect()
        server.close()


@pytest.fixture(scope="session")
def celery_app(redis_server: RedisHandle):
    from djenga_tests import tasks  # noqa: F401  (registers the example tasks)
    from djenga_tests.celery import app

    app.loader.import_module("celery.contrib.testing.tasks")
    return app


@pytest.fixture(scope="session")
def celery_worker(celery_app):
    """A real Celery worker in this process (thread pool, so tests can run tasks side by side)."""
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=True,
        shutdown_timeout=15,
        loglevel="WARNING",
    ) as worker:
        yield worker


@pytest.fixture
def redis_client(redis_server: RedisHandle):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()
