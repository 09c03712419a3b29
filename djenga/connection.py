"""Where the web process finds Redis: one URL (from settings), its key names, its clients."""

from __future__ import annotations

import functools
from typing import Any

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.connection import parse_url

from . import store
from .celery.backends import DETAIL_SCHEMES, to_redis_url
from .conf import get_settings
from .keys import RedisNames
from .wire import Snapshot


def redis_url() -> str:
    """``DJENGA_REDIS_URL``, else ``CELERY_RESULT_BACKEND`` as a plain redis:// URL."""
    url = get_settings().REDIS_URL
    if url:
        return url
    backend = getattr(settings, "CELERY_RESULT_BACKEND", None)
    if isinstance(backend, str) and backend.partition("://")[0] in DETAIL_SCHEMES:
        return to_redis_url(backend)
    raise ImproperlyConfigured(
        f"djenga cannot tell which Redis to read: DJENGA_REDIS_URL is not set and "
        f"CELERY_RESULT_BACKEND is {backend!r}, not a redisd:// URL. Set one of them."
    )


def redis_names(url: str | None = None) -> RedisNames:
    """The key builder for the database of ``url`` (default: :func:`redis_url`)."""
    url = url or redis_url()
    db = parse_url(url).get("db", 0) if "://" in url else 0
    return RedisNames(get_settings().KEY_PREFIX, int(db or 0))


@functools.cache
def _sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def sync_client() -> redis.Redis:
    """A process-wide synchronous client (its own pool) for the web process."""
    return _sync_client(redis_url())


def read_snapshot(task_id: str) -> Snapshot:
    """The stored snapshot of a task, or a PENDING one with no steps."""
    return read_snapshots([task_id])[0]


def read_snapshots(task_ids: list[str]) -> list[Snapshot]:
    """Snapshots of several tasks in one round trip, in order (PENDING for unknown ones)."""
    return store.read_snapshots(sync_client(), redis_names(), task_ids)


def read_recent(limit: int) -> list[Snapshot]:
    """Snapshots of the ``limit`` most recently updated tasks, newest first."""
    ids = [i.decode() for i in sync_client().zrevrange(redis_names().recent(), 0, limit - 1)]
    return [s for s in read_snapshots(ids) if s.get("seq")]


def read_events(task_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
    """The task's logged events with seq > ``after_seq``, oldest first."""
    return store.read_events(sync_client(), redis_names(), task_id, after_seq)
