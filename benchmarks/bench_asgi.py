"""ASGI app for live_latency.py and servers.py: the example project (djenga_tests.asgi) as
it is, plus a channels-redis group relay at ws/bench/group/<name>/ to compare djenga's relay
against. ``DJENGA_BENCH_SEND`` picks djenga's send path under daphne, to measure the old
ones in the same run: ``asgi`` (every frame through Channels' send), ``framed`` (one frame
built per snapshot, written by autobahn), ``direct`` (the default: written at once)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")

from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import re_path

from djenga.live import transport
from djenga.live.consumers import TaskProgressConsumer
from djenga_tests.asgi import application as project

_SEND = os.environ.get("DJENGA_BENCH_SEND", "direct")
if _SEND not in ("asgi", "framed", "direct"):
    raise ValueError(f"DJENGA_BENCH_SEND={_SEND!r}: asgi, framed or direct")
TaskProgressConsumer.direct_send = _SEND != "asgi"
transport.WRITE_NOW = _SEND == "direct"


class GroupRelayConsumer(AsyncWebsocketConsumer):
    """Joins group ``bench.<name>`` and forwards each ``{"type": "relay", "text": …}``."""

    async def connect(self) -> None:
        self.group = "bench." + self.scope["url_route"]["kwargs"]["name"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def relay(self, message: dict) -> None:
        await self.send(text_data=message["text"])


# The same middleware as the project's djenga route, so both relays pay for it alike.
bench_websocket = AllowedHostsOriginValidator(
    AuthMiddlewareStack(
        URLRouter([re_path(r"^ws/bench/group/(?P<name>[\w.-]+)/$", GroupRelayConsumer.as_asgi())])
    )
)


async def application(scope, receive, send):
    if scope["type"] == "websocket" and scope["path"].startswith("/ws/bench/"):
        return await bench_websocket(scope, receive, send)
    return await project(scope, receive, send)
