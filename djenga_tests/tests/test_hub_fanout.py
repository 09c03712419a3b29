"""The hub's fan-out (djenga.live.hub): each snapshot encoded and framed once, and a relay
that fell behind sends each task's newest snapshot only. Pure logic: no Redis is reached."""

from __future__ import annotations

import asyncio

from djenga.connection import redis_names
from djenga.live.hub import Frame, RelayHub
from djenga.live.transport import text_frame
from djenga.wire import WIRE_VERSION, decode, encode

URL = "redis://127.0.0.1:9/15"  # never connected to


def snapshot(task_id: str, seq: int) -> dict:
    return {"v": WIRE_VERSION, "seq": seq, "epoch": "e", "task_id": task_id, "state": "PROGRESS",
            "steps": [], "public": [], "private": {"result": 1}, "error": None}  # fmt: skip


def test_a_frame_is_encoded_and_framed_once_per_audience():
    frame = Frame(snapshot("t", 1))
    customer = frame.wire(staff=False)
    assert customer is frame.wire(staff=False)
    assert customer == text_frame(frame.text(staff=False).encode())
    assert decode(frame.text(staff=False))["private"] == {}
    assert decode(frame.text(staff=True))["private"] == {"result": 1}


async def test_messages_that_arrive_together_reach_watchers_as_the_newest_per_task():
    hub = RelayHub(URL, redis_names(URL))
    seen: dict[str, list[int]] = {"a": [], "b": [], "console": []}
    channel_a, channel_b = hub.names.channel("a"), hub.names.channel("b")
    hub._watchers = {
        channel_a: {lambda f: seen["a"].append(f.snapshot["seq"])},
        channel_b: {lambda f: seen["b"].append(f.snapshot["seq"])},
        hub.names.firehose(): {lambda f: seen["console"].append(f.snapshot["seq"])},
    }
    for seq in (1, 2, 3):  # one read of the pub/sub connection: no turn of the loop between
        hub._hold(channel_a, encode(snapshot("a", seq)).encode())
        hub._hold(hub.names.firehose(), encode(snapshot("a", seq)).encode())
    hub._hold(channel_b, encode(snapshot("b", 7)).encode())
    assert seen == {"a": [], "b": [], "console": []}
    await asyncio.sleep(0)
    assert seen == {"a": [3], "b": [7], "console": [1, 2, 3]}  # the console loses nothing
    assert hub.skipped == 2
    hub._hold(channel_a, encode(snapshot("a", 4)).encode())
    await asyncio.sleep(0)
    assert seen["a"] == [3, 4]
    await hub.close()


async def test_a_bad_message_is_dropped_and_the_rest_still_relayed():
    hub = RelayHub(URL, redis_names(URL))
    seen: list[int] = []
    channel = hub.names.channel("a")
    hub._watchers = {channel: {lambda f: seen.append(f.snapshot["seq"])}}
    hub._hold(hub.names.channel("b"), b"not json")
    hub._hold(channel, encode(snapshot("a", 5)).encode())
    await asyncio.sleep(0)
    assert seen == [5]
    await hub.close()
