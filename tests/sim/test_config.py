"""EnvConfig: names in the robot vocabulary, errors that list the known ones, saved configs that load back."""

from __future__ import annotations

import json

import pytest

from gipo_robot.sim.config import LEGACY_ACTION_MODES, EnvConfig
from gipo_robot.sim.randomize import Randomization


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "Wipe"}, "unknown task 'Wipe'; known: Can, Lift, Square, Stack"),
        ({"robot": "R2D2"}, "unknown robot 'R2D2'; known: .*Panda"),
        ({"action_mode": "torque"}, "unknown action_mode 'torque'; known: ee_delta, joint_delta"),
        ({"reward": "dense"}, "unknown reward 'dense'; known: sparse, shaped"),
    ],
)
def test_bad_names_list_the_known_ones(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnvConfig(**kwargs)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("joint_position", r"absolute joint targets are not offered by the simulator .*use 'joint_delta'"),
        ("osc_delta", r"end-effector pose deltas are called 'ee_delta'"),
    ],
)
def test_the_old_sim_words_typed_by_a_user_name_the_new_one(mode, message):
    with pytest.raises(ValueError, match=message):
        EnvConfig(action_mode=mode)


def test_round_trip_through_json():
    config = EnvConfig(
        task="Can",
        action_mode="joint_delta",
        cameras=("agentview",),
        randomization=Randomization(friction_scale=(0.8, 1.2), action_latency_steps=(0, 2)),
    )
    back = EnvConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config and back.to_dict() == config.to_dict()


@pytest.mark.parametrize(("old", "new"), sorted(LEGACY_ACTION_MODES.items()))
def test_configs_saved_with_the_old_sim_words_still_load(old, new):
    # what record_demos stored as attrs["env"] before the robot vocabulary
    saved = {**EnvConfig().to_dict(), "action_mode": old}
    assert EnvConfig.from_dict(saved, source="demos.zarr").action_mode == new


def test_from_dict_names_the_source_and_the_key():
    with pytest.raises(ValueError, match=r"run/config.json: unknown env config keys \['tsk'\]"):
        EnvConfig.from_dict({"tsk": "Lift"}, source="run/config.json")
    with pytest.raises(ValueError, match=r"run/config.json: horizon must be >= 1"):
        EnvConfig.from_dict({"horizon": 0}, source="run/config.json")
