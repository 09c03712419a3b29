"""AsyncDetailedResult: a Celery result that also reads a task's step snapshot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from celery.result import AsyncResult

from ..clients import TRANSIENT_ERRORS
from ..errors import NotADetailBackend
from ..store import AsyncTaskStore
from ..store.cluster import AsyncShardListener, ShardListener
from ..wire import (
    Snapshot,
    decode,
    group_snapshot,
    is_final,
    is_newer,
    running_path,
    workflow_snapshot,
)
from .backends import RedisDetailBackend

__all__ = ["AsyncDetailedResult", "DetailedGroupResult", "DetailedWorkflowResult"]

#: Seconds without a pub/sub message after which ``follow`` re-reads the stored
#: snapshot: pub/sub is at-most-once, the snapshot is the truth.
RESYNC_INTERVAL = 5.0
#: On a TRANSIENT_ERRORS (djenga.clients), follow() and afollow() wait this long and ask
#: again, until their timeout. Their first read still raises it: a Redis that is not
#: there at all is an error to see.
AWAY_PAUSE = 0.25


class AsyncDetailedResult(AsyncResult):
    """``AsyncResult`` plus the task's steps: ``details()`` polls, ``follow()`` streams.

    Everything ``AsyncResult`` does (``.state``, ``.get()``, ``.revoke()``) still works.
    """

    @property
    def detail_backend(self) -> RedisDetailBackend:
        """The app's backend, which must be djenga's ``redisd://`` one."""
        backend = self.backend
        if not isinstance(backend, RedisDetailBackend):
            raise NotADetailBackend(
                f"AsyncDetailedResult needs djenga's result backend, but the app's is "
                f"{type(backend).__name__}: set CELERY_RESULT_BACKEND = 'redisd://host:port/db'."
            )
        return backend

    def details(self) -> Snapshot:
        """The task's latest snapshot (docs/snapshot.md); an unknown id gives a PENDING
        snapshot with no steps."""
        return self.detail_backend.get_detail_or_lost(self.id)

    def cancel(self, by: str = "python") -> str:
        """Ask the task to stop (cooperative cancel, docs/api.md): a running DetailTask
        ends REVOKED at its next step helper, a queued one never starts. ``by`` is who the
        timeline and the REVOKED reason name. Returns the outcome: ``"requested"``,
        ``"queued"`` or ``"final"`` (it had already ended; nothing was done)."""
        from ..actions import cancel

        store = self.detail_backend.store
        return cancel(self.id, by=by, staff=True, via="python", store=store, app=self.app).outcome

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The task's steps, in order, as in ``details()["steps"]``."""
        return self.details()["steps"]

    @property
    def current_step(self) -> dict[str, Any] | None:
        """The running step (the deepest one when steps are nested), or None."""
        snapshot = self.details()
        path = running_path(snapshot)
        keys = snapshot.get("current_path") or [snapshot["current"]]
        return path[-1] if path and len(path) == len(keys) else None

    @property
    def percent(self) -> float:
        """Overall progress, 0-100."""
        return float(self.details()["percent"])

    @property
    def detail_state(self) -> str:
        """The task state djenga recorded (Celery's states, PROGRESS, LOST)."""
        return str(self.details()["state"])

    def follow(self, timeout: float | None = 60.0) -> Iterator[Snapshot]:
        """Yield the current snapshot, then each newer one, until the task ends.

        Raises :class:`TimeoutError` if the task has not ended within ``timeout`` seconds.
        """
        backend = self.detail_backend
        store = backend.store
        # Subscribe before reading the snapshot, so no update can fall in between.
        if store.names.sharded:  # a Redis Cluster: the task's shard channel
            pubsub: Any = ShardListener(store.client, store.names.channel(self.id))
        else:
            pubsub = backend.client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(store.names.channel(self.id))
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            snapshot = self.details()
            while True:
                yield snapshot
                if is_final(snapshot):
                    return
                snapshot = self._next(snapshot, deadline, pubsub.get_message, self.details)
        finally:
            pubsub.close()

    async def afollow(self, timeout: float | None = 60.0) -> AsyncIterator[Snapshot]:
        """Async twin of :meth:`follow`, on a redis.asyncio connection of its own: pub/sub,
        and reads (with the same LOST rule as :meth:`details`) by :class:`AsyncTaskStore`."""
        backend = self.detail_backend
        client = backend.async_client()
        names = backend.names
        channel = names.channel(self.id)
        if names.sharded:  # a Redis Cluster: the task's shard channel
            pubsub: Any = AsyncShardListener(client, channel)
        else:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
        store = AsyncTaskStore(client, names)

        async def read() -> Snapshot:
            return await store.read(self.id)

        try:
            await (pubsub.subscribe() if names.sharded else pubsub.subscribe(channel))
            deadline = None if timeout is None else time.monotonic() + timeout
            snapshot = await read()
            while True:
                yield snapshot
                if is_final(snapshot):
                    return
                while True:
                    wait = _wait_time(deadline)
                    try:
                        message = await pubsub.get_message(timeout=wait)
                        newer = await read() if message is None else decode(message["data"])
                    except TRANSIENT_ERRORS:
                        await asyncio.sleep(min(wait, AWAY_PAUSE))  # away: ask again
                        continue
                    if is_newer(newer, snapshot.get("epoch"), int(snapshot.get("seq") or 0)):
                        snapshot = newer
                        break
        finally:
            await pubsub.aclose()
            await client.aclose()

    @staticmethod
    def _next(snapshot: Snapshot, deadline: float | None, get_message: Any, read: Any) -> Snapshot:
        while True:
            wait = _wait_time(deadline)
            try:
                message = get_message(timeout=wait)
                newer = read() if message is None else decode(message["data"])
            except TRANSIENT_ERRORS:
                time.sleep(min(wait, AWAY_PAUSE))  # Redis is away for a moment: ask again
                continue
            if is_newer(newer, snapshot.get("epoch"), int(snapshot.get("seq") or 0)):
                return newer


