"""Django system checks for djenga's settings; ids are stable (djenga.E001 …)."""

from __future__ import annotations

import re
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register

from .conf import get_settings

#: URLs DJENGA_REDIS_URL may be: a server's, or the sentinels' (djenga.clients).
_PLAIN_SCHEMES = ("redis", "rediss", "unix", "sentinel", "sentinels")
_PREFIX_RE = re.compile(r"\A[A-Za-z0-9_.-]{1,64}\Z")
POSITIVE_INTEGERS = (
    "EVENT_LOG_LENGTH", "TOKEN_MAX_AGE", "RECENT_TASKS", "MAX_WATCHERS", "MAX_CLIENT_FRAME",
    "MAX_CLIENT_FRAMES", "TOMBSTONE_TTL",
)  # fmt: skip
#: Settings in seconds, and whether 0 is allowed.
SECONDS = {
    "LEASE_TTL": False, "LEASE_INTERVAL": False, "MIN_UPDATE_INTERVAL": True,
    "REAUTHORISE_INTERVAL": False,
}  # fmt: skip


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Check every DJENGA_* setting and that results go through djenga's backend."""
    conf = get_settings()
    messages: list[Any] = []
    backend = getattr(settings, "CELERY_RESULT_BACKEND", None)
    if conf.REDIS_URL is None and not _is_detail_url(backend):
        messages.append(
            Warning(
                f"CELERY_RESULT_BACKEND is {backend!r}, not a djenga redisd:// URL: "
                "tasks will run but no step progress is recorded or shown.",
                hint="Set CELERY_RESULT_BACKEND = 'redisd://host:port/db' "
                "(or 'redisds://' for TLS; 'sentineld://' behind Sentinel).",
                id="djenga.W001",
            )
        )
    if conf.REDIS_URL is not None and not _is_url(conf.REDIS_URL, _PLAIN_SCHEMES):
        messages.append(
            Error(
                f"DJENGA_REDIS_URL is {conf.REDIS_URL!r}, not a redis:// or sentinel:// URL.",
                hint="Use e.g. 'redis://127.0.0.1:6379/15', the server and database "
                "that CELERY_RESULT_BACKEND writes to, or behind Sentinel "
                "'sentinel://10.0.0.1:26379/15;sentinel://10.0.0.2:26379/15'.",
                id="djenga.E001",
            )
        )
    messages.extend(_check_sentinel(conf.REDIS_URL, backend))
    if not isinstance(conf.KEY_PREFIX, str) or not _PREFIX_RE.match(conf.KEY_PREFIX):
        messages.append(
            Error(
                f"DJENGA_KEY_PREFIX is {conf.KEY_PREFIX!r}.",
                hint="Use 1-64 letters, digits, '_', '.' or '-' (default 'djenga').",
                id="djenga.E002",
            )
        )
    for name in POSITIVE_INTEGERS:
        value = getattr(conf, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            messages.append(
                Error(
                    f"DJENGA_{name} is {value!r}, not a positive integer.",
                    hint=f"Remove it to use the default ({_default(name)}).",
                    id="djenga.E003",
                )
            )
    messages.extend(_check_numbers(conf))
    if conf.CELERY_MODULE is not None:
        messages.extend(_check_celery_module(conf.CELERY_MODULE))
    return messages


def _check_numbers(conf: Any) -> list[Any]:
    messages = []
    for name, allow_zero in SECONDS.items():
        value = getattr(conf, name)
        valid = _is_number(value) and (value > 0 or (allow_zero and value == 0))
        if not valid:
            messages.append(
                Error(
                    f"DJENGA_{name} is {value!r}, not a "
                    + ("number of seconds >= 0." if allow_zero else "positive number of seconds."),
                    hint=f"Remove it to use the default ({_default(name)}).",
                    id="djenga.E005",
                )
            )
    leases = [getattr(conf, name) for name in ("LEASE_TTL", "LEASE_INTERVAL")]
    lease_ok = all(_is_number(value) and value > 0 for value in leases)
    if lease_ok and conf.LEASE_INTERVAL >= conf.LEASE_TTL:
        messages.append(
            Error(
                f"DJENGA_LEASE_INTERVAL ({conf.LEASE_INTERVAL}) is not shorter than "
                f"DJENGA_LEASE_TTL ({conf.LEASE_TTL}): running tasks would be reported LOST.",
                hint="Renew leases several times per TTL, e.g. an interval of TTL / 4.",
                id="djenga.E006",
            )
        )
    return messages


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_celery_module(path: Any) -> list[Any]:
    if not isinstance(path, str) or not path:
        return [
            Error(
                f"DJENGA_CELERY_MODULE is {path!r}, not a dotted module path.",
                hint="e.g. DJENGA_CELERY_MODULE = 'myproject.celery'",
                id="djenga.E004",
            )
        ]
    try:
        import_module(path)
    except ImportError as exc:
        return [
            Error(
                f"DJENGA_CELERY_MODULE is {path!r}, which cannot be imported: {exc}.",
                hint="Name the module that creates your Celery app, e.g. 'myproject.celery'.",
                id="djenga.E004",
            )
        ]
    return _check_retry_arguments()


def _check_retry_arguments() -> list[Any]:
    """Staff retry a task with the arguments Celery keeps in its extended result."""
    from django.core.exceptions import ImproperlyConfigured

    from .celery.app import load_celery_app

    try:
        app = load_celery_app()
    except ImproperlyConfigured:
        return []  # the module has no Celery app: debug_celery and the actions say so
    if app.conf.result_extended:
        return []
    return [
        Warning(
            f"Celery's result_extended is off in {app.main or 'the app'} of "
            "DJENGA_CELERY_MODULE: the console's Retry and the retry action are refused "
            "('no-arguments'), as a task's arguments are not stored.",
            hint="Set CELERY_RESULT_EXTENDED = True (or app.conf.result_extended = True).",
            id="djenga.W002",
        )
    ]


def _default(name: str) -> Any:
    from .conf import DEFAULTS

    return DEFAULTS[name]


def _is_url(value: Any, schemes: tuple[str, ...]) -> bool:
    return isinstance(value, str) and value.partition("://")[0] in schemes and "://" in value


def _is_detail_url(value: Any) -> bool:
    return _is_url(value, ("redisd", "redisds", "sentineld", "sentinelds"))


def _check_sentinel(redis_url: Any, backend: Any) -> list[Any]:
    """A Sentinel URL needs the master's name, where Celery's sentinel:// takes it."""
    from .clients import master_name_of

    urls = [
        (name, value)
        for name, value in (("DJENGA_REDIS_URL", redis_url), ("CELERY_RESULT_BACKEND", backend))
        if _is_url(value, ("sentinel", "sentinels", "sentineld", "sentinelds"))
    ]
    options = getattr(settings, "CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS", None)
    if not urls or master_name_of(options if isinstance(options, dict) else None):
        return []
    name = urls[0][0]
    return [
        Error(
            f"{name} is a Sentinel URL, but no master is named: "
            f"CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS is {options!r}.",
            hint="Name the master the sentinels monitor, as Celery's sentinel:// backend "
            "needs: CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {'master_name': 'mymaster'}.",
            id="djenga.E007",
        )
    ]


# -- djenga's keys on a Redis Cluster (DJENGA_CLUSTER_URL) --------------------------------

#: Schemes (and their djenga twins) people reach for to put Celery itself on a cluster.
CLUSTER_LIKE_SCHEMES = (
    "rediscluster", "redis+cluster", "redis-cluster", "redisd+cluster", "redisdcluster",
    "valkeycluster", "valkey+cluster",
)  # fmt: skip


@register()
def check_cluster(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """DJENGA_CLUSTER_URL is a cluster node's URL on db 0, and Celery is not on a cluster."""
    from urllib.parse import urlsplit

    from .store.cluster import CLUSTER_SCHEMES, parse_cluster_urls

    messages: list[Any] = []
    setting = get_settings().CLUSTER_URL
    urls = parse_cluster_urls(setting) if isinstance(setting, (str, list, tuple)) else None
    nodes: set[tuple[str | None, int | None]] = set()
    bad = setting is not None and not urls
    for url in urls or ():
        try:
            parts = urlsplit(url)
            nodes.add((parts.hostname, parts.port or 6379))
            db = parts.path.strip("/")
        except ValueError:
            bad = True
            continue
        if parts.scheme not in CLUSTER_SCHEMES or not parts.hostname or db not in ("", "0"):
            bad = True
    if bad:
        messages.append(
            Error(
                f"DJENGA_CLUSTER_URL is {setting!r}, not the redis:// or rediss:// URL of a "
                "cluster node on database 0.",
                hint="Use e.g. 'redis://10.0.0.5:7000' (any node; the others are found), "
                "several separated by commas, or a list. A cluster has only database 0.",
                id="djenga.E020",
            )
        )
    for name in ("CELERY_RESULT_BACKEND", "CELERY_BROKER_URL"):
        value = getattr(settings, name, None)
        if not isinstance(value, str) or "://" not in value:
            continue
        scheme = value.partition("://")[0].lower()
        try:
            parts = urlsplit(value)
            on_cluster = (parts.hostname, parts.port or 6379) in nodes
        except ValueError:
            on_cluster = False
        if scheme in CLUSTER_LIKE_SCHEMES or on_cluster:
            messages.append(
                Error(
                    f"{name} is {value!r}, a Redis Cluster: Celery's redis backend and "
                    "broker have no Cluster support (celery/celery#2852).",
                    hint="Keep Celery on a standalone or Sentinel Redis (e.g. "
                    "CELERY_RESULT_BACKEND = 'redisd://host:6379/0') and put djenga's keys "
                    "and channels on the cluster with DJENGA_CLUSTER_URL.",
                    id="djenga.E021",
                )
            )
    if urls and get_settings().REDIS_URL:
        messages.append(
            Warning(
                "DJENGA_REDIS_URL and DJENGA_CLUSTER_URL are both set: djenga's keys are on "
                "the cluster, DJENGA_REDIS_URL is not used.",
                hint="Remove DJENGA_REDIS_URL.",
                id="djenga.W020",
            )
        )
    return messages
