"""Steps: the declarations a task gives up front and the tree of :class:`Step` a run builds
from them (docs/api.md, "Nested steps"). Pure Python, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise

from ..errors import StepError
from ..wire import StepState

#: A step's key: unique across the task's whole step tree. A float (``1.1``) reads well
#: for a sub-step; it is compared as a number, so ``1`` and ``1.0`` are the same key.
StepKey = int | float | str
#: A declared step: its key and its description, a str or a lazy translation (gettext_lazy),
#: optionally followed by the declarations of its children: ``(1, "Export", [(1.1, "Query")])``.
StepDeclaration = tuple[StepKey, str | Promise] | tuple[StepKey, str | Promise, Sequence[Any]]


def validate_step_declarations(steps: object) -> list[StepDeclaration]:
    """Check a task's ``steps=[(key, description), ...]`` option; return it as a list.

    A step may declare children as a third item, ``(key, description, [(key, description),
    ...])``, to any depth; keys are unique across the whole tree. A lazy description
    (``gettext_lazy``) stays lazy: it is translated when a run's :class:`TaskDetail` is
    built, not when the task module is imported."""
    if steps is None:
        return []
    return _validate_level(steps, set(), steps)


def _validate_level(steps: object, seen: set[StepKey], whole: object) -> list[StepDeclaration]:
    if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable):
        raise StepError(f"steps must be a list of (key, description) pairs, not {steps!r}")
    declared: list[StepDeclaration] = []
    for item in steps:
        if not (isinstance(item, (tuple, list)) and len(item) in (2, 3)):
            raise StepError(
                "each declared step is a (key, description) pair or a "
                f"(key, description, [children]) triple, not {item!r}"
            )
        key, description = item[0], item[1]
        check_key(key)
        if key in seen:
            raise StepError(f"step key {key!r} is declared twice in steps={list(whole)!r}")
        seen.add(key)
        description = description if isinstance(description, Promise) else str(description)
        children = _validate_level(item[2], seen, whole) if len(item) == 3 else []
        declared.append((key, description, children) if children else (key, description))
    return declared


def declared_steps(steps: Iterable[StepDeclaration]) -> Iterator[tuple[StepKey, str | Promise]]:
    """Every ``(key, description)`` of validated declarations, parents before children."""
    for item in steps:
        yield item[0], item[1]
        if len(item) == 3:
            yield from declared_steps(item[2])


def check_key(key: object) -> None:
    if isinstance(key, float) and not math.isfinite(key):
        raise StepError(f"step key {key!r} must be a finite number")
    if not isinstance(key, (int, float, str)) or isinstance(key, bool):
        raise StepError(f"step key {key!r} must be an int, a float or a str")


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
    #: Sub-steps, in order (declared ones first, then the ones started); [] for a leaf.
    children: list[Step] = field(default_factory=list)
    #: The step this one is a child of (None at the top level); not serialised.
    parent: Step | None = field(default=None, repr=False, compare=False)
    #: Opened by ``with task.step(...)``: a key started inside it becomes its child, and
    #: it ends only when its block does. Not serialised.
    block: bool = field(default=False, repr=False, compare=False)

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
            "children": [child.to_dict(now) for child in self.children],
        }

    def walk(self) -> Iterator[Step]:
        """This step, then its descendants, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def progress(self) -> float:
        """This step's share done, 0-1, as :attr:`TaskDetail.percent` counts it.

        Done and skipped count whole, pending nothing. A step with children counts the mean
        of theirs; a leaf that runs counts its ``done/total`` if it reports one, else half,
        and a failed leaf half."""
        if self.state in (StepState.DONE, StepState.SKIPPED):
            return 1.0
        if self.state is StepState.PENDING:
            return 0.0
        if self.children:
            return sum(child.progress for child in self.children) / len(self.children)
        fraction = self.fraction
        return 0.5 if fraction is None or self.state is StepState.FAILED else fraction

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        step = cls(
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
        for child_data in data.get("children") or ():
            child = cls.from_dict(child_data)
            child.parent = step
            step.children.append(child)
        return step
