"""TaskDetail: the in-memory model of one task run's steps. Pure Python, no I/O."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise

from ..errors import StepError
from ..wire import FINAL_STATES, FrameType, Snapshot, StepState, TaskState, frame

StepKey = int | str
#: A declared step: its key and its description, a str or a lazy translation (gettext_lazy).
StepDeclaration = tuple[StepKey, str | Promise]
Event = dict[str, Any]

#: Longest text kept for a message, an error message, a traceback or a repr.
MAX_TEXT = 10_000
#: Unpublished events kept while Redis is away; older ones are dropped (the snapshot stays exact).
MAX_PENDING_EVENTS = 100
#: Highest percent before SUCCESS: 100 means the task succeeded, never "all steps ended".
MAX_UNFINISHED_PERCENT = 99.0


def clip(text: object, limit: int = MAX_TEXT) -> str | None:
    """``str(text)`` cut to ``limit`` characters (None stays None)."""
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validate_step_declarations(steps: object) -> list[StepDeclaration]:
    """Check a task's ``steps=[(key, description), ...]`` option; return it as a list.

    A lazy description (``gettext_lazy``) stays lazy: it is translated when a run's
    :class:`TaskDetail` is built, not when the task module is imported."""
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
        _check_key(key)
        if key in seen:
            raise StepError(f"step key {key!r} is declared twice in steps={list(steps)!r}")
        seen.add(key)
        declared.append(
            (key, description if isinstance(description, Promise) else str(description))
        )
    return declared


def _check_key(key: object) -> None:
    if not isinstance(key, (int, str)) or isinstance(key, bool):
        raise StepError(f"step key {key!r} must be an int or a str")


@dataclass
class Step:
    """One step of a task run; ``done``/``total`` give progress inside the step."""

    key: StepKey
    description: str | None
    state: StepState = StepState.PENDING
    message: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    done: float | None = None
    total: float | None = None
    expected: float | None = None

    @property
    def fraction(self) -> float | None:
        """Progress inside the step, 0-1, when the task reports ``done``/``total``."""
        if self.total and self.done is not None:
            return max(0.0, min(1.0, self.done / self.total))
        return None

    def duration(self, now: float) -> float | None:
        """Seconds the step took, or has taken so far while it runs."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else now
        return round(max(0.0, end - self.started_at), 6)

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "key": self.key,
            "description": self.description,
            "state": self.state.value,
            "message": self.message,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration(now),
            "done": self.done,
            "total": self.total,
            "expected": self.expected,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            key=data["key"],
            description=data.get("description"),
            state=StepState(data.get("state", StepState.PENDING)),
            message=data.get("message"),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            done=data.get("done"),
            total=data.get("total"),
            expected=data.get("expected"),
        )


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
        for key, description in validate_step_declarations(steps):
            self._add(key, str(description))  # a lazy one in the language active now
        #: A task that declared no steps does not know how many come: one more is counted.
        self.open_ended = not self.steps
        #: The highest percent a snapshot of this attempt showed; :attr:`percent` never goes
        #: below it. Every publication goes through :meth:`snapshot`, which raises it.
        self._percent_floor = 0.0
        #: The highest seq a write of this detail may have been given (a failed write
        #: counts: it may have been applied). The next write's seq is above it, even on
        #: a server that lost the last writes, so no watcher holds a seq that is reused.
        self.seq_floor = 0

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
        """Overall progress, 0-100 (see docs/snapshot.md).

        Finished and skipped steps count whole; a running step counts its ``done/total`` if
        it reports one, else half; a failed step half. A task that declared no steps counts
        one step more than it has started, because it cannot know how many are to come.
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
        done = 0.0
        for step in self.steps:
            if step.state in (StepState.DONE, StepState.SKIPPED):
                done += 1.0
            elif step.state is StepState.RUNNING:
                fraction = step.fraction
                done += 0.5 if fraction is None else fraction
            elif step.state is StepState.FAILED:
                done += 0.5
        return round(100.0 * done / total, 2)

    @property
    def eta(self) -> float | None:
        """Estimated seconds left at :attr:`updated_at`, from the steps' ``expected``
        durations (recent runs of the same task); None when a step left has none."""
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
        self, *, worker: str | None = None, args: str | None = None, kwargs: str | None = None
    ) -> Event:
        """A worker started running the task (``args``/``kwargs`` are reprs, staff only)."""
        now = self._clock()
        self.state, self.started_at = TaskState.STARTED, now
        for name, value in (("worker", worker), ("args", args), ("kwargs", kwargs)):
            if value is not None:
                self.private[name] = clip(value, 1000)
        return self._event("started", now, attempt=self.attempt, worker=worker)

    def expect(self, durations: Mapping[StepKey, float]) -> None:
        """Set each step's expected duration in seconds (used for :attr:`eta`)."""
        for key, seconds in durations.items():
            step = self._by_key.get(key)
            if step is not None:
                step.expected = round(float(seconds), 3)

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
        now = self._clock()
        running = self.current
        if running is not None:
            running.state, running.ended_at = StepState.DONE, now
            self._event("step_ended", now, key=running.key)
        step.state, step.started_at = StepState.RUNNING, now
        self.state = TaskState.PROGRESS
        return self._event("step_started", now, key=key, description=step.description)

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
        """End the running step (or step ``key``, which must be the running one) as done."""
        running = self.current
        if running is None:
            raise StepError("end_step() was called but no step is running; call start_step first")
        if key is not None and running.key != key:
            raise StepError(f"end_step({key!r}) but the running step is {running.key!r}")
        now = self._clock()
        running.state, running.ended_at = StepState.DONE, now
        if running.total is not None:
            running.done = running.total
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
        if self.state in FINAL_STATES:
            self.ended_at = now
        if error is not None:
            self.error = {"type": type(error).__name__, "message": clip(error)}
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
        """The full snapshot (wire format v1) without ``seq`` and ``epoch``, which Redis adds."""
        current = self.current
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
            detail._by_key[step.key] = step
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

    def _add(self, key: StepKey, description: str | None) -> Step:
        _check_key(key)
        step = Step(key, description)
        self.steps.append(step)
        self._by_key[key] = step
        return step

    def _event(self, kind: str, at: float, **fields: Any) -> Event:
        self.updated_at = at
        event = {"type": kind, "at": at, **fields}
        self.events.append(event)
        if len(self.events) > MAX_PENDING_EVENTS:
            del self.events[0]
        return event
