"""An ACT trained by LeRobot 0.6 fine-tuned with GIPO on an arm: ``finetune --robot``'s loop (the actor here,
the learner in a child process) drives the virtual Feetech arm through gipo-robot's serial driver, an
operator labels each episode, and the learner's GIPO rounds move ACT's weights; the result goes back to
LeRobot as a checkpoint LeRobot's own ``predict_action`` runs. No simulator (robosuite is not in a LeRobot
environment)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", minversion="0.6", reason=SKIP_REASON)

import torch
from lerobot.common.control_utils import predict_action
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

from gipo_robot.datasets import EpisodeStore
from gipo_robot.hardware.emulators.virtual_bus import VirtualServoBus
from gipo_robot.policies import load_policy, save_policy
from gipo_robot.policies.from_lerobot import export_lerobot, load_lerobot_policy
from gipo_robot.train.arm import ArmConfig, finetune_on_robot
from gipo_robot.train.arm.operator import ScriptedOperator
from gipo_robot.train.state import read_history
from tests.lerobot.made_by_lerobot import ARM_INPUTS


def test_trained_act_is_finetuned_with_gipo_on_the_virtual_arm(tmp_path, trained_act):
    checkpoint, _ = trained_act
    start = load_lerobot_policy(checkpoint, inputs=ARM_INPUTS, log_std_init=-1.0)
    save_policy(tmp_path / "start", start)
    with VirtualServoBus("feetech") as bus:
        (tmp_path / "arm.json").write_text(json.dumps(bus.robot_config()))
        # sync mode: after each episode the actor waits for the learner's next version, so the three episodes
        # run versions 0, 1, 2 and the learner makes a GIPO round on each (10 steps at 30 Hz)
        config = ArmConfig(robot=str(tmp_path / "arm.json"), reward="operator", mode="sync", episodes=3,
                           max_steps=10, min_new_steps=10, minibatch_size=8, objective="gipo")  # fmt: skip
        result = finetune_on_robot(config, tmp_path / "start", tmp_path / "run", status=False,
                                   operator=ScriptedOperator("yny"))  # fmt: skip
    assert result["session"]["ended"] == "budget"
    store = EpisodeStore.open(tmp_path / "run" / "episodes.zarr")
    table = store.meta_table()
    assert list(table["policy_version"]) == [0, 1, 2] and list(table["success"]) == [True, False, True]
    steps = store.episode(0)
    assert steps["obs.joint_pos"].shape == (10, 6) and steps["sample"].shape == (10, 6)
    assert np.isfinite(steps["logp"]).all() and not steps["intervention"].any()
    history = read_history(tmp_path / "run" / "metrics.csv")
    assert len(history) >= 2 and history[-1]["skipped_updates"] == 0
    # the published versions are fine-tuned ACTs: ACT's weights and the log-std moved, statistics did not
    weights = tmp_path / "run" / "weights"
    first, last = load_policy(weights / "v000000"), load_policy(weights / f"v{len(history):06d}")
    before, after = first.state_dict(), last.state_dict()
    moved = [k for k in before if k.startswith("lerobot.") and not torch.equal(before[k], after[k])]
    assert moved and not torch.equal(before["raw_log_std"], after["raw_log_std"])
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("processor_state."))

    # back to LeRobot: its own predict_action runs the fine-tuned ACT and gives the wrapped policy's chunk
    export_lerobot(last, tmp_path / "export")
    act = ACTPolicy.from_pretrained(tmp_path / "export")
    pre, post = make_pre_post_processors(act.config, pretrained_path=str(tmp_path / "export"))
    obs = {name: torch.from_numpy(steps[f"obs.{name}"][:1]).float() for name in ("joint_pos", "joint_vel")}
    observation = {
        "observation.state": obs["joint_pos"][0].numpy(),
        "observation.environment_state": obs["joint_vel"][0].numpy(),
    }
    cpu = torch.device("cpu")
    theirs = [predict_action(dict(observation), act, cpu, pre, post, use_amp=False) for _ in range(4)]
    with torch.no_grad():
        torch.testing.assert_close(
            last.env_mean(last.normalized_chunk(obs))[0], torch.cat(theirs), rtol=0, atol=0
        )
