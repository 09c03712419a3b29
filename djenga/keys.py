"""The one builder of every Redis key and pub/sub channel name djenga uses."""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass
from typing import ClassVar

from .errors import InvalidTaskId

# Celery ids are UUIDs, but callers may pass their own ``task_id``: allow the usual id
# alphabet and refuse what would break a key, a glob pattern, a URL or a log line.
TASK_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}"
_TASK_ID_RE = re.compile(rf"\A{TASK_ID_PATTERN}\Z")
_TASK_NAME_RE = re.compile(r"\A[A-Za-z0-9_.:<>-]{1,200}\Z")

#: Partitions of the recent-tasks index and of the all-tasks channel on a Redis Cluster
#: (docs/deployment.md, "Cluster"): each has its own hash tag, and every task belongs to
#: one of them, so a task's keys, its partition's index and both its channels are in one
#: slot and the Lua call stays single-slot. Changing it re-homes every task: it is fixed.
CLUSTER_PARTITIONS = 64
#: Hash slots of a Redis Cluster.
CLUSTER_SLOTS = 16384


def validate_task_id(task_id: object) -> str:
    """Return ``task_id`` if it is a usable task id, else raise :class:`InvalidTaskId`."""
    if not isinstance(task_id, str) or not _TASK_ID_RE.match(task_id):
        raise InvalidTaskId(
            f"{task_id!r} is not a valid task id: use 1-200 characters of letters, digits "
            "and . _ : - (Celery's UUIDs always are)."
        )
    return task_id


@dataclass(frozen=True)
class RedisNames:
    """Builds the names of one Redis database's djenga keys and channels.

    Keys carry a ``{task_id}`` hash tag so a task's keys live in one cluster slot.
    Channels carry the database number because pub/sub ignores it: apps on db 1 and
    db 15 of one server would otherwise hear each other's tasks.
    """

    prefix: str = "djenga"
    db: int = 0
    #: Whether channels are shard channels (SPUBLISH / SSUBSCRIBE): a Redis Cluster.
    sharded: ClassVar[bool] = False

    def task(self, task_id: str) -> str:
        """Hash holding the task's ``snap`` (latest snapshot), ``seq`` and ``epoch``."""
        return f"{self.prefix}:task:{{{validate_task_id(task_id)}}}"

    def log(self, task_id: str) -> str:
        """Capped stream of the task's events; entry ids are ``<seq>-0``."""
        return f"{self.prefix}:task:{{{validate_task_id(task_id)}}}:log"

    def lease(self, task_id: str) -> str:
        """Key a running task's worker keeps alive; its expiry means the worker is gone."""
        return f"{self.prefix}:task:{{{validate_task_id(task_id)}}}:lease"

    def seen(self, task_id: str) -> str:
        """Tombstone that outlives the task's record by ``DJENGA_TOMBSTONE_TTL``: a task
        whose record is gone but whose tombstone is not has EXPIRED (it is not queued)."""
        return f"{self.prefix}:task:{{{validate_task_id(task_id)}}}:seen"

    def channel(self, task_id: str) -> str:
        """Pub/sub channel on which every new snapshot of the task is published."""
        return f"{self.prefix}:{self.db}:task:{validate_task_id(task_id)}"

    def recent(self) -> str:
        """Sorted set of recently updated task ids, scored by update time (the console)."""
        return f"{self.prefix}:recent"

    def firehose(self) -> str:
        """Pub/sub channel on which every task's snapshots are published too (the console)."""
        return f"{self.prefix}:{self.db}:tasks"

    def durations(self, task_name: str) -> str:
        """Capped list of recent successful runs' step durations of one task name (ETA)."""
        if not isinstance(task_name, str) or not _TASK_NAME_RE.match(task_name):
            raise InvalidTaskId(f"{task_name!r} is not a task name djenga keeps timings for")
        return f"{self.prefix}:durations:{task_name}"

    def recent_of(self, task_id: str) -> str:
        """The recent-tasks index ``task_id`` is listed in (the Lua call's KEYS[3])."""
        return self.recent()

    def recents(self) -> tuple[str, ...]:
        """Every recent-tasks index (one here; one per partition on a cluster)."""
        return (self.recent(),)

    def firehose_of(self, task_id: str) -> str:
        """The all-tasks channel ``task_id``'s snapshots are published on."""
        return self.firehose()

    def firehoses(self) -> tuple[str, ...]:
        """Every all-tasks channel (one here; one per partition on a cluster)."""
        return (self.firehose(),)

    def is_task_channel(self, channel: str) -> bool:
        """Whether ``channel`` is one task's channel (not an all-tasks or control one)."""
        try:
            self.task_id_from_channel(channel)
        except InvalidTaskId:
            return False
        return True

    def task_id_from_channel(self, channel: str) -> str:
        """Inverse of :meth:`channel`, for the relay hub."""
        head = f"{self.prefix}:{self.db}:task:"
        if not channel.startswith(head):
            raise InvalidTaskId(f"{channel!r} is not a djenga channel of {head!r}")
        return validate_task_id(channel[len(head) :])


