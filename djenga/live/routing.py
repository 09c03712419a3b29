"""WebSocket routes to include in your ASGI router: one task, a group, a
workflow (chain or chord), the agents' console.

The task route takes any path segment, and any other path under ``ws/djenga/`` is
answered too: a bad id or path is closed with 4400 by djenga, never a "No route found"
error from Channels (HTTP 500, which the browser sees as 1006).
"""

from django.urls import re_path

from ..console.consumers import ConsoleConsumer
from .consumers import (
    GroupProgressConsumer,
    TaskProgressConsumer,
    UnknownRouteConsumer,
    WorkflowProgressConsumer,
)

websocket_urlpatterns = [
    re_path(r"^ws/djenga/tasks/(?P<task_id>[^/]*)/$", TaskProgressConsumer.as_asgi()),
    re_path(r"^ws/djenga/groups/$", GroupProgressConsumer.as_asgi()),
    re_path(r"^ws/djenga/workflows/$", WorkflowProgressConsumer.as_asgi()),
    re_path(r"^ws/djenga/console/$", ConsoleConsumer.as_asgi()),
    re_path(r"^ws/djenga/", UnknownRouteConsumer.as_asgi()),
]
