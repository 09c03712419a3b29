"""ConsoleConsumer: streams every task's snapshots to staff, batched, for the live task list."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async

from .. import wire
from ..conf import get_settings
from ..live.auth import current_user, is_staff
from ..live.consumers import CLOSE_BAD_FRAME, CLOSE_FORBIDDEN, GuardedConsumer
from ..live.hub import Frame, get_hub
from ..wire import encode

#: Seconds between two batches sent to one console: a busy system stays readable and cheap.
BATCH_INTERVAL = 0.25
#: Tasks listed when a console connects.
INITIAL_TASKS = 200
#: A batch frame up to its list of snapshots, which are already JSON text (``frame.text``).
_TASKS_OPEN = encode(wire.frame(wire.FrameType.TASKS, tasks=[]))[: -len("]}")]


class ConsoleConsumer(GuardedConsumer):
    """``ws/djenga/console/``: ``{"v": 1, "type": "tasks", "reset": true, "tasks": [...]}``
    with the most recent tasks, then ``{"v": 1, "type": "tasks", "tasks": [...]}`` with the
    ones that changed, at most every :data:`BATCH_INTERVAL` seconds, newest snapshot per
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
        await self.send(text_data=encode(wire.frame(wire.FrameType.TASKS, reset=True, tasks=tasks)))
        self._pump = asyncio.get_running_loop().create_task(self._send_batches())
        self.start_rechecks()

    def reauthorise(self) -> bool:
        return is_staff(current_user(self.scope))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.close(code=CLOSE_BAD_FRAME)  # the console stream takes no input

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
            texts = ",".join(frame.text(staff=True) for frame in batch.values())
            await self.send(text_data=_TASKS_OPEN + texts + "]}")
            await asyncio.sleep(BATCH_INTERVAL)
