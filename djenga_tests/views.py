"""The demo page: a button that launches gru.steal_the_moon and the widget that shows it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .minions import Gru, Moon
from .tasks import steal_the_moon

#: Seconds each of Gru's moves takes in the demo, so the steps are visible.
DEMO_PACE = 1.0
SESSION_KEY = "djenga_demo_tasks"


def index(request: HttpRequest) -> HttpResponse:
    """Show the latest task this browser launched (only tasks it launched get a token)."""
    launched = request.session.get(SESSION_KEY, [])
    task_id = request.GET.get("task")
    if task_id not in launched:
        task_id = launched[-1] if launched else None
    return render(request, "djenga_tests/index.html", {"task_id": task_id})


@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """Launch the seed's task and remember, in the session, that this browser owns it."""
    pace = float(request.POST.get("pace", DEMO_PACE))
    result = steal_the_moon.delay(Gru(pace=max(0.0, min(pace, 5.0))), Moon())
    request.session[SESSION_KEY] = [*request.session.get(SESSION_KEY, [])[-19:], result.id]
    return redirect(f"/?task={result.id}")
