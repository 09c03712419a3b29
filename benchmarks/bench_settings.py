"""The example project's settings plus a channels-redis layer, for the benchmarks that
compare djenga's relay with a ``group_send`` relay (live_latency.py, bench_asgi.py) and
with celery-progress's websocket recorder (vs_celery_progress.py). djenga needs no
channel layer; the example project has none."""

from djenga_tests.settings import *  # noqa: F403
from djenga_tests.settings import REDIS_URL

# channels-redis with the fixes it needs: a socket timeout above its 5 s BZPOPMIN (redis-py
# 8 otherwise drops idle consumers), room for bursts, and a connection pool that does not
# refuse at 100.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8's pool stops at 100 connections; a thousand consumers joining
            # and leaving groups at once need more.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30, "max_connections": 2000}],
            "capacity": 1000,
            "expiry": 60,
        },
    }
}
