"""The workflow frame and its state rules (djenga.wire.workflow_snapshot): pure, no server."""

from __future__ import annotations

import pytest

from djenga.wire import (
    WIRE_VERSION,
    FrameType,
    is_final,
    is_newer,
    pending_snapshot,
    stage_state,
    workflow_snapshot,
    workflow_state,
)


def task(task_id: str, state: str, percent: float = 0.0, seq: int = 1, epoch: str = "e") -> dict:
    return dict(
        pending_snapshot(task_id), state=state, percent=percent, seq=seq, epoch=epoch,
        updated_at=100.0 + seq,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["PENDING", "PENDING", "PENDING"], "PENDING"),
        (["PROGRESS", "PENDING", "PENDING"], "PROGRESS"),
        (["SUCCESS", "PENDING", "PENDING"], "PROGRESS"),  # between two stages
        (["SUCCESS", "RETRY", "PENDING"], "PROGRESS"),
        (["SUCCESS", "FAILURE", "PENDING"], "FAILURE"),  # later stages never run
        (["REVOKED", "PENDING"], "REVOKED"),
        (["SUCCESS", "LOST", "PENDING"], "LOST"),
        (["SUCCESS", "SUCCESS", "SUCCESS"], "SUCCESS"),
        ([], "PENDING"),
    ],
)
def test_workflow_state(states, expected):
    assert workflow_state(states) == expected


def test_a_stage_of_one_task_has_its_state_and_a_group_stage_the_group_rule():
    assert stage_state(["RETRY"]) == "RETRY"
    assert stage_state(["SUCCESS", "PROGRESS"]) == "PROGRESS"
    assert stage_state(["SUCCESS", "FAILURE"]) == "FAILURE"
    assert stage_state(["SUCCESS", "SUCCESS"]) == "SUCCESS"


def test_the_frame_names_the_stages_in_order_with_their_tasks():
    stages = [[task("a", "SUCCESS", 100)], [task("b", "PROGRESS", 50), task("c", "PENDING")]]
    snap = workflow_snapshot(stages)
    assert snap["v"] == WIRE_VERSION and snap["type"] == FrameType.WORKFLOW == "workflow"
    assert snap["state"] == "PROGRESS" and snap["current"] == 1 and snap["total"] == 3
    assert [s["index"] for s in snap["stages"]] == [0, 1]
    assert [s["state"] for s in snap["stages"]] == ["SUCCESS", "PROGRESS"]
    assert [s["percent"] for s in snap["stages"]] == [100.0, 25.0]
    assert [[t["task_id"] for t in s["tasks"]] for s in snap["stages"]] == [["a"], ["b", "c"]]
    assert snap["counts"] == {"SUCCESS": 1, "PROGRESS": 1, "PENDING": 1}
    assert snap["updated_at"] == 101.0


def test_every_task_weighs_the_same():
    # A chord of four and a body: the header done, the body not begun -> 80.
    header = [task(str(i), "SUCCESS", 100) for i in range(4)]
    snap = workflow_snapshot([header, [task("body", "PENDING")]])
    assert snap["percent"] == 80.0 and snap["state"] == "PROGRESS"


def test_100_only_on_success_and_never_below_the_floor():
    done = workflow_snapshot([[task("a", "SUCCESS", 100)], [task("b", "SUCCESS", 100)]])
    assert done["percent"] == 100.0 and done["current"] is None and is_final(done)
    almost = workflow_snapshot([[task("a", "SUCCESS", 100)], [task("b", "PROGRESS", 99)]])
    assert almost["percent"] == 99.0
    # A retried task starts its steps over: the watcher's floor holds the percent.
    retried = workflow_snapshot([[task("a", "SUCCESS", 100)], [task("b", "STARTED", 0)]], floor=75)
    assert retried["percent"] == 75.0
    failed = workflow_snapshot([[task("a", "FAILURE", 50)], [task("b", "PENDING")]], floor=120)
    assert failed["percent"] == 99.0 and failed["state"] == "FAILURE" and is_final(failed)


def test_seq_and_epoch_order_workflow_frames():
    first = workflow_snapshot([[task("a", "PROGRESS", 10, seq=2)], [pending_snapshot("b")]])
    later = workflow_snapshot([[task("a", "PROGRESS", 20, seq=3)], [pending_snapshot("b")]])
    assert is_newer(later, first["epoch"], first["seq"])
    assert not is_newer(first, later["epoch"], later["seq"])
    # The next stage's first write gives it an epoch: another epoch always replaces.
    begun = workflow_snapshot([[task("a", "SUCCESS", 100, seq=3)], [task("b", "PENDING", seq=1)]])
    assert begun["epoch"] != later["epoch"] and is_newer(begun, later["epoch"], later["seq"])


