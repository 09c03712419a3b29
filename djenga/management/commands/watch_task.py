"""``manage.py watch_task <task_id>``: follow one task live in the terminal (or as JSON lines)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from celery.result import AsyncResult
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from kombu.exceptions import KombuError
from kombu.utils.url import maybe_sanitize_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ...celery.results import AsyncDetailedResult
from ...errors import InvalidTaskId, NotADetailBackend
from ...keys import validate_task_id
from ...wire import Snapshot, TaskState, is_final, running_path
from .debug_celery import load_celery_app

#: Exit codes: 0 success; 1 the task failed, was revoked, lost or expired, or nobody knows
#: the id; 2 timed out; 3 Redis could not be reached.
EXIT_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_UNREACHABLE = 3
#: Seconds to wait for a task that neither djenga nor Celery knows of before giving up.
UNKNOWN_GRACE = 10.0
#: Seconds between two reads while waiting for an unknown task to appear.
UNKNOWN_POLL = 0.25

_MARKERS = {"done": "✓", "failed": "✗", "running": "…", "pending": "○", "skipped": "-"}


class UnknownTask(Exception):
    """Neither djenga nor Celery's result backend has heard of the task id."""


class Command(BaseCommand):
    help = (
        "Follow a task's steps live until it ends. Exits 0 on SUCCESS; 1 on FAILURE, "
        "REVOKED, LOST or EXPIRED, or when nothing knows the task id after --grace seconds; "
        "2 on --timeout; 3 when Redis cannot be reached. --json prints one snapshot per line."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task_id")
        parser.add_argument("--json", action="store_true", help="One JSON snapshot per line.")
        parser.add_argument(
            "--timeout", type=float, default=None, help="Give up after this many seconds."
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=UNKNOWN_GRACE,
            help="Seconds to wait for a task id that neither djenga nor Celery knows of "
            f"(not sent yet, or still queued without declared steps) before exiting 1 "
            f"(default: {UNKNOWN_GRACE:g}).",
        )
        parser.add_argument(
            "--cancel-key",
            action="store_true",
            help="When stdin is a terminal, pressing c cancels the task (as manage.py "
            "cancel_task does; the timeline names you, '(watch_task)').",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            task_id = validate_task_id(options["task_id"])
        except InvalidTaskId as exc:
            raise CommandError(str(exc)) from exc
        app = load_celery_app()
        result = AsyncDetailedResult(task_id, app=app)
        try:
            result.detail_backend  # noqa: B018  (raises if it is not djenga's backend)
        except NotADetailBackend as exc:
            raise CommandError(str(exc)) from exc
        snapshots = self._snapshots(result, options["timeout"], options["grace"])
        with CancelKey(result, self.stderr) if options["cancel_key"] else contextlib.nullcontext():
            final = self._show(result, snapshots, task_id, options)
        if final is None or final.get("state") != TaskState.SUCCESS:
            sys.exit(EXIT_FAILED)

    def _show(
        self, result: AsyncDetailedResult, snapshots: Any, task_id: str, options: Any
    ) -> Snapshot | None:
        try:
            if options["json"]:
                final = self._json_lines(snapshots)
            else:
                final = self._live_view(snapshots, task_id)
        except TimeoutError:
            self.stderr.write(
                _("gave up after %(seconds)s s: the task has not ended")
                % {"seconds": options["timeout"]}
            )
            sys.exit(EXIT_TIMEOUT)
        except UnknownTask as exc:
            self.stderr.write(str(exc))
            sys.exit(EXIT_FAILED)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self.stderr.write(unreachable_message(result, exc))
            sys.exit(EXIT_UNREACHABLE)
        return final

    @staticmethod
    def _snapshots(
        result: AsyncDetailedResult, timeout: float | None, grace: float
    ) -> Iterator[Snapshot]:
        """``result.follow()``, after waiting up to ``grace`` seconds for a task id nobody
        knows (djenga's record: seq 0, no epoch; Celery's: PENDING) to become known."""
        started = time.monotonic()
        snapshot = result.details()
        if not is_final(snapshot) and not is_known(result, snapshot):
            yield snapshot
            while True:
                elapsed = time.monotonic() - started
                if timeout is not None and elapsed >= timeout:
                    raise TimeoutError("the task did not finish in time")
                if elapsed >= grace:
                    raise UnknownTask(
                        _(
                            "task %(task_id)s is unknown: neither djenga nor Celery's result "
                            "backend has a record of it after %(grace)s s. Check the id; a "
                            "task that is still queued and declares no steps is known only "
                            "once a worker starts it (wait longer with --grace)."
                        )
                        % {"task_id": result.id, "grace": f"{grace:g}"}
                    )
                time.sleep(UNKNOWN_POLL)
                snapshot = result.details()
                if is_final(snapshot) or is_known(result, snapshot):
                    break
        left = None if timeout is None else max(0.001, timeout - (time.monotonic() - started))
        yield from result.follow(timeout=left)

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
        # The stream itself decides, not rich's guess (FORCE_COLOR would make a pipe a
        # "terminal" and hold every update in redrawn frames).
        terminal = self.stdout.isatty()
        if not terminal:
            # Piped or redirected: no redrawing, one plain line per update, as it comes.
            shown = None
            for last in snapshots:
                line = plain_line(last, task_id)
                if line != shown:
                    self.stdout.write(line)
                    self.stdout.flush()
                    shown = line
            if last is not None and is_final(last):
                for depth, step in walk_steps(last.get("steps")):  # every step's outcome, once
                    self.stdout.write(f"  {'  ' * depth}{step_line(step)}")
                self.stdout.flush()
        else:
            with Live(console=console, auto_refresh=False, transient=False) as live:
                for last in snapshots:
                    live.update(render(last, task_id), refresh=True)
        if last is not None and is_final(last) and last.get("error"):
            error = last["error"]
            if terminal:
                console.print(f"[red]{error.get('type')}: {error.get('message')}[/red]")
            else:
                self.stdout.write(f"{error.get('type')}: {error.get('message')}")
                self.stdout.flush()
        return last


class CancelKey:
    """While watching, a thread reads the terminal key by key (cbreak mode, restored on
    exit): ``c`` cancels the task once (cooperative cancel, djenga.actions). Nothing when
    stdin is not a terminal."""

    def __init__(self, result: AsyncDetailedResult, out: Any) -> None:
        self.result = result
        self.out = out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: Any = None

    def __enter__(self) -> CancelKey:
        if not sys.stdin.isatty():
            return self
        import termios
        import tty

        fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        self.out.write(_("press c to cancel the task"))
        self._thread = threading.Thread(target=self._read, args=(fd,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)

    def _read(self, fd: int) -> None:
        import select

        while not self._stop.is_set():
            ready, _w, _x = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            key = os.read(fd, 1)
            if not key:
                return
            if key in (b"c", b"C"):
                try:
                    outcome = self.result.cancel(by=f"{_login()} (watch_task)")
                except (RedisError, OSError, KombuError) as exc:  # say it, keep watching
                    self.out.write(_("could not cancel: %(error)s") % {"error": exc})
                    continue
                self.out.write(_("cancel: %(outcome)s") % {"outcome": outcome})
                return


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "someone"


def is_known(result: AsyncDetailedResult, snapshot: Snapshot) -> bool:
    """Whether djenga has a record of the task, or else Celery's result backend does."""
    if snapshot.get("seq") or snapshot.get("epoch"):
        return True
    celery_result = AsyncResult(result.id, app=result.app, backend=result.backend)
    return celery_result.state != TaskState.PENDING


def unreachable_message(result: AsyncDetailedResult, exc: BaseException) -> str:
    """One line: the Redis URL that failed, the setting it came from, and why."""
    url = maybe_sanitize_url(str(getattr(result.backend, "url", None) or "?"))
    reason = (
        str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
    )
    return _(
        "watch_task cannot reach Redis at %(url)s: %(reason)s. It reads the Celery app's "
        "result backend (CELERY_RESULT_BACKEND, a redisd:// URL, in the app that "
        "DJENGA_CELERY_MODULE names): start that Redis or point the setting at it."
    ) % {"url": url, "reason": reason}


def floor_percent(snapshot: Snapshot) -> int:
    """The percent as the widget shows it: rounded down, so 100 only for SUCCESS."""
    percent = snapshot.get("percent")
    if not isinstance(percent, (int, float)) or isinstance(percent, bool):
        return 0
    return math.floor(max(0.0, min(100.0, float(percent))) + 1e-9)


def walk_steps(steps: Any, depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(depth, step)`` for every step of a snapshot's tree (wire v2 ``children``), depth
    first: 0 for a top-level step, 1 for its children, and so on."""
    for step in steps or []:
        if isinstance(step, dict):
            yield depth, step
            yield from walk_steps(step.get("children"), depth + 1)


def step_line(step: dict[str, Any]) -> str:
    """One step as plain text: marker, description, message, done/total, duration."""
    text = f"{_MARKERS.get(step.get('state'), '?')} {step.get('description') or ''}"
    if step.get("message"):
        text += f" — {step['message']}"
    if step.get("total"):
        text += f" ({step.get('done') or 0:g}/{step['total']:g})"
    took = step.get("duration")
    return text + (f"  {seconds(took)}" if took is not None else "")


def seconds(took: float) -> str:
    """A step's duration as the terminal shows it: "1.2 s"."""
    return _("%(seconds)s s") % {"seconds": f"{took:.1f}"}


def retry_note(snapshot: Snapshot, now: float | None = None) -> str | None:
    """ "next attempt in 12 s" while a RETRY snapshot waits for its due time (``retry_at``,
    at most ``retry_in``: a clock ahead of the worker's never shows more than its delay)."""
    due, delay = snapshot.get("retry_at"), snapshot.get("retry_in")
    if snapshot.get("state") != TaskState.RETRY or not isinstance(due, (int, float)):
        return None
    left = max(0.0, due - (time.time() if now is None else now))
    if isinstance(delay, (int, float)):
        left = min(left, delay)
    return _("next attempt in %(seconds)s s") % {"seconds": math.ceil(left)}


def plain_line(snapshot: Snapshot, task_id: str) -> str:
    """One update as one line of text: state, percent and the running step, no markup."""
    steps = [s for s in snapshot.get("steps") or [] if isinstance(s, dict)]
    parts = [
        str(snapshot.get("name") or _("task")),
        task_id,
        str(snapshot.get("state")),
        f"{floor_percent(snapshot)}%",
    ]
    note = retry_note(snapshot)
    if note:
        parts.append(note)
    path = running_path(snapshot)
    if path:
        position = _("step %(index)s/%(count)s") % {
            "index": steps.index(path[0]) + 1,
            "count": len(steps),
        }
        names = [step.get("description") or "" for step in path]  # "Export > Write"
        step = path[-1]
        text = f"{position} {' > '.join(names)}".rstrip()
        if step.get("message"):
            text += f" — {step['message']}"
        if step.get("total"):
            text += f" ({step.get('done') or 0:g}/{step['total']:g})"
        parts.append(text)
    return "  ".join(parts)


def render(snapshot: Snapshot, task_id: str) -> Any:
    """A rich renderable of one snapshot: header, overall bar, one line per step."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    percent = floor_percent(snapshot)
    header = Text.assemble(
        (str(snapshot.get("name") or _("task")), "bold"),
        f" {task_id}  ",
        (
            str(snapshot.get("state")),
            "bold green" if snapshot.get("state") == "SUCCESS" else "bold",
        ),
        f"  {percent}%",
        f"  {retry_note(snapshot) or ''}".rstrip(),
    )
    # A ProgressBar ends without a newline: on its own grid row, the steps start below it.
    bar = Table.grid()
    bar.add_row(ProgressBar(total=100, completed=percent, width=40))
    steps = Table.grid(padding=(0, 1))
    for depth, step in walk_steps(snapshot.get("steps")):
        marker = _MARKERS.get(step.get("state"), "?")
        line = Text(f"{'  ' * depth}{marker} {step.get('description') or ''}")
        if step.get("message"):
            line.append(f" — {step['message']}", style="dim")
        if step.get("total"):
            line.append(f" ({step.get('done') or 0:g}/{step['total']:g})", style="dim")
        took = step.get("duration")
        steps.add_row(line, Text(seconds(took) if took is not None else "", style="dim"))
    return Group(header, bar, steps)
