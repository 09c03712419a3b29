"""The JSON polling endpoint: the same snapshot and authorisation as the WebSocket."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ..connection import read_snapshot
from ..wire import for_viewer
from .auth import authorise


@never_cache
@require_GET
def task_snapshot(request: HttpRequest, task_id: str) -> JsonResponse:
    """GET ``djenga/tasks/<task_id>/?token=…``: the task's snapshot as this viewer may see it."""
    viewer = authorise(request.user, request.GET.get("token"), task_id)
    if viewer is None:
        return JsonResponse({"error": "forbidden"}, status=403)
    return JsonResponse(for_viewer(read_snapshot(task_id), staff=viewer.staff))
