"""djenga's HTTP URLs: ``path("djenga/", include("djenga.urls"))``."""

from django.urls import re_path

from .console import views as console
from .keys import TASK_ID_PATTERN
from .live.views import group_snapshot, task_action, task_snapshot, workflow_snapshot

app_name = "djenga"

urlpatterns = [
    re_path(rf"^tasks/(?P<task_id>{TASK_ID_PATTERN})/$", task_snapshot, name="task-snapshot"),
    re_path(
        rf"^tasks/(?P<task_id>{TASK_ID_PATTERN})/actions/(?P<action>cancel|revoke|terminate|retry)/$",
        task_action,
        name="task-action",
    ),
    re_path(r"^groups/$", group_snapshot, name="group-snapshot"),
    re_path(r"^workflows/$", workflow_snapshot, name="workflow-snapshot"),
    re_path(r"^console/$", console.task_list, name="console"),
    re_path(
        rf"^console/tasks/(?P<task_id>{TASK_ID_PATTERN})/$",
        console.task_detail,
        name="console-task",
    ),
    re_path(
        rf"^console/tasks/(?P<task_id>{TASK_ID_PATTERN})/events/$",
        console.task_events,
        name="console-events",
    ),
]
