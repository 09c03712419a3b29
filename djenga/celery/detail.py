"""TaskDetail: the in-memory model of one task run: its step tree (steps.py), state,
timing, outcome and the events that change them. Pure Python, no I/O."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import StepError
from ..wire import FINAL_STATES, FrameType, Snapshot, StepState, TaskState, clip, frame
from .steps import (
    Step,
    StepDeclaration,
    StepKey,
    check_key,
    validate_step_declarations,
)

Event = dict[str, Any]

#: Unpublished events kept while Redis is away; older ones are dropped (the snapshot stays exact).
MAX_PENDING_EVENTS = 100
#: Highest percent before SUCCESS: 100 means the task succeeded, never "all steps ended".
MAX_UNFINISHED_PERCENT = 99.0


def error_of(error: BaseException) -> dict[str, str | None]:
    """An exception as snapshots and events carry it: its type's name and its message."""
    return {"type": type(error).__name__, "message": clip(error)}


class TaskDetail:
    """The steps, state, timing and outcome of one run of a task.

    Each change records an *event* in :attr:`events` (drained by the backend into the
    task's event log) and returns it; :meth:`snapshot` gives the full state. Misuse
    (unknown key, nothing running, a key started twice) raises :class:`StepError`:
    these are programming errors that the first run of a task shows. Hold :attr:`lock`
    around changes when another thread may read the detail at the same time.
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
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.updated_at: float | None = None
        self.events: list[Event] = []
        #: When the next attempt is due (epoch seconds, this clock) while RETRY, else None.
        self.retry_at: float | None = None
        self.lock = threading.RLock()
        self._clock = clock
        self.steps: list[Step] = []
        self._by_key: dict[StepKey, Step] = {}
        self._declare(validate_step_declarations(steps), None)
        #: A task that declared no steps does not know how many come: one more is counted.
        self.open_ended = not self.steps
        #: The highest percent a snapshot of this attempt showed; :attr:`percent` never goes
        #: below it. Every publication goes through :meth:`snapshot`, which raises it.
        self._percent_floor = 0.0
        #: The highest seq a write of this detail may have been given (a failed write
        #: counts: it may have been applied). The next write's seq is above it, even on
        #: a server that lost the last writes, so no watcher holds a seq that is reused.
        self.seq_floor = 0
        #: The cancel request stored for the task, as the last publication read it (None:
        #: none); :class:`~djenga.celery.tasks.DetailTask` ends the run when it sees one.
        self.cancel: dict[str, Any] | None = None

    # -- queries -------------------------------------------------------------------------

    @property
    def current(self) -> Step | None:
        """The running step, if any: the deepest one when steps are nested."""
        path = self.running_path
        return path[-1] if path else None

    @property
    def running_path(self) -> list[Step]:
        """The running steps from the top level down to :attr:`current` ([] if none)."""
        path: list[Step] = []
        level = self.steps
        while True:
            running = next((s for s in level if s.state is StepState.RUNNING), None)
            if running is None:
                return path
            path.append(running)
            level = running.children

    def walk(self) -> Iterator[Step]:
        """Every step of the tree, depth first, parents before their children."""
        for step in self.steps:
            yield from step.walk()

    @property
    def percent(self) -> float:
        """Overall progress, 0-100 (see docs/snapshot.md).

        Each top-level step weighs the same and shares its weight equally among its children
        (see :attr:`Step.progress`): finished and skipped steps count whole; a running leaf
        counts its ``done/total`` if it reports one, else half; a failed leaf half. A task
        that declared no steps counts one top-level step more than it has started, because
        it cannot know how many are to come.
        Within an attempt the percent never goes down (a step started later can only add to
        the total), and it stays at most 99 until SUCCESS, which is 100.
        """
        if self.state is TaskState.SUCCESS:
            return 100.0
        return min(MAX_UNFINISHED_PERCENT, max(self._percent_floor, self._steps_percent()))

    def _steps_percent(self) -> float:
        """The share of the steps known now, without the floor and the cap."""
        total = len(self.steps) + (1 if self.open_ended else 0)
        if not self.steps:
            return 0.0
        done = sum(step.progress for step in self.steps)
        return round(100.0 * done / total, 2)

    @property
    def eta(self) -> float | None:
        """Estimated seconds left at :attr:`updated_at`, from the top-level steps'
        ``expected`` durations (recent runs of the same task; a parent's includes its
        children's); None when a step left has none."""
        if self.state in FINAL_STATES or not self.steps:
            return None
        now = self.updated_at if self.updated_at is not None else self._clock()
        left = 0.0
        for step in self.steps:
            if step.state is StepState.PENDING:
                if step.expected is None:
                    return None
                left += step.expected
            elif step.state is StepState.RUNNING:
                if step.expected is None:
                    return None
                fraction = step.fraction
                if fraction is not None:
                    left += step.expected * (1.0 - fraction)
                else:
                    left += max(0.0, step.expected - (step.duration(now) or 0.0))
        return round(left, 3)

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

    def sent(self) -> Event:
        """The task was sent to the broker; its declared steps wait for a worker."""
        return self._event("sent", self._clock())

    def start(
        self,
        *,
        worker: str | None = None,
        args: str | None = None,
        kwargs: str | None = None,
        retry_of: str | None = None,
    ) -> Event:
        """A worker started running the task (``args``/``kwargs`` are reprs; ``retry_of``
        the id of the task staff sent again as this one; all staff only)."""
        now = self._clock()
        self.state, self.started_at = TaskState.STARTED, now
        for name, value in (("worker", worker), ("args", args), ("kwargs", kwargs)):
            if value is not None:
                self.private[name] = clip(value, 1000)
        fields: dict[str, Any] = {"attempt": self.attempt, "worker": worker}
        if retry_of:
            self.private["retry_of"] = fields["retry_of"] = clip(retry_of, 200)
        return self._event("started", now, **fields)

    def expect(self, durations: Mapping[StepKey, float]) -> None:
        """Set each step's expected duration in seconds (used for :attr:`eta`)."""
        for key, seconds in durations.items():
            step = self._by_key.get(key)
            if step is not None:
                step.expected = round(float(seconds), 3)

    def start_step(
        self, key: StepKey, description: str | None = None, *, block: bool = False
    ) -> Event:
        """Start step ``key``; running steps that are not its parent are ended first (as done).

        Where the step goes in the tree (docs/api.md, "Nested steps"): a declared step under
        its declared parent, which must be running; a new key under the deepest running
        step opened by a ``with`` block (``block=True``), else at the level of the running
        step it then ends, as in a flat task. A ``with`` block's step is never ended by
        another's start. A key not declared up front needs a ``description``; a key may
        start only once.
        """
        step = self._by_key.get(key)
        if step is None:
            if description is None:
                raise StepError(
                    f"step {key!r} was not declared in steps=[...]; give it a description: "
                    f"start_step({key!r}, 'What this step does')"
                )
            check_key(key)
            parent = self._new_step_parent()
        elif step.state is not StepState.PENDING:
            raise StepError(f"step {key!r} was already started (it is {step.state.value})")
        else:
            parent = step.parent
        path = self.running_path
        if parent is not None and parent not in path:
            raise StepError(
                f"step {key!r} is declared under step {parent.key!r}, which is not running; "
                f"start step {parent.key!r} first"
            )
        keep = path.index(parent) + 1 if parent is not None else 0
        blocking = next((s for s in path[keep:] if s.block), None)
        if blocking is not None:
            raise StepError(
                f"step {key!r} cannot start while the `with step({blocking.key!r})` block "
                "runs: it would end that step before its block does"
            )
        if step is None:
            step = self._add(key, str(description), parent)
        elif description is not None:
            step.description = str(description)
        now = self._clock()
        for running in reversed(path[keep:]):
            self._end(running, now, StepState.DONE, fill=False)  # as before nesting: as is
        step.state, step.started_at, step.block = StepState.RUNNING, now, block
        self.state = TaskState.PROGRESS
        fields: dict[str, Any] = {"key": key, "description": step.description}
        if parent is not None:
            fields["parent"] = parent.key
        return self._event("step_started", now, **fields)

    def update_step(
        self,
        key: StepKey,
        message: str | None = None,
        *,
        done: float | None = None,
        total: float | None = None,
    ) -> Event:
        """Set step ``key``'s latest message and/or its progress (``done`` of ``total``).

        A pending step starts first.
        """
        step = self.step(key)
        if step.state is StepState.PENDING:
            self.start_step(key)
        elif step.state is not StepState.RUNNING:
            raise StepError(
                f"step {key!r} is {step.state.value}; only a running step takes updates"
            )
        if total is not None and (not isinstance(total, (int, float)) or total <= 0):
            raise StepError(f"update_step total must be a positive number, not {total!r}")
        if message is not None:
            step.message = clip(message)
        if done is not None:
            step.done = float(done)
        if total is not None:
            step.total = float(total)
        fields: dict[str, Any] = {"key": key, "message": step.message}
        if step.total is not None:
            fields.update(done=step.done, total=step.total)
        return self._event("step_updated", self._clock(), **fields)

    def end_step(self, key: StepKey | None = None) -> Event:
        """End the running step as done: the deepest one (a sub-step: its parent runs on),
        or step ``key``, which must be running, with its running sub-steps. Sub-steps of
        an ended step that never ran are skipped."""
        path = self.running_path
        if not path:
            raise StepError("end_step() was called but no step is running; call start_step first")
        target = path[-1]
        if key is not None:
            target = next((s for s in path if s.key == key), None)
            if target is None:
                outer = ", ".join(repr(s.key) for s in path[:-1])
                inside = f" (inside {outer})" if outer else ""
                raise StepError(
                    f"end_step({key!r}) but the running step is {path[-1].key!r}{inside}"
                )
        now = self._clock()
        event: Event = {}
        for running in reversed(path[path.index(target) :]):
            event = self._end(running, now, StepState.DONE)
        return event

    def fail_step(self, key: StepKey, error: BaseException | None = None) -> Event | None:
        """Mark step ``key`` failed, with its running sub-steps (its parents run on: an
        exception that leaves the task fails them in :meth:`finish`). Returns None if the
        step is not running (it already ended)."""
        path = self.running_path
        target = next((s for s in path if s.key == key), None)
        if target is None:
            return None
        now = self._clock()
        event: Event = {}
        for running in reversed(path[path.index(target) :]):
            event = self._end(running, now, StepState.FAILED, error)
        return event

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
        for step in self.walk():
            if step.state is StepState.RUNNING:
                step.state = StepState.DONE if self.state is TaskState.SUCCESS else StepState.FAILED
                step.ended_at = now
            elif step.state is StepState.PENDING and self.state is TaskState.SUCCESS:
                step.state = StepState.SKIPPED
        if self.state in FINAL_STATES:
            self.ended_at = now
        if error is not None:
            self.error = error_of(error)
        if traceback:
            self.private["traceback"] = clip(traceback)
        if result is not None and self.state is TaskState.SUCCESS:
            self.private["result"] = clip(repr(result))
        return self._event("finished", now, state=self.state.value, error=self.error)

    def drain_events(self) -> list[Event]:
        """Take the events not yet published (see :meth:`restore_events`)."""
        events, self.events = self.events, []
        return events

    def restore_events(self, events: list[Event]) -> None:
        """Put back events whose publication failed, keeping the newest ones."""
        self.events = (events + self.events)[-MAX_PENDING_EVENTS:]

    # -- serialisation -------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The full snapshot (wire format v2) without ``seq`` and ``epoch``, which Redis adds."""
        path = self.running_path
        current = path[-1] if path else None
        now = self.updated_at if self.updated_at is not None else self._clock()
        percent = self.percent
        self._percent_floor = max(self._percent_floor, percent)
        snapshot = {
            **frame(FrameType.SNAPSHOT),
            "task_id": self.task_id,
            "name": self.name,
            "state": self.state.value,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "attempt": self.attempt,
            "steps": [step.to_dict(now) for step in self.steps],
            "current": current.key if current else None,
            "current_path": [step.key for step in path],
            "percent": percent,
            "eta": self.eta,
            "error": self.error,
            "public": self.public,
            "private": self.private,
        }
        snapshot.update(self.retry_fields(now))
        return snapshot

    def retry_fields(self, now: float) -> dict[str, float]:
        """``retry_at`` and ``retry_in`` (seconds from ``updated_at`` to it) of a RETRY
        snapshot whose next attempt has a due time; nothing otherwise (docs/snapshot.md)."""
        if self.state is not TaskState.RETRY or self.retry_at is None:
            return {}
        return {
            "retry_at": round(self.retry_at, 3),
            "retry_in": round(max(0.0, self.retry_at - now), 3),
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
            for each in step.walk():
                detail._by_key[each.key] = each
        detail.error = snapshot.get("error")
        detail.private = dict(snapshot.get("private") or {})
        detail.started_at = snapshot.get("started_at")
        detail.ended_at = snapshot.get("ended_at")
        detail.updated_at = snapshot.get("updated_at")
        # Whether the steps were declared is not stored: count the ones there are, and
        # never less than the percent already published for this attempt.
        detail.open_ended = False
        detail.seq_floor = int(snapshot.get("seq") or 0)
        percent = snapshot.get("percent")
        if isinstance(percent, (int, float)) and not isinstance(percent, bool):
            detail._percent_floor = min(MAX_UNFINISHED_PERCENT, max(0.0, float(percent)))
        return detail

    # -- internals -----------------------------------------------------------------------

    def _add(self, key: StepKey, description: str | None, parent: Step | None = None) -> Step:
        """A new step (its key already checked: by start_step, or with the declarations)."""
        step = Step(key, description, parent=parent)
        (parent.children if parent is not None else self.steps).append(step)
        self._by_key[key] = step
        return step

    def _declare(self, declarations: Sequence[StepDeclaration], parent: Step | None) -> None:
        for item in declarations:
            step = self._add(item[0], str(item[1]), parent)  # a lazy one in the language now
            if len(item) == 3:
                self._declare(item[2], step)

    def _new_step_parent(self) -> Step | None:
        """Where an undeclared step goes: under the deepest running ``with`` block's step
        if no plain step runs below it, else beside the deepest running step."""
        path = self.running_path
        if not path:
            return None
        deepest = path[-1]
        return deepest if deepest.block else deepest.parent

    def _end(
        self,
        step: Step,
        now: float,
        state: StepState,
        error: BaseException | None = None,
        *,
        fill: bool = True,
    ) -> Event:
        """End ``step`` (done: its progress filled unless ``fill`` is false, its sub-steps
        that never ran skipped; failed: with ``error``) and record the event."""
        step.state, step.ended_at = state, now
        fields: dict[str, Any] = {"key": step.key}
        if state is StepState.DONE:
            if fill and step.total is not None:
                step.done = step.total
            for descendant in step.walk():
                if descendant.state is StepState.PENDING:
                    descendant.state = StepState.SKIPPED
        else:
            fields["state"] = state.value
            if error is not None:
                fields["error"] = error_of(error)
        return self._event("step_ended", now, **fields)

    def _event(self, kind: str, at: float, **fields: Any) -> Event:
        self.updated_at = at
        event = {"type": kind, "at": at, **fields}
        self.events.append(event)
        if len(self.events) > MAX_PENDING_EVENTS:
            del self.events[0]
        return event
