"""TaskDetail: the in-memory model of one task run's steps. Pure Python, no I/O."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import StepError
from ..wire import FINAL_STATES, WIRE_VERSION, Snapshot, StepState, TaskState

StepKey = int | str
StepDeclaration = tuple[StepKey, str]
Event = dict[str, Any]

#: Longest text kept for a message, an error message, a traceback or a repr.
MAX_TEXT = 10_000


def _clip(text: object, limit: int = MAX_TEXT) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_step_declarations(steps: object) -> list[StepDeclaration]:
    """Check a task's ``steps=[(key, description), ...]`` option; return it as a list."""
    if steps is None:
        return []
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
        raise StepError(f"steps must be a list of (key, description) pairs, not {steps!r}")
    declared: list[StepDeclaration] = []
    seen: set[StepKey] = set()
    for item in steps:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise StepError(f"each declared step is a (key, description) pair, not {item!r}")
        key, description = item
        if not isinstance(key, (int, str)) or isinstance(key, bool):
            raise StepError(f"step key {key!r} must be an int or a str")
        if key in seen:
            raise StepError(f"step key {key!r} is declared twice in steps={list(steps)!r}")
        seen.add(key)
        declared.append((key, str(description)))
    return declared


@dataclass
class Step:
    """One step of a task run."""

    key: StepKey
    description: str | None
    state: StepState = StepState.PENDING
    message: str | None = None
    started_at: float | None = None
    ended_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "description": self.description,
            "state": self.state.value,
            "message": self.message,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(
            key=data["key"],
            description=data.get("description"),
            state=StepState(data.get("state", StepState.PENDING)),
            message=data.get("message"),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
        )


