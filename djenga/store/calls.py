"""The store's rules, free of I/O: the arguments of the one Lua call, the LOST rule, the
absent rule and the recovery rule. The sync and async twins (:mod:`djenga.store.twins`)
only send what these build and hand the replies back, so the two cannot drift apart."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..conf import get_settings
from ..errors import InvalidTaskId
from ..keys import RedisNames
from ..wire import Snapshot, TaskState, decode, encode, expired_snapshot, pending_snapshot

PUBLISH_LUA = resources.files("djenga.celery").joinpath("publish.lua").read_text()

#: States in which a worker holds the task's lease.
LEASED_STATES = frozenset({TaskState.STARTED, TaskState.PROGRESS})
#: What publish.lua returns when it refused the write: its only-if-seq guard, or a write
#: from an earlier attempt than the stored one.
REFUSED = -1
#: Successful runs whose step durations are kept per task name, and for how long (ETA).
DURATION_SAMPLES = 20
DURATION_TTL = 30 * 24 * 3600

#: KEYS and ARGV of one publish.lua call.
Call = tuple[list[bytes], list[Any]]


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
    floor: int = 0,
) -> Call:
    """KEYS and ARGV of one publish.lua call, one ARGV per argument in the order of the
    script's header.

    Upkeep (expiries, lease, index trimming) is done for any event other than a plain
    ``step_updated``, or when ``upkeep`` asks for it. ``floor`` is the highest seq the
    writer may have been given (the new seq is above it).
    """
    settings = get_settings()
    keys, (task, channel, firehose) = _names_of(names, task_id)
    ttl, maxlen, recent, tomb = _constants(
        int(expires or 0), settings.EVENT_LOG_LENGTH, settings.RECENT_TASKS, settings.TOMBSTONE_TTL
    )
    upkeep = upkeep or any(event.get("type") != "step_updated" for event in events)
    args = [
        encode(snapshot),  # 1 snapshot
        ttl,  # 2 ttl
        maxlen,  # 3 maxlen
        recent,  # 4 recent
        lease_ms(str(snapshot.get("state")), settings.LEASE_TTL),  # 5 lease
        b"1" if upkeep else b"0",  # 6 upkeep
        repr(time.time()),  # 7 now
        int(snapshot.get("attempt") or 1),  # 8 attempt
        tomb,  # 9 tomb
        task,  # 10 task id
        channel,  # 11 task channel
        firehose,  # 12 all-tasks channel
        os.urandom(4).hex(),  # 13 epoch of a new log
        b"" if only_if_seq is None else str(only_if_seq),  # 14 only-if-seq
        floor,  # 15 floor
        b"1" if names.sharded else b"0",  # 16 sharded channels (a cluster)
        *(encode(event) for event in events),  # 17.. events
    ]
    return keys, args


# The parts of a call that do not change between two updates of one task are built once
# (the id validated) and as bytes, which redis-py sends without encoding them again: one
# argument each costs more to send than the packed string did, this keeps it level.


@functools.lru_cache(maxsize=1024)
def _names_of(names: RedisNames, task_id: str) -> tuple[list[bytes], tuple[bytes, bytes, bytes]]:
    keys = [
        names.task(task_id), names.log(task_id), names.recent_of(task_id), names.lease(task_id),
        names.seen(task_id),
    ]  # fmt: skip
    tail = (task_id.encode(), names.channel(task_id).encode(), names.firehose_of(task_id).encode())
    return [key.encode() for key in keys], tail


@functools.lru_cache(maxsize=64)
def _constants(*numbers: int) -> tuple[bytes, ...]:
    return tuple(str(number).encode() for number in numbers)


def lost_call(names: RedisNames, stored: Snapshot, ttl: int) -> Call | None:
    """The call that records a leased task whose lease expired as LOST, guarded so a
    live worker's update always wins; None if ``stored`` is not in a leased state."""
    from ..celery.detail import TaskDetail  # pure: the model, nothing of Celery

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
    """THE absent rule: what a reader answers for a task with no stored record. EXPIRED
    if its tombstone says it had one (``seen``), else PENDING (queued, or never sent)."""
    return expired_snapshot(task_id) if seen else pending_snapshot(task_id)


# -- reading: every reader queues the same commands and applies the same rules -----------

#: Replies :func:`queue_read` adds per task.
READ_REPLIES = 4


def queue_read(pipe: Any, names: RedisNames, task_id: str) -> None:
    """Queue what a reader needs to know of one task on a (sync or async) pipeline:
    its snapshot, its lease, its record's TTL and its tombstone."""
    key = names.task(task_id)
    pipe.hget(key, "snap")
    pipe.exists(names.lease(task_id))
    pipe.ttl(key)
    pipe.exists(names.seen(task_id))


@dataclass
class Lookup:
    """One task as a reader found it: the snapshot to answer, whether a record is stored,
    and the guarded LOST write to send first if its worker is gone."""

    task_id: str
    snapshot: Snapshot
    stored: bool
    lost: Call | None
    #: Set by the twin that sent ``lost`` and saw it applied: ``snapshot`` is now LOST.
    recorded: bool = False


