"""System checks: exact messages, stable ids."""

from __future__ import annotations

from django.test import override_settings

from djenga.checks import check_settings


def ids_and_messages():
    return [(m.id, m.msg) for m in check_settings()]


def test_the_example_project_passes():
    assert check_settings() == []


@override_settings(CELERY_RESULT_BACKEND="redis://127.0.0.1/15")
def test_plain_redis_backend_warns():
    (message,) = check_settings()
    assert message.id == "djenga.W001"
    assert message.msg == (
        "CELERY_RESULT_BACKEND is 'redis://127.0.0.1/15', not a djenga redisd:// URL: "
        "tasks will run but no step progress is recorded or shown."
    )
    assert message.hint == (
        "Set CELERY_RESULT_BACKEND = 'redisd://host:port/db' "
        "(or 'redisds://' for TLS; 'sentineld://' behind Sentinel)."
    )


@override_settings(DJENGA_REDIS_URL="http://nope")
def test_bad_redis_url():
    assert ids_and_messages() == [
        ("djenga.E001", "DJENGA_REDIS_URL is 'http://nope', not a redis:// or sentinel:// URL.")
    ]


SENTINELS = "sentineld://127.0.0.1:26379/15;sentineld://127.0.0.1:26380/15"


@override_settings(CELERY_RESULT_BACKEND=SENTINELS)
def test_a_sentinel_backend_without_a_master_name_is_an_error():
    (message,) = check_settings()
    assert message.id == "djenga.E007"
    assert message.msg.startswith("CELERY_RESULT_BACKEND is a Sentinel URL, but no master")
    assert "{'master_name': 'mymaster'}" in message.hint


@override_settings(
    CELERY_RESULT_BACKEND=SENTINELS,
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS={"master_name": "mymaster"},
)
def test_a_sentinel_backend_with_a_master_name_is_accepted():
    assert check_settings() == []


@override_settings(DJENGA_REDIS_URL="sentinel://10.0.0.1:26379/2;sentinel://10.0.0.2:26379/2")
def test_a_sentinel_redis_url_needs_a_master_name_too():
    assert [m.id for m in check_settings()] == ["djenga.E007"]


@override_settings(DJENGA_KEY_PREFIX="has spaces")
def test_bad_prefix():
    assert ids_and_messages() == [("djenga.E002", "DJENGA_KEY_PREFIX is 'has spaces'.")]


@override_settings(DJENGA_EVENT_LOG_LENGTH=0, DJENGA_TOKEN_MAX_AGE="1h")
def test_bad_numbers():
    assert ids_and_messages() == [
        ("djenga.E003", "DJENGA_EVENT_LOG_LENGTH is 0, not a positive integer."),
        ("djenga.E003", "DJENGA_TOKEN_MAX_AGE is '1h', not a positive integer."),
    ]


@override_settings(DJENGA_CELERY_MODULE="no.such.module")
def test_celery_module_that_cannot_be_imported():
    ((check_id, message),) = ids_and_messages()
    assert check_id == "djenga.E004"
    assert message.startswith("DJENGA_CELERY_MODULE is 'no.such.module', which cannot be imported")


def test_retry_without_celerys_extended_results_warns():
    from djenga_tests.celery import app

    app.conf.result_extended = False
    try:
        (message,) = check_settings()
    finally:
        app.conf.result_extended = True
    assert message.id == "djenga.W002"
    assert message.msg == (
        f"Celery's result_extended is off in {app.main} of DJENGA_CELERY_MODULE: the "
        "console's Retry and the retry action are refused ('no-arguments'), as a task's "
        "arguments are not stored."
    )
    assert message.hint == (
        "Set CELERY_RESULT_EXTENDED = True (or app.conf.result_extended = True)."
    )


@override_settings(DJENGA_LEASE_TTL=0, DJENGA_MIN_UPDATE_INTERVAL=-1)
def test_bad_seconds():
    assert ids_and_messages() == [
        ("djenga.E005", "DJENGA_LEASE_TTL is 0, not a positive number of seconds."),
        ("djenga.E005", "DJENGA_MIN_UPDATE_INTERVAL is -1, not a number of seconds >= 0."),
    ]


@override_settings(DJENGA_LEASE_TTL=5, DJENGA_LEASE_INTERVAL=5)
def test_lease_interval_must_be_shorter_than_its_ttl():
    assert ids_and_messages() == [
        (
            "djenga.E006",
            "DJENGA_LEASE_INTERVAL (5) is not shorter than DJENGA_LEASE_TTL (5): "
            "running tasks would be reported LOST.",
        )
    ]


@override_settings(DJENGA_TOMBSTONE_TTL=-1, DJENGA_REAUTHORISE_INTERVAL=0)
def test_bad_tombstone_ttl_and_reauthorise_interval():
    assert ids_and_messages() == [
        ("djenga.E003", "DJENGA_TOMBSTONE_TTL is -1, not a positive integer."),
        ("djenga.E005", "DJENGA_REAUTHORISE_INTERVAL is 0, not a positive number of seconds."),
    ]


def cluster_messages():
    from djenga.checks import check_cluster

    return [(m.id, m.msg, m.hint) for m in check_cluster()]


def test_the_example_project_passes_the_cluster_checks():
    assert cluster_messages() == []


@override_settings(DJENGA_CLUSTER_URL="redis://10.0.0.5:7000,redis://10.0.0.6:7000/0")
def test_a_cluster_url_or_several_pass():
    assert cluster_messages() == []


@override_settings(DJENGA_CLUSTER_URL=["redis://10.0.0.5:7000/3"])
def test_a_cluster_url_on_another_database_is_refused():
    assert cluster_messages() == [
        (
            "djenga.E020",
            "DJENGA_CLUSTER_URL is ['redis://10.0.0.5:7000/3'], not the redis:// or rediss:// "
            "URL of a cluster node on database 0.",
            "Use e.g. 'redis://10.0.0.5:7000' (any node; the others are found), several "
            "separated by commas, or a list. A cluster has only database 0.",
        )
    ]


@override_settings(DJENGA_CLUSTER_URL="sentinel://10.0.0.5:26379")
def test_a_cluster_url_of_another_scheme_is_refused():
    assert [m[0] for m in cluster_messages()] == ["djenga.E020"]


@override_settings(CELERY_RESULT_BACKEND="rediscluster://10.0.0.5:7000/0")
def test_celery_on_a_cluster_is_refused_with_the_reason():
    assert cluster_messages() == [
        (
            "djenga.E021",
            "CELERY_RESULT_BACKEND is 'rediscluster://10.0.0.5:7000/0', a Redis Cluster: "
            "Celery's redis backend and broker have no Cluster support (celery/celery#2852).",
            "Keep Celery on a standalone or Sentinel Redis (e.g. CELERY_RESULT_BACKEND = "
            "'redisd://host:6379/0') and put djenga's keys and channels on the cluster with "
            "DJENGA_CLUSTER_URL.",
        )
    ]


@override_settings(
    DJENGA_CLUSTER_URL="redis://10.0.0.5:7000", CELERY_BROKER_URL="redis://10.0.0.5:7000/0"
)
def test_celery_on_a_node_of_the_cluster_is_refused():
    assert [m[0] for m in cluster_messages()] == ["djenga.E021"]


@override_settings(DJENGA_CLUSTER_URL="redis://10.0.0.5:7000", DJENGA_REDIS_URL="redis://x/1")
def test_redis_url_beside_a_cluster_warns():
    assert [m[0] for m in cluster_messages()] == ["djenga.W020"]
