"""Wire format v1: what customers and staff see, ordering by (epoch, seq)."""

from __future__ import annotations

from djenga.celery.detail import TaskDetail
from djenga.wire import WIRE_VERSION, decode, encode, for_viewer, is_newer, pending_snapshot


def failed_snapshot(public=()):
    detail = TaskDetail("t", "n", [(1, "a")], public=public)
    detail.start_step(1)
    detail.finish("FAILURE", error=KeyError("secret"), traceback="Traceback: secret", result=None)
    detail.private.update(args="('card-number',)", kwargs="{}")
    return decode(encode(detail.snapshot()))


def test_customers_never_see_private_fields():
    view = for_viewer(failed_snapshot(), staff=False)
    assert view["error"] is None
    assert view["private"] == {}
    assert "secret" not in encode(view)
    assert "card-number" not in encode(view)
    assert view["steps"][0]["state"] == "failed"


def test_staff_see_everything():
    view = for_viewer(failed_snapshot(), staff=True)
    assert view["error"] == {"type": "KeyError", "message": "'secret'"}
    assert view["private"]["traceback"] == "Traceback: secret"


def test_a_task_can_make_its_error_public():
    view = for_viewer(failed_snapshot(public=("error",)), staff=False)
    assert view["error"]["type"] == "KeyError"
    assert view["private"] == {}


def test_ordering():
    snap = {"epoch": "a", "seq": 5}
    assert is_newer(snap, "a", 4)
    assert not is_newer(snap, "a", 5)
    assert is_newer(snap, "b", 99)


def test_pending_snapshot_shape():
    snapshot = pending_snapshot("t-1")
    assert snapshot["v"] == WIRE_VERSION
    assert snapshot["state"] == "PENDING" and snapshot["steps"] == []


def test_every_snapshot_frame_has_its_type_and_a_percent():
    from djenga.celery.detail import TaskDetail
    from djenga.wire import expired_snapshot, group_snapshot

    detail = TaskDetail("t-2", "gru.x", [(1, "Fly")])
    task_frames = [pending_snapshot("t-1"), expired_snapshot("t-1"), detail.snapshot()]
    for frame in task_frames:
        assert (frame["v"], frame["type"]) == (WIRE_VERSION, "snapshot") and "percent" in frame
    group = group_snapshot(task_frames)
    assert (group["v"], group["type"]) == (WIRE_VERSION, "group") and "percent" in group
