"""Several web processes on one listening socket (issue 13): each has its own hub, so
spreading watchers over them just works, and the death of one costs its clients only a
reconnect to another.

Real parts only: the test makes the listening socket and hands it to two daphne
processes (``daphne --fd N``, as supervisord's ``fcgi-program`` does with ``--fd 0``),
clients are real websockets, and every process is started and stopped by its pid.
Figures are printed (``pytest -s``); nothing asserts on speed.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from urllib.parse import urlencode

import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from djenga.connection import redis_names
from djenga.live.auth import make_token

from .stack import ORIGIN, snapshots
from .test_watchers import Browser
from .web import SharedSocketDaphne, listening_socket

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


def task_url(port: int, task_id: str, **params) -> str:
    query = urlencode({"token": make_token(task_id), **params})
    return f"ws://127.0.0.1:{port}/ws/djenga/tasks/{task_id}/?{query}"


def subscribers(stack, task_id: str) -> int:
    """How many processes subscribe to the task's channel (one per hub that relays it)."""
    client = redis.Redis.from_url(stack.url)
    try:
        channel = redis_names(stack.url).channel(task_id)
        return dict(client.pubsub_numsub(channel))[channel.encode()]
    finally:
        client.close()


async def open_on(process: SharedSocketDaphne, others, urls, **connect_options) -> list:
    """Connect to every url with the other processes paused, so ``process`` accepts all."""
    for other in others:
        await asyncio.to_thread(other.pause)
    try:
        sockets = [await connect(url, origin=ORIGIN, **connect_options) for url in urls]
        for s in sockets:  # the join is done: the first message came (snapshot, or list)
            first = json.loads(await asyncio.wait_for(s.recv(), 20))
            assert "state" in first or first.get("reset") is True, first
        return sockets
    finally:
        for other in others:
            await asyncio.to_thread(other.resume)


async def until_closed(s) -> tuple[list[dict], int | None]:
    """Every message until the server closes the socket, and its close code."""
    messages = []
    try:
        async with asyncio.timeout(60):
            async for text in s:
                messages.append(json.loads(text))
    except ConnectionClosed:
        pass
    return messages, s.close_code


async def test_two_web_processes_share_one_socket_and_one_dies_mid_task(stack):
    stack.web.stop()  # this scenario's web tier: two daphne on one socket made here
    listener = listening_socket()
    port = listener.getsockname()[1]
    a = SharedSocketDaphne(stack.env, listener.fileno(), "web-a")
    b = SharedSocketDaphne(stack.env, listener.fileno(), "web-b")
    try:
        await asyncio.to_thread(a.start)
        await asyncio.to_thread(b.start)
        await spread_watchers_end_exact(stack, port, a, b)
        await survivors_recover_after_a_kill(stack, port, a, b)
    finally:
        for process in (a, b):
            if process.process is not None:
                await asyncio.to_thread(process.resume)
                await asyncio.to_thread(process.stop)
        listener.close()


async def spread_watchers_end_exact(stack, port, a, b) -> None:
    """Clients on both processes end at their task's exact final state, and a console on
    one process sees the tasks whose only watchers are on the other."""
    both, only_b = f"both-{uuid.uuid4()}", f"only-b-{uuid.uuid4()}"
    browser = await asyncio.to_thread(Browser(f"http://127.0.0.1:{port}").log_in)
    (console,) = await open_on(
        a, [b], [f"ws://127.0.0.1:{port}/ws/djenga/console/"],
        additional_headers=browser.headers,
    )  # fmt: skip
    on_a = await open_on(a, [b], [task_url(port, both)] * 4)
    on_b = await open_on(b, [a], [task_url(port, both)] * 4 + [task_url(port, only_b)] * 4)
    anywhere = [await connect(task_url(port, both), origin=ORIGIN) for _ in range(6)]
    for s in anywhere:
        await asyncio.wait_for(s.recv(), 20)
    # Each hub subscribed on its own: both processes to ``both``, only b to ``only_b``.
    assert subscribers(stack, both) == 2
    assert subscribers(stack, only_b) == 1

    console_seen: dict[str, dict] = {}

    async def read_console() -> None:
        while True:
            batch = json.loads(await console.recv())
            for snapshot in batch["tasks"]:
                held = console_seen.get(snapshot["task_id"])
                if held is None or snapshot["seq"] >= held["seq"]:
                    console_seen[snapshot["task_id"]] = snapshot

    reader = asyncio.create_task(read_console())
    started = time.monotonic()
    stack.send("gru.wait_in_step", 1.5, task_id=both)
    stack.send("gru.wait_in_step", 1.5, task_id=only_b)
    results = await asyncio.gather(*(until_closed(s) for s in on_a + on_b + anywhere))
    took = time.monotonic() - started
    finals = {t: stack.details(t) for t in (both, only_b)}
    for messages, code in results:
        assert code == 1000 and snapshots(messages), (code, messages)
        last = snapshots(messages)[-1]
        assert last["state"] == "SUCCESS"
        assert last["seq"] == finals[last["task_id"]]["seq"], (last["task_id"], last["seq"])
    # The console on a: every change of the task only b relays, to its final state.
    deadline = time.monotonic() + 30
    while console_seen.get(only_b, {}).get("seq") != finals[only_b]["seq"]:
        assert time.monotonic() < deadline, f"the console on a saw {console_seen.get(only_b)}"
        await asyncio.sleep(0.1)
    assert console_seen[only_b]["state"] == "SUCCESS"
    reader.cancel()
    await console.close()
    print(
        f"two web processes on one socket: {len(on_a)} clients on a, {len(on_b)} on b, "
        f"{len(anywhere)} wherever the kernel put them; every final state exact "
        f"{took:.1f} s after sending; the console on a saw {only_b[:6]}… (watched on b "
        f"only) to seq {console_seen[only_b]['seq']}"
    )


