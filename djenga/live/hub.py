"""RelayHub: ONE Redis pub/sub connection per web process, fanning snapshots out to watchers.

Watchers subscribe by task (reference-counted: the channel is dropped with the last
watcher). After Redis comes back, the hub resubscribes and re-reads every watched
task's snapshot, so nobody stays behind: pub/sub is a hint, the snapshot is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ..conf import get_settings
from ..connection import async_client_for, redis_names, redis_url
from ..keys import RedisNames
from ..store import LEASED_STATES, AsyncTaskStore
from ..store.cluster import async_cluster_client, cluster_names, cluster_urls, parse_cluster_urls
from ..wire import Snapshot, decode, encode, for_viewer
from .collector import freeze_startup_objects
from .subscriber import ClusterSubscriber
from .transport import text_frame

logger = logging.getLogger(__name__)

#: Seconds a new watcher waits for Redis to confirm its subscription before reading.
SUBSCRIBE_TIMEOUT = 5.0
#: Connections one hub uses for reads (its pub/sub connection is one more).
READ_CONNECTIONS = 16
#: The pub/sub probe: after this many seconds without a message the hub PINGs its
#: pub/sub connection, and one that has not answered within PROBE_TIMEOUT is dropped
#: and replaced (resubscribe, resync). A subscription that died silently, as one can
#: after a Sentinel failover or a network partition, is found within
#: PROBE_IDLE + PROBE_TIMEOUT + PROBE_IDLE = 4.5 s.
PROBE_IDLE = 1.0
PROBE_TIMEOUT = 2.5


def relay_client_name(pid: int | None = None) -> str:
    """The Redis client name of a web process's hub connections (``CLIENT LIST``)."""
    return f"djenga-relay-{os.getpid() if pid is None else pid}"


