"""djenga's keys and channels on a Redis or Valkey Cluster (``DJENGA_CLUSTER_URL``): its
clients, its key names and its task store, for the worker and the web process alike.

Celery's results and broker stay where Celery supports them (standalone or Sentinel):
Celery's redis backend has no Cluster support (celery/celery#2852).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError, RedisClusterException

from ..clients import TRANSIENT_ERRORS
from ..conf import get_settings
from ..keys import ClusterNames
from .twins import TaskStore

__all__ = [
    "CLUSTER_SCHEMES",
    "AsyncCluster",
    "SyncCluster",
    "async_cluster_client",
    "cluster_names",
    "cluster_store",
    "cluster_urls",
    "parse_cluster_urls",
    "sync_cluster_client",
]

#: Schemes DJENGA_CLUSTER_URL accepts (any node of the cluster; the rest is discovered).
CLUSTER_SCHEMES = ("redis", "rediss")
#: Seconds a command (or a connect) may take before it fails, unless the URL says otherwise.
SOCKET_TIMEOUT = 5.0


def parse_cluster_urls(value: Any) -> tuple[str, ...]:
    """``DJENGA_CLUSTER_URL`` as a tuple of node URLs: one URL, several separated by
    commas, or a list of them. Empty when it is not set."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


def cluster_urls() -> tuple[str, ...]:
    """The cluster's start-up nodes (``DJENGA_CLUSTER_URL``); empty when not on a cluster."""
    return parse_cluster_urls(get_settings().CLUSTER_URL)


def cluster_names() -> ClusterNames:
    """The key builder of djenga's keys on the cluster."""
    return ClusterNames(get_settings().KEY_PREFIX)


def _client_options(urls: Sequence[str]) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    # The first URL's options (password, TLS, timeouts) hold for every node.
    options = parse_url(urls[0])
    for name in ("host", "port", "db", "path"):
        options.pop(name, None)
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    # A node that stops answering (a partition, SIGSTOP) fails a command in bounded time
    # rather than holding a worker's task; ?socket_timeout=… in the URL overrides it.
    options.setdefault("socket_timeout", SOCKET_TIMEOUT)
    options.setdefault("socket_connect_timeout", SOCKET_TIMEOUT)
    nodes = []
    for url in urls:
        parts = urlsplit(url)
        nodes.append((parts.hostname or "127.0.0.1", parts.port or 6379))
    return nodes, options


def unreachable(urls: Sequence[str], exc: BaseException) -> ConnectionError:
    """The one-line error of a cluster that cannot be reached (a RedisError, as every
    caller of the store expects)."""
    return ConnectionError(
        f"djenga could not reach the Redis Cluster at {', '.join(urls)} (DJENGA_CLUSTER_URL): "
        f"{type(exc).__name__}: {exc}"
    )


class SyncCluster(redis.cluster.RedisCluster):
    """redis-py's cluster client, whose "no node reachable" (``RedisClusterException``, not
    a ``RedisError``) is a :class:`redis.ConnectionError` naming the setting: every caller
    of the store then handles a cluster that went away as it handles Redis going away
    (never a failed task)."""

    djenga_urls: tuple[str, ...] = ()

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise unreachable(self.djenga_urls, exc) from exc

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = super().pipeline(*args, **kwargs)
        execute, urls = pipe.execute, self.djenga_urls

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return execute(*args, **kwargs)
            except RedisClusterException as exc:
                raise unreachable(urls, exc) from exc

        pipe.execute = guarded
        return pipe


class AsyncCluster(redis.asyncio.RedisCluster):
    """The asyncio twin of :class:`SyncCluster`."""

    djenga_urls: tuple[str, ...] = ()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise unreachable(self.djenga_urls, exc) from exc

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = super().pipeline(*args, **kwargs)
        execute, urls = pipe.execute, self.djenga_urls

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await execute(*args, **kwargs)
            except RedisClusterException as exc:
                raise unreachable(urls, exc) from exc

        pipe.execute = guarded
        return pipe

    async def refresh(self) -> None:
        """Re-read the slot map (after a slot moved); a ConnectionError if no node answers."""
        try:
            await self.nodes_manager.initialize()
        except RedisClusterException as exc:
            raise unreachable(self.djenga_urls, exc) from exc


@functools.cache
def _sync_client(urls: tuple[str, ...]) -> SyncCluster:
    nodes, options = _client_options(urls)
    startup = [redis.cluster.ClusterNode(host, port) for host, port in nodes]
    try:
        client = SyncCluster(startup_nodes=startup, **options)
    except RedisClusterException as exc:  # the sync client connects at once
        raise unreachable(urls, exc) from exc
    client.djenga_urls = urls
    return client


def sync_cluster_client(urls: Sequence[str] | None = None) -> SyncCluster:
    """The process-wide synchronous cluster client (its own pools): the worker's backend
    and the web process's views. Raises a :class:`redis.ConnectionError` naming the
    setting if no node answers (it is retried on the next call)."""
    return _sync_client(tuple(urls or cluster_urls()))