def _wait_time(deadline: float | None) -> float:
    if deadline is None:
        return RESYNC_INTERVAL
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the task did not finish in time")
    return min(remaining, RESYNC_INTERVAL)


class _PolledSnapshot:
    """What a group's and a workflow's results share: one overall snapshot, polled."""

    #: What ``follow`` names when it times out.
    kind = "tasks"

    def details(self) -> Snapshot:
        raise NotImplementedError

    @property
    def percent(self) -> float:
        """Overall progress, 0-100."""
        return float(self.details()["percent"])

    def follow(self, timeout: float | None = 60.0, interval: float = 0.25) -> Iterator[Snapshot]:
        """Yield the snapshot each time it changes (checked every ``interval`` seconds),
        until it is final; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Snapshot | None = None
        while True:
            snapshot = self.details()
            if last is None or is_newer(snapshot, last.get("epoch"), int(last.get("seq") or 0)):
                last = snapshot
                yield snapshot
                if is_final(snapshot):
                    return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"the {self.kind} did not finish in time")
            time.sleep(interval)


class DetailedGroupResult(_PolledSnapshot):
    """The steps of several tasks at once (e.g. a Celery group): one overall snapshot.

    ``DetailedGroupResult(group_result)`` or ``DetailedGroupResult([id1, id2, ...])``;
    ``details()`` gives :func:`djenga.wire.group_snapshot` of the members, in order.
    """

    kind = "group"

    def __init__(self, results: Any, app: Any = None) -> None:
        members = getattr(results, "results", results)
        self.task_ids = [getattr(member, "id", member) for member in members]
        self.results = [AsyncDetailedResult(task_id, app=app) for task_id in self.task_ids]

    def details(self) -> Snapshot:
        """The group snapshot: state, overall percent, counts per state, each member."""
        if not self.results:
            return group_snapshot([])
        return group_snapshot(self.results[0].detail_backend.store.read_many(self.task_ids))


class DetailedWorkflowResult(_PolledSnapshot):
    """The steps of a whole chain or chord, stage by stage: one overall snapshot.

    ``DetailedWorkflowResult(chain(...).apply_async())``, ``DetailedWorkflowResult(
    chord(header)(body))`` or ``DetailedWorkflowResult([[id1], [id2, id3], [id4]])``;
    ``details()`` gives :func:`djenga.wire.workflow_snapshot` of the stages.
    """

    kind = "workflow"

    def __init__(self, result: Any, app: Any = None) -> None:
        from ..live.auth import workflow_stages

        self.stages = workflow_stages(result)
        self.task_ids = list(dict.fromkeys(t for stage in self.stages for t in stage))
        self.app = app
        self._floor = 0.0

    def details(self) -> Snapshot:
        """The workflow snapshot: state, overall percent, each stage with its tasks. Its
        percent never goes below what this object returned before."""
        if not self.task_ids:
            return workflow_snapshot([])
        backend = AsyncDetailedResult(self.task_ids[0], app=self.app).detail_backend
        read = dict(zip(self.task_ids, backend.store.read_many(self.task_ids), strict=True))
        snapshot = workflow_snapshot(
            [[read[t] for t in stage] for stage in self.stages], floor=self._floor
        )
        self._floor = float(snapshot["percent"])
        return snapshot

    @property
    def state(self) -> str:
        """The workflow's state (see :func:`djenga.wire.workflow_state`)."""
        return str(self.details()["state"])
