"""Settings of djenga's example project (the demo and the test suite)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("DJENGA_DATA_DIR", BASE_DIR.parent / ".data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "djenga-example-project-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "djenga",
    "djenga_tests",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "djenga_tests.urls"
ASGI_APPLICATION = "djenga_tests.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# A file database: ChannelsLiveServerTestCase and daphne subprocesses need to share it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        "TEST": {"NAME": DATA_DIR / "test-db.sqlite3"},
    }
}

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
# The browser tests of translations run daphne in French and Arabic.
LANGUAGE_CODE = os.environ.get("DJANGO_LANGUAGE_CODE", "en-us")
# One clock for the whole demo: Django sets the process time zone (TZ) from TIME_ZONE, so
# daphne's and the worker's logs use it, and the console's times are UTC too. Django's
# default would be America/Chicago.
TIME_ZONE = "UTC"
LOGIN_URL = "admin:login"

# -- Redis: REDIS_URL names the server; the demo and the tests start one and set it. -------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
_REDIS_ADDRESS = REDIS_URL.split("://", 1)[1]

# Behind Sentinel: SENTINEL_MASTER names the master, SENTINEL_BACKEND_URL is
# 'sentineld://h:p/15;sentineld://h2:p/15' and SENTINEL_BROKER_URL the same as sentinel://.
SENTINEL_MASTER = os.environ.get("SENTINEL_MASTER")
CELERY_BROKER_URL = (SENTINEL_MASTER and os.environ.get("SENTINEL_BROKER_URL")) or REDIS_URL
# The seed's form is 'redisd://127.0.0.1/15': djenga's backend on that server and db.
CELERY_RESULT_BACKEND = (SENTINEL_MASTER and os.environ.get("SENTINEL_BACKEND_URL")) or (
    f"redisd://{_REDIS_ADDRESS}"
)
if SENTINEL_MASTER:
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"master_name": SENTINEL_MASTER}
    # A master that stops answering (no RST: a partition, SIGSTOP) costs a worker's write
    # at most this long, not Celery's default of 120 s, before it asks the sentinels.
    CELERY_REDIS_SOCKET_TIMEOUT = 5.0
CELERY_TASK_TRACK_STARTED = True
# Celery keeps each task's name, args and kwargs with its result: the console's Retry sends
# a failed task again with them (djenga/actions.py).
CELERY_RESULT_EXTENDED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

DJENGA_CELERY_MODULE = "djenga_tests.celery"
# The reliability suite shortens these to see lost workers, redeliveries, expired tokens
# and re-checks in seconds.
DJENGA_LEASE_TTL = float(os.environ.get("DJENGA_LEASE_TTL", 20))
DJENGA_LEASE_INTERVAL = float(os.environ.get("DJENGA_LEASE_INTERVAL", 5))
if "DJENGA_TOKEN_MAX_AGE" in os.environ:
    DJENGA_TOKEN_MAX_AGE = int(os.environ["DJENGA_TOKEN_MAX_AGE"])
if "DJENGA_MAX_WATCHERS" in os.environ:
    DJENGA_MAX_WATCHERS = int(os.environ["DJENGA_MAX_WATCHERS"])
# djenga's keys and channels on a Redis Cluster (the cluster tests start one and set it).
DJENGA_CLUSTER_URL = os.environ.get("DJENGA_CLUSTER_URL") or None
if "DJENGA_REAUTHORISE_INTERVAL" in os.environ:
    DJENGA_REAUTHORISE_INTERVAL = float(os.environ["DJENGA_REAUTHORISE_INTERVAL"])
if "DJENGA_GC_FREEZE" in os.environ:  # benchmarks/gc_pause.py compares with and without
    DJENGA_GC_FREEZE = os.environ["DJENGA_GC_FREEZE"] == "True"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": float(os.environ.get("DJENGA_VISIBILITY_TIMEOUT", 3600))
}
if SENTINEL_MASTER:
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = SENTINEL_MASTER

# No CHANNEL_LAYERS: djenga's relay does not use the channel layer, and neither does the
# quickstart. The benchmarks that compare against channels-redis add one
# (benchmarks/bench_settings.py).

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"djenga": {"handlers": ["console"], "level": "INFO"}},
}
