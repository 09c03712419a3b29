"""DetailTask: the Celery task base class whose runs report named steps as they go."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from celery import Task
from celery.utils import uuid

from .detail import Event, Step, StepDeclaration, StepKey, TaskDetail, validate_step_declarations

__all__ = ["DetailTask", "Step", "TaskDetail"]

logger = logging.getLogger(__name__)


class DetailTask(Task):
    """A Celery task that tells watchers which step it is on.

    Use ``self.start_step(key, description)``, ``self.update_step(key, message)`` and
    ``self.end_step()`` in a bound task, or declare the steps up front with the task
    option ``steps=[(key, description), ...]`` and then use the keys alone. Each call
    is one round trip to Redis through the ``redisd://`` result backend.
    """

    #: Steps declared up front, as ``(key, description)`` pairs; shown before they run.
    steps: ClassVar[Sequence[StepDeclaration] | None] = None
    #: Private snapshot fields customers may see too: any of "error", "traceback",
    #: "result", "args", "kwargs". Staff always see them all.
    public_fields: ClassVar[Sequence[str]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Fail at decoration time, not in the middle of a run.
        cls.steps = validate_step_declarations(cls.steps) or None

    # -- the helpers the seed documents --------------------------------------------------

    def start_step(self, key: StepKey, desc: str | None = None) -> None:
        """Start step ``key`` (``desc`` is required unless the step was declared)."""
        detail = self.detail
        self._publish(detail, detail.start_step(key, desc))

    def update_step(self, key: StepKey, msg: str) -> None:
        """Set the latest message of step ``key``, e.g. ``'flying to the moon'``."""
        detail = self.detail
        self._publish(detail, detail.update_step(key, msg))

    def end_step(self, key: StepKey | None = None) -> None:
        """End the running step as done."""
        detail = self.detail
        self._publish(detail, detail.end_step(key))

    # -- per-run state -------------------------------------------------------------------

    @property
    def detail(self) -> TaskDetail:
        """This run's :class:`TaskDetail`. It lives on the request, never on the task
        object, which is one instance shared by every run in the process."""
        request = self.request
        detail: TaskDetail | None = getattr(request, "djenga_detail", None)
        if detail is None:
            detail = TaskDetail(
                request.id,
                self.name,
                self.steps or (),
                attempt=(request.retries or 0) + 1,
                public=self.public_fields,
            )
            request.djenga_detail = detail
        return detail

    # -- Celery hooks --------------------------------------------------------------------

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        detail = self.detail
        self._publish(detail, detail.start())

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: str | None = None,
        **options: Any,
    ) -> Any:
        """Send the task; with declared steps, first store a PENDING snapshot of them so a
        page opened before a worker picks the task up already shows the steps."""
        # A retry re-sends the running task under its own id: its snapshot must stay.
        if self.steps and (task_id is None or task_id != self.request.id):
            task_id = task_id or uuid()
            pending = TaskDetail(task_id, self.name, self.steps, public=self.public_fields)
            self._publish(pending, {"type": "sent", "at": time.time()})
        return super().apply_async(
            args, kwargs, task_id, producer, link, link_error, shadow, **options
        )

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Any,
        kwargs: Any,
        einfo: Any,
    ) -> None:
        # The backend records outcomes it stores; this covers the ones it does not
        # (eager runs, ignore_result=True), and is a no-op when the state is recorded.
        super().after_return(status, retval, task_id, args, kwargs, einfo)
        backend = self._detail_backend()
        if backend is not None and task_id:
            backend.finish_detail(task_id, status, request=self.request, result=retval)

    # -- internals -----------------------------------------------------------------------

    def _detail_backend(self) -> Any:
        from .backends import RedisDetailBackend

        backend = self.backend
        if isinstance(backend, RedisDetailBackend):
            return backend
        if not getattr(type(self), "_warned_backend", False):
            type(self)._warned_backend = True
            logger.warning(
                "Task %s reports steps but the result backend is %s, not djenga's "
                "redisd://: set CELERY_RESULT_BACKEND = 'redisd://host:port/db'.",
                self.name,
                type(backend).__name__,
            )
        return None

    def _publish(self, detail: TaskDetail, event: Event) -> None:
        if detail.task_id is None:  # called directly, not through a worker: nothing to tell
            return
        backend = self._detail_backend()
        if backend is not None:
            backend.publish_detail(detail, event)
