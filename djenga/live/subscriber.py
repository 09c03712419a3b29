"""ClusterSubscriber: the relay hub's sharded pub/sub on a Redis Cluster (SSUBSCRIBE).

One connection per master that owns a watched channel's slot, each read by its own task,
so a quiet node never delays a busy one. redis-py's cluster pub/sub is not used: before
8.0 its asyncio client has none, and its reader polls node after node.

A slot that moves away is announced by its old owner (a ``sunsubscribe`` it pushes, or
MOVED to an SSUBSCRIBE): the subscriber re-reads the slot map, subscribes on the new
owner, and the hub re-reads and resends the task's snapshot once that is confirmed. A
connection that stops answering is found by a PING after :data:`PROBE_INTERVAL` quiet
seconds, and dropped if no reply came :data:`PROBE_INTERVAL` later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisClusterException, RedisError, ResponseError

from ..store.cluster import AsyncCluster, pubsub_options

logger = logging.getLogger(__name__)

#: Quiet seconds after which a node connection is probed with PING; as long again
#: without any reply and it is taken for dead (found within 2 x this).
PROBE_INTERVAL = 2.0

#: ``handle(message, resync)``: a redis-py-like pub/sub message ("subscribe" or
#: "message", channel and data as bytes), and whether it confirms a resubscription.
Handler = Callable[[dict[str, Any], bool], Awaitable[None]]

_ERRORS = (RedisError, OSError, RedisClusterException)


class NodeLink:
    """One pub/sub connection to one cluster node (RESP2: replies are plain lists)."""

    def __init__(self, node: Any) -> None:
        self.name: str = node.name
        self.connection = node.connection_class(**pubsub_options(node.connection_kwargs))
        #: Channels subscribed (or being subscribed) here.
        self.channels: set[str] = set()
        self.reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        # One lock: two coroutines connecting at once would each open a socket.
        async with self._lock:
            await self.connection.connect()

    async def send(self, *args: Any) -> None:
        await self.connect()
        await self.connection.send_command(*args)

    async def close(self) -> None:
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_ERRORS):
                await self.reader
        with contextlib.suppress(*_ERRORS):
            await self.connection.disconnect()


class ClusterSubscriber:
    """Shard channel subscriptions for :class:`~djenga.live.hub.RelayHub` on a cluster.

    :meth:`subscribe` and :meth:`unsubscribe` are called once per channel (the hub
    refcounts); ``handle`` receives confirmations and messages.
    """

    def __init__(self, client: AsyncCluster, handle: Handler) -> None:
        self.client = client
        self._handle = handle
        self._wanted: set[str] = set()
        self._home: dict[str, str] = {}  # channel -> name of the node it is subscribed on
        self._confirmed_once: set[str] = set()  # a later confirmation is a resubscription
        self._links: dict[str, NodeLink] = {}
        self._kick = asyncio.Event()
        self._refresh = False
        self._reconciler: asyncio.Task[None] | None = None
        self._initialised = False
        #: Slot moves seen (a ``sunsubscribe`` pushed, or MOVED), for tests and logs.
        self.moves = 0

    async def subscribe(self, channel: str) -> None:
        """Subscribe on the node owning ``channel``'s slot; on trouble, retry later."""
        self._wanted.add(channel)
        self._ensure_reconciler()
        try:
            if not self._initialised:
                await self.client.initialize()
                self._initialised = True
            await self._route(channel, self.client.get_node_from_key(channel))
        except _ERRORS as exc:
            logger.info("djenga relay: ssubscribe to %s failed (%s); retrying", channel, exc)
            self._reconcile(refresh=True)

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        self._confirmed_once.discard(channel)
        link = self._links.get(self._home.pop(channel, ""))
        if link is None:
            return
        link.channels.discard(channel)
        try:
            if link.channels:
                await link.send("SUNSUBSCRIBE", channel)
            else:  # its last channel: free the connection
                await self._drop(link)
        except _ERRORS as exc:
            logger.info("djenga relay: sunsubscribe from %s failed (%s)", channel, exc)

    async def close(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconciler
            self._reconciler = None
        for link in list(self._links.values()):
            await self._drop(link)
        await self.client.aclose()

    # -- internals -----------------------------------------------------------------------

    def _ensure_reconciler(self) -> None:
        if self._reconciler is None or self._reconciler.done():
            self._reconciler = asyncio.get_running_loop().create_task(
                self._reconcile_forever(), name="djenga-relay-cluster"
            )

    def _reconcile(self, *, refresh: bool) -> None:
        self._refresh = self._refresh or refresh
        self._kick.set()

    async def _route(self, channel: str, node: Any) -> None:
        old = self._links.get(self._home.get(channel, ""))
        if old is not None and old.name != node.name:
            old.channels.discard(channel)
            with contextlib.suppress(*_ERRORS):  # it may be gone; a push told us anyway
                await old.send("SUNSUBSCRIBE", channel)
        link = self._link(node)
        link.channels.add(channel)
        self._home[channel] = link.name  # before sending: the reply may come first
        try:
            await link.send("SSUBSCRIBE", channel)
        except _ERRORS:
            await self._drop(link)
            raise

    def _link(self, node: Any) -> NodeLink:
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = NodeLink(node)
            link.reader = asyncio.get_running_loop().create_task(
                self._read_forever(link), name=f"djenga-relay-{node.name}"
            )
        return link

    async def _drop(self, link: NodeLink) -> None:
        if self._links.get(link.name) is link:
            del self._links[link.name]
        for channel in link.channels:
            if self._home.get(channel) == link.name:
                del self._home[channel]
        if link.channels & self._wanted:
            self._reconcile(refresh=True)
        await link.close()

    async def _read_forever(self, link: NodeLink) -> None:
        pinged = False
        try:
            await link.connect()
            while True:
                try:
                    reply = await link.connection.read_response(
                        timeout=PROBE_INTERVAL, disconnect_on_error=False
                    )
                except ResponseError as exc:  # MOVED (or CLUSTERDOWN) to an SSUBSCRIBE
                    logger.info(
                        "djenga relay: %s answered %s %s; re-reading slots",
                        link.name, type(exc).__name__, exc,
                    )  # fmt: skip
                    self.moves += 1
                    self._reconcile(refresh=True)
                    continue
                if reply is None:
                    if pinged:
                        raise ConnectionError(f"no answer to PING in {PROBE_INTERVAL} s")
                    await link.connection.send_command("PING")
                    pinged = True
                    continue
                pinged = False
                await self._on_reply(link, reply)
        except asyncio.CancelledError:
            raise
        except _ERRORS as exc:
            logger.warning(
                "djenga relay: lost the cluster node %s (%s: %s); resubscribing elsewhere",
                link.name, type(exc).__name__, exc,
            )  # fmt: skip
            await self._drop(link)

    async def _on_reply(self, link: NodeLink, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return
        kind, raw = reply[0], reply[1]
        if kind == b"smessage":
            await self._handle({"type": "message", "channel": raw, "data": reply[2]}, False)
            return
        channel = raw.decode() if isinstance(raw, bytes) else str(raw)
        mine = channel in self._wanted and self._home.get(channel) == link.name
        if kind == b"ssubscribe" and mine:
            resync = channel in self._confirmed_once
            self._confirmed_once.add(channel)
            await self._handle({"type": "subscribe", "channel": raw}, resync)
        elif kind == b"sunsubscribe" and mine:
            # Not asked for: the node gave the slot away. Follow it.
            logger.info("djenga relay: the slot of %s left %s; resubscribing", channel, link.name)
            self.moves += 1
            link.channels.discard(channel)
            del self._home[channel]
            self._reconcile(refresh=True)

    async def _reconcile_forever(self) -> None:
        delay = 0.1
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                if self._refresh:
                    self._refresh = False
                    await self.client.refresh()
                    self._initialised = True
                for channel in sorted(self._wanted):
                    node = self.client.get_node_from_key(channel)
                    if self._home.get(channel) != node.name:
                        await self._route(channel, node)
                delay = 0.1
            except _ERRORS as exc:
                logger.warning(
                    "djenga relay: cluster subscriptions not settled (%s: %s); retrying in %.1f s",
                    type(exc).__name__, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                self._reconcile(refresh=True)
