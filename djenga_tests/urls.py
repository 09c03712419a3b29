"""URLs of the example project: the demo page, djenga's JSON view, the admin."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("launch/", views.launch, name="launch"),
    path("djenga/", include("djenga.urls")),
    path("admin/", admin.site.urls),
]
