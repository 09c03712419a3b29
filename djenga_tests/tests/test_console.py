"""The agents' console: staff-only pages and stream, timelines, groups over the relay."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from djenga import actions
from djenga.console.timeline import build_timeline
from djenga.live.auth import make_group_token
from djenga_tests import tasks
from djenga_tests.minions import Gru, Moon

from .live_helpers import ORIGIN, close_code, frames_until_close

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


def test_timeline_rows_from_events():
    events = [
        {"seq": 1, "type": "sent", "at": 10.0},
        {"seq": 2, "type": "started", "at": 10.5, "attempt": 1, "worker": "w@h"},
        {"seq": 3, "type": "step_started", "at": 11.0, "key": 1, "description": "Fly"},
        {"seq": 4, "type": "step_updated", "at": 11.5, "key": 1, "message": "up",
         "done": 3, "total": 10},
        {"seq": 5, "type": "step_ended", "at": 12.25, "key": 1},
        {"seq": 6, "type": "started", "at": 13.0, "attempt": 2},
        {"seq": 7, "type": "finished", "at": 14.0, "state": "FAILURE",
         "error": {"type": "ValueError", "message": "no"}},
    ]  # fmt: skip
    rows = build_timeline(events)
    assert [r.label for r in rows] == [
        "Sent to the queue", "Started", "Step started", "Update", "Step ended", "Started",
        "Finished",
    ]  # fmt: skip
    assert rows[1].text == "attempt 1 on w@h"
    assert rows[3].text == "up (3 of 10)"
    assert rows[4].duration == 1.25
    assert rows[5].attempt == 2 and rows[6].attempt == 2
    assert rows[6].text == "FAILURE: ValueError: no"
    assert rows[6].offset == 4.0


def test_the_started_row_of_a_retry_names_the_task_it_was_sent_again_from():
    events = [
        {"seq": 1, "type": "started", "at": 1.0, "attempt": 1, "worker": "w@h",
         "retry_of": "old-id"},
        {"seq": 2, "type": "action", "at": 2.0, "action": "retry", "by": "ann",
         "via": "console", "new_task_id": "newer-id"},
    ]  # fmt: skip
    started, action = build_timeline(events)
    assert started.text == "attempt 1 on w@h, a retry of old-id"
    assert (started.retry_of, started.new_task_id) == ("old-id", None)
    assert (action.retry_of, action.new_task_id) == (None, "newer-id")


def test_timeline_rows_of_sub_steps_know_their_depth():
    events = [
        {"seq": 1, "type": "step_started", "at": 1.0, "key": 1, "description": "Export"},
        {"seq": 2, "type": "step_started", "at": 1.1, "key": 1.1, "description": "Query",
         "parent": 1},
        {"seq": 3, "type": "step_started", "at": 1.2, "key": "1.1.a", "description": "Page",
         "parent": 1.1},
        {"seq": 4, "type": "step_updated", "at": 1.3, "key": "1.1.a", "message": "page 2"},
        {"seq": 5, "type": "step_ended", "at": 1.4, "key": "1.1.a"},
        {"seq": 6, "type": "step_ended", "at": 1.5, "key": 1.1},
        {"seq": 7, "type": "step_started", "at": 1.6, "key": 2, "description": "Mail"},
        {"seq": 8, "type": "finished", "at": 2.0, "state": "SUCCESS"},
    ]  # fmt: skip
    assert [(r.step, r.depth) for r in build_timeline(events)] == [
        (1, 0), (1.1, 1), ("1.1.a", 2), ("1.1.a", 2), ("1.1.a", 2), (1.1, 1), (2, 0), (None, 0),
    ]  # fmt: skip
    assert build_timeline(events)[2].as_dict()["depth"] == 2  # in the JSON rows too


@pytest.mark.django_db
def test_console_pages_are_staff_only(client):
    assert client.get("/djenga/console/").status_code == 302  # to the admin login
    client.force_login(User.objects.create_user("customer"))
    assert client.get("/djenga/console/").status_code == 302
    assert client.get("/djenga/console/tasks/abc/").status_code == 302


@pytest.mark.django_db
def test_task_page_shows_timeline_args_and_traceback(client):
    sent = tasks.fail_at_step.delay(2, "the moon bit back")
    sent.get(timeout=10, propagate=False)
    client.force_login(User.objects.create_user("agent", is_staff=True))
    for _ in range(100):  # the final snapshot lands right after the result
        page = client.get(f"/djenga/console/tasks/{sent.id}/").content.decode()
        if "Traceback" in page:
            break
    assert "gru.fail_at_step" in page
    assert "ValueError: the moon bit back" in page
    assert 'data-testid="traceback"' in page
    assert "Step started" in page and "Step ended" in page and "Finished" in page
    assert "[2, &#x27;the moon bit back&#x27;]" in page  # the args repr, for staff
    events = client.get(f"/djenga/console/tasks/{sent.id}/events/?after=0").json()["rows"]
    assert [r["label"] for r in events][:2] == ["Sent to the queue", "Started"]
    later = client.get(f"/djenga/console/tasks/{sent.id}/events/?after=3").json()["rows"]
    assert all(r["seq"] > 3 for r in later)
    # An action on the ended task is logged under its last seq: `shown` counts the rows
    # of that seq the page has, and the view answers the ones beyond them.
    last = events[-1]["seq"]
    shown = sum(r["seq"] == last for r in events)
    actions.retry(sent.id, by="agent", via="console")
    url = f"/djenga/console/tasks/{sent.id}/events/?after={last}&shown="
    (row,) = client.get(url + str(shown)).json()["rows"]
    assert (row["seq"], row["kind"], row["new_task_id"] is not None) == (last, "action", True)
    assert client.get(url + str(shown + 1)).json() == {"rows": []}


@pytest.mark.django_db
def test_admin_index_links_to_the_console(client):
    client.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
    assert 'href="/djenga/console/"' in client.get("/admin/").content.decode()


async def staff_socket(path: str) -> WebsocketCommunicator:
    """A WebSocket with a logged-in staff user's session cookie."""
    from django.test import AsyncClient

    from djenga_tests.asgi import application

    user = await sync_to_async(User.objects.create_user)("console-agent", is_staff=True)
    web = AsyncClient()
    await web.aforce_login(user)
    cookie = f"sessionid={web.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_console_stream_lists_recent_then_streams_changes():
    before = tasks.steal_the_moon.delay(Gru(), Moon())
    await sync_to_async(before.get)(timeout=10)
    socket = await staff_socket("/ws/djenga/console/")
    first = await socket.receive_json_from(timeout=5)
    assert first["type"] == "tasks" and first["reset"] is True
    assert before.id in [t["task_id"] for t in first["tasks"]]
    sent = tasks.wait_in_step.delay(0.3)
    seen: dict[str, dict] = {}
    while seen.get(sent.id, {}).get("state") != "SUCCESS":
        batch = await socket.receive_json_from(timeout=5)
        for task in batch["tasks"]:
            seen[task["task_id"]] = task
    assert seen[sent.id]["private"]["worker"]  # staff see the worker
    await socket.disconnect()


