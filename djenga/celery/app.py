"""DjengaCelery: a Celery app that knows djenga's backends and accepts ``base='dotted.path'``."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from celery import Celery
from celery.app.utils import find_app
from celery.utils.imports import symbol_by_name
from django.core.exceptions import ImproperlyConfigured

from .backends import patch_aliases

__all__ = ["DjengaCelery"]


class DjengaCelery(Celery):
    """A :class:`celery.Celery` app for projects using djenga.

    - registers the ``redisd://`` and ``redisds://`` result backends (``patch_aliases()``);
    - resolves a dotted-string task base, e.g. ``@app.task(base='djenga.celery.tasks.DetailTask')``,
      on which plain Celery fails with "metaclass conflict";
    - ``detail_tasks=True`` makes :class:`~djenga.celery.tasks.DetailTask` the default
      base of every task (same as ``task_cls='djenga.celery.tasks:DetailTask'``).
    """

    def __init__(self, *args: Any, detail_tasks: bool = False, **kwargs: Any) -> None:
        patch_aliases()
        if detail_tasks and kwargs.get("task_cls") is None:
            kwargs["task_cls"] = "djenga.celery.tasks:DetailTask"
        super().__init__(*args, **kwargs)

    def task(self, *args: Any, **opts: Any) -> Any:
        # Resolve here, not later: Celery shares every @app.task with each app finalized
        # afterwards, and a plain Celery app in the same process cannot take a string.
        if isinstance(opts.get("base"), str):
            opts["base"] = symbol_by_name(opts["base"])
        return super().task(*args, **opts)

    def _task_from_fun(self, fun: Any, name: Any = None, base: Any = None, **options: Any) -> Any:
        if isinstance(base, str):
            base = symbol_by_name(base)
        return super()._task_from_fun(fun, name=name, base=base, **options)


def load_celery_app() -> Celery:
    """The Celery app of the module ``DJENGA_CELERY_MODULE`` names (system check E004
    checks the setting at start-up); ImproperlyConfigured, saying what to set, if that
    fails."""
    from django.conf import settings

    path = getattr(settings, "DJENGA_CELERY_MODULE", None)
    if not path or not isinstance(path, str):
        raise ImproperlyConfigured(
            f"DJENGA_CELERY_MODULE is {path!r}: set it to the module that creates your "
            "Celery app, e.g. DJENGA_CELERY_MODULE = 'myproject.celery'."
        )
    try:
        module = import_module(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"DJENGA_CELERY_MODULE is {path!r}, which cannot be imported: {exc}"
        ) from exc
    try:
        app = find_app(path)
    except Exception as exc:
        raise ImproperlyConfigured(
            f"DJENGA_CELERY_MODULE is {path!r}, but no Celery app was found in it ({exc}); "
            "define `app = Celery(...)` there."
        ) from exc
    if not isinstance(app, Celery):
        raise ImproperlyConfigured(
            f"DJENGA_CELERY_MODULE is {path!r}, whose app is a {type(app).__name__} "
            f"from {module.__name__}, not a Celery app."
        )
    return app
