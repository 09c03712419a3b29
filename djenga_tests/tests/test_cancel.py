"""Cancel and the actions, through a real worker, Redis, websocket and HTTP (docs/api.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from djenga import actions
from djenga.celery.results import AsyncDetailedResult
from djenga.console.timeline import build_timeline
from djenga.live.auth import Viewer, authorise, make_token
from djenga.wire import WIRE_VERSION, for_viewer
from djenga_tests import tasks

from .fixtures import ROOT
from .live_helpers import close_code, open_socket, wait_for

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


def running_in_step(result, key, timeout=20.0):
    return wait_for(
        lambda: (d := result.details())["current"] == key and d["state"] == "PROGRESS" and d,
        timeout,
    )


def final(result, timeout=20.0):
    return wait_for(
        lambda: (d := result.details())["state"] in ("SUCCESS", "FAILURE", "REVOKED") and d,
        timeout,
    )


# -- the permission rule, pure ------------------------------------------------------------


@pytest.mark.parametrize(
    ("staff", "can_cancel", "action", "allowed"),
    [
        (True, True, "cancel", True),
        (True, True, "terminate", True),
        (True, True, "retry", True),
        (False, True, "cancel", True),
        (False, True, "revoke", False),
        (False, True, "terminate", False),
        (False, True, "retry", False),
        (False, False, "cancel", False),
        (True, True, "explode", False),
    ],
)
def test_who_may_take_which_action(staff, can_cancel, action, allowed):
    assert actions.may(staff, can_cancel, action) is allowed
    assert Viewer(staff=staff, can_cancel=can_cancel).may(action) is allowed


def test_only_a_cancel_token_grants_cancel():
    from django.contrib.auth.models import AnonymousUser

    anonymous = AnonymousUser()
    assert authorise(anonymous, make_token("t-1"), "t-1") == Viewer(staff=False)
    assert authorise(anonymous, make_token("t-1", cancel=True), "t-1") == Viewer(
        staff=False, can_cancel=True
    )
    assert authorise(anonymous, make_token("t-2", cancel=True), "t-1") is None
    forged = make_token("t-1")[:-3] + "abc"
    assert authorise(anonymous, forged, "t-1") is None


def test_customers_see_that_it_was_cancelled_not_who():
    snapshot = {
        "state": "REVOKED",
        "cancel": {"by": "alice", "staff": True, "at": 1.0, "via": "console"},
        "error": {"type": "TaskRevokedError", "message": "cancelled by alice at …"},
        "public": ["error"],
        "private": {},
    }
    customer = for_viewer(snapshot, staff=False)
    assert customer["cancel"] == {"at": 1.0}
    assert customer["error"] == {"type": "TaskRevokedError", "message": "cancelled"}
    assert for_viewer(snapshot, staff=True)["cancel"]["by"] == "alice"


# -- cooperative cancel through a real worker ---------------------------------------------


def test_cancel_stops_a_running_task_at_its_next_step_helper():
    sent = tasks.export_rows.delay(200, 30.0)
    result = AsyncDetailedResult(sent.id)
    running_in_step(result, 2)
    assert result.cancel(by="alice") == actions.REQUESTED
    details = final(result)
    assert details["state"] == "REVOKED"
    assert details["cancel"]["by"] == "alice"
    assert details["error"]["type"] == "TaskRevokedError"
    assert details["error"]["message"].startswith("cancelled by alice at ")
    steps = {step["key"]: step["state"] for step in details["steps"]}
    assert steps == {1: "done", 2: "failed", 3: "pending"}  # stopped within step 2
    assert sent.state == "REVOKED"  # Celery's own result agrees
    kinds = [(e["type"], e.get("action"), e.get("by")) for e in result.backend.get_events(sent.id)]
    assert ("action", "cancel", "alice") in kinds
    assert kinds[-1][0] == "finished"


def test_a_cancelled_nested_task_ends_revoked_with_its_running_sub_steps_failed():
    """The cancel is seen by a helper inside `with self.step()` blocks: the blocks fail
    their steps on the way out, and the final snapshot stays REVOKED, never PROGRESS."""
    name = f"nested-{uuid.uuid4()}"
    sent = tasks.nested_export.delay(rows=2, gate_name=name)  # waits in 1.2 for the gate
    result = AsyncDetailedResult(sent.id)
    wait_for(lambda: result.details()["current_path"] == [1, 1.2])
    assert result.cancel(by="alice") == actions.REQUESTED
    tasks.gate(name).set()  # the next helper (the "zip" sub-step's start) sees the request
    details = final(result)
    assert details["state"] == "REVOKED" and sent.state == "REVOKED"
    (export, mail) = details["steps"]
    assert (export["state"], mail["state"]) == ("failed", "pending")
    query, write = export["children"]
    assert (query["state"], write["state"]) == ("done", "failed")
    assert write["duration"] is not None and export["duration"] >= write["duration"]
    time.sleep(0.5)  # nothing published after the final snapshot turns it back
    assert result.details()["state"] == "REVOKED"


def test_a_task_may_ask_itself():
    name = f"ask-{uuid.uuid4()}"
    sent = tasks.checks_itself.delay(name)
    result = AsyncDetailedResult(sent.id)
    running_in_step(result, 1)
    result.cancel(by="bob")
    tasks.gate(name).set()
    assert sent.get(timeout=20) == "saw it"


def test_a_task_cancelled_while_queued_never_starts(celery_app):
    # The request alone, without Celery's revoke: a worker that never heard of the revoke
    # (restarted meanwhile, its revoked set is in memory only) still never starts it.
    sent = tasks.export_rows.apply_async((5, 0.1), countdown=2)
    store = celery_app.backend.store
    request = {"by": "carol", "staff": True, "at": time.time(), "via": "test"}
    store.act(sent.id, {"type": "action", "at": time.time(), "action": "cancel"}, cancel=request)
    details = final(AsyncDetailedResult(sent.id))
    assert details["state"] == "REVOKED"
    assert details["started_at"] is None
    assert [s["state"] for s in details["steps"]] == ["pending"] * 3
    time.sleep(0.5)
    assert sent.id not in tasks.BODIES_RUN


def test_cancel_of_a_queued_task_also_revokes_it_through_celery():
    sent = tasks.export_rows.apply_async((5, 0.1), countdown=2)
    assert AsyncDetailedResult(sent.id).cancel(by="dave") == actions.QUEUED
    details = final(AsyncDetailedResult(sent.id))
    assert details["state"] == "REVOKED" and details["cancel"]["by"] == "dave"
    assert sent.id not in tasks.BODIES_RUN


def test_cancel_of_a_finished_task_does_nothing():
    sent = tasks.export_rows.delay(2, 0.0)
    sent.get(timeout=20)
    result = AsyncDetailedResult(sent.id)
    final(result)
    assert result.cancel() == actions.FINAL
    assert result.details()["state"] == "SUCCESS" and "cancel" not in result.details()


def test_manage_py_cancel_task(capsys):
    sent = tasks.export_rows.delay(200, 30.0)
    result = AsyncDetailedResult(sent.id)
    running_in_step(result, 2)
    call_command("cancel_task", sent.id, "--by", "ops")
    assert "will stop at its next step" in capsys.readouterr().out
    assert final(result)["cancel"]["by"] == "ops"


def test_the_timeline_says_who_cancelled_and_when(celery_app):
    sent = tasks.export_rows.delay(200, 30.0)
    result = AsyncDetailedResult(sent.id)
    running_in_step(result, 2)
    result.cancel(by="erin")
    final(result)
    rows = build_timeline(celery_app.backend.get_events(sent.id))
    action = next(row for row in rows if row.kind == "action")
    assert action.label == "Action" and action.text == "cancel by erin (python)"
    assert action.clock
    assert rows[-1].kind == "finished" and "REVOKED" in rows[-1].text


# -- the POST --------------------------------------------------------------------------


def test_post_without_permission_is_403_whether_the_task_exists_or_not():
    sent = tasks.export_rows.delay(200, 30.0)
    running_in_step(AsyncDetailedResult(sent.id), 2)
    client = Client()
    answers = [
        client.post(f"/djenga/tasks/{task_id}/actions/cancel/", {"token": token} if token else {})
        for task_id, token in [
            (sent.id, None),
            (sent.id, make_token(sent.id)),  # watch only
            (sent.id, make_token(sent.id, cancel=True)[:-2] + "xx"),  # forged
            ("no-such-task", make_token(sent.id, cancel=True)),  # another task's
            ("no-such-task", None),
        ]
    ]
    assert [(a.status_code, a.json()) for a in answers] == [(403, {"error": "forbidden"})] * 5
    terminate = client.post(
        f"/djenga/tasks/{sent.id}/actions/terminate/",
        {"token": make_token(sent.id, cancel=True)},
    )
    assert terminate.status_code == 403  # customers only ever cancel
    AsyncDetailedResult(sent.id).cancel()


def test_post_is_csrf_protected_and_cancels_with_a_cancel_token():
    sent = tasks.export_rows.delay(200, 30.0)
    result = AsyncDetailedResult(sent.id)
    running_in_step(result, 2)
    client = Client(enforce_csrf_checks=True)
    url = f"/djenga/tasks/{sent.id}/actions/cancel/"
    token = make_token(sent.id, cancel=True)
    assert client.post(url, {"token": token}).status_code == 403  # no CSRF token
    client.get("/")  # the demo page sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    answer = client.post(url, {"token": token}, HTTP_X_CSRFTOKEN=csrf)
    assert answer.status_code == 200
    assert answer.json() == {
        "v": WIRE_VERSION, "type": "action", "action": "cancel", "task_id": sent.id, "ok": True,
        "outcome": "requested",
    }  # fmt: skip
    details = final(result)
    assert details["state"] == "REVOKED" and details["cancel"]["by"] == "customer"


# -- the websocket action ------------------------------------------------------------------


async def test_socket_action_without_permission_is_4403():
    for task_id in ("no-such-task-at-all", "another-one"):
        socket = await open_socket(task_id, token=make_token(task_id))
        await socket.receive_json_from(timeout=5)
        await socket.send_to(text_data=json.dumps({"type": "action", "action": "cancel"}))
        assert await close_code(socket) == 4403
    socket = await open_socket("t-x", token=make_token("t-x", cancel=True))
    await socket.receive_json_from(timeout=5)
    await socket.send_to(text_data=json.dumps({"type": "action", "action": "terminate"}))
    assert await close_code(socket) == 4403


async def test_socket_action_with_a_cancel_token_cancels():
    sent = await sync_to_async(tasks.export_rows.delay)(200, 30.0)
    result = AsyncDetailedResult(sent.id)
    await sync_to_async(running_in_step)(result, 2)
    socket = await open_socket(sent.id, token=make_token(sent.id, cancel=True))
    await socket.send_to(text_data=json.dumps({"type": "action", "action": "cancel"}))
    seen = []
    while True:
        output = await socket.receive_output(20)
        if output["type"] == "websocket.close":
            break
        seen.append(json.loads(output["text"]))
    answers = [frame for frame in seen if frame["type"] == "action"]
    assert answers == [
        {"v": WIRE_VERSION, "type": "action", "action": "cancel", "task_id": sent.id, "ok": True,
         "outcome": "requested"},
    ]  # fmt: skip
    snapshots = [frame for frame in seen if frame["type"] == "snapshot"]
    assert snapshots[-1]["state"] == "REVOKED"
    assert snapshots[-1]["cancel"] == {"at": snapshots[-1]["cancel"]["at"]}  # not who
    assert any(s["state"] == "PROGRESS" and "cancel" in s for s in snapshots)  # "Cancelling…"


async def test_bad_action_frames_close_with_4400():
    socket = await open_socket("t-y", token=make_token("t-y", cancel=True))
    await socket.receive_json_from(timeout=5)
    await socket.send_to(text_data=json.dumps({"type": "action", "action": "explode"}))
    assert await close_code(socket) == 4400


# -- staff actions ---------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_revoke_of_a_queued_task_and_the_timeline_names_them():
    client = Client()
    client.force_login(User.objects.create_user("agent", is_staff=True))
    sent = tasks.export_rows.apply_async((5, 0.1), countdown=2)
    answer = client.post(f"/djenga/tasks/{sent.id}/actions/revoke/")
    assert answer.status_code == 200 and answer.json()["outcome"] == "sent"
    details = final(AsyncDetailedResult(sent.id))
    assert details["state"] == "REVOKED"
    assert sent.id not in tasks.BODIES_RUN
    events = client.get(f"/djenga/console/tasks/{sent.id}/events/").json()["rows"]
    assert any(
        row["kind"] == "action" and row["text"] == "revoke by agent (console)" for row in events
    )


@pytest.fixture
def prefork_worker(redis_server):
    """A real prefork worker (terminate needs a pool that can signal its child) on a queue
    of its own."""
    queue = f"prefork-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "djenga_tests.celery", "worker", "--pool",
         "prefork", "--concurrency", "1", "-Q", queue, "-l", "INFO", "-n", f"{queue}@%h"],
        cwd=ROOT, env=dict(os.environ, REDIS_URL=redis_server.url),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield queue
    worker.send_signal(signal.SIGTERM)
    try:
        worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.communicate()


def test_staff_terminate_a_task_that_never_calls_a_helper(prefork_worker, celery_app):
    sent = tasks.never_helps.apply_async((120.0,), queue=prefork_worker)
    result = AsyncDetailedResult(sent.id)
    running_in_step(result, 1, timeout=60)
    outcome = actions.perform(
        "terminate", sent.id, by="agent", staff=True, via="test", store=celery_app.backend.store
    )
    assert outcome.outcome == actions.SENT
    details = final(result, timeout=60)
    assert details["state"] == "REVOKED"
    assert [s["state"] for s in details["steps"]] == ["failed"]
    events = celery_app.backend.get_events(sent.id)
    assert any(e["type"] == "action" and e["action"] == "terminate" for e in events)


@pytest.mark.django_db(transaction=True)
async def test_the_console_socket_takes_staff_actions_and_nothing_else():
    from .test_console import staff_socket

    sent = await sync_to_async(tasks.export_rows.delay)(200, 30.0)
    result = AsyncDetailedResult(sent.id)
    await sync_to_async(running_in_step)(result, 2)
    socket = await staff_socket("/ws/djenga/console/")
    await socket.send_json_to({"type": "action", "action": "cancel", "task_id": sent.id})
    while True:
        frame = await socket.receive_json_from(timeout=10)
        if frame["type"] == "action":
            break
    assert frame == {
        "v": WIRE_VERSION, "type": "action", "action": "cancel", "task_id": sent.id, "ok": True,
        "outcome": "requested",
    }  # fmt: skip
    details = await sync_to_async(final)(result)
    assert details["cancel"]["by"] == "console-agent" and details["cancel"]["via"] == "console"
    await socket.send_json_to({"type": "action", "action": "retry", "task_id": "no-such-task"})
    while (frame := await socket.receive_json_from(timeout=10))["type"] != "action":
        pass
    assert frame["ok"] is False and frame["error"] == "not-retryable"
    await socket.send_to(text_data=json.dumps({"type": "subscribe"}))
    while (output := await socket.receive_output(10))["type"] != "websocket.close":
        pass
    assert output["code"] == 4400


def test_retry_refuses_a_task_that_has_not_failed(celery_app):
    sent = tasks.export_rows.delay(2, 0.0)
    sent.get(timeout=20)
    final(AsyncDetailedResult(sent.id))
    with pytest.raises(actions.ActionRefused) as refused:
        actions.perform("retry", sent.id, by="agent", staff=True, store=celery_app.backend.store)
    assert refused.value.code == "not-retryable"
    with pytest.raises(actions.ActionRefused) as refused:
        actions.perform("cancel", sent.id, by="customer", staff=False)
    assert refused.value.code == "forbidden"
