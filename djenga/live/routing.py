"""WebSocket routes to include in your ASGI router: one task, a group, the agents' console."""

from django.urls import re_path

from ..console.consumers import ConsoleConsumer
from ..keys import TASK_ID_PATTERN
from .consumers import GroupProgressConsumer, TaskProgressConsumer

websocket_urlpatterns = [
    re_path(rf"^ws/djenga/tasks/(?P<task_id>{TASK_ID_PATTERN})/$", TaskProgressConsumer.as_asgi()),
    re_path(r"^ws/djenga/groups/$", GroupProgressConsumer.as_asgi()),
    re_path(r"^ws/djenga/console/$", ConsoleConsumer.as_asgi()),
]
