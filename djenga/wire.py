"""Wire format v2: the one JSON snapshot shape used by Redis, pub/sub, WebSockets and the JSON view.

Every message is a full snapshot, so a client can always replace what it shows with the
newest one (highest ``seq`` within an ``epoch``). Field reference: docs/snapshot.md.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

#: v2 (additive over v1): each step carries ``children`` and a snapshot ``current_path``
#: (docs/protocol.md, "Versions"). A v1 client reads the top-level steps as before.
WIRE_VERSION = 2

Snapshot = dict[str, Any]


class TaskState(StrEnum):
    """Task states: Celery's own, PROGRESS while steps run, LOST (worker vanished) and
    EXPIRED (its record outlived ``result_expires``: what it did is no longer known)."""

    PENDING = "PENDING"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"
    LOST = "LOST"
    EXPIRED = "EXPIRED"


FINAL_STATES: frozenset[str] = frozenset(
    {TaskState.SUCCESS, TaskState.FAILURE, TaskState.REVOKED, TaskState.LOST, TaskState.EXPIRED}
)


class StepState(StrEnum):
    """The state of one step."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class FrameType(StrEnum):
    """The ``type`` of every frame a client receives (frontend/src/progress/constants.js)."""

    SNAPSHOT = "snapshot"  # one task
    GROUP = "group"  # a group of tasks (group_snapshot)
    RECOVERY = "recovery"  # the events a reconnecting client missed (docs/protocol.md)
    TASKS = "tasks"  # the console's list of tasks
    ACTION = "action"  # the answer to an action (cancel, revoke, …; djenga/actions.py)
    WORKFLOW = "workflow"  # a chain or a chord, stage by stage (workflow_snapshot)


def frame(kind: FrameType, **fields: Any) -> dict[str, Any]:
    """A frame of ``kind``: ``{"v": WIRE_VERSION, "type": kind, **fields}``, the one place both
    are set."""
    return {"v": WIRE_VERSION, "type": kind.value, **fields}


#: Snapshot entries only staff see, unless the task lists them in ``public_fields``.
PRIVATE_FIELDS: frozenset[str] = frozenset({"error", "traceback", "result", "args", "kwargs"})


#: Longest text kept for a message, an error message, a traceback or a repr.
MAX_TEXT = 10_000


def clip(text: object, limit: int = MAX_TEXT) -> str | None:
    """``str(text)`` cut to ``limit`` characters, an ellipsis last (None stays None)."""
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_final(snapshot: Snapshot) -> bool:
    """True when the snapshot's task state will not change any more."""
    return snapshot.get("state") in FINAL_STATES


def running_path(snapshot: Snapshot) -> list[dict[str, Any]]:
    """The snapshot's running steps from the top level down (v2 ``current_path``; a v1
    snapshot names only a top-level ``current``); it stops where a key is not found, and
    is [] when no step runs (frontend/src/progress/snapshot.js has its twin)."""
    keys = snapshot.get("current_path") or [snapshot.get("current")]
    path: list[dict[str, Any]] = []
    level = snapshot.get("steps") or []
    for key in keys:
        step = next((s for s in level if isinstance(s, dict) and s.get("key") == key), None)
        if key is None or step is None:
            break
        path.append(step)
        level = step.get("children") or []
    return path


def pending_snapshot(task_id: str) -> Snapshot:
    """The snapshot of a task djenga knows nothing about (yet): PENDING, no steps."""
    return frame(
        FrameType.SNAPSHOT,
        seq=0,
        epoch=None,
        task_id=task_id,
        name=None,
        state=TaskState.PENDING.value,
        updated_at=None,
        attempt=0,
        steps=[],
        current=None,
        current_path=[],
        percent=0.0,
        error=None,
        public=[],
        private={},
    )


def expired_snapshot(task_id: str) -> Snapshot:
    """The snapshot of a task whose record expired (its tombstone is still there): final,
    so a watcher stops waiting, and with nothing else known."""
    return dict(pending_snapshot(task_id), state=TaskState.EXPIRED.value)


# One encoder for every call: json.dumps with options builds a new one each time, which
# costs about as much as encoding a small snapshot (it is on every update's path).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def encode(snapshot: Snapshot) -> str:
    """Serialise a snapshot (or event) compactly; UTF-8 text, keys in insertion order."""
    return _ENCODER.encode(snapshot)


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
    if isinstance(snapshot.get("cancel"), dict):
        _cancel_for_customer(view, snapshot["cancel"])
    return view


def _cancel_for_customer(view: Snapshot, cancel: dict[str, Any]) -> None:
    """A customer sees that and when a task was cancelled, never who cancelled it."""
    view["cancel"] = {"at": cancel.get("at")}
    if view.get("error"):
        view["error"] = {"type": view["error"].get("type"), "message": "cancelled"}


#: Event fields only staff see, unless the task made the matching field public.
_PRIVATE_EVENT_FIELDS = {
    "error": "error", "worker": "worker", "by": "", "via": "", "retry_of": "",
}  # fmt: skip


