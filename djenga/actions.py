"""Acting on a task: cancel, revoke, terminate, retry. The one module for actions.

The POST view (``djenga/tasks/<id>/actions/<action>/``), the task socket's
``{"type": "action"}`` frame, the console socket, ``AsyncDetailedResult.cancel()`` and
``manage.py cancel_task`` all call :func:`perform` (or the function it calls), after the
one :func:`~djenga.live.auth.authorise`. Each action is recorded in the task's event log
(the console's timeline): which action, who, when, through what.

- **cancel** (a token that grants it, or staff): cooperative. A cancel request is stored in
  the task's Redis hash; a running :class:`~djenga.celery.tasks.DetailTask` sees it at its
  next ``start_step``/``update_step``/``end_step`` (the round trip it makes anyway) or
  ``self.cancel_requested``, and ends REVOKED. A task still queued is also revoked through
  Celery (its workers discard it) and, if a worker takes it anyway (restarted meanwhile),
  never starts: ``before_start`` sees the request.
- **revoke** (staff): Celery's ``revoke()``: a queued task is discarded by the workers; a
  running one keeps running (the running process is not touched).
- **terminate** (staff): ``revoke(terminate=True)``: the worker signals (SIGTERM) the pool
  process running the task. Prefork kills that child (the worker starts a new one); the
  solo, threads, eventlet and gevent pools cannot stop a running task, which runs on.
- **retry** (staff): a FAILURE (or REVOKED, LOST) task is sent again with its arguments,
  under a new id; the old task's timeline names the new one. The arguments come from
  Celery's extended result (``result_extended=True``): without it, retry is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import DjengaError
from .keys import validate_task_id

logger = logging.getLogger(__name__)

#: Every action, and the ones only staff may take.
ACTIONS = ("cancel", "revoke", "terminate", "retry")
STAFF_ONLY = frozenset({"revoke", "terminate", "retry"})
#: States a task can be retried from.
RETRYABLE_STATES = frozenset({"FAILURE", "REVOKED", "LOST"})

#: Outcomes of an action (the ``outcome`` of its answer frame, docs/protocol.md).
REQUESTED = "requested"  # cancel: stored; the task stops at its next step helper
QUEUED = "queued"  # cancel: the task has not started; it is revoked and will never start
FINAL = "final"  # the task had already ended: nothing was done
SENT = "sent"  # revoke/terminate: Celery's control command went out; retry: sent again


class ActionRefused(DjengaError):
    """An action that cannot be done: ``code`` says why (``forbidden``, ``unknown-action``,
    ``not-retryable``, ``no-arguments``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ActionResult:
    """What an action did."""

    action: str
    task_id: str
    outcome: str
    new_task_id: str | None = None

    def frame(self) -> dict[str, Any]:
        """The answer frame: ``{"v": 2, "type": "action", "action", "task_id", "outcome",
        "ok": true[, "new_task_id"]}`` (docs/protocol.md)."""
        from .wire import FrameType, frame

        fields: dict[str, Any] = {"action": self.action, "task_id": self.task_id, "ok": True}
        fields["outcome"] = self.outcome
        if self.new_task_id is not None:
            fields["new_task_id"] = self.new_task_id
        return frame(FrameType.ACTION, **fields)


def refusal_frame(action: str, code: str) -> dict[str, Any]:
    """The answer frame of a refused action that is not a 4403/403 (those close/answer
    before any frame): ``{"type": "action", "ok": false, "error": code}``."""
    from .wire import FrameType, frame

    return frame(FrameType.ACTION, action=action, ok=False, error=code)


def may(staff: bool, can_cancel: bool, action: str) -> bool:
    """THE permission rule: staff may take every action; a customer only ``cancel``, and
    only with a token that grants it (``can_cancel``)."""
    if action not in ACTIONS:
        return False
    if staff:
        return True
    return action == "cancel" and can_cancel


def actor(user: Any, staff: bool) -> str:
    """Who an action is recorded as: a staff user's username, else ``"customer"`` (the
    holder of a token)."""
    if staff:
        name = getattr(user, "get_username", None)
        return str(name()) if callable(name) else "staff"
    return "customer"


def cancel_reason(request: Mapping[str, Any]) -> str:
    """The REVOKED reason of a cancelled task: who cancelled it and when (staff see it;
    customers see "cancelled", :func:`djenga.wire.for_viewer`)."""
    at = request.get("at")
    when = (
        datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(at, (int, float))
        else "an unknown time"
    )
    return f"cancelled by {request.get('by') or 'someone'} at {when}"


def answer(
    action: str, task_id: str, *, user: Any, staff: bool, can_cancel: bool, via: str
) -> tuple[dict[str, Any], int]:
    """Take an authorised viewer's action, for the POST view and the sockets: the answer
    frame and its HTTP status (200; 409 refused, with ``ok: false``; 503 when Redis or the
    broker cannot be reached)."""
    from kombu.exceptions import KombuError
    from redis.exceptions import RedisError

    try:
        result = perform(
            action,
            task_id,
            by=actor(user, staff),
            staff=staff,
            can_cancel=can_cancel,
            via=via,
        )
    except ActionRefused as exc:
        return refusal_frame(action, exc.code), 409
    except (RedisError, OSError, KombuError) as exc:
        logger.warning("djenga: %s of %s failed (%s)", action, task_id, exc)
        return refusal_frame(action, "unavailable"), 503
    return result.frame(), 200


def perform(
    action: str,
    task_id: str,
    *,
    by: str,
    staff: bool,
    can_cancel: bool = False,
    via: str = "api",
    store: Any = None,
    app: Any = None,
) -> ActionResult:
    """Check :func:`may`, then take ``action`` on ``task_id``; :class:`ActionRefused` if it
    may not be taken. ``store`` (a :class:`~djenga.store.TaskStore`) and ``app`` (the
    Celery app) default to the web process's."""
    validate_task_id(task_id)
    if action not in ACTIONS:
        raise ActionRefused("unknown-action", f"{action!r} is not one of {', '.join(ACTIONS)}")
    if not may(staff, can_cancel, action):
        raise ActionRefused("forbidden", f"this viewer may not {action} tasks")
    store = store if store is not None else _web_store()
    if action == "cancel":
        return cancel(task_id, by=by, staff=staff, via=via, store=store, app=app)
    if action == "retry":
        return retry(task_id, by=by, via=via, store=store, app=app)
    return revoke(task_id, by=by, terminate=action == "terminate", via=via, store=store, app=app)


def cancel(
    task_id: str,
    *,
    by: str,
    staff: bool = False,
    via: str = "api",
    store: Any = None,
    app: Any = None,
) -> ActionResult:
    """Ask ``task_id`` to stop (cooperative cancel, see the module's docstring)."""
    from .store.calls import ACTION_FINAL, ACTION_QUEUED

    store = store if store is not None else _web_store()
    now = time.time()
    request = {"by": by, "staff": staff, "at": now, "via": via}
    event = {"type": "action", "at": now, "action": "cancel", "by": by, "via": via}
    code = store.act(task_id, event, cancel=request, expires=_expires(app))
    if code == ACTION_FINAL:
        return ActionResult("cancel", task_id, FINAL)
    if code == ACTION_QUEUED:
        # Not started: the workers discard it as soon as they hear of it (in memory only;
        # a worker started later still finds the request in Redis, in before_start).
        _celery(app).control.revoke(task_id)
        return ActionResult("cancel", task_id, QUEUED)
    return ActionResult("cancel", task_id, REQUESTED)


def revoke(
    task_id: str,
    *,
    by: str,
    terminate: bool = False,
    via: str = "api",
    store: Any = None,
    app: Any = None,
) -> ActionResult:
    """Celery's ``revoke()`` (``terminate``: and signal the process running it), recorded
    in the timeline."""
    action = "terminate" if terminate else "revoke"
    store = store if store is not None else _web_store()
    now = time.time()
    event = {"type": "action", "at": now, "action": action, "by": by, "via": via}
    from .store.calls import ACTION_FINAL

    if store.act(task_id, event, expires=_expires(app)) == ACTION_FINAL:
        return ActionResult(action, task_id, FINAL)
    _celery(app).control.revoke(task_id, terminate=terminate, signal="SIGTERM")
    return ActionResult(action, task_id, SENT)


def retry(
    task_id: str, *, by: str, via: str = "api", store: Any = None, app: Any = None
) -> ActionResult:
    """Send a failed task again with its arguments, under a new id; the old task's
    timeline names the new one, and the new one's (its ``started`` row) the old one."""
    from celery.result import AsyncResult

    store = store if store is not None else _web_store()
    snapshot = store.read(task_id)
    if snapshot.get("state") not in RETRYABLE_STATES:
        raise ActionRefused(
            "not-retryable",
            f"task {task_id} is {snapshot.get('state')}: only a failed, revoked or lost "
            "task can be sent again",
        )
    celery = _celery(app)
    meta = AsyncResult(task_id, app=celery)._get_task_meta()
    name = meta.get("name") or snapshot.get("name")
    if not name or "args" not in meta:
        raise ActionRefused(
            "no-arguments",
            f"the arguments of task {task_id} are not stored: set result_extended=True "
            "(CELERY_RESULT_EXTENDED = True) so Celery keeps them",
        )
    from .celery.tasks import RETRY_OF_HEADER

    sent = celery.send_task(
        name,
        args=meta.get("args") or (),
        kwargs=meta.get("kwargs") or {},
        headers={RETRY_OF_HEADER: task_id},  # the new task's timeline links back
    )
    now = time.time()
    event = {
        "type": "action", "at": now, "action": "retry", "by": by, "via": via,
        "new_task_id": sent.id,
    }  # fmt: skip
    store.log_event(task_id, event)  # a final task's log takes it too
    return ActionResult("retry", task_id, SENT, new_task_id=sent.id)


def _expires(app: Any) -> int:
    try:
        expires = _celery(app).backend.expires
    except Exception:  # no app configured: the record keeps its own TTL
        return 0
    return int(expires or 0)


def _celery(app: Any) -> Any:
    if app is not None:
        return app
    from django.conf import settings

    if getattr(settings, "DJENGA_CELERY_MODULE", None):
        from .celery.app import load_celery_app

        return load_celery_app()
    from celery import current_app

    return current_app


def _web_store() -> Any:
    from .connection import task_store

    return task_store()
