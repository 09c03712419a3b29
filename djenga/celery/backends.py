"""RedisDetailBackend: Celery's Redis result backend plus djenga's step snapshots (``redisd://``)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis.asyncio
from celery.app import backends as celery_backends
from celery.backends.redis import RedisBackend, SentinelBackend
from kombu.utils.objects import cached_property
from redis.exceptions import RedisError

from .. import clients
from ..conf import get_settings
from ..errors import InvalidTaskId
from ..keys import RedisNames
from ..store import TaskStore
from ..store.cluster import async_cluster_client, cluster_store, cluster_urls
from ..wire import FINAL_STATES, Snapshot, StepState, TaskState
from .detail import Event, TaskDetail

__all__ = [
    "DETAIL_SCHEMES",
    "RedisDetailBackend",
    "SentinelDetailBackend",
    "patch_aliases",
    "to_redis_url",
]

logger = logging.getLogger(__name__)

#: djenga's URL schemes and the plain Redis schemes they stand for. ``sentineld://`` is
#: Celery's ``sentinel://`` (``sentinelds://``: the same with TLS to the master).
DETAIL_SCHEMES: dict[str, str] = {
    "redisd": "redis",
    "redisds": "rediss",
    "sentineld": "sentinel",
    "sentinelds": "sentinels",
}
#: The backend class of each of djenga's schemes.
BACKEND_PATHS: dict[str, str] = {
    "redisd": "djenga.celery.backends:RedisDetailBackend",
    "redisds": "djenga.celery.backends:RedisDetailBackend",
    "sentineld": "djenga.celery.backends:SentinelDetailBackend",
    "sentinelds": "djenga.celery.backends:SentinelDetailBackend",
}
_REPORTED_STATES = FINAL_STATES | {TaskState.RETRY}
#: States whose write retries within the backend's retry_policy (see publish_detail).
_RETRIED_STATES = _REPORTED_STATES
#: One publish in this many does the upkeep even if it is a plain update.
UPKEEP_EVERY = 64


def patch_aliases() -> None:
    """Make ``redisd://`` and ``sentineld://`` (and ``redisds://``, ``sentinelds://`` for
    TLS) available as Celery result backends.

    Idempotent. The package also registers them as ``celery.result_backends`` entry
    points, so this is only needed where entry points are not installed.
    """
    celery_backends.BACKEND_ALIASES.update(BACKEND_PATHS)


def to_redis_url(url: str) -> str:
    """``redisd://…`` → ``redis://…``, ``redisds://…`` → ``rediss://…``, and each
    ``;``-separated ``sentineld://…`` → ``sentinel://…``; other URLs unchanged."""
    return ";".join(_to_plain(chunk) for chunk in url.split(";"))


