"""``manage.py watch_task <task_id>``: follow one task live in the terminal (or as JSON lines)."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...celery.results import AsyncDetailedResult
from ...errors import InvalidTaskId
from ...keys import validate_task_id
from ...wire import Snapshot, TaskState, is_final
from .debug_celery import load_celery_app

#: Exit codes: 0 success; 1 the task failed, was revoked or lost; 2 timed out.
EXIT_FAILED = 1
EXIT_TIMEOUT = 2

_MARKERS = {"done": "✓", "failed": "✗", "running": "…", "pending": "○", "skipped": "-"}


class Command(BaseCommand):
    help = (
        "Follow a task's steps live until it ends. Exits 0 on SUCCESS, 1 on FAILURE, "
        "REVOKED or LOST, 2 on --timeout. --json prints one snapshot per line instead."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id")
        parser.add_argument("--json", action="store_true", help="One JSON snapshot per line.")
        parser.add_argument(
            "--timeout", type=float, default=None, help="Give up after this many seconds."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            task_id = validate_task_id(options["task_id"])
        except InvalidTaskId as exc:
            raise CommandError(str(exc)) from exc
        result = AsyncDetailedResult(task_id, app=load_celery_app())
        snapshots = result.follow(timeout=options["timeout"])
        try:
            if options["json"]:
                final = self._json_lines(snapshots)
            else:
                final = self._live_view(snapshots, task_id)
        except TimeoutError:
            self.stderr.write(f"gave up after {options['timeout']} s: the task has not ended")
            sys.exit(EXIT_TIMEOUT)
        if final is None or final.get("state") != TaskState.SUCCESS:
            sys.exit(EXIT_FAILED)

    def _json_lines(self, snapshots: Any) -> Snapshot | None:
        last = None
        for last in snapshots:
            self.stdout.write(json.dumps(last, separators=(",", ":")))
            self.stdout.flush()
        return last

    def _live_view(self, snapshots: Any, task_id: str) -> Snapshot | None:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stdout._out, highlight=False)
        last = None
        with Live(console=console, auto_refresh=False, transient=False) as live:
            for last in snapshots:
                live.update(render(last, task_id), refresh=True)
        if last is not None and is_final(last) and last.get("error"):
            error = last["error"]
            console.print(f"[red]{error.get('type')}: {error.get('message')}[/red]")
        return last


def render(snapshot: Snapshot, task_id: str) -> Any:
    """A rich renderable of one snapshot: header, overall bar, one line per step."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    percent = float(snapshot.get("percent") or 0.0)
    header = Text.assemble(
        (str(snapshot.get("name") or "task"), "bold"),
        f" {task_id}  ",
        (
            str(snapshot.get("state")),
            "bold green" if snapshot.get("state") == "SUCCESS" else "bold",
        ),
        f"  {percent:.0f}%",
    )
    steps = Table.grid(padding=(0, 1))
    for step in snapshot.get("steps") or []:
        line = Text(f"{_MARKERS.get(step.get('state'), '?')} {step.get('description') or ''}")
        if step.get("message"):
            line.append(f" — {step['message']}", style="dim")
        if step.get("total"):
            line.append(f" ({step.get('done') or 0:g}/{step['total']:g})", style="dim")
        took = step.get("duration")
        steps.add_row(line, Text(f"{took:.1f} s" if took is not None else "", style="dim"))
    return Group(header, ProgressBar(total=100, completed=percent, width=40), steps)
