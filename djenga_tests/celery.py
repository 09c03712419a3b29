"""The example project's Celery app, built on djenga's app class (resolves string bases)."""

import os

from djenga.celery.app import DjengaCelery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djenga_tests.settings")

app = DjengaCelery("djenga_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["djenga_tests"])
