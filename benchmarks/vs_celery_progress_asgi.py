"""ASGI app for vs_celery_progress.py: celery-progress as its README wires it, on the example
project's settings: its polling view at /celery-progress/<id>/ and its ws/progress/<id>/."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()  # sets Django up before the imports below

from celery import Celery  # noqa: E402
from celery_progress.websockets.routing import urlpatterns as progress_websockets  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import include, re_path  # noqa: E402

# celery-progress reads results through the current Celery app: give it a plain redis://
# backend on the same server and database the benchmark's tasks write to.
celery_app = Celery("celery_progress_bench", backend=settings.REDIS_URL, broker="memory://")
celery_app.set_default()

# This module is also the URLconf: celery-progress's views, as its README includes them.
settings.ROOT_URLCONF = __name__
urlpatterns = [re_path(r"^celery-progress/", include("celery_progress.urls"))]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # The same middleware as djenga's route in djenga_tests.asgi, so both pay for it.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(progress_websockets))
        ),
    }
)