@functools.cache
def partition_tags(count: int = CLUSTER_PARTITIONS) -> tuple[str, ...]:
    """The hash tag of each of ``count`` partitions, chosen so that partition ``i`` hashes
    into the ``i``-th of ``count`` equal ranges of slots: the partitions spread evenly over
    masters that hold contiguous slot ranges (as ``redis-cli --cluster create`` assigns)."""
    from redis.crc import key_slot

    tags = []
    for i in range(count):
        low, high = i * CLUSTER_SLOTS // count, (i + 1) * CLUSTER_SLOTS // count
        n = 0
        while not low <= key_slot(f"p{i}.{n}".encode()) < high:
            n += 1
        tags.append(f"p{i}.{n}")
    return tuple(tags)


@dataclass(frozen=True)
class ClusterNames(RedisNames):
    """The names of djenga's keys and channels on a Redis Cluster.

    Every task belongs to one of ``partitions`` partitions (CRC-32 of its id), and all its
    keys and its channel carry that partition's hash tag, as do the partition's recent
    index and all-tasks channel: the one Lua call touches one slot. A cluster has only
    database 0, and its shard channels are not heard across databases: no db number in
    channel names.
    """

    db: int = 0
    partitions: int = CLUSTER_PARTITIONS
    sharded: ClassVar[bool] = True

    def partition(self, task_id: str) -> int:
        """The partition of ``task_id``."""
        return zlib.crc32(validate_task_id(task_id).encode()) % self.partitions

    def tag(self, task_id: str) -> str:
        """The hash tag of ``task_id``'s keys and channels (its partition's)."""
        return partition_tags(self.partitions)[self.partition(task_id)]

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:task:{{{self.tag(task_id)}}}:{task_id}"

    def log(self, task_id: str) -> str:
        return f"{self.task(task_id)}:log"

    def lease(self, task_id: str) -> str:
        return f"{self.task(task_id)}:lease"

    def seen(self, task_id: str) -> str:
        return f"{self.task(task_id)}:seen"

    def channel(self, task_id: str) -> str:
        """The task's shard channel (SPUBLISH), in its partition's slot."""
        return f"{self.prefix}:chan:{{{self.tag(task_id)}}}:{task_id}"

    def recent(self) -> str:
        raise NotImplementedError("on a cluster the recent index is partitioned: recents()")

    def firehose(self) -> str:
        raise NotImplementedError("on a cluster the all-tasks channel is partitioned")

    def recent_of(self, task_id: str) -> str:
        return f"{self.prefix}:recent:{{{self.tag(task_id)}}}"

    def recents(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}:recent:{{{tag}}}" for tag in partition_tags(self.partitions))

    def firehose_of(self, task_id: str) -> str:
        return f"{self.prefix}:tasks:{{{self.tag(task_id)}}}"

    def firehoses(self) -> tuple[str, ...]:
        return tuple(f"{self.prefix}:tasks:{{{tag}}}" for tag in partition_tags(self.partitions))

    def task_id_from_channel(self, channel: str) -> str:
        head = f"{self.prefix}:chan:{{"
        tag, sep, task_id = channel[len(head) :].partition("}:")
        if not channel.startswith(head) or not sep:
            raise InvalidTaskId(f"{channel!r} is not a djenga shard channel of {head!r}")
        if tag != self.tag(task_id):
            raise InvalidTaskId(f"{channel!r} carries the wrong partition tag")
        return task_id
