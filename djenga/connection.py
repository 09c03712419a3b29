"""Where the web process finds Redis: one URL (from settings), its key names, its client and
its :class:`~djenga.store.TaskStore`, through which the views read.

The URL is a server's (``redis://``, ``rediss://``, ``unix://``) or, behind Sentinel, the
sentinels' (``sentinel://h:p/db;sentinel://h2:p/db``, as Celery's backend takes it), with the
master named in ``CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS`` (:func:`transport_options`)."""

from __future__ import annotations

import functools
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.connection import parse_url

from . import clients
from .celery.backends import DETAIL_SCHEMES, to_redis_url
from .conf import get_settings
from .keys import RedisNames
from .store import TaskStore
from .wire import Snapshot


def redis_url() -> str:
    """``DJENGA_REDIS_URL``, else ``CELERY_RESULT_BACKEND`` as a plain redis:// (or
    sentinel://) URL."""
    url = get_settings().REDIS_URL
    if url:
        return url
    backend = getattr(settings, "CELERY_RESULT_BACKEND", None)
    if isinstance(backend, str) and backend.partition("://")[0] in DETAIL_SCHEMES:
        return to_redis_url(backend)
    raise ImproperlyConfigured(
        f"djenga cannot tell which Redis to read: DJENGA_REDIS_URL is not set and "
        f"CELERY_RESULT_BACKEND is {backend!r}, not a redisd:// or sentineld:// URL. "
        "Set one of them."
    )


def transport_options() -> dict[str, Any]:
    """Celery's result backend transport options (``master_name`` and ``sentinel_kwargs``
    for a Sentinel URL), from ``CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS``."""
    options = getattr(settings, "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS", None)
    return dict(options) if isinstance(options, dict) else {}


def redis_names(url: str | None = None) -> RedisNames:
    """The key builder for the database of ``url`` (default: :func:`redis_url`)."""
    url = url or redis_url()
    if clients.is_sentinel_url(url):
        db: Any = clients.parse_sentinel_url(url).db
    else:
        db = parse_url(url).get("db", 0) if "://" in url else 0
    return RedisNames(get_settings().KEY_PREFIX, int(db or 0))


def sync_client_for(url: str) -> redis.Redis:
    """A new synchronous client for ``url`` (a server's or the sentinels')."""
    return clients.sync_client(url, transport_options())


def async_client_for(url: str, **kwargs: Any) -> redis.asyncio.Redis:
    """A new asyncio client for ``url``; ``kwargs`` as :func:`djenga.clients.async_client`."""
    return clients.async_client(url, transport_options(), **kwargs)


@functools.cache
def _sync_client(url: str) -> redis.Redis:
    return sync_client_for(url)


def sync_client() -> redis.Redis:
    """A process-wide synchronous client (its own pool) for the web process."""
    return _sync_client(redis_url())


@functools.cache
def _task_store(url: str) -> TaskStore:
    return TaskStore(_sync_client(url), redis_names(url))


def task_store() -> TaskStore:
    """The web process's synchronous :class:`TaskStore` (its views read through it)."""
    return _task_store(redis_url())


def read_snapshot(task_id: str) -> Snapshot:
    """The task's snapshot, with every reader's LOST and absent rules (:meth:`TaskStore.read`)."""
    return task_store().read(task_id)


def read_snapshots(task_ids: list[str]) -> list[Snapshot]:
    """:func:`read_snapshot` of several tasks in one round trip, in order."""
    return task_store().read_many(task_ids)


def read_recent(limit: int) -> list[Snapshot]:
    """Snapshots of the ``limit`` most recently updated tasks, newest first."""
    return task_store().recent(limit)


def read_events(task_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
    """The task's logged events with seq > ``after_seq``, oldest first."""
    return task_store().events(task_id, after_seq)
