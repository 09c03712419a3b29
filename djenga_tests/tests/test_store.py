"""The task store against a real server: publish.lua's contract (refused attempts, epochs,
upkeep, the lease, the guarded LOST write), the readers' one LOST rule, final writes that
outlive a Redis restart."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis.asyncio
from django.contrib.auth.models import User

from djenga.celery.app import DjengaCelery
from djenga.celery.detail import TaskDetail
from djenga.conf import get_settings
from djenga.connection import redis_names
from djenga.keys import RedisNames
from djenga.live.auth import make_token
from djenga.store import REFUSED, AsyncTaskStore, TaskStore, lost_call
from djenga.testing import RedisServer
from djenga.wire import TaskState

pytestmark = pytest.mark.backend

#: A prefix of its own: these tests trim the recent index, which others read.
NAMES = RedisNames("storetest", 15)
_ids = itertools.count(1)


def new_id(label: str) -> str:
    return f"{label}-{time.time_ns()}-{next(_ids)}"


@pytest.fixture
def store(redis_client) -> TaskStore:
    return TaskStore(redis_client, NAMES)


def running(task_id: str, *, attempt: int = 1) -> TaskDetail:
    """A run in its first step, its events not yet drained."""
    detail = TaskDetail(task_id, "store.test", attempt=attempt)
    detail.start(worker="w@h")
    detail.start_step(1, "Fly")
    return detail


def publish(store: TaskStore, detail: TaskDetail, *, expires: int = 600, upkeep=False) -> int:
    return store.publish(
        detail.task_id, detail.snapshot(), detail.drain_events(), expires=expires, upkeep=upkeep
    )


def test_a_write_from_an_earlier_attempt_is_refused(store):
    task_id = new_id("attempts")
    second = running(task_id, attempt=2)
    assert publish(store, second) == 1
    first = running(task_id, attempt=1)
    assert publish(store, first) == REFUSED
    stored = store.stored(task_id)
    assert (stored["seq"], stored["attempt"]) == (1, 2)


def test_a_new_log_gets_a_new_epoch_and_drops_the_old_events(store, redis_client):
    task_id = new_id("epoch")
    detail = running(task_id)
    publish(store, detail)
    detail.update_step(1, "up")
    assert publish(store, detail) == 2
    first = store.stored(task_id)["epoch"]
    assert [e["seq"] for e in store.events(task_id)] == [1, 1, 2]
    redis_client.delete(NAMES.task(task_id))  # the history is gone, its log is not
    detail.update_step(1, "again")
    assert publish(store, detail) == 1
    again = store.stored(task_id)
    assert again["seq"] == 1 and again["epoch"] != first
    assert [e["seq"] for e in store.events(task_id)] == [1]


def test_upkeep_sets_expiries_the_recent_index_and_the_tombstone(store, redis_client, settings):
    settings.DJENGA_RECENT_TASKS = 2
    tomb = get_settings().TOMBSTONE_TTL
    ids = [new_id("upkeep") for _ in range(3)]
    for task_id in ids:
        publish(store, running(task_id), expires=100)  # a first write always does upkeep
    task_id = ids[-1]
    assert 0 < redis_client.ttl(NAMES.task(task_id)) <= 100
    assert 0 < redis_client.ttl(NAMES.log(task_id)) <= 100
    assert 100 < redis_client.ttl(NAMES.seen(task_id)) <= 100 + tomb
    recent = [i.decode() for i in redis_client.zrevrange(NAMES.recent(), 0, -1)]
    assert recent == [ids[2], ids[1]]  # trimmed to DJENGA_RECENT_TASKS, newest first
    # A plain update skips the upkeep (it stays cheap); an update that asks does it.
    redis_client.persist(NAMES.task(task_id))
    detail = TaskDetail.from_snapshot(store.stored(task_id))
    detail.update_step(1, "plain")
    publish(store, detail, expires=100)
    assert redis_client.ttl(NAMES.task(task_id)) == -1
    detail.update_step(1, "with upkeep")
    publish(store, detail, expires=100, upkeep=True)
    assert 0 < redis_client.ttl(NAMES.task(task_id)) <= 100


def test_the_lease_is_set_while_running_left_alone_when_pending_dropped_when_final(
    store, redis_client
):
    lease_ms = get_settings().LEASE_TTL * 1000
    pending = TaskDetail(new_id("lease"), "store.test", [(1, "Fly")])
    pending.sent()
    publish(store, pending)
    assert not redis_client.exists(NAMES.lease(pending.task_id))
    detail = running(new_id("lease"))
    publish(store, detail)
    assert 0 < redis_client.pttl(NAMES.lease(detail.task_id)) <= lease_ms
    redis_client.set(NAMES.lease(pending.task_id), "1", px=60_000)
    pending.update_step(1, "still queued")  # any PENDING write leaves a lease alone
    publish(store, pending, upkeep=True)
    assert redis_client.exists(NAMES.lease(pending.task_id))
    detail.finish(TaskState.SUCCESS)
    publish(store, detail)
    assert not redis_client.exists(NAMES.lease(detail.task_id))


def test_the_lost_write_is_refused_while_a_lease_exists_or_once_the_seq_moved(store, redis_client):
    task_id = new_id("lost")
    detail = running(task_id)
    publish(store, detail)
    stored = store.stored(task_id)
    call = lost_call(NAMES, stored, redis_client.ttl(NAMES.task(task_id)))
    assert call is not None
    script = store._script  # the one registered publish.lua
    assert script(keys=call[0], args=call[1]) == REFUSED  # the worker's lease is there
    assert store.read(task_id)["state"] == "PROGRESS" and store.record_lost([task_id]) == []
    redis_client.delete(NAMES.lease(task_id))
    detail.update_step(1, "a live worker moved on")
    publish(store, detail)  # a plain update: no upkeep, so no new lease either
    assert script(keys=call[0], args=call[1]) == REFUSED  # built at the old seq
    assert store.stored(task_id)["state"] == "PROGRESS"
    assert store.record_lost([task_id]) == [task_id]  # the rule, at the current seq
    lost = store.stored(task_id)
    assert lost["state"] == "LOST" and lost["seq"] == 3
    assert [s["state"] for s in lost["steps"]] == ["failed"]
    assert store.record_lost([task_id]) == []  # LOST is final: recorded once


def test_every_reader_applies_the_same_rules(store, redis_client, redis_server):
    """One task whose lease expired, one never seen, one whose record expired: the sync
    and async twins answer alike, one or many."""
    lost, unknown, expired = new_id("rule"), new_id("unknown"), new_id("expired")
    publish(store, running(lost))
    redis_client.delete(NAMES.lease(lost))
    redis_client.set(NAMES.seen(expired), "1")
    states = [s["state"] for s in store.read_many([lost, unknown, expired])]
    assert states == ["LOST", "PENDING", "EXPIRED"]
    assert store.read(unknown)["seq"] == 0 and store.read_known(unknown) is None
    assert next(s["task_id"] for s in store.recent(50)) == lost

    async def twin() -> list[str]:
        client = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            twin = AsyncTaskStore(client, NAMES)
            many = await twin.read_many([lost, unknown, expired])
            return [s["state"] for s in many] + [(await twin.recent(50))[0]["state"]]
        finally:
            await client.aclose()

    assert asyncio.run(twin()) == ["LOST", "PENDING", "EXPIRED", "LOST"]


def test_recovery_read_of_a_lost_task_is_not_recovered(store, redis_client):
    task_id = new_id("since")
    detail = running(task_id)
    publish(store, detail)
    epoch = store.stored(task_id)["epoch"]
    detail.update_step(1, "up")
    publish(store, detail, upkeep=True)
    since = store.read_since(task_id, epoch, 1)
    assert since.recovered and [e["seq"] for e in since.events] == [2]
    redis_client.delete(NAMES.lease(task_id))
    since = store.read_since(task_id, epoch, 2)
    assert not since.recovered and since.snapshot["state"] == "LOST"


@pytest.mark.standalone_keys
@pytest.mark.django_db
def test_the_polling_json_view_records_lost(client, redis_client):
    """The widget's polling fallback read the stored snapshot raw: a task whose worker
    died showed as running forever."""
    names = redis_names()
    project = TaskStore(redis_client, names)
    task_id = new_id("json")
    publish(project, running(task_id))
    url = f"/djenga/tasks/{task_id}/?token={make_token(task_id)}"
    assert client.get(url).json()["state"] == "PROGRESS"
    redis_client.delete(names.lease(task_id))  # the worker stopped renewing it
    assert client.get(url).json()["state"] == "LOST"
    client.force_login(User.objects.create_user(new_id("agent"), is_staff=True))
    page = client.get(f"/djenga/console/tasks/{task_id}/")
    assert page.status_code == 200 and b"LOST" in page.content


@pytest.mark.standalone_keys
async def test_the_console_list_records_lost(redis_client):
    from djenga.live.hub import get_hub

    names = redis_names()
    task_id = new_id("console")
    publish(TaskStore(redis_client, names), running(task_id))
    redis_client.delete(names.lease(task_id))
    listed = {s["task_id"]: s for s in await get_hub().read_recent(50)}
    assert listed[task_id]["state"] == "LOST"


@pytest.mark.standalone_keys
def test_a_final_write_outlives_a_redis_restart_a_plain_update_does_not_wait():
    with RedisServer() as server:
        app = DjengaCelery(
            "final-retry", set_as_current=False, broker="memory://", backend=server.url(0, "redisd")
        )
        backend = app.backend
        detail = running("final-1")
        assert backend.publish_detail(detail) == 1
        server.stop()
        detail.update_step(1, "Redis is away")
        assert backend.publish_detail(detail) is None  # best-effort: no retry
        detail.finish(TaskState.SUCCESS)
        outcome: dict[str, object] = {}
        writer = threading.Thread(target=lambda: outcome.update(seq=backend.publish_detail(detail)))
        writer.start()
        time.sleep(1.5)  # the final write is retrying meanwhile
        assert writer.is_alive()
        server.start()  # empty: no persistence
        writer.join(timeout=60)
        assert not writer.is_alive()
        assert isinstance(outcome["seq"], int) and outcome["seq"] > 0
        stored = backend.get_detail("final-1")
        assert stored["state"] == "SUCCESS"
        # the update made while Redis was away is in the same write (its events were kept)
        assert any(e.get("message") == "Redis is away" for e in backend.get_events("final-1"))


@pytest.mark.parametrize(
    ("module", "must_not_load"),
    [
        ("djenga.celery.backends", ("djenga.celery.tasks",)),  # tasks -> backends, one way
        ("djenga.celery.detail", ("celery", "redis", "kombu")),  # the model is pure
    ],
)
def test_the_celery_side_reads_in_one_direction(module, must_not_load):
    code = (
        f"import sys, {module}; "
        f"print([m for m in sys.modules if m.split('.')[0] in {must_not_load!r} "
        f"or m in {must_not_load!r}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_backend_imports_nothing_of_the_task_module_even_lazily():
    import ast

    import djenga.celery.backends as backends

    tree = ast.parse(Path(backends.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "tasks" not in imported and "djenga.celery.tasks" not in imported
