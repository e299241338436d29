"""The vision benchmark's paired gap to state BC (scripts/bench_vision.py ``paired_gaps``): the issue's goal
is "vision BC within 10 points of state BC", so each camera cell is compared with the state cell of its own
seed."""

import pytest

from tests.scripts import load_scripts


@pytest.fixture(scope="module")
def bench_vision():
    with load_scripts("bench_vision") as (module,):
        yield module


def cell(seed: int, obs: str, success: float, shift: int = 0, demos: int = 50) -> dict:
    config = {"image_shift": shift, "cameras": ["agentview", "robot0_eye_in_hand"], "bc_steps": 1500}
    return {"kind": "bc", "task": "Lift", "demos": demos, "seed": seed, "obs": obs, "success": success,
            "config": config}  # fmt: skip


def test_each_camera_set_is_paired_with_state_on_the_seeds_both_ran(bench_vision):
    cells = [
        cell(0, "state", 1.0), cell(1, "state", 0.7), cell(2, "state", 0.9),
        cell(0, "proprio+cameras", 0.8), cell(1, "proprio+cameras", 0.8), cell(3, "proprio+cameras", 0.1),
        cell(0, "proprio+cameras", 0.5, shift=4),
        cell(0, "proprio+cameras", 0.3, demos=10),  # no state cell at 10 demos: nothing to pair with
    ]  # fmt: skip
    gaps = bench_vision.paired_gaps(cells)
    assert [(g["obs"], g["seeds"]) for g in gaps] == [
        ("proprio+cameras [agentview + robot0_eye_in_hand]", [0]),  # the 4 px shift: its own observation set
        ("proprio+cameras [agentview + robot0_eye_in_hand] shift 0 px", [0, 1]),  # seed 3 has no state cell
    ]
    unshifted = gaps[1]
    assert unshifted["mean"] == pytest.approx(((0.8 - 1.0) + (0.8 - 0.7)) / 2)
    assert (unshifted["ahead"], unshifted["behind"], unshifted["n"]) == (1, 1, 2)
    assert unshifted["lo"] <= unshifted["mean"] <= unshifted["hi"]
    assert gaps[0]["mean"] == pytest.approx(-0.5)