async def survivors_recover_after_a_kill(stack, port, a, b) -> None:
    """b is SIGKILLed mid-task: its clients reconnect (to a, the one left) with what they
    hold, get ``recovered: true`` and the exact final state; a's clients see nothing."""
    task_id = f"kill-{uuid.uuid4()}"
    url = task_url(port, task_id)
    on_a = await open_on(a, [b], [url] * 4)
    on_b = await open_on(b, [a], [url] * 4)
    stack.send("gru.wait_in_step", 6, task_id=task_id)
    killed_at: list[float] = []
    progressing = asyncio.Event()
    seen_progress: set[int] = set()

    async def follow(index: int, s) -> dict:
        """Read to the end, reconnecting with (epoch, seq) after a network close."""
        frames, recoveries, reconnects = [], [], []
        while True:
            try:
                async for text in s:
                    message = json.loads(text)
                    if message.get("type") == "recovery":
                        recoveries.append((message, time.monotonic()))
                        continue
                    frames.append(message)
                    if message["state"] == "PROGRESS":
                        seen_progress.add(index)
                        if len(seen_progress) == len(on_a) + len(on_b):
                            progressing.set()
            except ConnectionClosed:
                pass
            if s.close_code == 1000:
                return {"frames": frames, "recoveries": recoveries, "reconnects": reconnects}
            held = frames[-1]
            reconnects.append(held["seq"])
            await asyncio.sleep(0.3)  # like the widget's first backoff: updates go by
            s = await connect_again(url, held)

    async def connect_again(url: str, held: dict):
        deadline = time.monotonic() + 30
        while True:
            try:
                return await connect(
                    f"{url}&{urlencode({'seq': held['seq'], 'epoch': held['epoch']})}",
                    origin=ORIGIN, open_timeout=10,
                )  # fmt: skip
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    followers = [asyncio.create_task(follow(i, s)) for i, s in enumerate(on_a + on_b)]
    await asyncio.wait_for(progressing.wait(), 30)
    b_pid = b.pid
    await asyncio.to_thread(b.kill)  # SIGKILL by pid, mid-task
    killed_at.append(time.monotonic())
    results = await asyncio.gather(*followers)
    final = stack.details(task_id)
    assert final["state"] == "SUCCESS"
    for result in results:
        assert result["frames"][-1]["seq"] == final["seq"]
        assert result["frames"][-1]["state"] == "SUCCESS"
    a_results, b_results = results[: len(on_a)], results[len(on_a) :]
    for result in a_results:  # the surviving process's clients never noticed
        assert result["reconnects"] == [] and result["recoveries"] == []
    recovered_after, events = [], []
    for result in b_results:
        assert len(result["reconnects"]) == 1, result["reconnects"]
        ((recovery, at),) = result["recoveries"]
        assert recovery["recovered"] is True, recovery
        # Exactly the events after what it held, none skipped (usually a few: the task
        # publishes every 50 ms; none if no update came while it was away).
        held = result["reconnects"][0]
        missed = [event["seq"] for event in recovery["events"]]
        assert missed == list(range(held + 1, held + 1 + len(missed))), (held, missed)
        events.append(len(missed))
        recovered_after.append(at - killed_at[0])
    assert a.process is not None and a.process.poll() is None
    # b's subscription died with it; a drops its own once its last watcher has left.
    deadline = time.monotonic() + 20
    while subscribers(stack, task_id):
        assert time.monotonic() < deadline, "a kept the finished task's channel"
        await asyncio.sleep(0.1)
    print(
        f"b (pid {b_pid}) SIGKILLed mid-task: its {len(b_results)} clients reconnected to a "
        f"and recovered (recovered: true, {min(events)}-{max(events)} events each) "
        f"{min(recovered_after) * 1000:.0f}-{max(recovered_after) * 1000:.0f} ms after the "
        "kill (0.3 s of it waiting before reconnecting); every final state exact "
        f"(seq {final['seq']}); a's {len(a_results)} clients never reconnected"
    )
