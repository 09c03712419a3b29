"""Turn a task's event log into the rows of its timeline: what happened, when, for how long."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

_LABELS = {
    "sent": gettext_lazy("Sent to the queue"),
    "started": gettext_lazy("Started"),
    "step_started": gettext_lazy("Step started"),
    "step_updated": gettext_lazy("Update"),
    "step_ended": gettext_lazy("Step ended"),
    "finished": gettext_lazy("Finished"),
    "action": gettext_lazy("Action"),
}


@dataclass(frozen=True)
class TimelineRow:
    """One line of a task's timeline."""

    seq: int
    at: float | None
    clock: str  # "HH:MM:SS.mmm" UTC, for people
    offset: float | None  # seconds since the first event
    kind: str
    label: str
    step: Any
    text: str
    attempt: int
    duration: float | None  # on step_ended: how long the step ran
    new_task_id: str | None = None  # on a retry action: the task it sent
    retry_of: str | None = None  # on the started row of a task sent by a retry: the old one
    depth: int = 0  # on step events: 0 for a top-level step, 1 for its sub-steps, ...

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def build_timeline(events: Iterable[dict[str, Any]]) -> list[TimelineRow]:
    """Rows in log order; retries show as a new ``started`` with a higher attempt."""
    rows: list[TimelineRow] = []
    first: float | None = None
    attempt = 1
    step_started: dict[Any, float] = {}
    depth_of: dict[Any, int] = {}  # step key -> its depth in the tree
    for event in events:
        kind = str(event.get("type"))
        at = event.get("at")
        if first is None and isinstance(at, (int, float)):
            first = at
        key = event.get("key")
        duration = None
        if kind == "started":
            attempt = int(event.get("attempt") or attempt)
            if event.get("worker"):
                text = _("attempt %(attempt)s on %(worker)s") % {
                    "attempt": attempt,
                    "worker": event["worker"],
                }
            else:
                text = _("attempt %(attempt)s") % {"attempt": attempt}
            if event.get("retry_of"):
                text += ", " + _("a retry of %(task_id)s") % {"task_id": event["retry_of"]}
        elif kind == "step_started":
            step_started[key] = at
            parent = event.get("parent")
            depth_of[key] = depth_of.get(parent, 0) + 1 if parent is not None else 0
            text = str(event.get("description") or "")
        elif kind == "step_updated":
            text = str(event.get("message") or "")
            if event.get("total"):
                count = _("%(done)s of %(total)s") % {
                    "done": f"{event.get('done', 0):g}",
                    "total": f"{event['total']:g}",
                }
                text += f" ({count})"
        elif kind == "step_ended":
            begun = step_started.get(key)
            if isinstance(begun, (int, float)) and isinstance(at, (int, float)):
                duration = round(at - begun, 3)
            text = ""
        elif kind == "finished":
            error = event.get("error") or {}
            text = str(event.get("state") or "")
            if error:
                text += f": {error.get('type')}: {error.get('message')}"
        elif kind == "action":
            text = _action_text(event)
        else:
            text = ""
        rows.append(
            TimelineRow(
                seq=int(event.get("seq") or 0),
                at=at,
                clock=_clock(at),
                offset=None if first is None or at is None else round(at - first, 3),
                kind=kind,
                label=str(_LABELS.get(kind, kind)),
                step=key,
                text=text,
                attempt=attempt,
                duration=duration,
                new_task_id=event.get("new_task_id") if kind == "action" else None,
                retry_of=event.get("retry_of") if kind == "started" else None,
                depth=depth_of.get(key, 0) if key is not None else 0,
            )
        )
    return rows


def _action_text(event: dict[str, Any]) -> str:
    """ "cancel by alice (console)"; a retry also names the new task's id."""
    text = _("%(action)s by %(by)s (%(via)s)") % {
        "action": event.get("action"),
        "by": event.get("by") or "?",
        "via": event.get("via") or "?",
    }
    if event.get("new_task_id"):
        text += " → " + str(event["new_task_id"])
    return text


def _clock(at: Any) -> str:
    if not isinstance(at, (int, float)):
        return ""
    moment = datetime.fromtimestamp(at, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
