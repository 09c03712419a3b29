"""The console's pages (staff only): the live task list and one task's full timeline."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from ..actions import RETRYABLE_STATES
from ..connection import read_events, read_snapshot
from ..keys import validate_task_id
from ..wire import TaskState, is_final
from .timeline import build_timeline


def admin_context(request: HttpRequest, **context: Any) -> dict[str, Any]:
    """The admin's own page context (site header, user, "View site", "Log out"), so the
    console pages carry the same user tools as the admin they are linked from."""
    return {**admin.site.each_context(request), **context}


@staff_member_required
@never_cache
def task_list(request: HttpRequest) -> HttpResponse:
    """Running and recent tasks, kept live over ``ws/djenga/console/``."""
    return render(
        request,
        "djenga/console/task_list.html",
        admin_context(
            request,
            states=[state.value for state in TaskState],
            # The element fills in each row's id: reverse with a placeholder, then mark it.
            task_url=reverse("djenga:console-task", args=["TASK-ID"]).replace(
                "TASK-ID", "{task-id}"
            ),
        ),
    )


@staff_member_required
@never_cache
def task_detail(request: HttpRequest, task_id: str) -> HttpResponse:
    """Everything about one task: steps live, the timeline, args, result or traceback."""
    validate_task_id(task_id)
    snapshot = read_snapshot(task_id)
    timeline = build_timeline(read_events(task_id))
    return render(
        request,
        "djenga/console/task_detail.html",
        admin_context(
            request,
            task_id=task_id,
            snapshot=snapshot,
            private=snapshot.get("private") or {},
            timeline=timeline,
            last_seq=timeline[-1].seq if timeline else 0,
            last_seq_rows=sum(row.seq == timeline[-1].seq for row in timeline) if timeline else 0,
            snapshot_is_final=is_final(snapshot),
            retryable=snapshot.get("state") in RETRYABLE_STATES,
        ),
    )


@staff_member_required
@never_cache
def task_events(request: HttpRequest, task_id: str) -> JsonResponse:
    """Timeline rows after ``?after=<seq>``, for the task page to append live. An action
    on an ended task is logged under the task's last seq: ``&shown=<n>`` says the page
    has ``n`` rows of seq ``after`` (without it: all of them), and the view answers the
    ones beyond them too."""
    validate_task_id(task_id)
    try:
        after = max(0, int(request.GET.get("after", 0)))
        given = request.GET.get("shown")
        shown = None if given is None else max(0, int(given))
    except ValueError:
        return JsonResponse({"error": "after and shown must be integers"}, status=400)
    rows = build_timeline(read_events(task_id))
    same = [] if shown is None else [row for row in rows if row.seq == after][shown:]
    later = [row for row in rows if row.seq > after]
    return JsonResponse({"rows": [row.as_dict() for row in same + later]})
