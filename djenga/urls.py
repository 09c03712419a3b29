"""djenga's HTTP URLs: ``path("djenga/", include("djenga.urls"))``."""

from django.urls import re_path

from .keys import TASK_ID_PATTERN
from .live.views import task_snapshot

app_name = "djenga"

urlpatterns = [
    re_path(rf"^tasks/(?P<task_id>{TASK_ID_PATTERN})/$", task_snapshot, name="task-snapshot"),
]