def event_for_viewer(
    event: dict[str, Any], *, staff: bool, public: Iterable[str]
) -> dict[str, Any]:
    """An event of the task's log as one viewer may see it (see :func:`for_viewer`)."""
    if staff:
        return event
    shown = set(public)
    return {
        key: value
        for key, value in event.items()
        if key not in _PRIVATE_EVENT_FIELDS or _PRIVATE_EVENT_FIELDS[key] in shown
    }


def is_newer(snapshot: Snapshot, epoch: str | None, seq: int) -> bool:
    """True if ``snapshot`` should replace one a client holds at (``epoch``, ``seq``):
    a higher seq in the same epoch, or any seq in another epoch (the history restarted)."""
    if snapshot.get("epoch") != epoch:
        return True
    return int(snapshot.get("seq") or 0) > seq


_ACTIVE_STATES = frozenset({TaskState.STARTED, TaskState.PROGRESS, TaskState.RETRY})


def group_state(states: Iterable[str]) -> str:
    """A group's state: final once every member is (SUCCESS only if all succeeded)."""
    present = set(states)
    if present and present <= FINAL_STATES:
        for state in (TaskState.FAILURE, TaskState.LOST, TaskState.REVOKED, TaskState.EXPIRED):
            if state in present:
                return state.value
        return TaskState.SUCCESS.value
    if present & _ACTIVE_STATES or present & FINAL_STATES:
        return TaskState.PROGRESS.value
    return TaskState.PENDING.value


def group_snapshot(members: list[Snapshot]) -> Snapshot:
    """One full snapshot of a group of tasks (members in the group's order).

    ``seq`` is the sum of the members' seqs and ``epoch`` a digest of their epochs, so
    the usual ordering rule (:func:`is_newer`) holds for groups too.
    """
    totals = _totals(members)
    return frame(
        FrameType.GROUP,
        seq=totals["seq"],
        epoch=totals["epoch"],
        state=group_state(totals["counts"]),
        percent=totals["percent"],
        total=totals["total"],
        counts=totals["counts"],
        updated_at=totals["updated_at"],
        tasks=members,
    )


def _mean_percent(tasks: list[Snapshot]) -> float:
    percents = [float(task.get("percent") or 0.0) for task in tasks]
    return round(sum(percents) / len(percents), 2) if percents else 0.0


def _totals(members: list[Snapshot]) -> dict[str, Any]:
    """What a group's and a workflow's frames say of all their tasks: ``seq`` (the sum of
    the members' seqs) and ``epoch`` (a digest of their epochs), so the usual ordering rule
    (:func:`is_newer`) holds for them too; the mean percent; the count per state."""
    epochs = "|".join(str(member.get("epoch")) for member in members)
    return {
        "seq": sum(int(member.get("seq") or 0) for member in members),
        "epoch": hashlib.sha1(epochs.encode(), usedforsecurity=False).hexdigest()[:8],
        "percent": _mean_percent(members),
        "total": len(members),
        "counts": dict(Counter(str(member.get("state")) for member in members)),
        "updated_at": max((m.get("updated_at") or 0 for m in members), default=None) or None,
    }


def stage_state(states: list[str]) -> str:
    """A workflow stage's state: a one-task stage's is its task's; a group's, group_state."""
    return states[0] if len(states) == 1 else group_state(states)


def workflow_state(stage_states: Iterable[str]) -> str:
    """A workflow's state: the first stage that ended other than SUCCESS ends it (a chain
    runs nothing after a failed stage, a chord's body nothing after a failed header);
    SUCCESS once every stage succeeded; PENDING until a stage has begun; else PROGRESS."""
    states = list(stage_states)
    for state in states:
        if state in FINAL_STATES and state != TaskState.SUCCESS:
            return state
    if states and all(state == TaskState.SUCCESS for state in states):
        return TaskState.SUCCESS.value
    if any(state != TaskState.PENDING for state in states):
        return TaskState.PROGRESS.value
    return TaskState.PENDING.value


def workflow_snapshot(stages: list[list[Snapshot]], *, floor: float = 0.0) -> Snapshot:
    """One full snapshot of a workflow (a chain, a chord): its stages in order, each one
    task or a group of tasks, with every task's snapshot as given (filter them first).

    ``percent`` weighs every task of every stage the same (a chord of four and a body: each
    task 20); 100 only on SUCCESS, at most 99 before, and never below ``floor`` (the highest
    percent a watcher was shown: a retried task's new attempt starts its steps over).
    ``current`` is the index of the first stage not yet SUCCESS (null once all are).
    ``seq``/``epoch`` follow :func:`group_snapshot`, so :func:`is_newer` orders them too.
    """
    parts = []
    for index, tasks in enumerate(stages):
        states = [str(task.get("state")) for task in tasks]
        parts.append(
            {
                "index": index,
                "state": stage_state(states) if states else TaskState.PENDING.value,
                "percent": _mean_percent(tasks),
                "total": len(tasks),
                "tasks": tasks,
            }
        )
    state = workflow_state(part["state"] for part in parts)
    totals = _totals([member for stage in stages for member in stage])
    percent = 100.0 if state == TaskState.SUCCESS else min(99.0, max(totals["percent"], floor))
    current = next((p["index"] for p in parts if p["state"] != TaskState.SUCCESS), None)
    return frame(
        FrameType.WORKFLOW,
        seq=totals["seq"],
        epoch=totals["epoch"],
        state=state,
        percent=percent,
        total=totals["total"],
        current=current,
        counts=totals["counts"],
        updated_at=totals["updated_at"],
        stages=parts,
    )


