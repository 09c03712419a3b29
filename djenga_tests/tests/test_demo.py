"""The demo project's page and clocks (issue 9, item 9)."""

from __future__ import annotations

import os
import subprocess
import sys

from django.test import override_settings

from .fixtures import ROOT


@override_settings(LANGUAGE_CODE="fr")
def test_the_demo_page_declares_the_active_language(client):
    page = client.get("/").content.decode()
    assert '<html lang="fr">' in page


def test_the_demo_page_declares_english_by_default(client):
    assert '<html lang="en-us">' in client.get("/").content.decode()


def test_logs_and_pages_share_one_clock_utc():
    # Django sets the process time zone from TIME_ZONE, and logging's timestamps use it:
    # with Django's default the logs were in Chicago time while the console shows UTC.
    env = {k: v for k, v in os.environ.items() if k != "TZ"}
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c",
         "import time; print('zone', time.strftime('%Z'))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "zone UTC" in shown.stdout.splitlines(), shown.stdout