def resolve(names: RedisNames, task_id: str, replies: Sequence[Any]) -> Lookup:
    """THE LOST rule, on the replies of :func:`queue_read`: a STARTED/PROGRESS task whose
    lease key is gone lost its worker, and is to be recorded LOST (guarded: a live
    worker's write wins). A task without a record follows :func:`absent_snapshot`."""
    raw, leased, ttl, seen = replies
    if raw is None:
        return Lookup(task_id, absent_snapshot(task_id, seen), stored=False, lost=None)
    snapshot = decode(raw)
    return Lookup(task_id, snapshot, True, None if leased else lost_call(names, snapshot, ttl))


def resolve_all(names: RedisNames, task_ids: Sequence[str], replies: Sequence[Any]) -> list[Lookup]:
    """:func:`resolve` for each task of a pipeline that queued :func:`queue_read` for
    each, in order (and nothing before)."""
    n = READ_REPLIES
    return [
        resolve(names, task_id, replies[i * n : i * n + n]) for i, task_id in enumerate(task_ids)
    ]


def queue_recent(pipe: Any, names: RedisNames, limit: int) -> None:
    """Queue the newest ``limit`` members, with scores, of every recent-tasks index."""
    for key in names.recents():
        pipe.zrevrange(key, 0, limit - 1, withscores=True)


def merge_recent(replies: Sequence[Any], limit: int) -> list[str]:
    """The ids of the newest ``limit`` tasks over the replies of :func:`queue_recent`."""
    scored = [(score, member) for reply in replies for member, score in reply]
    scored.sort(reverse=True)
    return [member.decode() for _score, member in scored[:limit]]


@dataclass(frozen=True)
class Since:
    """What a client at (epoch, seq) missed: the events after seq if the log still holds
    all of them in the same epoch (``recovered``), and the task's snapshot."""

    recovered: bool
    events: list[dict[str, Any]]
    snapshot: Snapshot


def queue_since(pipe: Any, names: RedisNames, task_id: str, seq: int) -> None:
    """Queue, after :func:`queue_read`, the log entries after ``seq`` and the oldest kept."""
    log = names.log(task_id)
    pipe.xrange(log, min=f"{seq + 1}-0")
    pipe.xrange(log, count=1)


def since(lookup: Lookup, epoch: str | None, seq: int, entries: Any, oldest: Any) -> Since:
    """THE recovery rule. A LOST write just made is not in ``entries``: the client gets
    the new snapshot whole (not recovered)."""
    first_kept = int(oldest[0][0].split(b"-")[0]) if oldest else None
    recovered = (
        lookup.stored
        and not lookup.recorded
        and lookup.snapshot.get("epoch") == epoch
        and (first_kept is None or first_kept <= seq + 1 or not entries)
    )
    events = [decode(fields[b"e"]) for _entry, fields in entries] if recovered else []
    return Since(bool(recovered), events, lookup.snapshot)


def events_of(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """The events of XRANGE entries, oldest first."""
    return [decode(fields[b"e"]) for _entry_id, fields in entries]


def durations_key(names: RedisNames, task_name: str | None) -> str | None:
    """The key of ``task_name``'s step durations; None if djenga keeps none for it."""
    try:
        return names.durations(task_name) if task_name else None
    except InvalidTaskId:
        return None


def mean_durations(samples: Iterable[bytes]) -> dict[str, float]:
    """Each step's mean duration over the stored samples (keyed by ``str(step key)``)."""
    seen: dict[str, list[float]] = {}
    for item in samples:
        for key, seconds in decode(item).items():
            if isinstance(seconds, (int, float)):
                seen.setdefault(key, []).append(float(seconds))
    return {key: sum(values) / len(values) for key, values in seen.items()}


# -- actions (cancel, revoke, terminate, retry): action.lua -------------------------------

ACTION_LUA = resources.files("djenga.celery").joinpath("action.lua").read_text()

#: The task hash's field that holds a cancel request (JSON: by, staff, at, via).
CANCEL_FIELD = "cancel"

#: What action.lua answers: the task was already final (nothing stored), the action was
#: recorded on a started task's snapshot, or the task has not started (no snapshot yet, or
#: a PENDING one): the request is kept, and a worker that takes the task never starts it.
ACTION_FINAL, ACTION_RECORDED, ACTION_QUEUED = 0, 1, 2


def publish_reply(reply: Any) -> tuple[int, dict[str, Any] | None]:
    """The seq and the stored cancel request (None: none) of a publish.lua reply."""
    if isinstance(reply, list):
        return int(reply[0]), cancel_of(reply[1])
    return int(reply), None


def cancel_of(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        return decode(raw)
    except ValueError:
        return {"by": None, "staff": False, "at": None, "via": None}


def action_call(
    names: RedisNames,
    task_id: str,
    event: dict[str, Any],
    *,
    cancel: dict[str, Any] | None,
    expires: int,
) -> Call:
    """KEYS and ARGV of one action.lua call: record ``event`` in the task's log (and its
    snapshot again under a new seq), and with ``cancel``, store the cancel request."""
    settings = get_settings()
    keys = [names.task(task_id).encode(), names.log(task_id).encode()]
    args = [
        b"1" if cancel is not None else b"0",  # 1 store the request
        encode(cancel or {}),  # 2 request
        encode(event),  # 3 event
        int(expires or 0),  # 4 ttl
        settings.EVENT_LOG_LENGTH,  # 5 maxlen
        names.channel(task_id),  # 6 task channel
        names.firehose_of(task_id),  # 7 all-tasks channel
        b"1" if names.sharded else b"0",  # 8 sharded
    ]
    return keys, args
