"""WebSocket routes to include in your ASGI router: ``ws/djenga/tasks/<task_id>/``."""

from django.urls import re_path

from ..keys import TASK_ID_PATTERN
from .consumers import TaskProgressConsumer

websocket_urlpatterns = [
    re_path(rf"^ws/djenga/tasks/(?P<task_id>{TASK_ID_PATTERN})/$", TaskProgressConsumer.as_asgi()),
]
