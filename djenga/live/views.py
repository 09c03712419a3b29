"""The JSON polling endpoint: the same snapshot and authorisation as the WebSocket."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from .. import actions
from ..connection import read_snapshot, read_snapshots
from ..errors import InvalidTaskId
from ..keys import validate_task_id
from ..wire import for_viewer
from ..wire import group_snapshot as build_group_snapshot
from ..wire import workflow_snapshot as build_workflow_snapshot
from .auth import authorise, authorise_group, authorise_workflow

FORBIDDEN = {"error": "forbidden"}


@never_cache
@require_GET
def task_snapshot(request: HttpRequest, task_id: str) -> JsonResponse:
    """GET ``djenga/tasks/<task_id>/?token=…``: the task's snapshot as this viewer may see it."""
    viewer = authorise(request.user, request.GET.get("token"), task_id)
    if viewer is None:
        return JsonResponse(FORBIDDEN, status=403)
    return JsonResponse(for_viewer(read_snapshot(task_id), staff=viewer.staff))


@never_cache
@require_GET
def group_snapshot(request: HttpRequest) -> JsonResponse:
    """GET ``djenga/groups/?token=…``: the group's snapshot, as the WebSocket sends it."""
    granted = authorise_group(request.user, request.GET.get("token"))
    if granted is None:
        return JsonResponse(FORBIDDEN, status=403)
    viewer, task_ids = granted
    members = [for_viewer(s, staff=viewer.staff) for s in read_snapshots(task_ids)]
    return JsonResponse(build_group_snapshot(members))


@never_cache
@require_POST
def task_action(request: HttpRequest, task_id: str, action: str) -> JsonResponse:
    """POST ``djenga/tasks/<task_id>/actions/<action>/`` (CSRF-protected; ``token`` in the
    form or the query): take ``action`` (djenga/actions.py). 403 with the same body whether
    the task exists or not when the viewer may not; else the ``action`` answer frame."""
    viewer = authorise(request.user, request.POST.get("token") or request.GET.get("token"), task_id)
    if viewer is None or not viewer.may(action):
        return JsonResponse(FORBIDDEN, status=403)
    frame, status = actions.answer(
        action,
        task_id,
        user=request.user,
        staff=viewer.staff,
        can_cancel=viewer.can_cancel,
        via="console" if viewer.staff else "page",
    )
    return JsonResponse(frame, status=status)


@never_cache
@require_GET
def workflow_snapshot(request: HttpRequest) -> JsonResponse:
    """GET ``djenga/workflows/?token=…``: the workflow's snapshot, as the WebSocket sends it
    (without the WebSocket's per-connection floor: a poller keeps its own highest)."""
    granted = authorise_workflow(request.user, request.GET.get("token"))
    if granted is None:
        return JsonResponse(FORBIDDEN, status=403)
    viewer, stages = granted
    try:
        ids = [validate_task_id(task_id) for stage in stages for task_id in stage]
    except InvalidTaskId:
        return JsonResponse(FORBIDDEN, status=403)
    unique = list(dict.fromkeys(ids))
    read = dict(zip(unique, read_snapshots(unique), strict=True))
    members = [
        [for_viewer(read[task_id], staff=viewer.staff) for task_id in stage] for stage in stages
    ]
    return JsonResponse(build_workflow_snapshot(members))
