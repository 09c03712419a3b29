"""Django app config: registers djenga's system checks and its settings cache reset."""

from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import setting_changed


class DjengaConfig(AppConfig):
    name = "djenga"
    verbose_name = "djenga"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
        from .conf import reset_settings

        setting_changed.connect(reset_settings, dispatch_uid="djenga.conf.reset_settings")
        self._link_console_from_admin()

    @staticmethod
    def _link_console_from_admin() -> None:
        """Show a "Task console" link on the admin index, unless the project has its own
        index template (then link ``{% url 'djenga:console' %}`` from it yourself)."""
        from django.apps import apps

        if not apps.is_installed("django.contrib.admin"):
            return
        from django.contrib import admin

        if admin.site.index_template is None:
            admin.site.index_template = "djenga/admin/index.html"
