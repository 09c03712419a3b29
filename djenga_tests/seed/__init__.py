"""The seed document's two Celery app forms, verbatim, each in a module a real worker can load."""

import os


def configure(app):
    """Not from the seed: point the app at the test Redis (db 14, away from the project's)."""
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0]
    app.conf.update(
        broker_url=f"{base}/14", result_backend="redisd://" + base.split("://", 1)[1] + "/14"
    )
