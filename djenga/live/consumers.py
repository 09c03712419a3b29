"""TaskProgressConsumer: authorises a browser, then relays one task's snapshots to it."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from ..conf import get_settings
from ..errors import InvalidTaskId
from ..keys import validate_task_id
from ..wire import is_final, is_newer
from .auth import Viewer, authorise
from .hub import Frame, get_hub

logger = logging.getLogger(__name__)

# Close codes (docs/protocol.md). Refusals come after accept(), so the browser can tell a
# final "no" from a network error (a refused handshake reaches it as 1006).
CLOSE_DONE = 1000
CLOSE_BAD_FRAME = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_OVERLOADED = 4503

#: Longest client frame accepted (the only one is a small JSON "resume").
MAX_CLIENT_FRAME = 1024


class TaskProgressConsumer(AsyncWebsocketConsumer):
    """``ws/djenga/tasks/<task_id>/?token=…[&seq=N&epoch=E][&stay=1]``.

    Sends the current snapshot, then every newer one, then closes with 1000 once the
    task is final (unless ``stay=1``). A slow client never makes memory grow: only the
    newest unsent snapshot is kept for it.
    """

    # The per-task hot path goes through the relay hub, not the channel layer.
    channel_layer_alias = None

    viewer: Viewer | None = None
    _pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.accept()
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.task_id = validate_task_id(self.scope["url_route"]["kwargs"]["task_id"])
            # (epoch, seq) the client holds; -1: nothing yet, so even seq 0 (unknown task) goes.
            seq = _one(params, "seq")
            self._mark = (_one(params, "epoch"), int(seq) if seq else -1)
        except (InvalidTaskId, ValueError):
            await self.close(code=CLOSE_BAD_FRAME)
            return
        self.stay = _one(params, "stay") == "1"
        viewer = await database_sync_to_async(authorise)(
            self.scope.get("user"), _one(params, "token"), self.task_id
        )
        if viewer is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        hub = get_hub()
        if hub.watcher_count >= get_settings().MAX_WATCHERS:
            await self.close(code=CLOSE_OVERLOADED)
            return
        self.viewer = viewer
        self._latest: Frame | None = None
        self._wake = asyncio.Event()
        self._pump = asyncio.get_running_loop().create_task(self._send_frames())
        # Subscribe first, then read: nothing published in between can be missed, and
        # anything at or below the snapshot's seq is dropped by _offer.
        await hub.watch(self.task_id, self._offer)
        self._offer(await hub.read(self.task_id))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.viewer is None:
            return
        try:
            if text_data is None or len(text_data) > MAX_CLIENT_FRAME:
                raise ValueError("expected a small text frame")
            message = json.loads(text_data)
            if not isinstance(message, dict) or message.get("type") != "resume":
                raise ValueError("unknown message")
            seq = message.get("seq", 0)
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError("seq must be a non-negative integer")
            epoch = message.get("epoch")
        except ValueError:
            await self.close(code=CLOSE_BAD_FRAME)
            return
        self._mark = (epoch if isinstance(epoch, str) else None, seq)
        self._offer(await get_hub().read(self.task_id))

    async def disconnect(self, code: int) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self.viewer is not None:
            self.viewer = None
            await get_hub().unwatch(self.task_id, self._offer)

    def _offer(self, frame: Frame) -> None:
        """Keep ``frame`` if it is newer than what the client has or is about to get."""
        if not is_newer(frame.snapshot, *self._mark):
            return
        self._mark = (frame.snapshot.get("epoch"), int(frame.snapshot.get("seq") or 0))
        self._latest = frame
        self._wake.set()

    async def _send_frames(self) -> None:
        # Its own task: frames do not go through Channels' per-handler dispatch.
        while True:
            await self._wake.wait()
            self._wake.clear()
            frame, self._latest = self._latest, None
            if frame is None or self.viewer is None:
                continue
            await self.send(text_data=frame.text(staff=self.viewer.staff))
            if is_final(frame.snapshot) and not self.stay:
                await self.close(code=CLOSE_DONE)
                return


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None