class Frame:
    """One snapshot as relayed: parsed once, encoded (and framed) at most once per
    audience, whatever the number of watchers."""

    __slots__ = ("_texts", "_wire", "snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._texts: dict[bool, str] = {}
        self._wire: dict[bool, bytes] = {}

    def text(self, *, staff: bool) -> str:
        """The JSON text a staff or customer viewer receives."""
        text = self._texts.get(staff)
        if text is None:
            text = self._texts[staff] = encode(for_viewer(self.snapshot, staff=staff))
        return text

    def wire(self, *, staff: bool) -> bytes:
        """The WebSocket frame (:func:`~djenga.live.transport.text_frame`) of :meth:`text`."""
        data = self._wire.get(staff)
        if data is None:
            data = self._wire[staff] = text_frame(self.text(staff=staff).encode())
        return data


Watcher = Callable[[Frame], None]


@dataclass(frozen=True)
class Recovery:
    """The answer to a reconnecting client: the events it missed, or "not recovered"."""

    recovered: bool
    events: list[dict[str, Any]]
    frame: Frame


class RelayHub:
    """Subscribes to the channels of watched tasks and calls each watcher with new frames.

    A watcher is a plain (non-async) callable; it must return quickly, e.g. by keeping
    only the newest frame and waking a sender task of its own.
    """

    def __init__(self, url: str, names: RedisNames) -> None:
        self.url = url
        self.names = names
        self._watchers: dict[str, set[Watcher]] = {}  # channel -> watchers
        self._confirmed: dict[str, asyncio.Event] = {}
        #: On a Redis Cluster: shard channels, subscribed by djenga.live.subscriber.
        self._cluster: ClusterSubscriber | None = None
        if names.sharded:
            client = async_cluster_client(parse_cluster_urls(url))
            self._cluster = ClusterSubscriber(client, self._handle)
            self._client: Any = client
        else:
            # Reads of many joining watchers share a few connections and queue for them,
            # rather than opening one each (redis-py's plain pool refuses past its limit).
            self._client = async_client_for(
                url,
                max_connections=READ_CONNECTIONS,
                timeout=SUBSCRIBE_TIMEOUT,
                # A server that stopped answering (SIGSTOP, a partition) fails a command in
                # bounded time rather than holding the hub; the probe covers pub/sub.
                socket_timeout=SUBSCRIBE_TIMEOUT,
                socket_connect_timeout=SUBSCRIBE_TIMEOUT,
                client_name=relay_client_name(),  # CLIENT LIST tells which process is which
            )
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._leased: set[str] = set()  # watched tasks last seen running: check their leases
        #: Every read and write on djenga's keys; the hub itself only subscribes.
        self.store = AsyncTaskStore(self._client, names)
        self._connections = 0
        self._firehoses = frozenset(names.firehoses())
        self._held: dict[Any, bytes] = {}  # newest message per task, until the next flush
        self._flush_due = False
        #: Messages replaced by a newer one of the same task before they were relayed.
        self.skipped = 0

    def watchers_of(self, task_id: str) -> int:
        """How many local watchers a task has."""
        return len(self._watchers.get(self.names.channel(task_id), ()))

    @property
    def watcher_count(self) -> int:
        """How many watchers this process relays to."""
        return sum(len(watchers) for watchers in self._watchers.values())

    @property
    def control_channel(self) -> str:
        """A channel the hub always holds, so its connection is never without one."""
        return f"{self.names.prefix}:{self.names.db}:hub"

    async def watch(self, task_id: str, watcher: Watcher) -> None:
        """Start calling ``watcher`` with the task's new frames; returns once subscribed
        (or after :data:`SUBSCRIBE_TIMEOUT` if Redis is away: the hub resyncs later)."""
        await self._watch(self.names.channel(task_id), watcher)

    async def unwatch(self, task_id: str, watcher: Watcher) -> None:
        """Stop calling ``watcher``; unsubscribe when it was the task's last watcher."""
        await self._unwatch(self.names.channel(task_id), watcher)

    async def watch_all(self, watcher: Watcher) -> None:
        """Call ``watcher`` with every task's new frames (the agents' console); on a
        cluster, from every partition's all-tasks channel."""
        await asyncio.gather(*(self._watch(name, watcher) for name in self.names.firehoses()))

    async def unwatch_all(self, watcher: Watcher) -> None:
        for name in self.names.firehoses():
            await self._unwatch(name, watcher)

    async def read(self, task_id: str) -> Frame:
        """The task's snapshot, by every reader's rules (:meth:`AsyncTaskStore.read`):
        LOST if its worker is gone, PENDING with no steps if there is none, EXPIRED if
        its record expired."""
        frame = Frame(await self.store.read(task_id))
        self._note(frame)
        return frame

    async def read_since(self, task_id: str, epoch: str | None, seq: int) -> Recovery:
        """What a client at (``epoch``, ``seq``) missed: the events after ``seq`` if the
        log still holds all of them in the same epoch, else ``recovered=False``."""
        since = await self.store.read_since(task_id, epoch, seq)
        frame = Frame(since.snapshot)
        self._note(frame)
        return Recovery(since.recovered, since.events, frame)

    async def read_recent(self, limit: int) -> list[Snapshot]:
        """Snapshots of the ``limit`` most recently updated tasks, newest first."""
        return await self.store.recent(limit)

    async def close(self) -> None:
        """Stop reading and close both connections."""
        for task in (self._reader, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._sweeper = None
        if self._cluster is not None:
            await self._cluster.close()  # and its client
            return
        await self._client.aclose()

    # -- internals -----------------------------------------------------------------------

    async def _watch(self, channel: str, watcher: Watcher) -> None:
        watchers = self._watchers.setdefault(channel, set())
        watchers.add(watcher)
        confirmed = self._confirmed.setdefault(channel, asyncio.Event())
        self._ensure_reader()
        if len(watchers) == 1 and self._cluster is not None:
            await self._cluster.subscribe(channel)
        elif len(watchers) == 1 and self._pubsub is not None:
            await self._subscribe(channel)
        try:
            await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_TIMEOUT)
        except TimeoutError:
            logger.warning("djenga relay: no subscription to %s yet; will resync", channel)

    async def _unwatch(self, channel: str, watcher: Watcher) -> None:
        watchers = self._watchers.get(channel)
        if watchers is None:
            return
        watchers.discard(watcher)
        if watchers:
            return
        del self._watchers[channel]
        self._confirmed.pop(channel, None)
        if self._cluster is not None:
            await self._cluster.unsubscribe(channel)
        elif self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(channel)
            except (RedisError, OSError) as exc:
                logger.info("djenga relay: unsubscribe from %s failed (%s)", channel, exc)

    def _ensure_reader(self) -> None:
        loop = asyncio.get_running_loop()
        if self._cluster is not None:
            pass  # the cluster subscriber reads each node's connection itself
        elif self._reader is None or self._reader.done():
            self._reader = loop.create_task(self._read_forever(), name="djenga-relay-hub")
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep_forever(), name="djenga-lease-check")

    def _note(self, frame: Frame) -> None:
        """Remember whether a task is running, so its lease gets checked."""
        task_id = frame.snapshot.get("task_id")
        if isinstance(task_id, str):
            if frame.snapshot.get("state") in LEASED_STATES:
                self._leased.add(task_id)
            else:
                self._leased.discard(task_id)

    async def _sweep_forever(self) -> None:
        """Record watched tasks whose worker stopped renewing their lease as LOST; the
        write publishes the LOST snapshot, which reaches watchers like any other."""
        while True:
            settings = get_settings()
            await asyncio.sleep(max(0.2, min(2.0, settings.LEASE_TTL / 4)))
            watched = [t for t in self._leased if self.names.channel(t) in self._watchers]
            self._leased.intersection_update(watched)
            if not watched:
                continue
            try:
                await self._record_lost(watched)
            except (RedisError, OSError) as exc:
                logger.info("djenga relay: lease check failed (%s)", exc)

    async def _record_lost(self, task_ids: list[str]) -> None:
        for task_id in await self.store.record_lost(task_ids):
            logger.warning("djenga relay: task %s lost its worker (lease expired)", task_id)

    async def _subscribe(self, channel: str) -> None:
        try:
            await self._pubsub.subscribe(channel)
        except (RedisError, OSError) as exc:  # the reader reconnects and resubscribes
            logger.info("djenga relay: subscribe to %s failed (%s)", channel, exc)

    async def _read_forever(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._client.pubsub()
            try:
                # Connect before anyone else may use it: redis-py's PubSub.connect() has no
                # lock, so watchers subscribing on a fresh PubSub each opened a connection
                # of their own, and what they subscribed there was never read.
                await pubsub.connect()
                # No await between these two: a watcher joining from now on subscribes
                # itself; every earlier one is in the list.
                self._pubsub = pubsub
                channels = list(self._watchers)
                await pubsub.subscribe(self.control_channel, *channels)
                self._connections += 1
                delay = 0.1
                reconnected = self._connections > 1
                if reconnected:
                    logger.warning("djenga relay: reconnected to Redis; resyncing watchers")
                await self._relay(pubsub, reconnected)
            except (RedisError, OSError) as exc:
                self._pubsub = None  # nobody subscribes on a dead connection while we wait
                logger.warning(
                    "djenga relay: Redis connection lost (%s: %s); retrying in %.1f s",
                    type(exc).__name__, exc, delay,
                )  # fmt: skip
                for event in self._confirmed.values():
                    event.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)  # one connection per process: retry briskly
            finally:
                self._pubsub = None
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _relay(self, pubsub: Any, reconnected: bool) -> None:
        """Read the pub/sub connection until it fails, probing it when it is quiet."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        pinged: float | None = None
        while True:
            message = await pubsub.get_message(timeout=PROBE_IDLE)
            now = loop.time()
            if message is not None:
                heard, pinged = now, None  # any message proves the connection alive
                if message["type"] != "pong":
                    await self._handle(message, reconnected)
            elif pinged is not None:
                if now - pinged > PROBE_TIMEOUT:
                    raise RedisConnectionError(
                        f"no answer to PING on the pub/sub connection in {PROBE_TIMEOUT} s"
                    )
            elif now - heard >= PROBE_IDLE:
                await pubsub.ping()
                pinged = now

    async def _handle(self, message: dict[str, Any], reconnected: bool) -> None:
        channel = message["channel"].decode()
        kind = message["type"]
        if kind == "subscribe":
            confirmed = self._confirmed.get(channel)
            if confirmed is not None:
                confirmed.set()
                # What was published while we were away is gone: re-read the truth.
                # (Nothing stored, e.g. Redis restarted empty: wait for the next update
                # rather than show watchers a PENDING task that is running.)
                if reconnected and self.names.is_task_channel(channel):
                    task_id = self.names.task_id_from_channel(channel)
                    snapshot = await self.store.read_known(task_id)
                    if snapshot is not None:
                        self._dispatch(channel, Frame(snapshot))
        elif kind == "message" and channel != self.control_channel:
            self._hold(channel, message["data"])

    def _hold(self, channel: str, data: bytes) -> None:
        """Keep the newest message of each task until the reader has taken everything Redis
        already sent (the next turn of the loop): a relay that fell behind, after a pause
        or under more updates than it can fan out, sends every watcher only the newest
        snapshot, once, rather than work through a backlog. The console's channel carries
        every task: nothing of it is dropped."""
        key: Any = channel
        if channel in self._firehoses:  # one, or one per partition on a cluster
            key = (channel, len(self._held))
        elif channel in self._held:
            self.skipped += 1
        self._held[key] = data
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        held, self._held = self._held, {}
        for key, data in held.items():
            channel = key if isinstance(key, str) else key[0]
            try:
                frame = Frame(decode(data))
            except ValueError as exc:
                logger.warning("djenga relay: ignored a bad message on %s (%s)", channel, exc)
                continue
            self._dispatch(channel, frame)

    def _dispatch(self, channel: str, frame: Frame) -> None:
        if self.names.is_task_channel(channel):
            self._note(frame)
        for watcher in list(self._watchers.get(channel, ())):
            try:
                watcher(frame)
            except Exception:
                logger.exception("djenga relay: a watcher of %s failed", channel)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, RelayHub]] = (
    weakref.WeakKeyDictionary()
)


def get_hub() -> RelayHub:
    """The hub of the running event loop for the configured Redis (one per process/loop)."""
    loop = asyncio.get_running_loop()
    cluster = ",".join(cluster_urls())  # djenga's keys on a Redis Cluster
    url = cluster or redis_url()
    hubs = _hubs.setdefault(loop, {})
    hub = hubs.get(url)
    if hub is None:
        freeze_startup_objects()  # the process starts relaying: see collector.py
        hub = hubs[url] = RelayHub(url, cluster_names() if cluster else redis_names(url))
    return hub
