"""Retry countdowns and workflows (chains, chords) through a real worker, Redis and the
project's ASGI app: ``retry_at``, workflow tokens, the workflow socket and JSON view."""

from __future__ import annotations

import json
import time

import pytest
from celery import chain, chord, group
from channels.testing import WebsocketCommunicator
from django.core import signing
from django.test import Client

from djenga.celery.results import AsyncDetailedResult, DetailedWorkflowResult
from djenga.live.auth import make_group_token, make_workflow_token, workflow_stages
from djenga_tests import tasks

from .live_helpers import ORIGIN, close_code, frames_until_close, wait_for

pytestmark = [pytest.mark.backend, pytest.mark.usefixtures("celery_worker")]


def finish(result) -> dict:
    """Wait for a workflow to end by its snapshots (not ``.get()``, whose pending-result
    subscriptions outlive the test's Redis and complain at exit)."""
    return list(DetailedWorkflowResult(result).follow(timeout=30))[-1]


async def open_workflow_socket(token: str | None) -> WebsocketCommunicator:
    from djenga_tests.asgi import application

    path = "/ws/djenga/workflows/" + (f"?token={token}" if token is not None else "")
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


# -- retries -----------------------------------------------------------------------------


def test_a_retry_snapshot_says_when_the_next_attempt_is_due():
    before = time.time()
    sent = tasks.retry_later.delay(2.0)
    result = AsyncDetailedResult(sent.id)
    retrying = wait_for(lambda: (d := result.details())["state"] == "RETRY" and d)
    assert retrying["attempt"] == 1
    # Due countdown seconds after the retry was sent, on the worker's clock.
    assert before + 2.0 <= retrying["retry_at"] <= time.time() + 2.0
    assert 0 < retrying["retry_in"] <= 2.0
    assert retrying["retry_at"] == pytest.approx(
        retrying["updated_at"] + retrying["retry_in"], abs=0.01
    )
    assert sent.get(timeout=20) == "booked"
    done = wait_for(lambda: (d := result.details())["state"] == "SUCCESS" and d)
    assert done["attempt"] == 2
    assert "retry_at" not in done and "retry_in" not in done


def test_retry_due_at_reads_countdown_and_eta():
    from datetime import UTC, datetime, timedelta

    from djenga.celery.tasks import retry_due_at

    now = time.time()
    assert retry_due_at({"countdown": 5}) == pytest.approx(now + 5, abs=1)
    assert retry_due_at({"countdown": -3}) == pytest.approx(now, abs=1)
    eta = datetime.now(UTC) + timedelta(seconds=30)
    assert retry_due_at({"eta": eta}) == pytest.approx(eta.timestamp(), abs=0.01)
    assert retry_due_at({"eta": eta.isoformat()}) == pytest.approx(eta.timestamp(), abs=0.01)
    assert retry_due_at({}) is None
    assert retry_due_at({"eta": "not a date"}) is None
    assert retry_due_at({"countdown": float("inf")}) is None  # never Infinity in the JSON
    assert retry_due_at({"countdown": "soon"}) is None


# -- stages and tokens -------------------------------------------------------------------


def test_workflow_stages_of_a_chain_and_a_chord_walk_back_through_parents():
    sent = chain(tasks.stage.si(0.01), tasks.stage.si(0.01), tasks.stage.si(0.01)).apply_async()
    stages = workflow_stages(sent)
    assert len(stages) == 3 and all(len(stage) == 1 for stage in stages)
    assert stages[-1] == [sent.id] and stages[0] == [sent.parent.parent.id]
    finish(sent)

    body = chord(tasks.stage.si(0.01) for _ in range(4))(tasks.stage.si(0.01))
    stages = workflow_stages(body)
    assert [len(stage) for stage in stages] == [4, 1] and stages[1] == [body.id]
    finish(body)


def test_a_workflow_token_is_bounded_and_signed():
    with pytest.raises(ValueError):
        make_workflow_token([])
    with pytest.raises(ValueError):
        make_workflow_token([["a"], []])
    token = make_workflow_token([["a"], ["b", "c"]])
    claims = signing.loads(token, salt="djenga.live.workflow-token")
    assert claims["w"] == [["a"], ["b", "c"]]


# -- the socket and the view -------------------------------------------------------------


