"""TaskProgressConsumer with a real Redis, a real worker and Channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from djenga.celery.detail import TaskDetail
from djenga.celery.results import AsyncDetailedResult
from djenga.live.auth import make_token
from djenga.wire import WIRE_VERSION
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

from .live_helpers import close_code, frames_until_close, open_socket, ws_path

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


async def wait_for_state(task_id: str, *states: str, timeout: float = 10) -> dict:
    result = AsyncDetailedResult(task_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        details = await sync_to_async(result.details)()
        if details["state"] in states:
            return details
        await asyncio.sleep(0.02)
    raise AssertionError(f"{task_id} never reached {states}")


async def test_join_mid_task_gets_the_current_snapshot_then_the_rest_in_order():
    sent = tasks.wait_in_step.delay(0.6)
    current = await wait_for_state(sent.id, "PROGRESS")
    socket = await open_socket(sent.id, token=make_token(sent.id))
    frames, code = await frames_until_close(socket)
    assert code == 1000
    assert frames[0]["seq"] >= current["seq"]
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert frames[-1]["state"] == "SUCCESS"
    assert [s["state"] for s in frames[-1]["steps"]] == ["done", "done"]


async def test_final_state_is_exact():
    sent = tasks.steal_the_moon_declared.delay(Gru(pace=0.05), Moon())
    socket = await open_socket(sent.id, token=make_token(sent.id))
    frames, code = await frames_until_close(socket)
    stored = await sync_to_async(AsyncDetailedResult(sent.id).details)()
    final = frames[-1]
    assert code == 1000
    assert final["seq"] == stored["seq"] and final["state"] == "SUCCESS"
    assert final["steps"] == stored["steps"]
    assert final["private"] == {} and final["error"] is None  # customers' view


async def test_a_finished_task_sends_its_snapshot_and_closes():
    sent = tasks.plain.delay(1)  # not a detail task: djenga knows nothing of it
    await sync_to_async(sent.get)(timeout=10)
    socket = await open_socket(sent.id, token=make_token(sent.id), stay=None)
    output = await socket.receive_json_from(timeout=5)
    assert output["state"] == "PENDING" and output["steps"] == []
    await socket.disconnect()


async def test_resume_skips_what_the_client_has():
    sent = tasks.steal_the_moon.delay(Gru(), Moon())
    done = await wait_for_state(sent.id, "SUCCESS")
    socket = await open_socket(
        sent.id, token=make_token(sent.id), seq=done["seq"], epoch=done["epoch"], stay=1
    )
    recovery = await socket.receive_json_from(timeout=5)
    assert recovery == {
        "v": WIRE_VERSION, "type": "recovery", "recovered": True, "task_id": sent.id,
        "epoch": done["epoch"],
        "events": [],
    }  # fmt: skip
    assert await socket.receive_nothing(timeout=0.3)  # nothing newer than what it holds
    await socket.send_json_to({"type": "resume", "seq": 3, "epoch": done["epoch"]})
    again = await socket.receive_json_from(timeout=5)
    assert again["recovered"] is True
    seqs = [event["seq"] for event in again["events"]]
    assert seqs[0] == 4 and seqs[-1] == done["seq"] and seqs == sorted(seqs)
    assert all("worker" not in event for event in again["events"])  # customers' view
    snapshot = await socket.receive_json_from(timeout=5)
    assert snapshot["seq"] == done["seq"] and snapshot["state"] == "SUCCESS"
    await socket.disconnect()


async def test_another_epoch_is_not_recovered_and_gets_a_fresh_snapshot():
    sent = tasks.steal_the_moon.delay(Gru(), Moon())
    done = await wait_for_state(sent.id, "SUCCESS")
    socket = await open_socket(sent.id, token=make_token(sent.id), seq=99, epoch="gone")
    recovery = await socket.receive_json_from(timeout=5)
    assert (recovery["type"], recovery["recovered"], recovery["events"]) == ("recovery", False, [])
    snapshot = await socket.receive_json_from(timeout=5)
    assert snapshot["seq"] == done["seq"] and snapshot["epoch"] == done["epoch"]
    assert await close_code(socket) == 1000


async def test_oversized_frames_close_with_4413():
    task_id = "too-large"
    socket = await open_socket(task_id, token=make_token(task_id))
    await socket.receive_json_from(timeout=5)
    await socket.send_to(text_data=json.dumps({"type": "resume", "pad": "x" * 2000}))
    assert await close_code(socket) == 4413


async def test_too_many_frames_close_with_4429():
    task_id = "too-chatty"
    socket = await open_socket(task_id, token=make_token(task_id), stay=1)
    await socket.receive_json_from(timeout=5)
    for _ in range(21):
        await socket.send_json_to({"type": "resume", "seq": 0})
    for _ in range(100):  # each resume is answered (recovery + snapshot) until the close
        output = await socket.receive_output(5)
        if output["type"] == "websocket.close":
            assert output["code"] == 4429
            return
    raise AssertionError("never closed")


@pytest.mark.parametrize("token_kind", ["missing", "garbage", "other-task", "expired", "tampered"])
async def test_bad_tokens_are_refused_with_4403(token_kind, monkeypatch):
    task_id = "a-task-nobody-may-see"
    token = {
        "missing": None,
        "garbage": "not-a-token",
        "other-task": make_token("another-task"),
        "tampered": make_token(task_id)[:-2] + "xx",
    }.get(token_kind)
    if token_kind == "expired":
        import django.core.signing

        real = time.time
        monkeypatch.setattr(django.core.signing.time, "time", lambda: real() - 2 * 86400)
        token = make_token(task_id)
        monkeypatch.setattr(django.core.signing.time, "time", real)
    socket = await open_socket(task_id, token=token)
    assert await close_code(socket) == 4403


@pytest.mark.parametrize(
    "frame",
    [
        {"text_data": "hello"},
        {"bytes_data": b"\x00\x01"},
        {"text_data": json.dumps({"type": "subscribe", "task": "*"})},
        {"text_data": json.dumps({"type": "resume", "seq": -1})},
        {"text_data": "[" * 500},
    ],
)
async def test_bad_frames_close_with_4400(frame):
    task_id = "bad-frames"
    socket = await open_socket(task_id, token=make_token(task_id))
    await socket.receive_json_from(timeout=5)  # the (PENDING) snapshot
    await socket.send_to(**frame)
    assert await close_code(socket) == 4400


async def test_cross_origin_is_refused():
    from djenga_tests.asgi import application

    task_id = "cross-origin"
    communicator = WebsocketCommunicator(
        application,
        ws_path(task_id, token=make_token(task_id)),
        headers=[(b"origin", b"http://evil.example")],
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


async def test_idle_connection_is_still_alive_after_15_seconds(celery_app):
    task_id = "idle-for-15-seconds"
    socket = await open_socket(task_id, token=make_token(task_id))
    first = await socket.receive_json_from(timeout=5)
    assert first["state"] == "PENDING"
    await asyncio.sleep(15.5)
    detail = TaskDetail(task_id, "idle", [(1, "Wake up")])
    detail.start_step(1)
    await sync_to_async(celery_app.backend.publish_detail)(detail)
    woke = await socket.receive_json_from(timeout=5)
    assert woke["steps"][0]["state"] == "running"
    await socket.disconnect()


async def test_customers_never_see_the_traceback():
    sent = tasks.fail_at_step.delay(1, "secret internals")
    socket = await open_socket(sent.id, token=make_token(sent.id))
    frames, _code = await frames_until_close(socket)
    final = frames[-1]
    assert final["state"] == "FAILURE"
    assert final["error"] is None and final["private"] == {}
    assert "secret internals" not in json.dumps(frames)


async def test_a_task_may_make_its_error_public():
    sent = tasks.public_failure.delay()
    socket = await open_socket(sent.id, token=make_token(sent.id))
    frames, _code = await frames_until_close(socket)
    assert frames[-1]["error"] == {
        "type": "RuntimeError",
        "message": "The moon is out of stock, please try tomorrow.",
    }
    assert "traceback" not in frames[-1]["private"]


async def test_many_watchers_share_one_subscription(celery_app):
    from djenga.live.hub import get_hub

    task_id = "shared-subscription"
    sockets = [await open_socket(task_id, token=make_token(task_id)) for _ in range(20)]
    for socket in sockets:
        await socket.receive_json_from(timeout=5)
    hub = get_hub()
    assert hub.watchers_of(task_id) == 20
    detail = TaskDetail(task_id, "fan-out", [(1, "Everyone hears this")])
    detail.start_step(1)
    await sync_to_async(celery_app.backend.publish_detail)(detail)
    for socket in sockets:
        assert (await socket.receive_json_from(timeout=5))["steps"][0]["state"] == "running"
    for socket in sockets:
        await socket.disconnect()
    assert hub.watchers_of(task_id) == 0
