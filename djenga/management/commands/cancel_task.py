"""``manage.py cancel_task <task_id>``: ask a task to stop (cooperative cancel)."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from ...actions import FINAL, QUEUED
from ...celery.results import AsyncDetailedResult
from ...errors import InvalidTaskId, NotADetailBackend
from ...keys import validate_task_id
from .debug_celery import load_celery_app


class Command(BaseCommand):
    help = (
        "Ask a task to stop: a running DetailTask ends REVOKED at its next step helper, a "
        "queued one never starts. The timeline records who asked (--by, default the "
        "user running this command). Exits 0 when the request was stored, 1 when the task "
        "had already ended."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id")
        parser.add_argument("--by", default=None, help="Who the timeline names as cancelling.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            task_id = validate_task_id(options["task_id"])
        except InvalidTaskId as exc:
            raise CommandError(str(exc)) from exc
        result = AsyncDetailedResult(task_id, app=load_celery_app())
        by = options["by"] or f"{_login()} (manage.py)"
        try:
            outcome = result.cancel(by=by)
        except NotADetailBackend as exc:
            raise CommandError(str(exc)) from exc
        except (RedisError, OSError, KombuError) as exc:
            raise CommandError(f"cannot reach Redis or the broker: {exc}") from exc
        if outcome == FINAL:
            raise CommandError(f"task {task_id} had already ended: nothing to cancel", returncode=1)
        if outcome == QUEUED:
            self.stdout.write(f"task {task_id} had not started: revoked, it will never start")
        else:
            self.stdout.write(f"task {task_id} will stop at its next step")


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "someone"