def async_cluster_client(urls: Sequence[str] | None = None) -> AsyncCluster:
    """A new asyncio cluster client (it connects on first use): one per event loop."""
    urls = tuple(urls or cluster_urls())
    nodes, options = _client_options(urls)
    startup = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in nodes]
    client = AsyncCluster(startup_nodes=startup, **options)
    client.djenga_urls = urls
    return client


@functools.cache
def _store(setting: str | tuple[str, ...], prefix: str) -> TaskStore:
    return TaskStore(_sync_client(parse_cluster_urls(setting)), ClusterNames(prefix))


def cluster_store() -> TaskStore | None:
    """The synchronous :class:`TaskStore` on the cluster, or None when djenga's keys are
    not on one (``DJENGA_CLUSTER_URL`` unset). On every update's path: cached."""
    settings = get_settings()
    value = settings.CLUSTER_URL
    if not value:
        return None
    return _store(value if isinstance(value, str) else tuple(value), settings.KEY_PREFIX)


def pubsub_options(connection_kwargs: dict[str, Any]) -> dict[str, Any]:
    """A cluster node's connection options for a pub/sub connection of djenga's own:
    RESP2 (replies are plain lists), no read timeout, none of redis-py 8's maintenance
    notification hooks (they need RESP3)."""
    options = {k: v for k, v in connection_kwargs.items() if "maint_notifications" not in k}
    options.update(protocol=2, socket_timeout=None)
    return options


#: How long a listener whose node is gone waits before it looks for the slot's owner again.
_RESUBSCRIBE_PAUSE = 0.25


def _is_sunsubscribe(reply: Any) -> bool:
    """The node let go of the channel: its slot moved (or the node is leaving)."""
    return isinstance(reply, list) and reply[0] == b"sunsubscribe"


class ShardListener:
    """One shard channel, on a connection of its own to the node that owns its slot
    (``AsyncDetailedResult.follow``): ``get_message(timeout)`` is a new message's
    ``{"data": ...}`` or None.

    It follows the slot: when the node says ``sunsubscribe`` (the slot moved) or goes
    away (a failover), it re-reads the slot map and subscribes on the new owner, and
    answers None at once so its user re-reads the snapshot (what was published in
    between is in it)."""

    def __init__(self, client: redis.cluster.RedisCluster, channel: str) -> None:
        self.client, self.channel = client, channel
        self.connection: Any = None
        self._subscribe()

    def _subscribe(self) -> None:
        pool = self.client.get_node_from_key(self.channel).redis_connection.connection_pool
        self.connection = pool.connection_class(**pubsub_options(pool.connection_kwargs))
        self.connection.send_command("SSUBSCRIBE", self.channel)

    def _resubscribe(self) -> None:
        self.close()
        try:
            self.client.nodes_manager.initialize()  # the slot map as the cluster has it now
            self._subscribe()
        except (*TRANSIENT_ERRORS, RedisClusterException):
            self.close()  # no owner answers yet (a failover under way): next time

    def get_message(self, timeout: float) -> dict[str, Any] | None:
        if self.connection is None:
            time.sleep(min(timeout, _RESUBSCRIBE_PAUSE))
            self._resubscribe()
            return None
        deadline = time.monotonic() + timeout
        try:
            while self.connection.can_read(timeout=max(0.0, deadline - time.monotonic())):
                reply = self.connection.read_response()
                if isinstance(reply, list) and reply[0] == b"smessage":
                    return {"data": reply[2]}
                if _is_sunsubscribe(reply):
                    self._resubscribe()
                    return None
        except TRANSIENT_ERRORS:
            self._resubscribe()
            return None
        return None

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.disconnect()


class AsyncShardListener:
    """The asyncio twin of :class:`ShardListener` (``afollow``)."""

    def __init__(self, client: redis.asyncio.RedisCluster, channel: str) -> None:
        self.client, self.channel = client, channel
        self.connection: Any = None

    async def subscribe(self) -> None:
        await self.client.initialize()
        node = self.client.get_node_from_key(self.channel)
        self.connection = node.connection_class(**pubsub_options(node.connection_kwargs))
        await self.connection.connect()
        await self.connection.send_command("SSUBSCRIBE", self.channel)

    async def _resubscribe(self) -> None:
        await self.aclose()
        try:
            await self.client.nodes_manager.initialize()
            await self.subscribe()
        except (*TRANSIENT_ERRORS, RedisClusterException):
            await self.aclose()

    async def get_message(self, timeout: float) -> dict[str, Any] | None:
        if self.connection is None:
            await asyncio.sleep(min(timeout, _RESUBSCRIBE_PAUSE))
            await self._resubscribe()
            return None
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                reply = await self.connection.read_response(timeout=left, disconnect_on_error=False)
                if isinstance(reply, list) and reply[0] == b"smessage":
                    return {"data": reply[2]}
                if _is_sunsubscribe(reply):
                    await self._resubscribe()
                    return None
        except TRANSIENT_ERRORS:
            await self._resubscribe()
            return None
        return None

    async def aclose(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.disconnect()
