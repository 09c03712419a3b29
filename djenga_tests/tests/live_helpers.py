"""Helpers for the live tests: a WebSocket client on the project's real ASGI app, and a
wait for a condition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from channels.testing import WebsocketCommunicator

ORIGIN = (b"origin", b"http://127.0.0.1:8000")

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0) -> T:
    """``predicate()``'s first truthy value, asked every 20 ms; AssertionError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def ws_path(task_id: str, **params: Any) -> str:
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/ws/djenga/tasks/{task_id}/" + (f"?{query}" if query else "")


async def open_socket(task_id: str, *, headers=(ORIGIN,), **params: Any) -> WebsocketCommunicator:
    from djenga_tests.asgi import application

    communicator = WebsocketCommunicator(
        application, ws_path(task_id, **params), headers=list(headers)
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def frames_until_close(
    communicator: WebsocketCommunicator, timeout: float = 15
) -> tuple[list[dict], int]:
    """Every snapshot received, then the close code."""
    frames = []
    while True:
        output = await communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            return frames, output.get("code", 1000)
        frames.append(json.loads(output["text"]))


async def close_code(communicator: WebsocketCommunicator, timeout: float = 10) -> int:
    output = await communicator.receive_output(timeout)
    assert output["type"] == "websocket.close", output
    return output.get("code", 1000)
