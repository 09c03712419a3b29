"""DetailTask: the Celery task base class whose runs report named steps as they go."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from traceback import format_exception
from typing import Any, ClassVar

from celery import Task
from celery.exceptions import Ignore
from celery.utils import uuid
from celery.utils.saferepr import saferepr
from celery.utils.time import maybe_make_aware
from django.utils.functional import Promise
from redis.exceptions import RedisError

from ..conf import get_settings
from ..wire import StepState, TaskState
from .backends import RedisDetailBackend
from .detail import TaskDetail
from .steps import Step, StepDeclaration, StepKey, declared_steps, validate_step_declarations

__all__ = ["DetailTask", "Step", "TaskCancelled", "TaskDetail"]

#: The message header djenga.actions.retry() sends the new task with: the id of the task
#: it sends again, which the new task's timeline and console page link back to.
RETRY_OF_HEADER = "djenga_retry_of"

logger = logging.getLogger(__name__)

#: States of a stored snapshot that a new run under the same id follows as its next attempt.
RERUN_STATES = frozenset({"STARTED", "PROGRESS", "RETRY", "LOST"})


class TaskCancelled(Ignore):
    """Raised by a :class:`DetailTask`'s helpers (``start_step``, ``update_step``,
    ``end_step``, ``raise_if_cancelled``) once a cancel request is stored for the run.

    By then the task is recorded REVOKED (Celery's ``mark_as_revoked``, whose reason says
    who cancelled it and when); as Celery's ``Ignore``, it tells the worker to store
    nothing else. Let it propagate: clean up in ``finally`` blocks, not ``except``.
    """

    def __init__(self, request: dict[str, Any]) -> None:
        from ..actions import cancel_reason

        self.cancel = request
        super().__init__(cancel_reason(request))


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
    #: "result", "args", "kwargs", "worker". Staff always see them all.
    public_fields: ClassVar[Sequence[str]] = ()
    #: Seconds between two published ``update_step`` calls (None: DJENGA_MIN_UPDATE_INTERVAL).
    #: Updates in between are coalesced to the newest; step starts/ends and the final
    #: state are always published at once.
    min_update_interval: ClassVar[float | None] = None
    #: Tells the backend to record this task's outcomes in its snapshot (a flag, so the
    #: backend needs nothing from this module).
    reports_steps: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Fail at decoration time, not in the middle of a run.
        cls.steps = validate_step_declarations(cls.steps) or None

    # -- the helpers the seed documents --------------------------------------------------

    def start_step(self, key: StepKey, desc: str | None = None) -> None:
        """Start step ``key`` (``desc`` is required unless the step was declared)."""
        reporter = self._reporter
        with reporter.detail.lock:
            reporter.detail.start_step(key, desc)
        reporter.publish()
        self._stop_if_cancelled()

    def update_step(
        self,
        key: StepKey,
        msg: str | None = None,
        *,
        done: float | None = None,
        total: float | None = None,
    ) -> None:
        """Set the latest message of step ``key``, e.g. ``'flying to the moon'``, and/or
        its progress: ``done`` out of ``total`` (e.g. files imported) drives a bar."""
        reporter = self._reporter
        with reporter.detail.lock:
            reporter.detail.update_step(key, msg, done=done, total=total)
        reporter.publish(coalesce=True)
        self._stop_if_cancelled()

    def end_step(self, key: StepKey | None = None) -> None:
        """End the running step as done."""
        reporter = self._reporter
        with reporter.detail.lock:
            reporter.detail.end_step(key)
        reporter.publish()
        self._stop_if_cancelled()

    # -- cooperative cancel (docs/api.md, "Cancel") ----------------------------------------

    @property
    def cancel_requested(self) -> bool:
        """Whether someone asked to cancel this run. The helpers above learn it from the
        round trip they make anyway; this asks Redis (one HGET) when they have not."""
        reporter = self._reporter
        if reporter.detail.cancel is None and reporter.backend is not None:
            try:
                reporter.detail.cancel = reporter.backend.store.cancel_request(self.request.id)
            except (RedisError, OSError) as exc:
                reporter.backend._warn_unreachable(self.request.id, exc)
        return reporter.detail.cancel is not None

    def raise_if_cancelled(self) -> None:
        """End the run as REVOKED (raise :class:`TaskCancelled`) if a cancel was requested;
        for a long stretch of work between two helper calls."""
        if self.cancel_requested:
            self._end_cancelled()

    def _stop_if_cancelled(self) -> None:
        if self._reporter.detail.cancel is not None:
            self._end_cancelled()

    def _end_cancelled(self) -> None:
        reporter = self._reporter
        cancel = reporter.detail.cancel or {}
        reporter.close()
        leases.drop(self.request.id)
        error = TaskCancelled(cancel)
        if reporter.backend is not None:
            reporter.backend.mark_as_revoked(self.request.id, str(error), request=self.request)
        raise error

    @contextlib.contextmanager
    def step(self, key: StepKey, desc: str | None = None) -> Iterator[None]:
        """``with self.step(key, desc):`` runs the block as step ``key``: a clean exit ends it
        done, an exception marks it failed (with its running sub-steps) and goes on up.
        Started inside another ``with self.step()`` block, it is that step's child; a new
        key started inside it (``start_step`` or ``step``) is its child (docs/api.md)."""
        # Through the public helpers, so whatever they do on each step boundary applies.
        self.start_step(key, desc)
        detail = self.detail
        with detail.lock:
            detail.step(key).block = True  # what starts inside nests under it
        try:
            yield
        except BaseException as exc:
            with detail.lock:
                detail.fail_step(key, exc)
                final = detail.is_final  # a cancel already recorded REVOKED, failed steps too
            if not final:
                self._reporter.publish()
            raise
        if detail.step(key).state is StepState.RUNNING:  # unless the block ended it
            self.end_step(key)

    # -- per-run state -------------------------------------------------------------------

    @property
    def detail(self) -> TaskDetail:
        """This run's :class:`TaskDetail`. It lives on the request, never on the task
        object, which is one instance shared by every run in the process."""
        return self._reporter.detail

    @property
    def _reporter(self) -> _RunReporter:
        request = self.request
        reporter: _RunReporter | None = getattr(request, "djenga_reporter", None)
        if reporter is None:
            with self._site_language():
                detail = TaskDetail(
                    request.id,
                    self.name,
                    self.steps or (),
                    attempt=(request.retries or 0) + 1,
                    public=self.public_fields,
                )
            reporter = _RunReporter(self, detail)
            request.djenga_reporter = reporter
            request.djenga_detail = detail  # what the backend finishes
        return reporter

    def _site_language(self) -> contextlib.AbstractContextManager[Any]:
        """Where declared descriptions are ``gettext_lazy``: the site's LANGUAGE_CODE, so a
        run's steps read the same whichever process stores them (the sender's PENDING
        snapshot, the worker's). Without lazy ones, or without Django set up: nothing."""
        if not any(isinstance(d, Promise) for _, d in declared_steps(self.steps or ())):
            return contextlib.nullcontext()
        from django.apps import apps
        from django.conf import settings
        from django.utils import translation

        if not (settings.configured and apps.ready):
            return contextlib.nullcontext()
        return translation.override(settings.LANGUAGE_CODE)

    # -- Celery hooks --------------------------------------------------------------------

    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        reporter = self._reporter
        backend = reporter.backend
        detail = reporter.detail
        if backend is not None:
            previous, expected = backend.run_context(task_id, self.name)
            # A run after an unfinished one under the same id (a retry, or a redelivery
            # after its worker died) is the next attempt: watchers see it start over.
            if previous is not None and previous.get("state") in RERUN_STATES:
                detail.attempt = max(detail.attempt, int(previous.get("attempt") or 1) + 1)
            if previous is not None and isinstance(previous.get("cancel"), dict):
                detail.cancel = previous["cancel"]  # cancelled while queued: never starts
                self._end_cancelled()
            if self.steps:
                keys = [k for k, _ in declared_steps(self.steps)]
                detail.expect({k: expected[str(k)] for k in keys if str(k) in expected})
        detail.start(
            worker=self.request.hostname,
            args=saferepr(args, maxlen=1000),
            kwargs=saferepr(kwargs, maxlen=1000),
            retry_of=getattr(self.request, RETRY_OF_HEADER, None),
        )
        reporter.publish()
        if backend is not None:
            leases.keep(backend, task_id)
        self._stop_if_cancelled()  # the STARTED write read a request stored meanwhile

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
        if task_id is not None and task_id == self.request.id:
            # A retry re-sends the running task under its own id: its snapshot stays, and
            # RETRY is recorded now, before the next attempt can start and write.
            self._record_retry(retry_due_at(options, self.app))
        elif self.steps:
            task_id = task_id or uuid()
            with self._site_language():
                pending = TaskDetail(task_id, self.name, self.steps, public=self.public_fields)
            pending.sent()
            backend = _detail_backend(self)
            if backend is not None:
                backend.publish_detail(pending)
        return super().apply_async(
            args, kwargs, task_id, producer, link, link_error, shadow, **options
        )

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        """Celery's ``retry``; the watchers see RETRY, with the error, before the next
        attempt is sent."""
        self.request.djenga_retry_exc = exc if exc is not None else sys.exc_info()[1]
        return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)

    def _record_retry(self, retry_at: float | None = None) -> None:
        reporter: _RunReporter | None = getattr(self.request, "djenga_reporter", None)
        if reporter is None or reporter.backend is None:
            return
        reporter.close()
        with reporter.detail.lock:
            reporter.detail.retry_at = retry_at
        exc = getattr(self.request, "djenga_retry_exc", None)
        if not isinstance(exc, BaseException):
            exc = None
        reporter.backend.finish_detail(
            self.request.id,
            TaskState.RETRY,
            request=self.request,
            result=exc,
            traceback="".join(format_exception(exc)) if exc is not None else None,
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
        reporter: _RunReporter | None = getattr(self.request, "djenga_reporter", None)
        if reporter is not None:
            reporter.close()
        leases.drop(task_id)
        backend = _detail_backend(self)
        if backend is not None and task_id:
            backend.finish_detail(task_id, status, request=self.request, result=retval)


def retry_due_at(options: dict[str, Any], app: Any = None) -> float | None:
    """When a retry sent with these ``apply_async`` options is due, in epoch seconds: its
    ``countdown`` (``self.retry`` fills in ``default_retry_delay``, autoretry_for its
    backoff) from now, or its ``eta`` (a datetime, naive ones in the app's timezone, or an
    ISO 8601 string); None if neither is given or one cannot be read."""
    countdown = options.get("countdown")
    eta = options.get("eta")
    try:
        if countdown is not None:  # Celery's apply_async reads countdown before eta
            due = time.time() + max(0.0, float(countdown))
        elif eta is not None:
            when = datetime.fromisoformat(eta) if isinstance(eta, str) else eta
            if not isinstance(when, datetime):
                return None
            if when.tzinfo is None:
                when = maybe_make_aware(when, getattr(app, "timezone", None))
            due = when.timestamp()
        else:
            return None
    except (TypeError, ValueError, OverflowError):
        return None
    return due if math.isfinite(due) else None


class _RunReporter:
    """Publishes one run's detail, coalescing chatty ``update_step`` calls.

    A coalesced update is not lost: a timer publishes the newest state when the
    interval has passed, and any step boundary publishes at once.
    """

    def __init__(self, task: DetailTask, detail: TaskDetail) -> None:
        self.detail = detail
        self.backend = _detail_backend(task) if detail.task_id is not None else None
        interval = task.min_update_interval
        self.interval = float(get_settings().MIN_UPDATE_INTERVAL if interval is None else interval)
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def publish(self, *, coalesce: bool = False) -> None:
        if self.backend is None:  # called directly, or no redisd backend: nothing to tell
            return
        with self._lock:
            now = time.monotonic()
            wait = self._last + self.interval - now
            if coalesce and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._cancel_timer()
            self._last = now
        self.backend.publish_detail(self.detail)

    def close(self) -> None:
        with self._lock:
            self._cancel_timer()

    def _flush(self) -> None:
        with self._lock:
            if self._timer is None:  # a boundary published meanwhile
                return
            self._timer = None
            self._last = time.monotonic()
        if not self.detail.is_final:
            self.backend.publish_detail(self.detail)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _LeaseKeeper:
    """Renews the leases of this process's running detail tasks, every LEASE_INTERVAL
    seconds, in one round trip per backend. A dead worker renews nothing: its tasks'
    leases expire and watchers record them as LOST."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple[RedisDetailBackend, int]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def keep(self, backend: RedisDetailBackend, task_id: str) -> None:
        with self._lock:
            # Counted: the next attempt of a retried task may start in this process before
            # the previous attempt has returned and dropped its hold.
            _backend, holds = self._runs.get(task_id, (backend, 0))
            self._runs[task_id] = (backend, holds + 1)
            # A forked pool child inherits no threads: start one in each process.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._renew_forever, name="djenga-leases", daemon=True
                )
                self._thread.start()

    def drop(self, task_id: str) -> None:
        with self._lock:
            backend, holds = self._runs.get(task_id, (None, 0))
            if holds > 1:
                self._runs[task_id] = (backend, holds - 1)
            else:
                self._runs.pop(task_id, None)

    def _renew_forever(self) -> None:
        while True:
            settings = get_settings()
            time.sleep(settings.LEASE_INTERVAL)
            with self._lock:
                runs = list(self._runs.items())
            by_backend: dict[int, tuple[RedisDetailBackend, list[str]]] = {}
            for task_id, (backend, _holds) in runs:
                by_backend.setdefault(id(backend), (backend, []))[1].append(task_id)
            for backend, task_ids in by_backend.values():
                try:
                    backend.store.renew_leases(task_ids, settings.LEASE_TTL)
                except (RedisError, OSError) as exc:
                    backend._warn_unreachable(task_ids[0], exc)


leases = _LeaseKeeper()

_warned_backends: set[str] = set()


def _detail_backend(task: Task) -> RedisDetailBackend | None:
    """The task's backend if it is djenga's; else None, with one warning per task name."""
    backend = task.backend
    if isinstance(backend, RedisDetailBackend):
        return backend
    if task.name not in _warned_backends:
        _warned_backends.add(task.name)
        logger.warning(
            "Task %s reports steps but the result backend is %s, not djenga's "
            "redisd://: set CELERY_RESULT_BACKEND = 'redisd://host:port/db'.",
            task.name,
            type(backend).__name__,
        )
    return None
