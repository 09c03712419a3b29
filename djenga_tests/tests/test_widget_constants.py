"""The widget's state names and close codes (frontend/src/progress/constants.js) match the
server's: the JS module is parsed and compared with djenga.wire and djenga.live.consumers."""

from __future__ import annotations

import re
from pathlib import Path

from djenga.live import consumers
from djenga.wire import FINAL_STATES, FrameType, StepState, TaskState

CONSTANTS = Path(__file__).resolve().parents[2] / "frontend" / "src" / "progress" / "constants.js"


def js_list(name: str) -> list[str]:
    """The strings of ``export const NAME = Object.freeze([...])``."""
    match = re.search(
        rf"export const {name} = Object\.freeze\(\[(.*?)\]\)", CONSTANTS.read_text(), re.S
    )
    assert match, f"{name} not found in {CONSTANTS.name}"
    return re.findall(r"'([^']*)'", match.group(1))


def js_close_codes() -> dict[str, int]:
    match = re.search(
        r"export const CLOSE = Object\.freeze\(\{(.*?)\}\)", CONSTANTS.read_text(), re.S
    )
    assert match, f"CLOSE not found in {CONSTANTS.name}"
    return {name: int(code) for name, code in re.findall(r"(\w+): (\d+)", match.group(1))}


def test_task_states_match_task_state():
    assert js_list("TASK_STATES") == [state.value for state in TaskState]


def test_final_states_match():
    assert set(js_list("FINAL_STATES")) == {str(state) for state in FINAL_STATES}


def test_step_states_match_step_state():
    assert js_list("STEP_STATES") == [state.value for state in StepState]


def test_close_codes_match_the_consumers():
    server = {
        name.removeprefix("CLOSE_"): value
        for name, value in vars(consumers).items()
        if name.startswith("CLOSE_") and isinstance(value, int)
    }
    assert js_close_codes() == server


def test_frame_types_match_frame_type():
    match = re.search(
        r"export const FRAME = Object\.freeze\(\{(.*?)\}\)", CONSTANTS.read_text(), re.S
    )
    assert match, f"FRAME not found in {CONSTANTS.name}"
    js = dict(re.findall(r"(\w+): '([^']*)'", match.group(1)))
    assert js == {kind.name: kind.value for kind in FrameType}


def test_wire_version_matches():
    from djenga.wire import WIRE_VERSION

    match = re.search(r"export const WIRE_VERSION = (\d+);", CONSTANTS.read_text())
    assert match and int(match.group(1)) == WIRE_VERSION
