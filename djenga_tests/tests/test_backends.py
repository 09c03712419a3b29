"""The redisd:// backend: URL handling, registration, one round trip per update, Redis down."""

from __future__ import annotations

import logging
import time

import pytest
import redis
from celery import Celery
from celery.app import backends as celery_backends
from celery.utils.imports import load_extension_class_names

from djenga.celery.app import DjengaCelery
from djenga.celery.backends import RedisDetailBackend, patch_aliases, to_redis_url
from djenga.celery.detail import TaskDetail
from djenga.celery.results import AsyncDetailedResult
from djenga.testing import RedisServer

pytestmark = pytest.mark.backend


def test_seed_url_form_parses():
    app = Celery(set_as_current=False)
    backend = RedisDetailBackend(app=app, url="redisd://127.0.0.1/15")
    assert (backend.connparams["host"], backend.connparams["port"]) == ("127.0.0.1", 6379)
    assert backend.connparams["db"] == 15
    assert backend.names.channel("abc") == "djenga:15:task:abc"
    assert backend.names.task("abc") == "djenga:task:{abc}"


def test_tls_twin_uses_an_ssl_connection():
    app = Celery(set_as_current=False)
    backend = RedisDetailBackend(app=app, url="redisds://example.org:6380/2?ssl_cert_reqs=required")
    assert backend.connparams["connection_class"] is redis.SSLConnection
    assert backend.connparams["db"] == 2


def test_to_redis_url():
    assert to_redis_url("redisd://h:1/2") == "redis://h:1/2"
    assert to_redis_url("redisds://h:1/2") == "rediss://h:1/2"
    assert to_redis_url("redis://h") == "redis://h"


def test_patch_aliases_is_idempotent():
    before = dict(celery_backends.BACKEND_ALIASES)
    patch_aliases()
    patch_aliases()
    assert celery_backends.BACKEND_ALIASES["redisd"] == "djenga.celery.backends:RedisDetailBackend"
    assert celery_backends.BACKEND_ALIASES["redisds"] == "djenga.celery.backends:RedisDetailBackend"
    assert set(celery_backends.BACKEND_ALIASES) - set(before) <= {"redisd", "redisds"}


def test_entry_point_works_without_patch(monkeypatch):
    names = load_extension_class_names("celery.result_backends")
    assert dict(names)["redisd"] == "djenga.celery.backends:RedisDetailBackend"
    monkeypatch.delitem(celery_backends.BACKEND_ALIASES, "redisd", raising=False)
    app = Celery(set_as_current=False, backend="redisd://127.0.0.1/3")
    assert isinstance(app.backend, RedisDetailBackend)


def test_one_round_trip_per_update(redis_server, celery_app, redis_client):
    backend = celery_app.backend
    detail = TaskDetail("roundtrip-1", "t", [(1, "a")])
    detail.start()
    detail.start_step(1)
    backend.publish_detail(detail)  # loads the script
    redis_client.config_resetstat()
    for _ in range(10):
        detail.update_step(1, "m")
        backend.publish_detail(detail)
    stats = redis_client.info("commandstats")
    calls = {name: value["calls"] for name, value in stats.items()}
    # Ten updates: ten EVALSHA calls, each running the script's commands once; the
    # client sent nothing else (INFO is ours).
    assert calls.pop("cmdstat_evalsha") == 10
    inside_script = {"hmget", "hincrby", "hset", "xadd", "publish"}
    upkeep = {"set", "expire", "zadd", "zremrangebyrank", "zremrangebyscore"}  # not every update
    assert {f"cmdstat_{name}" for name in inside_script} <= set(calls)
    # upkeep rides along with one plain update in UPKEEP_EVERY (64) at most
    assert calls.get("cmdstat_expire", 0) <= 3 and calls.get("cmdstat_zremrangebyrank", 0) <= 1
    # each update published on the task's channel and on the all-tasks channel
    assert calls.pop("cmdstat_hincrby") == 10 and calls.pop("cmdstat_publish") == 20
    outside = set(calls) - {f"cmdstat_{n}" for n in inside_script | upkeep}
    assert outside <= {"cmdstat_config|resetstat", "cmdstat_info"}


def test_snapshot_log_and_publish(redis_server, celery_app, redis_client):
    backend = celery_app.backend
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(backend.names.channel("pub-1"))
    detail = TaskDetail("pub-1", "t", [(1, "a")])
    detail.start()
    assert backend.publish_detail(detail) == 1
    detail.update_step(1, "hello")
    assert backend.publish_detail(detail) == 2
    stored = backend.get_detail("pub-1")
    assert stored["seq"] == 2 and stored["steps"][0]["message"] == "hello"
    # update_step on a pending step starts it: two events, both of seq 2
    assert [e["seq"] for e in backend.get_events("pub-1")] == [1, 2, 2]
    assert [e["type"] for e in backend.get_events("pub-1", after_seq=1)] == [
        "step_started",
        "step_updated",
    ]
    # get_message returns None for the (ignored) subscribe confirmation: read past it.
    message = next(m for m in iter(lambda: pubsub.get_message(timeout=2), "never") if m)
    assert message["data"].startswith(b'{"seq":1,"epoch":"')
    ttl = redis_client.ttl(backend.names.task("pub-1"))
    assert 0 < ttl <= 86400
    pubsub.close()


