"""The one key builder: names, db number in channels, task id validation."""

from __future__ import annotations

import pytest

from djenga.errors import InvalidTaskId
from djenga.keys import RedisNames, validate_task_id


def test_names():
    names = RedisNames("app", 3)
    assert names.task("abc-1") == "app:task:{abc-1}"
    assert names.log("abc-1") == "app:task:{abc-1}:log"
    assert names.channel("abc-1") == "app:3:task:abc-1"
    assert names.task_id_from_channel("app:3:task:abc-1") == "abc-1"


def test_channels_differ_by_database():
    assert RedisNames("djenga", 1).channel("x") != RedisNames("djenga", 15).channel("x")


@pytest.mark.parametrize("bad", ["", "a b", "a*", "x" * 201, None, 5, "../etc", "a\nb", "{x}"])
def test_bad_task_ids_are_refused(bad):
    with pytest.raises(InvalidTaskId):
        validate_task_id(bad)


def test_uuid_is_fine():
    assert validate_task_id("d3b07384-d9a2-4f5c-9e38-2d3a2b6f0c1e")


def test_foreign_channel_is_refused():
    with pytest.raises(InvalidTaskId):
        RedisNames("djenga", 0).task_id_from_channel("other:0:task:x")


def test_cluster_names_put_a_task_and_its_partition_in_one_slot():
    from redis.crc import key_slot

    from djenga.keys import CLUSTER_PARTITIONS, ClusterNames

    names = ClusterNames("djenga")
    task_id = "6f1c3a4e-0d2b-4c55-9a7e-2f1d3c4b5a69"
    keys = [
        names.task(task_id), names.log(task_id), names.lease(task_id), names.seen(task_id),
        names.recent_of(task_id), names.channel(task_id), names.firehose_of(task_id),
    ]  # fmt: skip
    assert len({key_slot(key.encode()) for key in keys}) == 1
    assert names.recent_of(task_id) in names.recents()
    assert names.firehose_of(task_id) in names.firehoses()
    assert len(names.recents()) == len(names.firehoses()) == CLUSTER_PARTITIONS
    assert names.task_id_from_channel(names.channel(task_id)) == task_id
    assert names.is_task_channel(names.channel(task_id))
    assert not names.is_task_channel(names.firehose_of(task_id))
    assert "15" not in names.channel(task_id).split(":")  # no database number


def test_partition_tags_spread_evenly_over_the_slot_range():
    from redis.crc import key_slot

    from djenga.keys import CLUSTER_SLOTS, partition_tags

    tags = partition_tags(64)
    for i, tag in enumerate(tags):
        assert i * CLUSTER_SLOTS // 64 <= key_slot(tag.encode()) < (i + 1) * CLUSTER_SLOTS // 64
    # three masters with contiguous ranges hold 21 or 22 partitions each
    owners = [key_slot(tag.encode()) * 3 // CLUSTER_SLOTS for tag in tags]
    assert sorted(owners.count(n) for n in range(3)) == [21, 21, 22]


def test_standalone_names_did_not_move():
    names = RedisNames("djenga", 15)
    assert names.recent_of("abc") == names.recent() == "djenga:recent"
    assert names.firehoses() == ("djenga:15:tasks",) and names.recents() == ("djenga:recent",)
    assert names.is_task_channel("djenga:15:task:abc")
    assert not names.is_task_channel("djenga:15:tasks")
