"""The relay consumers: authorise a browser, then send it one task's (or a group's) snapshots."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from .. import actions, wire
from ..conf import get_settings
from ..errors import InvalidTaskId
from ..keys import validate_task_id
from ..wire import (
    Snapshot,
    encode,
    event_for_viewer,
    fit_group,
    fit_workflow,
    for_viewer,
    group_snapshot,
    is_final,
    is_newer,
    workflow_snapshot,
)
from . import transport
from .auth import (
    Viewer,
    authorise,
    authorise_group,
    authorise_workflow,
    current_user,
    has_control_bytes,
)
from .hub import Frame, get_hub

logger = logging.getLogger(__name__)

# Close codes (docs/protocol.md). Refusals come after accept(), so the browser can tell a
# final "no" from a network error (a refused handshake reaches it as 1006).
CLOSE_DONE = 1000
CLOSE_BAD_FRAME = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_MANY = 4429
CLOSE_OVERLOADED = 4503
CLOSE_UNAVAILABLE = 1011  # Redis unreachable while joining: try again

#: Seconds over which DJENGA_MAX_CLIENT_FRAMES is counted.
RATE_WINDOW = 10.0
#: Seconds between two looks at a lagging client's queue.
DRAIN_POLL = 0.05
#: Seconds a client that reads slowly has to answer our closing frame.
SLOW_CLOSE_TIMEOUT = 30.0


class GuardedConsumer(AsyncWebsocketConsumer):
    """What every djenga socket does: refuse control bytes in the handshake (4400), and
    re-check the viewer's authorisation every ``DJENGA_REAUTHORISE_INTERVAL`` seconds
    (4403 once it is gone). Subclasses implement :meth:`reauthorise`."""

    # The hot path goes through the relay hub, not the channel layer.
    channel_layer_alias = None
    _rechecks: asyncio.Task[None] | None = None
    _protocol: object | None = None

    async def accept_guarded(self) -> bool:
        """Accept, then refuse (4400) a handshake with control bytes in its headers; True
        if the connection may go on."""
        await self.accept()
        self._protocol = transport.server_protocol(self.base_send)
        if has_control_bytes(self.scope, transport.raw_handshake(self._protocol)):
            await self.close(code=CLOSE_BAD_FRAME)
            return False
        return True

    def reauthorise(self) -> bool:
        """Whether the viewer may still watch (runs in a thread: it reads the session)."""
        raise NotImplementedError

    async def still_authorised(self) -> bool:
        """Re-check now; close with 4403 if the viewer lost the right to watch."""
        if await database_sync_to_async(self.reauthorise)():
            return True
        logger.info("djenga relay: %s is no longer authorised; closing", self.scope["path"])
        await self.close(code=CLOSE_FORBIDDEN)
        return False

    def start_rechecks(self) -> None:
        self._rechecks = asyncio.get_running_loop().create_task(self._recheck_forever())

    def stop_rechecks(self) -> None:
        if self._rechecks is not None:
            self._rechecks.cancel()
            self._rechecks = None

    async def _recheck_forever(self) -> None:
        interval = get_settings().REAUTHORISE_INTERVAL
        while True:
            await asyncio.sleep(interval)
            if not await self.still_authorised():
                return


class UnknownRouteConsumer(AsyncWebsocketConsumer):
    """Any other path under ``ws/djenga/`` (a task id the route cannot hold, a typo):
    accepted and closed with 4400, so the client learns "bad request", not a network
    error, and the server logs no "No route found" traceback."""

    channel_layer_alias = None

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_BAD_FRAME)


class TaskProgressConsumer(GuardedConsumer):
    """``ws/djenga/tasks/<task_id>/?token=…[&seq=N&epoch=E][&stay=1]``.

    Sends the current snapshot, then every newer one, then closes with 1000 once the
    task is final (unless ``stay=1``). A slow client never makes memory grow: while the
    server still holds more than :data:`~djenga.live.transport.HIGH_WATER` bytes for it,
    nothing more is sent, and then only the newest snapshot.

    Under daphne, a new snapshot goes out from the hub's dispatch itself, as one frame
    built once for all its watchers, while the client is caught up; the consumer's pump
    task (and with it Channels' ``send``) only serves the first frame, a client that
    lags, the final frame and its close.
    """

    #: Whether a client's (epoch, seq) gets the events it missed (single tasks only).
    recovers = True
    #: Whether frames may bypass ASGI ``send`` where the server allows it (daphne).
    direct_send = True
    #: Whether the socket takes ``{"type": "action"}`` frames (one task's socket does).
    takes_actions = True
    _direct = False
    _sending = False

    viewer: Viewer | None = None
    _pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        if not await self.accept_guarded():
            return
        params = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            # (epoch, seq) the client holds; -1: nothing yet, so even seq 0 (unknown) goes.
            seq = _one(params, "seq")
            self._mark = (_one(params, "epoch"), int(seq) if seq else -1)
            if self._mark[1] < -1:
                raise ValueError("seq must not be negative")
            self._params = params
            self.check_route()
            granted = await database_sync_to_async(self.authorise)(params)
        except (InvalidTaskId, ValueError):
            await self.close(code=CLOSE_BAD_FRAME)
            return
        if granted is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        hub = get_hub()
        if hub.watcher_count >= get_settings().MAX_WATCHERS:
            await self.close(code=CLOSE_OVERLOADED)
            return
        self.viewer, self.task_ids = granted
        self.stay = _one(params, "stay") == "1"
        self._members: dict[str, Frame] = {}
        self._wake = asyncio.Event()
        self._received: deque[float] = deque()
        self._held_back = 0  # frames replaced before they were sent (coalesced or lagging)
        self._peak_queued = 0
        # Subscribe first, then read: nothing published in between can be missed, and
        # anything at or below what was read is dropped by _offer.
        try:
            for task_id in self.task_ids:
                await hub.watch(task_id, self._offer)
            if seq and self.recovers:
                await self._recover()
            else:
                for frame in await asyncio.gather(*(hub.read(t) for t in self.task_ids)):
                    self._offer(frame)
        except (RedisError, OSError) as exc:
            logger.warning("djenga relay: cannot serve %s now (%s)", self.task_ids, exc)
            await self._stop_watching()
            await self.close(code=CLOSE_UNAVAILABLE)  # the widget retries
            return
        # Started last, so a recovery message always precedes the snapshots.
        self._pump = asyncio.get_running_loop().create_task(self._send_frames())
        self._direct = self.direct_send and transport.can_send_frames(self._protocol)
        self.start_rechecks()

    def check_route(self) -> None:
        """Raise :class:`InvalidTaskId` for a task id in the path that cannot be one."""
        validate_task_id(self.scope["url_route"]["kwargs"]["task_id"])

    def authorise(
        self, params: dict[str, list[str]], user: object = None
    ) -> tuple[Viewer, list[str]] | None:
        """Who is watching which tasks (runs in a thread: it may touch the database)."""
        task_id = validate_task_id(self.scope["url_route"]["kwargs"]["task_id"])
        user = self.scope.get("user") if user is None else user
        viewer = authorise(user, _one(params, "token"), task_id)
        return None if viewer is None else (viewer, [task_id])

    def reauthorise(self) -> bool:
        """Still the same viewer of the same tasks, with the user read afresh from the
        session (logged out, inactive, no longer staff) and the token's age checked."""
        granted = self.authorise(self._params, current_user(self.scope))
        return granted == (self.viewer, self.task_ids)

    async def _recover(self) -> None:
        """Answer a client that says what it holds: the events it missed (recovered), or
        ``recovered: false`` and then a fresh snapshot (docs/protocol.md)."""
        task_id = self.task_ids[0]
        recovery = await get_hub().read_since(task_id, *self._mark)
        public = recovery.frame.snapshot.get("public") or ()
        events = [
            event_for_viewer(event, staff=self.viewer.staff, public=public)
            for event in recovery.events
        ]
        message = wire.frame(
            wire.FrameType.RECOVERY,
            recovered=recovery.recovered,
            task_id=task_id,
            epoch=recovery.frame.snapshot.get("epoch"),
            events=events,
        )
        await self.send(text_data=encode(message))
        if not recovery.recovered:
            self._mark = (None, -1)
        self._offer(recovery.frame)
        self._wake.set()  # the mark moved: the pump decides whether the snapshot is news

    def compose(self) -> tuple[Snapshot, str]:
        """The snapshot to send now and its text, as this viewer may see it."""
        frame = self._members[self.task_ids[0]]
        return frame.snapshot, frame.text(staff=self.viewer.staff)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.viewer is None:
            return
        settings = get_settings()
        now = time.monotonic()
        self._received.append(now)
        while self._received and self._received[0] < now - RATE_WINDOW:
            self._received.popleft()
        if len(self._received) > settings.MAX_CLIENT_FRAMES:
            await self.close(code=CLOSE_TOO_MANY)
            return
        if text_data is not None and len(text_data) > settings.MAX_CLIENT_FRAME:
            await self.close(code=CLOSE_TOO_LARGE)
            return
        try:
            if text_data is None:
                raise ValueError("expected a text frame")
            message = json.loads(text_data)
            if isinstance(message, dict) and message.get("type") == "action" and self.takes_actions:
                await self._act(message)
                return
            if not isinstance(message, dict) or message.get("type") != "resume":
                raise ValueError("unknown message")
            seq = message.get("seq", 0)
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                raise ValueError("seq must be a non-negative integer")
            epoch = message.get("epoch")
        except ValueError:
            await self.close(code=CLOSE_BAD_FRAME)
            return
        if not await self.still_authorised():
            return
        self._mark = (epoch if isinstance(epoch, str) else None, seq)
        if self.recovers:
            await self._recover()
        else:
            self._wake.set()

    async def _act(self, message: dict[str, object]) -> None:
        """``{"type": "action", "action": "cancel"}``: take the action on this socket's task
        if the viewer may (else 4403, whether the task exists or not), answered by an
        ``action`` frame (docs/protocol.md)."""
        action = message.get("action")
        if not isinstance(action, str) or action not in actions.ACTIONS:
            raise ValueError("unknown action")
        if not await self.still_authorised():
            return
        if not self.viewer.may(action):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        answer = await database_sync_to_async(act_for)(
            self.scope, self.viewer, action, self.task_ids[0], via="widget"
        )
        await self.send(text_data=encode(answer))

    async def disconnect(self, code: int) -> None:
        self.stop_rechecks()
        if self._pump is not None:
            self._pump.cancel()
        if self.viewer is not None and self._peak_queued:  # it lagged, not merely coalesced
            logger.info(
                "djenga relay: a slow client of %s skipped %d frames (peak queue %d bytes)",
                self.task_ids[0], self._held_back, self._peak_queued,
            )  # fmt: skip
        await self._stop_watching()

    async def _stop_watching(self) -> None:
        if self.viewer is not None:
            self.viewer = None
            hub = get_hub()
            for task_id in self.task_ids:
                await hub.unwatch(task_id, self._offer)

    def _offer(self, frame: Frame) -> None:
        """Keep ``frame`` if it is newer than what we hold of its task, and wake the pump."""
        task_id = frame.snapshot.get("task_id")
        held = self._members.get(task_id)
        if held is None or is_newer(frame.snapshot, held.snapshot.get("epoch"), _seq(held)):
            if self._wake.is_set():
                self._held_back += 1  # replaces one the pump has not sent yet
            self._members[task_id] = frame
            if not (self._direct and not self._wake.is_set() and self._send_now(frame)):
                self._wake.set()

    def _send_now(self, frame: Frame) -> bool:
        """Send ``frame`` from here if the pump is idle and nothing stands in the way (a
        lagging client, a final frame, which needs a close); False: the pump will."""
        snapshot = frame.snapshot
        if self._sending or self.viewer is None or is_final(snapshot):
            return False
        if not is_newer(snapshot, *self._mark):
            return True  # nothing to send, as the pump would find
        queued = transport.queued_bytes(self._protocol)
        if queued is None or queued > transport.HIGH_WATER:
            return False
        if not transport.send_frame(self._protocol, frame.wire(staff=self.viewer.staff)):
            return False
        self._mark = (snapshot.get("epoch"), int(snapshot.get("seq") or 0))
        return True

    async def _caught_up(self) -> None:
        """Wait while the server still holds more than HIGH_WATER bytes for this client.
        ``send()`` never blocks under daphne, so this is what keeps a slow client's queue
        from growing: meanwhile newer frames replace the unsent one."""
        while True:
            queued = transport.queued_bytes(self._protocol)
            if queued is None or queued <= transport.HIGH_WATER:
                return
            self._peak_queued = max(self._peak_queued, queued)
            await asyncio.sleep(DRAIN_POLL)

    async def _send_frames(self) -> None:
        # Its own task: frames do not go through Channels' per-handler dispatch. Only the
        # newest state is ever sent, so a slow client just skips intermediate ones.
        while True:
            await self._wake.wait()
            await self._caught_up()
            self._wake.clear()
            if self.viewer is None or len(self._members) < len(self.task_ids):
                continue
            snapshot, text = self.compose()
            if not is_newer(snapshot, *self._mark):
                continue
            self._mark = (snapshot.get("epoch"), int(snapshot.get("seq") or 0))
            self._sending = True
            try:
                await self.send(text_data=text)
            finally:
                self._sending = False
            if is_final(snapshot) and not self.stay:
                # A lagging client still has frames to read before our close frame: give
                # it time to answer, rather than reset the connection under them.
                transport.allow_slow_close(self._protocol, SLOW_CLOSE_TIMEOUT)
                await self.close(code=CLOSE_DONE)
                return


class GroupProgressConsumer(TaskProgressConsumer):
    """``ws/djenga/groups/?token=<group token>``: one full group snapshot per change
    (see :func:`djenga.wire.group_snapshot`), coalesced like single tasks."""

    recovers = False
    direct_send = False  # each viewer's group snapshot is composed for it: the pump sends
    takes_actions = False  # an action names one task: its own socket, or the console

    def check_route(self) -> None:
        """The group route holds no task id."""

    def authorise(
        self, params: dict[str, list[str]], user: object = None
    ) -> tuple[Viewer, list[str]] | None:
        user = self.scope.get("user") if user is None else user
        granted = authorise_group(user, _one(params, "token"))
        if granted is not None:
            for task_id in granted[1]:
                validate_task_id(task_id)
        return granted

    def compose(self) -> tuple[Snapshot, str]:
        staff = self.viewer.staff
        members = [for_viewer(self._members[t].snapshot, staff=staff) for t in self.task_ids]
        return fit_group(group_snapshot(members))  # under daphne's 64 KiB message limit


def act_for(
    scope: dict[str, object], viewer: Viewer, action: str, task_id: str, *, via: str
) -> dict[str, object]:
    """Take an authorised viewer's action (runs in a thread: the session, Redis and the
    broker); the answer frame, an ``ok: false`` one if it could not be done."""
    user = current_user(scope) if viewer.staff else None
    frame, _status = actions.answer(
        action, task_id, user=user, staff=viewer.staff, can_cancel=viewer.can_cancel, via=via
    )
    return frame


class WorkflowProgressConsumer(GroupProgressConsumer):
    """``ws/djenga/workflows/?token=<workflow token>``: one full workflow snapshot per
    change (see :func:`djenga.wire.workflow_snapshot`): a chain's or a chord's stages, in
    order, each with its tasks' snapshots as this viewer may see them. Closes with 1000
    once the workflow is final (a failed stage ends it), 4403 for a bad token."""

    stages: list[list[str]]
    _floor = 0.0

    def authorise(
        self, params: dict[str, list[str]], user: object = None
    ) -> tuple[Viewer, list[str]] | None:
        user = self.scope.get("user") if user is None else user
        granted = authorise_workflow(user, _one(params, "token"))
        if granted is None:
            return None
        viewer, stages = granted
        for stage in stages:
            for task_id in stage:
                validate_task_id(task_id)
        self.stages = stages
        # Each task once, in order (a task named twice is watched once).
        return viewer, list(dict.fromkeys(t for stage in stages for t in stage))

    def compose(self) -> tuple[Snapshot, str]:
        staff = self.viewer.staff
        stages = [
            [for_viewer(self._members[t].snapshot, staff=staff) for t in stage]
            for stage in self.stages
        ]
        snapshot = workflow_snapshot(stages, floor=self._floor)
        self._floor = float(snapshot["percent"])
        return fit_workflow(snapshot)  # under daphne's 64 KiB message limit


def _seq(frame: Frame) -> int:
    return int(frame.snapshot.get("seq") or 0)


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


__all__ = [
    "GroupProgressConsumer",
    "GuardedConsumer",
    "TaskProgressConsumer",
    "WorkflowProgressConsumer",
]
