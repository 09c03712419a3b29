"""URLs of the example project: the demo page, djenga's JSON view, the admin, and the React
and htmx pages (their npm packages under /npm/ when DJENGA_NPM_DIR names where they are)."""

import os

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("launch/", views.launch, name="launch"),
    path("launch/nested/", views.launch_nested, name="launch-nested"),
    path("launch/export/", views.launch_export, name="launch-export"),
    path("launch/retry/", views.launch_retry, name="launch-retry"),
    path("launch/workflow/", views.launch_workflow, name="launch-workflow"),
    path("djenga/", include("djenga.urls")),
    path("admin/", admin.site.urls),
    path("react/", views.react_page, name="react"),
    path("htmx/", views.htmx_page, name="htmx"),
    path("htmx/launch/", views.htmx_launch, name="htmx-launch"),
    path("htmx/dismiss/", views.htmx_dismiss, name="htmx-dismiss"),
]

if os.environ.get("DJENGA_NPM_DIR"):
    from django.views.static import serve

    urlpatterns.append(
        path("npm/<path:path>", serve, {"document_root": os.environ["DJENGA_NPM_DIR"]})
    )
