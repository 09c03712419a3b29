"""ConsoleConsumer: streams every task's snapshots to staff, batched, for the live task list."""

from __future__ import annotations

import asyncio
import json

from channels.db import database_sync_to_async

from .. import actions, wire
from ..conf import get_settings
from ..errors import InvalidTaskId
from ..keys import validate_task_id
from ..live.auth import Viewer, current_user, is_staff
from ..live.consumers import CLOSE_BAD_FRAME, CLOSE_FORBIDDEN, GuardedConsumer, act_for
from ..live.hub import Frame, get_hub
from ..wire import MAX_FRAME_BYTES, encode

#: Seconds between two batches sent to one console: a busy system stays readable and cheap.
BATCH_INTERVAL = 0.25
#: Tasks listed when a console connects.
INITIAL_TASKS = 200
#: A batch frame up to its list of snapshots, which are already JSON text (``frame.text``).
_TASKS_OPEN = encode(wire.frame(wire.FrameType.TASKS, tasks=[]))[: -len("]}")]
_RESET_OPEN = encode(wire.frame(wire.FrameType.TASKS, reset=True, tasks=[]))[: -len("]}")]
_APPEND_OPEN = encode(wire.frame(wire.FrameType.TASKS, append=True, tasks=[]))[: -len("]}")]


def frames_of(head: str, texts: list[str], rest: str = _TASKS_OPEN) -> list[str]:
    """The frames that carry ``texts`` (JSON snapshots) in order, each within
    :data:`~djenga.wire.MAX_FRAME_BYTES` (daphne's 64 KiB limit applies to what it sends):
    the first opens with ``head``, the others with ``rest``. A snapshot longer than the
    limit goes alone."""
    frames: list[str] = []
    chunk: list[str] = []
    size = 0
    for text in texts:
        length = len(text.encode()) + 1
        if chunk and size + length + len(head) + 2 > MAX_FRAME_BYTES:
            frames.append(head + ",".join(chunk) + "]}")
            head, chunk, size = rest, [], 0
        chunk.append(text)
        size += length
    frames.append(head + ",".join(chunk) + "]}")
    return frames


class ConsoleConsumer(GuardedConsumer):
    """``ws/djenga/console/``: ``{"v": 2, "type": "tasks", "reset": true, "tasks": [...]}``
    with the most recent tasks (newest first; if they do not fit one frame, the older ones
    follow in ``"append": true`` frames), then ``{"v": 2, "type": "tasks", "tasks": [...]}``
    with the ones that changed, at most every :data:`BATCH_INTERVAL` seconds, newest snapshot per
    task. Staff only, re-checked every ``DJENGA_REAUTHORISE_INTERVAL`` seconds."""

    _pump: asyncio.Task[None] | None = None
    _watching = False

    async def connect(self) -> None:
        if not await self.accept_guarded():
            return
        if not await database_sync_to_async(is_staff)(self.scope.get("user")):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self._changed: dict[str, Frame] = {}
        self._wake = asyncio.Event()
        hub = get_hub()
        await hub.watch_all(self._offer)
        self._watching = True
        limit = min(INITIAL_TASKS, get_settings().RECENT_TASKS)
        tasks = await hub.read_recent(limit)
        # Newest first; what does not fit the first frame follows, appended below it.
        for text in frames_of(_RESET_OPEN, [encode(t) for t in tasks], _APPEND_OPEN):
            await self.send(text_data=text)
        self._pump = asyncio.get_running_loop().create_task(self._send_batches())
        self.start_rechecks()

    def reauthorise(self) -> bool:
        return is_staff(current_user(self.scope))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The console takes one kind of input: ``{"type": "action", "action": "cancel" |
        "revoke" | "terminate" | "retry", "task_id": "…"}``, answered by an ``action`` frame
        (docs/protocol.md). Anything else closes with 4400; a user no longer staff, 4403."""
        try:
            message = json.loads(text_data or "")
            if not (isinstance(message, dict) and message.get("type") == "action"):
                raise ValueError("the console takes only action frames")
            action, task_id = message.get("action"), validate_task_id(message.get("task_id"))
            if action not in actions.ACTIONS:
                raise ValueError("unknown action")
        except (ValueError, InvalidTaskId):
            await self.close(code=CLOSE_BAD_FRAME)
            return
        if not await self.still_authorised():
            return
        answer = await database_sync_to_async(act_for)(
            self.scope, Viewer(staff=True), action, task_id, via="console"
        )
        await self.send(text_data=encode(answer))

    async def disconnect(self, code: int) -> None:
        self.stop_rechecks()
        if self._pump is not None:
            self._pump.cancel()
        if self._watching:
            self._watching = False
            await get_hub().unwatch_all(self._offer)

    def _offer(self, frame: Frame) -> None:
        task_id = frame.snapshot.get("task_id")
        if isinstance(task_id, str):
            held = self._changed.get(task_id)
            if held is None or held.snapshot.get("seq", 0) <= frame.snapshot.get("seq", 0):
                self._changed[task_id] = frame
            self._wake.set()

    async def _send_batches(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._changed = self._changed, {}
            # Oldest change first across frames, so the newest ends on top of the list.
            frames = sorted(batch.values(), key=lambda f: f.snapshot.get("updated_at") or 0)
            for text in frames_of(_TASKS_OPEN, [frame.text(staff=True) for frame in frames]):
                await self.send(text_data=text)
            await asyncio.sleep(BATCH_INTERVAL)