async def test_console_stream_refuses_non_staff():
    socket = await open_socket_path("/ws/djenga/console/")
    assert await close_code(socket) == 4403


async def open_socket_path(path: str) -> WebsocketCommunicator:
    from djenga_tests.asgi import application

    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


async def test_group_relay_sends_one_overall_snapshot_until_all_end():
    from celery import group

    result = await sync_to_async(
        lambda: group(tasks.wait_in_step.s(0.1 * i) for i in range(1, 4)).apply_async()
    )()
    ids = [r.id for r in result.results]
    socket = await open_socket_path(f"/ws/djenga/groups/?token={make_group_token(ids)}")
    frames, code = await frames_until_close(socket)
    assert code == 1000
    final = frames[-1]
    assert final["type"] == "group" and final["state"] == "SUCCESS" and final["total"] == 3
    assert final["percent"] == 100.0 and final["counts"] == {"SUCCESS": 3}
    assert [t["task_id"] for t in final["tasks"]] == ids
    assert [f["seq"] for f in frames] == sorted(f["seq"] for f in frames)
    assert all(t["private"] == {} for t in final["tasks"])  # customers' view


async def test_group_token_is_required():
    socket = await open_socket_path("/ws/djenga/groups/?token=forged")
    assert await close_code(socket) == 4403


def test_group_polling_view_and_detailed_group_result(client):
    from celery import group

    from djenga.celery.results import DetailedGroupResult

    result = group([tasks.steal_the_moon.s(Gru(), Moon()), tasks.fail_at_step.s(1)]).apply_async()
    seen = list(DetailedGroupResult(result).follow(timeout=15))
    assert seen[-1]["state"] == "FAILURE" and seen[-1]["counts"] == {"SUCCESS": 1, "FAILURE": 1}
    token = make_group_token([r.id for r in result.results])
    polled = client.get(f"/djenga/groups/?token={token}").json()
    assert polled["state"] == "FAILURE" and polled["percent"] == seen[-1]["percent"]
    assert polled["tasks"][1]["error"] is None  # customers do not see the error
    assert client.get("/djenga/groups/?token=nope").status_code == 403
    json.dumps(polled)


def test_a_long_console_list_is_split_into_frames_within_the_limit():
    """A console of 200 large tasks would exceed daphne's --websocket-max-message-size in
    one frame (autobahn refuses to send it): it goes out in several, in order."""
    import json as _json

    from djenga.console.consumers import _APPEND_OPEN, _RESET_OPEN, MAX_FRAME_BYTES, frames_of

    texts = [_json.dumps({"task_id": f"t{i}", "pad": "x" * 900}) for i in range(200)]
    frames = frames_of(_RESET_OPEN, texts, _APPEND_OPEN)
    assert len(frames) > 1
    assert all(len(frame.encode()) <= MAX_FRAME_BYTES for frame in frames)
    decoded = [_json.loads(frame) for frame in frames]
    assert decoded[0]["reset"] is True and all(d.get("append") for d in decoded[1:])
    assert [t["task_id"] for d in decoded for t in d["tasks"]] == [f"t{i}" for i in range(200)]
    (single,) = frames_of(_RESET_OPEN, [], _APPEND_OPEN)
    assert _json.loads(single)["tasks"] == []
