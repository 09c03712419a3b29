"""The seed document's two Celery app forms, verbatim, each in a module a real worker can load."""

import os


def configure(app):
    """Not from the seed: point the app at the test Redis (db 14, away from the project's),
    through the sentinels when the tests run behind Sentinel."""
    master = os.environ.get("SENTINEL_MASTER")
    if master:

        def db14(url):
            return ";".join(chunk.rsplit("/", 1)[0] + "/14" for chunk in url.split(";"))

        options = {"master_name": master}
        app.conf.update(
            broker_url=db14(os.environ["SENTINEL_BROKER_URL"]),
            result_backend=db14(os.environ["SENTINEL_BACKEND_URL"]),
            broker_transport_options=options,
            result_backend_transport_options=options,
        )
        return
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15").rsplit("/", 1)[0]
    app.conf.update(
        broker_url=f"{base}/14", result_backend="redisd://" + base.split("://", 1)[1] + "/14"
    )
