"""The ASGI servers djenga's relay is tested and measured under, with the command line of
each (docs/deployment.md, "Other ASGI servers"). Daphne is the default."""

from __future__ import annotations

import sys
from collections.abc import Callable

#: The example project's ASGI application.
APP = "djenga_tests.asgi:application"

Command = Callable[[str, int], list[str]]


def daphne(app: str, port: int) -> list[str]:
    from dev import demo_daphne_limits  # the demo's and compose file's daphne limits

    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            *demo_daphne_limits(), app]  # fmt: skip


def uvicorn(ws: str) -> Command:
    """uvicorn with ``--ws ws``; the limits match daphne's (64 KiB messages, ping 20 s)."""

    def command(app: str, port: int) -> list[str]:
        # No per-message deflate: it would compress every frame once per connection.
        return [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
                "--ws", ws, "--ws-max-size", "65536", "--ws-ping-interval", "20",
                "--ws-ping-timeout", "30", "--ws-per-message-deflate", "false",
                "--no-access-log", "--log-level", "warning", app]  # fmt: skip

    return command


def hypercorn(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "hypercorn", "-b", f"127.0.0.1:{port}", "-w", "1",
            "--websocket-ping-interval", "20", "--log-level", "WARNING", app]  # fmt: skip


def granian(app: str, port: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--loop", "asyncio",
            "--log-level", "warning", app]  # fmt: skip


#: Server name -> its command for (app, port).
SERVERS: dict[str, Command] = {
    "daphne": daphne,
    "uvicorn websockets-sansio": uvicorn("websockets-sansio"),
    "uvicorn wsproto": uvicorn("wsproto"),
    "hypercorn": hypercorn,
    "granian": granian,
}
