"""The wire format: what customers and staff see, ordering by (epoch, seq), frame sizes."""

from __future__ import annotations

from djenga.celery.detail import TaskDetail
from djenga.wire import (
    WIRE_VERSION,
    decode,
    encode,
    event_for_viewer,
    for_viewer,
    is_newer,
    pending_snapshot,
)


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


def test_customers_never_see_which_task_a_retry_was_sent_again_from():
    detail = TaskDetail("new", "n", [(1, "a")])
    started = detail.start(worker="w@h", retry_of="the-failed-one")
    snapshot = decode(encode(detail.snapshot()))
    assert snapshot["private"]["retry_of"] == "the-failed-one"
    assert "the-failed-one" not in encode(for_viewer(snapshot, staff=False))
    assert event_for_viewer(started, staff=False, public=("error", "worker")) == {
        "type": "started", "at": started["at"], "attempt": 1, "worker": "w@h",
    }  # fmt: skip
    assert event_for_viewer(started, staff=True, public=())["retry_of"] == "the-failed-one"


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


def running_member(index: int) -> dict:
    """A member of a group, in its second of three steps, with long messages."""
    detail = TaskDetail(f"task-{index}", "gru.stage", [(1, "Collect"), (2, "Pack"), (3, "Ship")])
    detail.start()
    detail.start_step(1)
    detail.update_step(1, "x" * 400)
    detail.start_step(2)
    detail.update_step(2, f"packing banana {index} " + "y" * 400, done=3, total=7)
    return dict(detail.snapshot(), seq=5, epoch="e")


def test_a_big_group_frame_is_slimmed_under_daphnes_limit_and_keeps_what_a_row_shows():
    from djenga.wire import MAX_FRAME_BYTES, fit_group, group_snapshot

    small = group_snapshot([running_member(i) for i in range(3)])
    assert fit_group(small) == (small, encode(small))  # fits: sent as it is

    full = group_snapshot([running_member(i) for i in range(120)])
    assert len(encode(full).encode()) > MAX_FRAME_BYTES
    fitted, text = fit_group(full)
    assert len(text.encode()) <= MAX_FRAME_BYTES and decode(text) == fitted
    assert fitted["slim"] == 1
    assert {k: fitted[k] for k in ("seq", "epoch", "state", "percent", "total", "counts")} == {
        k: full[k] for k in ("seq", "epoch", "state", "percent", "total", "counts")
    }
    member = fitted["tasks"][7]
    assert member["current"] == 2 and member["percent"] == full["tasks"][7]["percent"]
    (step,) = member["steps"]  # the running step alone: its description and message
    assert step["description"] == "Pack" and step["message"].startswith("packing banana 7 ")
    assert len(step["message"]) == 120 and step["done"] == 3

    biggest = group_snapshot([running_member(i) for i in range(500)])  # MAX_GROUP_SIZE
    fitted, text = fit_group(biggest)
    assert len(text.encode()) <= MAX_FRAME_BYTES and fitted["slim"] in (4, 5)
    assert [t["task_id"] for t in fitted["tasks"]] == [f"task-{i}" for i in range(500)]


def test_running_path_walks_current_path_and_stops_where_it_breaks():
    from djenga.wire import running_path

    write = {"key": 1.2, "state": "running", "children": []}
    export = {"key": 1, "state": "running", "children": [{"key": 1.1}, write]}
    snapshot = {"steps": [export, {"key": 2}], "current": 1.2, "current_path": [1, 1.2]}
    assert running_path(snapshot) == [export, write]
    assert running_path({**snapshot, "current_path": [1, "gone"]}) == [export]
    assert running_path({"steps": [export], "current": 1}) == [export]  # a v1 snapshot
    assert running_path({"steps": [export], "current": None, "current_path": []}) == []
