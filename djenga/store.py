"""The one writer of task records: the Lua call that stores, logs, leases and publishes a
snapshot, used by the worker's backend and by watchers that record a task as LOST."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

from .conf import get_settings
from .keys import RedisNames
from .wire import Snapshot, TaskState, decode, encode, expired_snapshot, pending_snapshot

PUBLISH_LUA = resources.files("djenga.celery").joinpath("publish.lua").read_text()

#: States in which a worker holds the task's lease.
LEASED_STATES = frozenset({TaskState.STARTED, TaskState.PROGRESS})
#: What publish.lua returns when it refused the write: its only-if-seq guard, or a write
#: from an earlier attempt than the stored one.
REFUSED = -1


def lease_ms(state: str, lease_ttl: float) -> int:
    """The lease argument for a snapshot in ``state``: renew for ``lease_ttl`` seconds,
    drop (0) or leave alone (-1)."""
    if state in LEASED_STATES:
        return int(lease_ttl * 1000)
    return -1 if state == TaskState.PENDING else 0


def publish_call(
    names: RedisNames,
    task_id: str,
    snapshot: Snapshot,
    events: Sequence[dict[str, Any]],
    *,
    expires: int,
    only_if_seq: int | None = None,
    upkeep: bool = False,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of one publish.lua call (see the script for their meaning).

    Upkeep (expiries, lease, index trimming) is done for any event other than a plain
    ``step_updated``, or when ``upkeep`` asks for it.
    """
    settings = get_settings()
    keys, channel = _names_of(names, task_id)
    upkeep = upkeep or any(event.get("type") != "step_updated" for event in events)
    numbers = (
        f"{int(expires or 0)} {settings.EVENT_LOG_LENGTH} {settings.RECENT_TASKS} "
        f"{lease_ms(str(snapshot.get('state')), settings.LEASE_TTL)} {int(upkeep)} "
        f"{time.time()!r} {int(snapshot.get('attempt') or 1)} {settings.TOMBSTONE_TTL}"
    )
    args = [
        encode(snapshot),
        numbers,
        task_id,
        channel,
        names.firehose(),
        os.urandom(4).hex(),
        "" if only_if_seq is None else str(only_if_seq),
        *(encode(event) for event in events),
    ]
    return keys, args


@functools.lru_cache(maxsize=1024)
def _names_of(names: RedisNames, task_id: str) -> tuple[list[str], str]:
    # Built (and the id validated) once per running task, not on every update.
    keys = [
        names.task(task_id), names.log(task_id), names.recent(), names.lease(task_id),
        names.seen(task_id),
    ]  # fmt: skip
    return keys, names.channel(task_id)


def lost_call(names: RedisNames, stored: Snapshot, ttl: int) -> tuple[list[str], list[Any]] | None:
    """The call that records a leased task whose lease expired as LOST, guarded so a
    live worker's update always wins; None if ``stored`` is not in a leased state."""
    from .celery.detail import TaskDetail

    if stored.get("state") not in LEASED_STATES or not stored.get("task_id"):
        return None
    detail = TaskDetail.from_snapshot(stored)
    detail.finish(TaskState.LOST)
    return publish_call(
        names,
        stored["task_id"],
        detail.snapshot(),
        detail.drain_events(),
        expires=max(ttl, 0),
        only_if_seq=int(stored.get("seq") or 0),
    )


def absent_snapshot(task_id: str, seen: Any) -> Snapshot:
    """What a reader answers for a task with no stored record: EXPIRED if its tombstone
    says it had one (``seen``), else PENDING (queued, or never sent)."""
    return expired_snapshot(task_id) if seen else pending_snapshot(task_id)


def read_snapshots(client: Any, names: RedisNames, task_ids: Sequence[str]) -> list[Snapshot]:
    """Stored snapshots of several tasks in one round trip, in order; a task djenga knows
    nothing of gets a PENDING snapshot with no steps, one whose record expired EXPIRED."""
    with client.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hget(names.task(task_id), "snap")
            pipe.exists(names.seen(task_id))
        replies = pipe.execute()
    return [
        decode(raw) if raw is not None else absent_snapshot(task_id, seen)
        for task_id, raw, seen in zip(task_ids, replies[::2], replies[1::2], strict=True)
    ]


def read_events(client: Any, names: RedisNames, task_id: str, after_seq: int = 0) -> list[Any]:
    """The task's logged events with seq > ``after_seq``, oldest first."""
    entries = client.xrange(names.log(task_id), min=f"{after_seq + 1}-0")
    return [decode(fields[b"e"]) for _entry_id, fields in entries]