def test_a_lost_history_starts_a_new_epoch(redis_server, celery_app, redis_client):
    backend = celery_app.backend
    detail = TaskDetail("epoch-1", "t", [(1, "a")])
    detail.start()
    backend.publish_detail(detail)
    first = backend.get_detail("epoch-1")["epoch"]
    detail.update_step(1, "x")
    backend.publish_detail(detail)
    assert backend.get_detail("epoch-1")["epoch"] == first
    redis_client.delete(backend.names.task("epoch-1"))
    detail.update_step(1, "y")
    backend.publish_detail(detail)
    again = backend.get_detail("epoch-1")
    # A new epoch; the seq goes on above the last one the worker was given (2), so a
    # watcher at seq 2 of the old history takes it whatever its epoch check says.
    assert again["seq"] == 3 and again["epoch"] != first
    assert [e["seq"] for e in backend.get_events("epoch-1")] == [3]


def test_a_server_that_lost_the_last_writes_never_reuses_a_seq(
    redis_server, celery_app, redis_client
):
    """A failover to a replica that was behind: the stored seq goes back, the next write's
    does not (a watcher already holds the lost seqs)."""
    backend = celery_app.backend
    detail = TaskDetail("behind-1", "t", [(1, "a")])
    detail.start()
    for n in range(5):
        detail.update_step(1, f"n{n}")
        backend.publish_detail(detail)
    assert backend.get_detail("behind-1")["seq"] == 5
    redis_client.hset(backend.names.task("behind-1"), "seq", 3)  # what the replica had
    detail.update_step(1, "after the failover")
    assert backend.publish_detail(detail) == 6
    assert backend.get_detail("behind-1")["seq"] == 6


def test_an_earlier_attempt_never_overwrites_a_later_one(redis_server, celery_app, redis_client):
    """A retried or redelivered run is the next attempt; the previous one's late writes
    (its RETRY, a coalesced update) are refused, so the snapshot never goes back."""
    backend = celery_app.backend
    first = TaskDetail("attempts-1", "t", [(1, "a")])
    first.start()
    first.start_step(1)
    assert backend.publish_detail(first) == 1
    second = TaskDetail("attempts-1", "t", [(1, "a")], attempt=2)
    second.start()
    assert backend.publish_detail(second) == 2
    second.finish("SUCCESS")
    assert backend.publish_detail(second) == 3
    first.finish("RETRY")
    assert backend.publish_detail(first) == -1
    stored = backend.get_detail("attempts-1")
    assert (stored["seq"], stored["state"], stored["attempt"]) == (3, "SUCCESS", 2)
    assert [e["type"] for e in backend.get_events("attempts-1", after_seq=2)] == ["finished"]


def test_redis_down_is_a_warning_not_a_failed_task(caplog):
    """A task whose Redis vanishes keeps running: each update logs (rate-limited) and moves on."""
    with RedisServer() as server:
        app = DjengaCelery(
            "redis-down", set_as_current=False, broker="memory://", backend=server.url(0, "redisd")
        )
        # The final write retries within Celery's retry_policy (20 tries, ~19 s): keep it short.
        app.conf.result_backend_transport_options = {"retry_policy": {"max_retries": 1}}

        @app.task(bind=True, base="djenga.celery.tasks.DetailTask", steps=[(1, "a"), (2, "b")])
        def two_steps(self):
            self.start_step(1)
            server.stop()  # Redis goes away in the middle of the task
            self.update_step(1, "still going")
            self.end_step()
            self.start_step(2)
            self.end_step()
            return "finished anyway"

        caplog.set_level(logging.WARNING, logger="djenga")
        result = two_steps.apply()
    assert result.successful()
    assert result.result == "finished anyway"
    warnings = [r for r in caplog.records if r.name == "djenga.celery.backends"]
    assert len(warnings) == 1  # rate-limited: one warning, not one per update
    assert "could not record progress of task" in warnings[0].getMessage()
    assert "the task carries on" in warnings[0].getMessage()


def test_unknown_task_id_is_pending_with_no_steps(redis_server, celery_app):
    details = AsyncDetailedResult("no-such-task", app=celery_app).details()
    assert details["state"] == "PENDING"
    assert details["steps"] == []
    assert details["seq"] == 0


def test_a_lease_held_twice_is_renewed_until_both_holds_drop(
    redis_server, celery_app, redis_client, settings
):
    """The next attempt of a retried task may start in the same worker process before the
    previous attempt returns: the previous one's drop must not stop the renewal."""
    from djenga.celery.tasks import _LeaseKeeper

    settings.DJENGA_LEASE_INTERVAL = 0.2
    settings.DJENGA_LEASE_TTL = 1
    backend = celery_app.backend
    lease = backend.names.lease("lease-1")
    redis_client.set(lease, "1", px=1000)
    keeper = _LeaseKeeper()
    keeper.keep(backend, "lease-1")  # the first attempt
    keeper.keep(backend, "lease-1")  # the retry, started before the first returned
    keeper.drop("lease-1")
    time.sleep(1.5)
    assert redis_client.exists(lease), "the second attempt's lease expired"
    keeper.drop("lease-1")
    time.sleep(1.5)
    assert not redis_client.exists(lease)