def test_an_empty_workflow_is_pending():
    snap = workflow_snapshot([])
    assert snap["state"] == "PENDING" and snap["percent"] == 0.0 and snap["stages"] == []


# -- workflow tokens (pure: signing only) ------------------------------------------------


@pytest.mark.django_db
def test_a_workflow_token_made_for_a_user_is_only_theirs():
    from django.contrib.auth.models import AnonymousUser, User

    from djenga.live.auth import Viewer, authorise_workflow, make_workflow_token

    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    staff = User.objects.create_user("sam", is_staff=True)
    token = make_workflow_token([["a"], ["b", "c"]], alice)
    assert authorise_workflow(alice, token) == (Viewer(staff=False), [["a"], ["b", "c"]])
    assert authorise_workflow(bob, token) is None
    assert authorise_workflow(AnonymousUser(), token) is None
    # Staff need a workflow token too (as for groups), and then see everything.
    assert authorise_workflow(staff, None) is None
    anyone = make_workflow_token([["a"]])
    assert authorise_workflow(staff, anyone) == (Viewer(staff=True), [["a"]])


def test_a_workflow_token_is_no_group_or_task_token_and_the_reverse():
    from django.contrib.auth.models import AnonymousUser

    from djenga.live.auth import (
        authorise,
        authorise_group,
        authorise_workflow,
        make_group_token,
        make_token,
        make_workflow_token,
    )

    workflow = make_workflow_token([["a"]])
    assert authorise_group(AnonymousUser(), workflow) is None
    assert authorise(AnonymousUser(), workflow, "a") is None
    assert authorise_workflow(AnonymousUser(), make_group_token(["a"])) is None
    assert authorise_workflow(AnonymousUser(), make_token("a")) is None
    assert authorise_workflow(AnonymousUser(), workflow + "x") is None


def test_a_workflow_token_names_at_most_500_tasks():
    from djenga.live.auth import MAX_GROUP_SIZE, make_workflow_token

    make_workflow_token([[f"t{i}" for i in range(MAX_GROUP_SIZE - 1)], ["body"]])
    with pytest.raises(ValueError, match="1 to 500 tasks"):
        make_workflow_token([[f"t{i}" for i in range(MAX_GROUP_SIZE)], ["body"]])
    with pytest.raises(ValueError):
        make_workflow_token([["not a valid id!"]])


# -- frames under daphne's 64 KiB message limit --------------------------------------------


def big_task(i: int, state: str) -> dict:
    steps = [
        {"key": k, "description": f"Step {k} of a long export " * 3, "state": "done"}
        for k in range(1, 4)
    ]
    return dict(task(f"t-{i:04d}", state, 100 if state == "SUCCESS" else 40), steps=steps)


@pytest.mark.parametrize("header", [10, 120, 300, 499])
@pytest.mark.parametrize("running", ["header", "body"])
def test_a_big_workflow_frame_is_slimmed_to_fit_and_keeps_what_the_bar_needs(header, running):
    from djenga.wire import MAX_FRAME_BYTES, encode, fit_workflow

    state = "PROGRESS" if running == "header" else "SUCCESS"
    stages = [[big_task(i, state) for i in range(header)], [big_task(9999, "PROGRESS")]]
    full = workflow_snapshot(stages)
    fitted, text = fit_workflow(full)
    assert len(text.encode()) <= MAX_FRAME_BYTES and text == encode(fitted)
    if len(encode(full).encode()) <= MAX_FRAME_BYTES:
        assert fitted is full and "slim" not in fitted
    else:
        assert fitted["slim"] in (1, 2, 3, 4, 5)
    for key in ("state", "percent", "current", "seq", "epoch", "total", "counts"):
        assert fitted[key] == full[key]
    assert [(s["state"], s["percent"], s["total"]) for s in fitted["stages"]] == [
        (s["state"], s["percent"], s["total"]) for s in full["stages"]
    ]
    tasks = [t for s in fitted["stages"] for t in s["tasks"]]
    assert [t["task_id"] for t in tasks] == [
        t["task_id"] for s in full["stages"] for t in s["tasks"]
    ]
    assert all({"state", "percent"} <= set(t) for t in tasks)


def test_the_current_stage_keeps_its_steps_first():
    from djenga.wire import fit_workflow

    stages = [[big_task(i, "SUCCESS") for i in range(150)], [big_task(9999, "PROGRESS")]]
    fitted, _text = fit_workflow(workflow_snapshot(stages))
    assert fitted["slim"] == 1
    assert all(t["steps"] == [] for t in fitted["stages"][0]["tasks"])
    assert len(fitted["stages"][1]["tasks"][0]["steps"]) == 3
