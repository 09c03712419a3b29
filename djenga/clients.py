"""How djenga makes redis-py clients from a URL, on a standalone server or behind Sentinel.

Standalone and TLS are ``redis://``, ``rediss://`` and ``unix://`` URLs, as redis-py reads
them. Sentinel is the format of Celery's ``sentinel://`` result backend: one
``sentinel://host:port/db`` per sentinel, joined by ``;`` (``sentinels://`` for TLS to the
master), with the master's name in the transport options (``{"master_name": ...}``) and
the sentinels' own connection options in ``sentinel_kwargs``. A Sentinel client asks the
sentinels for the master whenever it connects, so after a failover its next connection
goes to the new master.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel

__all__ = [
    "SENTINEL_SCHEMES",
    "SentinelAddress",
    "async_client",
    "is_sentinel_url",
    "parse_sentinel_url",
    "sync_client",
]

#: What a Redis away for a moment raises: a restart, a Sentinel or Cluster failover, a slot
#: moving, a node still loading. Readers that wait anyway (``follow()``, the shard
#: listeners) ask again on these; other Redis errors (a wrong command, a bad reply) are
#: bugs to see, not to wait out.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
    redis.exceptions.MasterDownError, redis.exceptions.SlotNotCoveredError,
    redis.exceptions.BusyLoadingError, OSError,
)  # fmt: skip

#: Sentinel URL schemes (plain, TLS to the master) after djenga's own are mapped to them.
SENTINEL_SCHEMES = ("sentinel", "sentinels")
_SEPARATOR = ";"


@dataclass(frozen=True)
class SentinelAddress:
    """The sentinels of one ``sentinel://…;sentinel://…`` URL, and the master's database
    and credentials (taken from the first entry, as Celery does)."""

    sentinels: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def is_sentinel_url(url: str) -> bool:
    """Whether ``url`` names sentinels (``sentinel://`` or ``sentinels://``)."""
    return url.partition("://")[0] in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelAddress:
    """Read a ``;``-separated Sentinel URL; :class:`ValueError` if it is not one."""
    hosts: list[tuple[str, int]] = []
    first = None
    for chunk in filter(None, (part.strip() for part in url.split(_SEPARATOR))):
        parts = urlsplit(chunk)
        if parts.scheme not in SENTINEL_SCHEMES:
            raise ValueError(f"{chunk!r} is not a sentinel:// URL")
        hosts.append((parts.hostname or "localhost", parts.port or 26379))
        first = first or parts
    if first is None:
        raise ValueError(f"{url!r} names no sentinel")
    db = first.path.strip("/")
    return SentinelAddress(
        sentinels=tuple(hosts),
        db=int(db) if db else 0,
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
        tls=first.scheme == "sentinels",
    )


def master_name_of(options: Mapping[str, Any] | None) -> str | None:
    """The master's name in (Celery's) transport options, or None."""
    name = (options or {}).get("master_name")
    return name if isinstance(name, str) and name else None


def _sentinel_parts(
    url: str, options: Mapping[str, Any] | None
) -> tuple[SentinelAddress, str, dict[str, Any]]:
    address = parse_sentinel_url(url)
    name = master_name_of(options)
    if name is None:
        raise ValueError(
            f"{url!r} is a Sentinel URL but no master is named: set "
            "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {'master_name': '...'}"
        )
    master: dict[str, Any] = {"db": address.db}
    if address.username:
        master["username"] = address.username
    if address.password:
        master["password"] = address.password
    if address.tls:
        master["ssl"] = True
    return address, name, master


def sync_client(url: str, options: Mapping[str, Any] | None = None, **kwargs: Any) -> redis.Redis:
    """A synchronous client for ``url``; ``options`` are Celery's transport options
    (``master_name``, ``sentinel_kwargs``, ``min_other_sentinels``) for a Sentinel URL.
    ``kwargs`` go to every connection to the server (not to the sentinels)."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **kwargs)
    address, name, master = _sentinel_parts(url, options)
    sentinel = redis.sentinel.Sentinel(
        list(address.sentinels),
        min_other_sentinels=int((options or {}).get("min_other_sentinels", 0)),
        sentinel_kwargs=dict((options or {}).get("sentinel_kwargs") or {}),
    )
    return sentinel.master_for(name, **master, **kwargs)


class BlockingSentinelConnectionPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """A Sentinel pool that makes callers wait for a free connection at its limit, as
    :class:`redis.asyncio.BlockingConnectionPool` does, instead of refusing them."""


def async_client(
    url: str,
    options: Mapping[str, Any] | None = None,
    *,
    max_connections: int | None = None,
    timeout: float = 5.0,
    **kwargs: Any,
) -> redis.asyncio.Redis:
    """An asyncio client for ``url``, as :func:`sync_client`. With ``max_connections``,
    callers beyond the limit wait (up to ``timeout`` s) for a connection rather than
    opening more."""
    if not is_sentinel_url(url):
        if max_connections is None:
            return redis.asyncio.Redis.from_url(url, **kwargs)
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, **kwargs
        )
        return redis.asyncio.Redis(connection_pool=pool)
    address, name, master = _sentinel_parts(url, options)
    sentinel = redis.asyncio.sentinel.Sentinel(
        list(address.sentinels),
        min_other_sentinels=int((options or {}).get("min_other_sentinels", 0)),
        sentinel_kwargs=dict((options or {}).get("sentinel_kwargs") or {}),
    )
    if max_connections is not None:
        master.update(
            connection_pool_class=BlockingSentinelConnectionPool,
            max_connections=max_connections,
            timeout=timeout,
        )
    return sentinel.master_for(name, **master, **kwargs)
