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
#: The tasks of SESSION_KEY that are exports: their widget may cancel them.
EXPORTS_KEY = "djenga_demo_exports"
#: The demo's nested-step exports (a subset of SESSION_KEY's tasks), labelled as such.
NESTED_KEY = "djenga_demo_nested"
WORKFLOWS_KEY = "djenga_demo_workflows"


def index(request: HttpRequest) -> HttpResponse:
    """Show the latest task this browser launched (only tasks it launched get a token)."""
    launched = request.session.get(SESSION_KEY, [])
    task_id = request.GET.get("task")
    if task_id not in launched:
        task_id = launched[-1] if launched else None
    workflows = request.session.get(WORKFLOWS_KEY, [])
    context = {
        "task_id": task_id,
        "nested": task_id in request.session.get(NESTED_KEY, []),
        "cancellable": task_id in request.session.get(EXPORTS_KEY, []),
        "workflow": workflows[-1] if workflows and request.GET.get("workflow") else None,
    }
    return render(request, "djenga_tests/index.html", context)


@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """Launch the seed's task and remember, in the session, that this browser owns it."""
    pace = float(request.POST.get("pace", DEMO_PACE))
    result = steal_the_moon.delay(Gru(pace=max(0.0, min(pace, 5.0))), Moon())
    request.session[SESSION_KEY] = [*request.session.get(SESSION_KEY, [])[-19:], result.id]
    return redirect(f"/?task={result.id}")


@require_POST
def launch_nested(request: HttpRequest) -> HttpResponse:
    """Launch the nested-step example, ``demo.nested_export`` (docs/api.md, "Nested steps")."""
    from .tasks import nested_export

    pace = max(0.0, min(float(request.POST.get("pace", DEMO_PACE)), 5.0))
    result = nested_export.delay(rows=5, pace=pace / 2)
    for key in (SESSION_KEY, NESTED_KEY):
        request.session[key] = [*request.session.get(key, [])[-19:], result.id]
    return redirect(f"/?task={result.id}")


@require_POST
def launch_retry(request: HttpRequest) -> HttpResponse:
    """Launch a task that fails once and retries in 5 seconds: the widget counts down."""
    from .tasks import retry_later

    result = retry_later.delay(5.0)
    request.session[SESSION_KEY] = [*request.session.get(SESSION_KEY, [])[-19:], result.id]
    return redirect(f"/?task={result.id}")


@require_POST
def launch_export(request: HttpRequest) -> HttpResponse:
    """Launch the cancellable export: its widget gets a token that grants cancel."""
    from .tasks import export_rows

    rows = max(1, min(int(request.POST.get("rows", 100)), 10_000))
    seconds = max(0.0, min(float(request.POST.get("seconds", 30.0)), 600.0))
    result = export_rows.delay(rows, seconds)
    for key in (SESSION_KEY, EXPORTS_KEY):
        request.session[key] = [*request.session.get(key, [])[-19:], result.id]
    return redirect(f"/?task={result.id}")


@require_POST
def launch_workflow(request: HttpRequest) -> HttpResponse:
    """Launch a chain of three stages, or a chord of four and a body (``kind=chord``), and
    keep its stages in the session: the page shows them on one bar."""
    from celery import chain, chord

    from djenga.live.auth import workflow_stages

    from .tasks import stage

    if request.POST.get("kind") == "chord":
        result = chord(stage.si(0.4 * i) for i in range(1, 5))(stage.si(0.5))
    else:
        result = chain(stage.si(0.6), stage.si(0.6), stage.si(0.6)).apply_async()
    workflows = request.session.get(WORKFLOWS_KEY, [])[-9:]
    request.session[WORKFLOWS_KEY] = [*workflows, workflow_stages(result)]
    return redirect("/?workflow=1")


# -- framework pages (frontend/tests/test_frameworks.py, docs/widget.md): React 19 and htmx,
# with their packages installed from npm into DJENGA_NPM_DIR and served under /npm/.


def react_page(request: HttpRequest) -> HttpResponse:
    """A React 19 app, no build step, that renders <djenga-task-progress> for ``?task=``."""
    from djenga.live.auth import make_token

    task_id = request.GET.get("task", "")
    return render(
        request,
        "djenga_tests/react.html",
        {"task_id": task_id, "token": make_token(task_id, request.user) if task_id else ""},
    )


def htmx_page(request: HttpRequest) -> HttpResponse:
    """A form whose htmx POST swaps in a live widget, and a button that swaps it out."""
    return render(request, "djenga_tests/htmx.html")


@require_POST
def htmx_launch(request: HttpRequest) -> HttpResponse:
    """Start a task and answer with the fragment that shows it (the template tag). The
    tests name a gate (``gate``): their task then waits until they open it."""
    from .tasks import gated, steal_the_moon_declared

    name = request.POST.get("gate")
    result = gated.delay(name) if name else steal_the_moon_declared.delay(Gru(pace=0.3), Moon())
    return render(request, "djenga_tests/htmx_widget.html", {"task_id": result.id})


def htmx_dismiss(request: HttpRequest) -> HttpResponse:
    """The empty fragment that replaces the widget."""
    return HttpResponse("")