class TaskDetail:
    """The steps, state and outcome of one run of a task.

    Each mutating method returns an *event* (a small dict) describing the change, which
    the backend appends to the task's event log; :meth:`snapshot` gives the full state.
    Misuse (unknown key, nothing running, a key started twice) raises :class:`StepError`:
    these are programming errors that the first run of a task shows.
    """

    def __init__(
        self,
        task_id: str | None,
        name: str | None = None,
        steps: Sequence[StepDeclaration] = (),
        *,
        state: TaskState | str = TaskState.PENDING,
        attempt: int = 1,
        public: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.task_id = task_id
        self.name = name
        self.state = TaskState(state)
        self.attempt = attempt
        self.public = sorted(set(public))
        self.error: dict[str, str | None] | None = None
        self.private: dict[str, Any] = {}
        self.updated_at: float | None = None
        self._clock = clock
        self.steps: list[Step] = []
        self._by_key: dict[StepKey, Step] = {}
        for key, description in validate_step_declarations(steps):
            self._add(key, description)

    # -- queries -------------------------------------------------------------------------

    @property
    def current(self) -> Step | None:
        """The running step, if any."""
        for step in self.steps:
            if step.state is StepState.RUNNING:
                return step
        return None

    @property
    def percent(self) -> float:
        """Overall progress: finished steps count whole, a running or failed step half."""
        if self.state is TaskState.SUCCESS:
            return 100.0
        if not self.steps:
            return 0.0
        weights = {
            StepState.DONE: 1.0,
            StepState.SKIPPED: 1.0,
            StepState.RUNNING: 0.5,
            StepState.FAILED: 0.5,
        }
        done = sum(weights.get(step.state, 0.0) for step in self.steps)
        return round(100.0 * done / len(self.steps), 2)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    def step(self, key: StepKey) -> Step:
        """The step with this key, or :class:`StepError` naming the known keys."""
        try:
            return self._by_key[key]
        except KeyError:
            known = ", ".join(repr(k) for k in self._by_key) or "none"
            raise StepError(f"step {key!r} is unknown (known steps: {known})") from None

    # -- changes -------------------------------------------------------------------------

    def start(self) -> Event:
        """The task started running (a worker picked it up)."""
        self.state = TaskState.STARTED
        return self._event("started", attempt=self.attempt)

    def start_step(self, key: StepKey, description: str | None = None) -> Event:
        """Start step ``key``; a step still running is ended first (as done).

        A key not declared up front needs a ``description``; a key may start only once.
        """
        step = self._by_key.get(key)
        if step is None:
            if description is None:
                raise StepError(
                    f"step {key!r} was not declared in steps=[...]; give it a description: "
                    f"start_step({key!r}, 'What this step does')"
                )
            step = self._add(key, str(description))
        elif step.state is not StepState.PENDING:
            raise StepError(f"step {key!r} was already started (it is {step.state.value})")
        elif description is not None:
            step.description = str(description)
        running = self.current
        now = self._clock()
        if running is not None:
            running.state, running.ended_at = StepState.DONE, now
        step.state, step.started_at = StepState.RUNNING, now
        self.state = TaskState.PROGRESS
        return self._event("step_started", now, key=key, description=step.description)

    def update_step(self, key: StepKey, message: str) -> Event:
        """Set the latest message of step ``key``; a pending step starts first."""
        step = self.step(key)
        if step.state is StepState.PENDING:
            self.start_step(key)
        elif step.state is not StepState.RUNNING:
            raise StepError(
                f"step {key!r} is {step.state.value}; only a running step takes updates"
            )
        step.message = _clip(message)
        return self._event("step_updated", key=key, message=step.message)

    def end_step(self, key: StepKey | None = None) -> Event:
        """End the running step (or step ``key``, which must be the running one) as done."""
        running = self.current
        if running is None:
            raise StepError("end_step() was called but no step is running; call start_step first")
        if key is not None and running.key != key:
            raise StepError(f"end_step({key!r}) but the running step is {running.key!r}")
        now = self._clock()
        running.state, running.ended_at = StepState.DONE, now
        return self._event("step_ended", now, key=running.key)

    def finish(
        self,
        state: TaskState | str,
        *,
        error: BaseException | None = None,
        traceback: str | None = None,
        result: Any = None,
    ) -> Event:
        """Record the task's outcome: the running step is done on success, failed otherwise;
        on success, steps that never ran are skipped."""
        self.state = TaskState(state)
        now = self._clock()
        for step in self.steps:
            if step.state is StepState.RUNNING:
                step.state = StepState.DONE if self.state is TaskState.SUCCESS else StepState.FAILED
                step.ended_at = now
            elif step.state is StepState.PENDING and self.state is TaskState.SUCCESS:
                step.state = StepState.SKIPPED
        if error is not None:
            self.error = {"type": type(error).__name__, "message": _clip(error)}
        if traceback:
            self.private["traceback"] = _clip(traceback)
        if result is not None and self.state is TaskState.SUCCESS:
            self.private["result"] = _clip(repr(result))
        return self._event("finished", now, state=self.state.value, error=self.error)

    # -- serialisation -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The full snapshot (wire format v1) without ``seq`` and ``epoch``, which Redis adds."""
        current = self.current
        return {
            "v": WIRE_VERSION,
            "task_id": self.task_id,
            "name": self.name,
            "state": self.state.value,
            "updated_at": self.updated_at,
            "attempt": self.attempt,
            "steps": [step.to_dict() for step in self.steps],
            "current": current.key if current else None,
            "percent": self.percent,
            "error": self.error,
            "public": self.public,
            "private": self.private,
        }

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> TaskDetail:
        """Rebuild a TaskDetail from a stored snapshot (e.g. to record a revoke)."""
        detail = cls(
            snapshot.get("task_id"),
            snapshot.get("name"),
            state=snapshot.get("state") or TaskState.PENDING,
            attempt=snapshot.get("attempt") or 1,
            public=snapshot.get("public") or (),
        )
        for data in snapshot.get("steps") or ():
            step = Step.from_dict(data)
            detail.steps.append(step)
            detail._by_key[step.key] = step
        detail.error = snapshot.get("error")
        detail.private = dict(snapshot.get("private") or {})
        detail.updated_at = snapshot.get("updated_at")
        return detail

    # -- internals -----------------------------------------------------------------------

    def _add(self, key: StepKey, description: str | None) -> Step:
        if not isinstance(key, (int, str)) or isinstance(key, bool):
            raise StepError(f"step key {key!r} must be an int or a str")
        step = Step(key, description)
        self.steps.append(step)
        self._by_key[key] = step
        return step

    def _event(self, kind: str, at: float | None = None, **fields: Any) -> Event:
        self.updated_at = self._clock() if at is None else at
        return {"type": kind, "at": self.updated_at, **fields}