#: Most bytes of one frame djenga sends on a WebSocket (a workflow, a group, a console
#: batch): daphne's --websocket-max-message-size (64 KiB, docs/deployment.md) applies to
#: what it sends too, and a longer frame fails the socket with 1009.
MAX_FRAME_BYTES = 60_000
#: What a task of a slimmed workflow frame keeps (see :func:`fit_workflow`).
_SLIM_TASK_KEYS = (
    "v", "type", "seq", "epoch", "task_id", "name", "state", "updated_at", "started_at",
    "ended_at", "attempt", "current", "percent", "eta", "error", "retry_at", "retry_in",
)  # fmt: skip
_BARE_TASK_KEYS = ("task_id", "name", "state", "percent", "attempt", "retry_at", "retry_in")


def fit_workflow(snapshot: Snapshot, max_bytes: int = MAX_FRAME_BYTES) -> tuple[Snapshot, str]:
    """The workflow frame and its text, made to fit ``max_bytes`` (UTF-8).

    As it is if it fits; else, one level after another until it fits, ``"slim": N`` says
    how far it went: 1, the steps of the tasks outside the ``current`` stage are left out;
    2, every task's steps; 3, the tasks outside the current stage keep only their id, name,
    state, percent, attempt and retry fields; 4, every task does; 5, every task keeps only
    its id, state and percent. Every level keeps the stages, their states and percents and
    the workflow's own fields: the bar and the stage rows are always right.
    """
    text = encode(snapshot)
    if len(text.encode()) <= max_bytes:
        return snapshot, text
    current = snapshot.get("current")
    for level in range(1, _SLIM_LEVELS + 1):
        stages = []
        for stage in snapshot.get("stages") or ():
            here = stage.get("index") == current
            tasks = [_slim_task(task, level, here) for task in stage.get("tasks") or ()]
            stages.append({**stage, "tasks": tasks})
        slim = {**snapshot, "slim": level, "stages": stages}
        text = encode(slim)
        if len(text.encode()) <= max_bytes:
            break
    return slim, text


_SLIM_LEVELS = 5


def _slim_task(task: Snapshot, level: int, current_stage: bool) -> Snapshot:
    if level == 1 and current_stage:
        return task
    if level >= 5:
        return {key: task[key] for key in ("task_id", "state", "percent") if key in task}
    if level == 4 or (level == 3 and not current_stage):
        return {key: task[key] for key in _BARE_TASK_KEYS if key in task}
    return {**{key: task[key] for key in _SLIM_TASK_KEYS if key in task}, "steps": []}


def fit_group(snapshot: Snapshot, max_bytes: int = MAX_FRAME_BYTES) -> tuple[Snapshot, str]:
    """The group frame and its text, made to fit ``max_bytes`` (UTF-8), as
    :func:`fit_workflow` does for a workflow (a group of 85 two-step tasks is about 60 KB).

    As it is if it fits; else ``"slim": 1``: each task keeps what its group row shows (id,
    name, state, percent, attempt, error, retry fields, and its running step alone, without
    sub-steps, its message cut to 120 characters); then 4 and 5, as for a workflow. The
    group's own fields are never cut.
    """
    text = encode(snapshot)
    if len(text.encode()) <= max_bytes:
        return snapshot, text
    for level in (1, 4, 5):
        tasks = [_slim_member(task, level) for task in snapshot.get("tasks") or ()]
        slim = {**snapshot, "slim": level, "tasks": tasks}
        text = encode(slim)
        if len(text.encode()) <= max_bytes:
            break
    return slim, text


#: What a group row shows of a member at ``"slim": 1`` (see :func:`fit_group`).
_ROW_TASK_KEYS = (*_BARE_TASK_KEYS, "seq", "epoch", "current", "error")
_ROW_STEP_KEYS = ("key", "description", "state", "done", "total")


def _slim_member(task: Snapshot, level: int) -> Snapshot:
    if level > 1:
        return _slim_task(task, level, current_stage=False)
    running = [
        {
            **{key: step[key] for key in _ROW_STEP_KEYS if key in step},
            "message": clip(step.get("message"), 120),
        }
        for step in task.get("steps") or ()
        if isinstance(step, dict) and step.get("state") == StepState.RUNNING
    ]
    return {**{key: task[key] for key in _ROW_TASK_KEYS if key in task}, "steps": running}
