"""The one builder of every Redis key and pub/sub channel name djenga uses."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidTaskId

# Celery ids are UUIDs, but callers may pass their own ``task_id``: allow the usual id
# alphabet and refuse what would break a key, a glob pattern, a URL or a log line.
TASK_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}"
_TASK_ID_RE = re.compile(rf"\A{TASK_ID_PATTERN}\Z")
_TASK_NAME_RE = re.compile(r"\A[A-Za-z0-9_.:<>-]{1,200}\Z")


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

    def task_id_from_channel(self, channel: str) -> str:
        """Inverse of :meth:`channel`, for the relay hub."""
        head = f"{self.prefix}:{self.db}:task:"
        if not channel.startswith(head):
            raise InvalidTaskId(f"{channel!r} is not a djenga channel of {head!r}")
        return validate_task_id(channel[len(head) :])
