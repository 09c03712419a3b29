"""``manage.py debug_celery``: run a Celery worker in this process, debugger-friendly."""

from __future__ import annotations

import argparse
from typing import Any

from celery import Celery
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import autoreload

from ...celery.app import load_celery_app as load_project_app


def load_celery_app() -> Celery:
    """:func:`djenga.celery.app.load_celery_app`, its error as a CommandError."""
    try:
        return load_project_app()
    except ImproperlyConfigured as exc:
        raise CommandError(str(exc)) from exc


class Command(BaseCommand):
    help = (
        "Run a Celery worker for DJENGA_CELERY_MODULE in the foreground of this process "
        "(solo pool, so breakpoints work). Extra worker options go after '--', e.g. "
        "`manage.py debug_celery -- -Q high`, or `--pool threads -- --concurrency 2`."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--autoreload",
            action="store_true",
            help="Restart the worker when a Python file changes (Django's autoreloader).",
        )
        parser.add_argument("--pool", default="solo", help="Worker pool (default: solo).")
        parser.add_argument(
            "--loglevel", "-l", default="INFO", help="Worker log level (default: INFO)."
        )
        parser.add_argument(
            "worker_args",
            nargs=argparse.REMAINDER,
            help="Further `celery worker` arguments, after '--'.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        app = load_celery_app()
        extra = list(options["worker_args"] or [])
        if extra[:1] == ["--"]:
            extra = extra[1:]
        argv = ["worker", f"--pool={options['pool']}", f"--loglevel={options['loglevel']}"]
        if options["pool"] == "solo":
            # The solo pool runs one task at a time; without this, Celery's banner shows
            # its default concurrency (the CPU count): "concurrency: 2 (solo)". A -c given
            # after '--' comes later, so it still wins.
            argv.append("--concurrency=1")
        argv.extend(extra)
        if options["autoreload"]:
            autoreload.run_with_reloader(app.worker_main, argv)
        else:
            app.worker_main(argv)