async def test_a_chain_streams_workflow_frames_until_its_last_stage_succeeds():
    sent = chain(tasks.stage.si(0.1), tasks.stage.si(0.1), tasks.stage.si(0.1)).apply_async()
    socket = await open_workflow_socket(make_workflow_token(sent))
    frames, code = await frames_until_close(socket, timeout=30)
    assert code == 1000
    assert {f["type"] for f in frames} == {"workflow"}
    final = frames[-1]
    assert final["state"] == "SUCCESS" and final["percent"] == 100.0
    assert [s["state"] for s in final["stages"]] == ["SUCCESS"] * 3
    percents = [f["percent"] for f in frames]
    assert percents == sorted(percents)
    assert all(t["private"] == {} for s in final["stages"] for t in s["tasks"])  # customer view


async def test_a_chain_whose_middle_stage_fails_is_failure_and_the_socket_closes():
    sent = chain(
        tasks.stage.si(0.05), tasks.stage.si(0.05, fail=True), tasks.stage.si(0.05)
    ).apply_async()
    socket = await open_workflow_socket(make_workflow_token(sent))
    frames, code = await frames_until_close(socket, timeout=30)
    assert code == 1000
    final = frames[-1]
    assert final["state"] == "FAILURE"
    states = [s["state"] for s in final["stages"]]
    # Celery then fails the rest of the chain too (Backend._fail_chain): either may be sent.
    assert states[:2] == ["SUCCESS", "FAILURE"] and states[2] in ("PENDING", "FAILURE")
    assert final["current"] == 1 and final["percent"] < 100


async def test_a_chord_is_final_when_its_body_is():
    body = chord(tasks.stage.si(0.05 * i) for i in range(1, 5))(tasks.stage.si(0.05))
    socket = await open_workflow_socket(make_workflow_token(body))
    frames, code = await frames_until_close(socket, timeout=30)
    assert code == 1000
    final = frames[-1]
    assert final["state"] == "SUCCESS" and final["total"] == 5
    assert [s["total"] for s in final["stages"]] == [4, 1]
    # Until the body ended, no frame was final, even with the whole header done.
    assert all(f["state"] in ("PENDING", "PROGRESS") for f in frames[:-1])


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "forged",
        make_group_token(["a-task"]),  # another kind of token
        signing.dumps({"w": [["a"]], "u": None}, salt="not-djenga"),
    ],
)
async def test_a_bad_workflow_token_is_closed_4403(token):
    socket = await open_workflow_socket(token)
    assert await close_code(socket) == 4403


async def test_an_expired_workflow_token_is_closed_4403(settings):
    settings.DJENGA_TOKEN_MAX_AGE = 1
    token = make_workflow_token([["a-task"]])
    time.sleep(2.1)
    socket = await open_workflow_socket(token)
    assert await close_code(socket) == 4403


def test_the_json_view_gives_the_workflow_snapshot_or_403(settings):
    sent = chain(tasks.stage.si(0.01), tasks.stage.si(0.01)).apply_async()
    finish(sent)
    client = Client()
    token = make_workflow_token(sent)
    response = wait_for(
        lambda: (
            (r := client.get("/djenga/workflows/", {"token": token})).json()["state"] == "SUCCESS"
            and r
        )
    )
    data = response.json()
    assert response.status_code == 200 and data["type"] == "workflow"
    assert "no-cache" in response["Cache-Control"]  # a poller never gets a cached answer
    assert [[t["task_id"] for t in s["tasks"]] for s in data["stages"]] == workflow_stages(sent)
    for bad in ("forged", make_group_token([sent.id])):
        refused = client.get("/djenga/workflows/", {"token": bad})
        assert refused.status_code == 403 and json.loads(refused.content) == {"error": "forbidden"}
    assert client.get("/djenga/workflows/").status_code == 403


def test_detailed_workflow_result_follows_a_chord_to_its_end():
    body = chord(tasks.stage.si(0.05) for _ in range(4))(tasks.stage.si(0.05))
    snapshots = list(DetailedWorkflowResult(body).follow(timeout=30))
    assert snapshots[-1]["state"] == "SUCCESS"
    percents = [s["percent"] for s in snapshots]
    assert percents == sorted(percents)


def test_a_group_stage_inside_a_chain_is_one_stage():
    # Frozen, not sent: freeze() gives every task its id and links the results' parents.
    frozen = chain(
        tasks.stage.si(0.01),
        group(tasks.stage.si(0.01), tasks.stage.si(0.01)),
        tasks.stage.si(0.01),
    ).freeze()
    assert [len(stage) for stage in workflow_stages(frozen)] == [1, 2, 1]
