"""ASGI pieces for your project's router: ``lifespan``, the answer to ASGI servers that
announce their start-up and shutdown (uvicorn, hypercorn, granian; daphne sends none).

Channels' ``ProtocolTypeRouter`` has no ``lifespan`` entry by default, so such a server
logs that lifespan failed ("No application configured for scope type 'lifespan'").
"""

from __future__ import annotations

from typing import Any

from .live.collector import freeze_startup_objects

__all__ = ["lifespan"]


async def lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ``"lifespan"`` entry of a ``ProtocolTypeRouter``: completes start-up (after
    freezing what start-up loaded out of the garbage collector's sight, see
    ``DJENGA_GC_FREEZE``) and shutdown, so the server neither warns nor waits."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            freeze_startup_objects()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
