"""djenga's example project: settings, Celery app, example tasks, the test suite."""

from .celery import app as celery_app

__all__ = ["celery_app"]