def _to_plain(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{DETAIL_SCHEMES.get(scheme, scheme)}{sep}{rest}" if sep else url


class RedisDetailBackend(RedisBackend):
    """Celery's Redis backend (results, ``.get()``, chords work as with ``redis://``) that
    also stores each step update of a detail task and publishes it, in one round trip."""

    #: Seconds between two "Redis is unreachable" warnings of one backend.
    warning_interval = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warn_lock = threading.Lock()
        self._last_warning = 0.0
        self._suppressed = 0
        self._publishes = 0

    def _params_from_url(self, url: str, defaults: dict[str, Any]) -> dict[str, Any]:
        return super()._params_from_url(to_redis_url(url), defaults)

    @property
    def names(self) -> RedisNames:
        """The key and channel builder of djenga's keys (this backend's database, or the
        cluster's with ``DJENGA_CLUSTER_URL``)."""
        return self.store.names

    @property
    def store(self) -> TaskStore:
        """The task store: every command on djenga's keys. On this backend's client, or
        with ``DJENGA_CLUSTER_URL`` on the cluster's (Celery's result stays here)."""
        return cluster_store() or self._own_store

    @cached_property
    def _own_store(self) -> TaskStore:
        names = RedisNames(get_settings().KEY_PREFIX, int(self.connparams.get("db") or 0))
        return TaskStore(self.client, names)

    def async_client(self) -> redis.asyncio.Redis:
        """A new redis.asyncio client for djenga's keys: the same server (or Sentinel
        master) and database, or the cluster (``DJENGA_CLUSTER_URL``)."""
        if cluster_urls():
            return async_cluster_client()
        if self.url:
            return clients.async_client(to_redis_url(self.url), self._transport_options)
        params = self.connparams
        return redis.asyncio.Redis(
            host=params.get("host", "localhost"),
            port=params.get("port", 6379),
            db=params.get("db", 0),
            username=params.get("username"),
            password=params.get("password"),
        )

    # -- detail snapshots ----------------------------------------------------------------

    def publish_detail(self, detail: TaskDetail) -> int | None:
        """Store the snapshot, append its unpublished events to the log, index the task
        as recent and publish it, in one round trip; return the new seq.

        A final write (SUCCESS, FAILURE, RETRY, REVOKED, LOST) retries on connection
        errors within the backend's ``retry_policy``, the bound Celery's own result
        write here has (by default 20 tries about 1 s apart; change it with
        ``result_backend_transport_options={"retry_policy": {...}}``): the snapshot must
        not stay at PROGRESS while Celery stores SUCCESS. Other updates are best-effort.

        Never raises for Redis trouble: progress reporting must not fail a task, so an
        unreachable Redis is a (rate-limited) logged warning and ``None``; the events are
        kept for the next successful publish.
        """
        task_id = detail.task_id
        if task_id is None:
            return None
        with detail.lock:
            snapshot = detail.snapshot()
            events = detail.drain_events()
        # Plain updates skip the upkeep, except every UPKEEP_EVERY-th (leases are also
        # renewed by the worker's lease thread).
        self._publishes += 1
        upkeep = self._publishes % UPKEEP_EVERY == 0
        floor = detail.seq_floor
        try:
            store, expires = self.store, self.expires  # in the try: a cluster may be away
            if snapshot.get("state") not in _RETRIED_STATES:  # the hot path: one call, no retry
                seq, cancel = store.publish_seen(
                    task_id, snapshot, events, expires=expires, upkeep=upkeep, floor=floor
                )
                if cancel is not None:
                    detail.cancel = cancel  # the task sees it at its next helper call
            else:

                def publish() -> int:
                    nonlocal floor
                    try:
                        return store.publish(
                            task_id, snapshot, events, expires=expires, upkeep=True, floor=floor
                        )
                    except (RedisError, OSError):
                        floor += 1  # it may have been applied before the connection broke
                        raise

                seq = int(self.ensure(publish, ()))
        except (RedisError, OSError) as exc:
            with detail.lock:
                detail.restore_events(events)
                detail.seq_floor = max(detail.seq_floor, floor) + 1
            self._warn_unreachable(task_id, exc)
            return None
        if seq > 0:
            with detail.lock:
                detail.seq_floor = max(detail.seq_floor, seq)
        return seq

    def get_detail_or_lost(self, task_id: str) -> Snapshot:
        """The task's snapshot as every reader sees it (:meth:`TaskStore.read`): a leased
        task whose lease expired is first recorded LOST; without a record EXPIRED if its
        tombstone is there, else PENDING."""
        return self.store.read(task_id)

    def record_durations(self, detail: TaskDetail) -> None:
        """Remember a successful run's step durations, for the ETA of later runs."""
        durations = {
            str(step.key): step.duration(0.0)
            for step in detail.walk()
            if step.state is StepState.DONE and step.ended_at is not None
        }
        if not durations or not detail.name:
            return
        try:
            self.store.record_durations(detail.name, durations)
        except InvalidTaskId:
            return
        except (RedisError, OSError) as exc:
            self._warn_unreachable(detail.task_id or "?", exc)

    def run_context(self, task_id: str, task_name: str) -> tuple[Snapshot | None, dict[str, float]]:
        """What a starting run needs to know, in one round trip: the task's previous
        snapshot (an earlier attempt under the same id) and its steps' mean durations
        over the last successful runs of ``task_name`` (keyed by ``str(step key)``)."""
        try:
            return self.store.run_context(task_id, task_name)
        except (RedisError, OSError) as exc:
            self._warn_unreachable(task_id, exc)
            return None, {}

    def get_detail(self, task_id: str) -> Snapshot | None:
        """The latest stored snapshot of the task as it is (no LOST check), or None if
        djenga has none. Readers use :meth:`get_detail_or_lost`."""
        return self.store.stored(task_id)

    def get_events(self, task_id: str, after_seq: int = 0) -> list[Event]:
        """Events of the task's log with seq > ``after_seq``, oldest first."""
        return self.store.events(task_id, after_seq)

    def finish_detail(
        self,
        task_id: str,
        state: str,
        *,
        request: Any = None,
        result: Any = None,
        traceback: str | None = None,
    ) -> None:
        """Record a final (or RETRY) state in the task's snapshot, once per state."""
        detail: TaskDetail | None = getattr(request, "djenga_detail", None)
        if detail is None:
            if not _is_detail_task(self.app, getattr(request, "task", None)):
                return
            detail = self._load_detail(task_id, getattr(request, "task", None))
            if detail is None:
                return
        error = result if isinstance(result, BaseException) else None
        with detail.lock:
            if detail.state == state:
                return
            detail.finish(state, error=error, traceback=traceback, result=result)
        self.publish_detail(detail)
        if state == TaskState.SUCCESS:
            self.record_durations(detail)

    def _load_detail(self, task_id: str, name: str | None) -> TaskDetail | None:
        try:
            snapshot = self.get_detail(task_id)
        except (RedisError, OSError) as exc:
            self._warn_unreachable(task_id, exc)
            return None
        if snapshot is None:
            return TaskDetail(task_id, name)
        return TaskDetail.from_snapshot(snapshot)

    # -- Celery hooks --------------------------------------------------------------------

    def store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        # The snapshot first: once Celery's result is stored, ``.get()`` returns, and a
        # caller reading the details next must find them final too.
        if state in _REPORTED_STATES:
            self.finish_detail(task_id, state, request=request, result=result, traceback=traceback)
        return super().store_result(task_id, result, state, traceback, request, **kwargs)

    def _warn_unreachable(self, task_id: str, exc: BaseException) -> None:
        with self._warn_lock:
            now = time.monotonic()
            if now - self._last_warning < self.warning_interval:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last_warning = self._suppressed, 0, now
        logger.warning(
            "djenga could not record progress of task %s (%s: %s); the task carries on. "
            "%d similar warnings suppressed in the last %.0f s.",
            task_id,
            type(exc).__name__,
            exc,
            suppressed,
            self.warning_interval,
        )


class SentinelDetailBackend(RedisDetailBackend, SentinelBackend):
    """:class:`RedisDetailBackend` on Celery's ``SentinelBackend`` (``sentineld://``):
    configured exactly as Celery's ``sentinel://`` is, with ``;``-separated sentinels
    and ``result_backend_transport_options={"master_name": ...}``. Every connection asks
    the sentinels for the master, so after a failover writes go to the new one; a final
    write retries across the failover within the backend's ``retry_policy``.

    ``sentinelds://`` connects to the master with TLS, as ``rediss://`` does (its query
    takes ``ssl_cert_reqs`` and the other ``ssl_*`` options; ``redis_backend_use_ssl``
    works too). The sentinels' own options go in ``sentinel_kwargs``.
    """

    def _params_from_url(self, url: str, defaults: dict[str, Any]) -> dict[str, Any]:
        chunks = [chunk for chunk in url.split(";") if chunk.strip()]
        tls = chunks[0].strip().startswith(("sentinelds://", "sentinels://")) if chunks else False
        # Each entry is parsed as Celery parses a redis:// (rediss://, for TLS) URL.
        plain = ";".join(
            ("rediss" if tls else "redis") + "://" + chunk.partition("://")[2] for chunk in chunks
        )
        params = SentinelBackend._params_from_url(self, plain, defaults)
        if tls:
            first = params["hosts"][0] if params["hosts"] else {}
            for host in params["hosts"]:
                host.pop("connection_class", None)
            params.update({k: v for k, v in first.items() if k.startswith("ssl_")})
            params["connection_class"] = self.connection_class_ssl
        return params


def _is_detail_task(app: Any, name: str | None) -> bool:
    # A flag, not isinstance(DetailTask): tasks.py imports this module, never the reverse.
    task = app.tasks.get(name) if name else None
    return bool(getattr(task, "reports_steps", False))
