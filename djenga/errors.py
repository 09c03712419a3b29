"""The djenga exception hierarchy: every message says how to fix the problem."""

from __future__ import annotations


class DjengaError(Exception):
    """Base class of every error djenga raises on purpose."""


class StepError(DjengaError, ValueError):
    """A step helper was used out of order (unknown key, no running step, duplicate key)."""


class InvalidTaskId(DjengaError, ValueError):
    """A task id that cannot be used in a Redis key or a URL."""


class NotADetailBackend(DjengaError):
    """The Celery app's result backend is not djenga's ``redisd://`` backend."""


class RedisServerNotFound(DjengaError):
    """No Redis or Valkey server could be found to start (tests and the demo)."""
