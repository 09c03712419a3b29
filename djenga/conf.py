"""djenga's settings: every ``DJENGA_*`` setting, its default, and the one place that reads them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

#: Every setting djenga reads, without its ``DJENGA_`` prefix, with its default.
DEFAULTS: dict[str, Any] = {
    # Dotted path of the module holding the Celery app (used by ``manage.py debug_celery``).
    "CELERY_MODULE": None,
    # First part of every Redis key and pub/sub channel djenga writes.
    "KEY_PREFIX": "djenga",
    # Entries kept (approximately, XADD MAXLEN ~) in each task's event log.
    "EVENT_LOG_LENGTH": 1000,
    # Redis the web process reads snapshots from and subscribes to. None: derived from
    # CELERY_RESULT_BACKEND (redisd:// -> redis://, redisds:// -> rediss://).
    "REDIS_URL": None,
    # A Redis/Valkey Cluster for djenga's own keys and channels (worker and web process):
    # a node's redis:// or rediss:// URL, several separated by commas, or a list. None:
    # they stay on the result backend's server. Celery's results and broker cannot go
    # on a cluster (celery/celery#2852).
    "CLUSTER_URL": None,
    # Lifetime in seconds of the signed tokens that let a browser watch one task.
    "TOKEN_MAX_AGE": 24 * 3600,
    # Tasks kept in the recent-tasks index the agents' console lists.
    "RECENT_TASKS": 1000,
    # Seconds between two published update_step calls of one run (0: publish every one).
    # Start/end of a step and the final state are always published at once.
    "MIN_UPDATE_INTERVAL": 0.0,
    # Seconds a running task's lease lives without renewal; then watchers see it LOST.
    "LEASE_TTL": 20.0,
    # Seconds between two renewals of the leases of a worker process's running tasks.
    "LEASE_INTERVAL": 5.0,
    # Most browsers one web process relays to at once; more are closed with code 4503.
    "MAX_WATCHERS": 10_000,
    # Largest frame, in characters, a browser may send ("resume" or "action"): 4413.
    "MAX_CLIENT_FRAME": 1024,
    # Frames a browser may send per 10 seconds: more are closed with code 4429.
    "MAX_CLIENT_FRAMES": 20,
    # Seconds between two re-checks of an open socket's authorisation (session gone, user
    # inactive, staff removed, token expired: closed with 4403). Also re-checked on resume.
    "REAUTHORISE_INTERVAL": 30.0,
    # Seconds a task's id is still known after its record expired (result_expires): its
    # readers answer EXPIRED, not PENDING, meanwhile.
    "TOMBSTONE_TTL": 7 * 24 * 3600,
    # Whether a web process moves what it loaded at start-up out of the cyclic garbage
    # collector's sight (gc.freeze()) once it starts relaying, so that a full collection
    # does not stall every watcher's frames (docs/deployment.md, "Garbage collection").
    "GC_FREEZE": True,
}


@dataclass(frozen=True)
class DjengaSettings:
    """The effective djenga settings: Django's ``DJENGA_*`` values over :data:`DEFAULTS`."""

    CELERY_MODULE: str | None
    KEY_PREFIX: str
    EVENT_LOG_LENGTH: int
    REDIS_URL: str | None
    CLUSTER_URL: str | list[str] | None
    TOKEN_MAX_AGE: int
    RECENT_TASKS: int
    MIN_UPDATE_INTERVAL: float
    LEASE_TTL: float
    LEASE_INTERVAL: float
    MAX_WATCHERS: int
    MAX_CLIENT_FRAME: int
    MAX_CLIENT_FRAMES: int
    REAUTHORISE_INTERVAL: float
    TOMBSTONE_TTL: int
    GC_FREEZE: bool


_cached: DjengaSettings | None = None


def get_settings() -> DjengaSettings:
    """Return djenga's settings; outside a configured Django project, the defaults.

    Cached once Django's settings are there (it is on every update's path); the cache is
    cleared on ``setting_changed``. Defaults are never cached: Django may come later.
    """
    global _cached
    if _cached is not None:
        return _cached
    from django.conf import settings

    if not (settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
        return DjengaSettings(**DEFAULTS)
    _cached = DjengaSettings(
        **{name: getattr(settings, f"DJENGA_{name}", default) for name, default in DEFAULTS.items()}
    )
    return _cached


def reset_settings(**kwargs: Any) -> None:
    """Forget the cached settings (connected to Django's ``setting_changed`` signal)."""
    setting = kwargs.get("setting")
    if setting is None or setting.startswith("DJENGA_") or setting.startswith("CELERY_"):
        global _cached
        _cached = None
