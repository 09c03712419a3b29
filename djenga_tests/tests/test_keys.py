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
