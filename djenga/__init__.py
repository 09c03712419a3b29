"""djenga: live, step-by-step progress for Celery tasks in Django."""

__version__ = "0.1.0"
