"""TaskStore and AsyncTaskStore: every Redis command on djenga's keys, as sync and async
twins over one client and one :class:`~djenga.keys.RedisNames` (as Channels pairs
``WebsocketConsumer`` with ``AsyncWebsocketConsumer``).

Each method queues what :mod:`djenga.store.calls` says, sends it in one round trip and
hands the replies back to the same rules, so both twins answer alike. The one extra
round trip is the rare guarded LOST write (and the re-read of what it wrote).

Redis errors (``RedisError``, ``OSError``) propagate: callers decide whether to retry,
warn or fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio

from ..keys import RedisNames
from ..wire import Snapshot, decode, encode
from .calls import (
    ACTION_LUA,
    CANCEL_FIELD,
    DURATION_SAMPLES,
    DURATION_TTL,
    PUBLISH_LUA,
    REFUSED,
    Lookup,
    Since,
    action_call,
    cancel_of,
    durations_key,
    events_of,
    mean_durations,
    merge_recent,
    publish_call,
    publish_reply,
    queue_read,
    queue_recent,
    queue_since,
    resolve_all,
    since,
)

__all__ = ["AsyncTaskStore", "TaskStore"]


class TaskStore:
    """The synchronous store: the worker's backend, its lease keeper, Django views."""

    def __init__(self, client: redis.Redis, names: RedisNames) -> None:
        self.client = client
        self.names = names
        self._script = client.register_script(PUBLISH_LUA)
        self._action = client.register_script(ACTION_LUA)

    # -- the writer ----------------------------------------------------------------------

    def publish(
        self,
        task_id: str,
        snapshot: Snapshot,
        events: Sequence[dict[str, Any]],
        *,
        expires: int,
        upkeep: bool = False,
        floor: int = 0,
    ) -> int:
        """Store, log, lease and publish one update (one EVALSHA); the new seq, or
        :data:`~djenga.store.REFUSED` for a write from an earlier attempt. The new seq is
        above ``floor`` (the highest the writer may have been given)."""
        return self.publish_seen(
            task_id, snapshot, events, expires=expires, upkeep=upkeep, floor=floor
        )[0]

    def publish_seen(
        self,
        task_id: str,
        snapshot: Snapshot,
        events: Sequence[dict[str, Any]],
        *,
        expires: int,
        upkeep: bool = False,
        floor: int = 0,
    ) -> tuple[int, dict[str, Any] | None]:
        """:meth:`publish`, also answering the task's stored cancel request (None: none),
        which the same round trip reads."""
        keys, args = publish_call(
            self.names, task_id, snapshot, events, expires=expires, upkeep=upkeep, floor=floor
        )
        return publish_reply(self._script(keys=keys, args=args))

    def act(
        self,
        task_id: str,
        event: dict[str, Any],
        *,
        cancel: dict[str, Any] | None = None,
        expires: int = 0,
    ) -> int:
        """Record an action (action.lua): ``event`` in the task's log and, with ``cancel``,
        the cancel request; what was done (``ACTION_*``)."""
        keys, args = action_call(self.names, task_id, event, cancel=cancel, expires=expires)
        return int(self._action(keys=keys, args=args))

    def log_event(self, task_id: str, event: dict[str, Any]) -> None:
        """Append ``event`` to the task's log under its current seq, without publishing (a
        final task's retry: its snapshot stays as it ended)."""
        seq = int(self.client.hget(self.names.task(task_id), "seq") or 0)
        entry = {"e": encode({"seq": seq, **event})}
        self.client.xadd(self.names.log(task_id), entry, id=f"{seq}-*")

    def cancel_request(self, task_id: str) -> dict[str, Any] | None:
        """The task's stored cancel request, or None."""
        return cancel_of(self.client.hget(self.names.task(task_id), CANCEL_FIELD))

    def renew_leases(self, task_ids: Sequence[str], ttl: float) -> None:
        """Keep the leases of running tasks alive for ``ttl`` seconds, in one round trip."""
        with self.client.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.pexpire(self.names.lease(task_id), int(ttl * 1000))
            pipe.execute()

    def record_durations(self, task_name: str, durations: Mapping[str, float]) -> None:
        """Remember one successful run's step durations (the newest DURATION_SAMPLES)."""
        key = self.names.durations(task_name)
        with self.client.pipeline(transaction=False) as pipe:
            pipe.lpush(key, encode(dict(durations)))
            pipe.ltrim(key, 0, DURATION_SAMPLES - 1)
            pipe.expire(key, DURATION_TTL)
            pipe.execute()

    def record_lost(self, task_ids: Sequence[str]) -> list[str]:
        """Apply the LOST rule to these tasks; the ids it recorded LOST just now."""
        return [lookup.task_id for lookup in self._lookup(task_ids) if lookup.recorded]

    # -- readers (the LOST and absent rules) ---------------------------------------------

    def read(self, task_id: str) -> Snapshot:
        """The task's snapshot: recorded LOST first if its worker is gone; without a
        record EXPIRED (tombstone) or PENDING with no steps."""
        return self._lookup([task_id])[0].snapshot

    def read_many(self, task_ids: Sequence[str]) -> list[Snapshot]:
        """:meth:`read` for several tasks in one round trip, in order."""
        return [lookup.snapshot for lookup in self._lookup(task_ids)]

    def read_known(self, task_id: str) -> Snapshot | None:
        """:meth:`read`, but None when nothing is stored (no absent rule)."""
        lookup = self._lookup([task_id])[0]
        return lookup.snapshot if lookup.stored else None

    def read_since(self, task_id: str, epoch: str | None, seq: int) -> Since:
        """What a client at (``epoch``, ``seq``) missed, in one round trip."""
        with self.client.pipeline(transaction=False) as pipe:
            queue_read(pipe, self.names, task_id)
            queue_since(pipe, self.names, task_id, seq)
            *replies, entries, oldest = pipe.execute()
        (lookup,) = resolve_all(self.names, [task_id], replies)
        self._settle(lookup)
        return since(lookup, epoch, seq, entries, oldest)

    def recent(self, limit: int) -> list[Snapshot]:
        """Snapshots of the ``limit`` most recently updated tasks, newest first."""
        with self.client.pipeline(transaction=False) as pipe:
            queue_recent(pipe, self.names, limit)
            ids = merge_recent(pipe.execute(), limit)
        lookups = self._lookup(ids)
        return [lookup.snapshot for lookup in lookups if lookup.stored]

    def events(self, task_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        """The task's logged events with seq > ``after_seq``, oldest first."""
        return events_of(self.client.xrange(self.names.log(task_id), min=f"{after_seq + 1}-0"))

    # -- raw reads, for the writer itself ------------------------------------------------

    def stored(self, task_id: str) -> Snapshot | None:
        """The stored snapshot as it is (no rules), or None."""
        raw = self.client.hget(self.names.task(task_id), "snap")
        return decode(raw) if raw is not None else None

    def run_context(
        self, task_id: str, task_name: str | None
    ) -> tuple[Snapshot | None, dict[str, float]]:
        """What a starting run needs, in one round trip: the stored snapshot (an earlier
        attempt under the same id) and the mean step durations of ``task_name``'s last
        successful runs (None: not a name djenga keeps timings for)."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(self.names.task(task_id), "snap")
            if key := durations_key(self.names, task_name):
                pipe.lrange(key, 0, DURATION_SAMPLES - 1)
            raw, *samples = pipe.execute()
        return (decode(raw) if raw is not None else None), mean_durations(
            samples[0] if samples else ()
        )

    # -- internals -----------------------------------------------------------------------

    def _lookup(self, task_ids: Sequence[str]) -> list[Lookup]:
        if not task_ids:
            return []
        with self.client.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                queue_read(pipe, self.names, task_id)
            lookups = resolve_all(self.names, task_ids, pipe.execute())
        for lookup in lookups:
            self._settle(lookup)
        return lookups

    def _settle(self, lookup: Lookup) -> None:
        # The guarded LOST write; refused when a worker renewed or moved on meanwhile,
        # then what was read stands (a moment old, never wrong for long).
        if lookup.lost is None:
            return
        keys, args = lookup.lost
        lookup.lost = None
        if publish_reply(self._script(keys=keys, args=args))[0] != REFUSED:
            lookup.recorded = True
            lookup.snapshot = self.stored(lookup.task_id) or lookup.snapshot


class AsyncTaskStore:
    """The asyncio twin of :class:`TaskStore`: the relay hub, consumers, ``afollow``."""

    def __init__(self, client: redis.asyncio.Redis, names: RedisNames) -> None:
        self.client = client
        self.names = names
        self._script = client.register_script(PUBLISH_LUA)
        self._action = client.register_script(ACTION_LUA)

    # -- the writer ----------------------------------------------------------------------

    async def publish(
        self,
        task_id: str,
        snapshot: Snapshot,
        events: Sequence[dict[str, Any]],
        *,
        expires: int,
        upkeep: bool = False,
        floor: int = 0,
    ) -> int:
        """Async :meth:`TaskStore.publish`."""
        keys, args = publish_call(
            self.names, task_id, snapshot, events, expires=expires, upkeep=upkeep, floor=floor
        )
        return publish_reply(await self._script(keys=keys, args=args))[0]

    async def act(
        self,
        task_id: str,
        event: dict[str, Any],
        *,
        cancel: dict[str, Any] | None = None,
        expires: int = 0,
    ) -> int:
        """Async :meth:`TaskStore.act`."""
        keys, args = action_call(self.names, task_id, event, cancel=cancel, expires=expires)
        return int(await self._action(keys=keys, args=args))

    async def log_event(self, task_id: str, event: dict[str, Any]) -> None:
        """Async :meth:`TaskStore.log_event`."""
        seq = int(await self.client.hget(self.names.task(task_id), "seq") or 0)
        entry = {"e": encode({"seq": seq, **event})}
        await self.client.xadd(self.names.log(task_id), entry, id=f"{seq}-*")

    async def cancel_request(self, task_id: str) -> dict[str, Any] | None:
        """Async :meth:`TaskStore.cancel_request`."""
        return cancel_of(await self.client.hget(self.names.task(task_id), CANCEL_FIELD))

    async def renew_leases(self, task_ids: Sequence[str], ttl: float) -> None:
        """Async :meth:`TaskStore.renew_leases`."""
        async with self.client.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.pexpire(self.names.lease(task_id), int(ttl * 1000))
            await pipe.execute()

    async def record_durations(self, task_name: str, durations: Mapping[str, float]) -> None:
        """Async :meth:`TaskStore.record_durations`."""
        key = self.names.durations(task_name)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.lpush(key, encode(dict(durations)))
            pipe.ltrim(key, 0, DURATION_SAMPLES - 1)
            pipe.expire(key, DURATION_TTL)
            await pipe.execute()

    async def record_lost(self, task_ids: Sequence[str]) -> list[str]:
        """Async :meth:`TaskStore.record_lost`."""
        return [lookup.task_id for lookup in await self._lookup(task_ids) if lookup.recorded]

    # -- readers (the LOST and absent rules) ---------------------------------------------

    async def read(self, task_id: str) -> Snapshot:
        """Async :meth:`TaskStore.read`."""
        return (await self._lookup([task_id]))[0].snapshot

    async def read_many(self, task_ids: Sequence[str]) -> list[Snapshot]:
        """Async :meth:`TaskStore.read_many`."""
        return [lookup.snapshot for lookup in await self._lookup(task_ids)]

    async def read_known(self, task_id: str) -> Snapshot | None:
        """Async :meth:`TaskStore.read_known`."""
        lookup = (await self._lookup([task_id]))[0]
        return lookup.snapshot if lookup.stored else None

    async def read_since(self, task_id: str, epoch: str | None, seq: int) -> Since:
        """Async :meth:`TaskStore.read_since`."""
        async with self.client.pipeline(transaction=False) as pipe:
            queue_read(pipe, self.names, task_id)
            queue_since(pipe, self.names, task_id, seq)
            *replies, entries, oldest = await pipe.execute()
        (lookup,) = resolve_all(self.names, [task_id], replies)
        await self._settle(lookup)
        return since(lookup, epoch, seq, entries, oldest)

    async def recent(self, limit: int) -> list[Snapshot]:
        """Async :meth:`TaskStore.recent`."""
        async with self.client.pipeline(transaction=False) as pipe:
            queue_recent(pipe, self.names, limit)
            ids = merge_recent(await pipe.execute(), limit)
        lookups = await self._lookup(ids)
        return [lookup.snapshot for lookup in lookups if lookup.stored]

    async def events(self, task_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        """Async :meth:`TaskStore.events`."""
        entries = await self.client.xrange(self.names.log(task_id), min=f"{after_seq + 1}-0")
        return events_of(entries)

    # -- raw reads, for the writer itself ------------------------------------------------

    async def stored(self, task_id: str) -> Snapshot | None:
        """Async :meth:`TaskStore.stored`."""
        raw = await self.client.hget(self.names.task(task_id), "snap")
        return decode(raw) if raw is not None else None

    async def run_context(
        self, task_id: str, task_name: str | None
    ) -> tuple[Snapshot | None, dict[str, float]]:
        """Async :meth:`TaskStore.run_context`."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(self.names.task(task_id), "snap")
            if key := durations_key(self.names, task_name):
                pipe.lrange(key, 0, DURATION_SAMPLES - 1)
            raw, *samples = await pipe.execute()
        return (decode(raw) if raw is not None else None), mean_durations(
            samples[0] if samples else ()
        )

    # -- internals -----------------------------------------------------------------------

    async def _lookup(self, task_ids: Sequence[str]) -> list[Lookup]:
        if not task_ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                queue_read(pipe, self.names, task_id)
            lookups = resolve_all(self.names, task_ids, await pipe.execute())
        for lookup in lookups:
            await self._settle(lookup)
        return lookups

    async def _settle(self, lookup: Lookup) -> None:
        # As TaskStore._settle.
        if lookup.lost is None:
            return
        keys, args = lookup.lost
        lookup.lost = None
        if publish_reply(await self._script(keys=keys, args=args))[0] != REFUSED:
            lookup.recorded = True
            lookup.snapshot = await self.stored(lookup.task_id) or lookup.snapshot
