"""Wire format v1: the one JSON snapshot shape used by Redis, pub/sub, WebSockets and the JSON view.

Every message is a full snapshot, so a client can always replace what it shows with the
newest one (highest ``seq`` within an ``epoch``). Field reference: docs/snapshot.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

WIRE_VERSION = 1

Snapshot = dict[str, Any]


class TaskState(StrEnum):
    """Task states: Celery's own, PROGRESS while steps run, and LOST (worker vanished)."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"
    LOST = "LOST"


FINAL_STATES: frozenset[str] = frozenset(
    {TaskState.SUCCESS, TaskState.FAILURE, TaskState.REVOKED, TaskState.LOST}
)


class StepState(StrEnum):
    """The state of one step."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


#: Snapshot entries only staff see, unless the task lists them in ``public_fields``.
PRIVATE_FIELDS: frozenset[str] = frozenset({"error", "traceback", "result", "args", "kwargs"})


def is_final(snapshot: Snapshot) -> bool:
    """True when the snapshot's task state will not change any more."""
    return snapshot.get("state") in FINAL_STATES


def pending_snapshot(task_id: str) -> Snapshot:
    """The snapshot of a task djenga knows nothing about (yet): PENDING, no steps."""
    return {
        "v": WIRE_VERSION,
        "seq": 0,
        "epoch": None,
        "task_id": task_id,
        "name": None,
        "state": TaskState.PENDING.value,
        "updated_at": None,
        "attempt": 0,
        "steps": [],
        "current": None,
        "percent": 0.0,
        "error": None,
        "public": [],
        "private": {},
    }


def encode(snapshot: Snapshot) -> str:
    """Serialise a snapshot (or event) compactly; UTF-8 text, keys in insertion order."""
    return json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False, default=str)


def decode(data: str | bytes) -> Snapshot:
    """Parse a snapshot produced by :func:`encode` (and completed by the Lua script)."""
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a djenga snapshot is a JSON object")
    return value


def for_viewer(snapshot: Snapshot, *, staff: bool) -> Snapshot:
    """Return what one viewer may see: staff see everything; customers see steps,
    messages, percent and state, plus only the private fields the task made public."""
    if staff:
        return snapshot
    public: Iterable[str] = snapshot.get("public") or ()
    private = snapshot.get("private") or {}
    view = {key: value for key, value in snapshot.items() if key not in ("private", "error")}
    view["error"] = snapshot.get("error") if "error" in public else None
    view["private"] = {k: v for k, v in private.items() if k in public and k in PRIVATE_FIELDS}
    return view


def is_newer(snapshot: Snapshot, epoch: str | None, seq: int) -> bool:
    """True if ``snapshot`` should replace one a client holds at (``epoch``, ``seq``):
    a higher seq in the same epoch, or any seq in another epoch (the history restarted)."""
    if snapshot.get("epoch") != epoch:
        return True
    return int(snapshot.get("seq") or 0) > seq
