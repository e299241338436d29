"""A tiny ACT (LeRobot checkpoint) fine-tuned on Lift by gipo-robot's own loop, ``train.finetune``."""

from __future__ import annotations

import pytest

from tests.lerobot.conftest import SKIP_REASON

pytest.importorskip("lerobot", reason=SKIP_REASON)

import torch
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors
from safetensors.torch import load_file

from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies.checkpoint import save_policy
from gipo_robot.policies.from_lerobot import load_finetuned, load_lerobot_policy
from gipo_robot.train.finetune import FinetuneConfig, finetune

# Lift's observation spec (gipo_robot.sim): 39 robot values and a 10-d object state; 7-d action.
ROBOT = {
    "robot0_joint_pos": [7],
    "robot0_joint_pos_cos": [7],
    "robot0_joint_pos_sin": [7],
    "robot0_joint_vel": [7],
    "robot0_eef_pos": [3],
    "robot0_eef_quat": [4],
    "robot0_gripper_qpos": [2],
    "robot0_gripper_qvel": [2],
}
TINY = dict(
    task="Lift",
    num_envs=1,
    backend="sync",
    steps_per_env=15,
    env_steps=30,
    horizon=20,
    minibatch_size=8,
    epochs=2,
    eval_every=2,
    eval_episodes=1,
    critic_warmup_iters=0,
    replay_size=2,
    policy_lr=1e-4,
)


def lift_act(path) -> None:
    config = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (39,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (10,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (7,))},
        chunk_size=4,
        n_action_steps=4,
        dim_model=16,
        n_heads=2,
        dim_feedforward=32,
        n_encoder_layers=1,
        n_decoder_layers=1,
        latent_dim=4,
        n_vae_encoder_layers=1,
        pretrained_backbone_weights=None,
        device="cpu",
    )
    torch.manual_seed(0)
    stats = {
        "observation.state": {"mean": torch.zeros(39), "std": torch.ones(39)},
        "observation.environment_state": {"mean": torch.zeros(10), "std": torch.ones(10)},
        "action": {"mean": torch.zeros(7), "std": torch.full((7,), 0.5)},
    }
    pre, post = make_pre_post_processors(config, dataset_stats=stats)
    ACTPolicy(config).save_pretrained(path)
    pre.save_pretrained(path)
    post.save_pretrained(path)


def test_finetune_loop_runs_act_on_lift(tmp_path):
    lift_act(tmp_path / "act")
    inputs = {"observation.state": ROBOT, "observation.environment_state": {"object": [10]}}
    save_policy(tmp_path / "start", load_lerobot_policy(tmp_path / "act", inputs=inputs))
    # checkpoint.load_policy/load_critic dispatch LeRobot-based checkpoints to their loader: the loop needs
    # both to start, and to resume (policy, critic and optimiser state from the run's checkpoint).
    config = FinetuneConfig(**TINY)
    first = finetune(config, tmp_path / "start", tmp_path / "run", progress=False, stop_after=1)
    assert [r["iteration"] for r in first] == [1]
    history = finetune(config, tmp_path / "start", tmp_path / "run", progress=False, resume=True)
    assert [r["iteration"] for r in history] == [1, 2]
    assert "eval_success" in history[-1] and history[-1]["skipped_updates"] == 0
    store = EpisodeStore.open(tmp_path / "run" / "rollouts.zarr")
    assert store.n_steps == 30 and sorted(set(store.meta_table()["source"])) == ["rollout"]
    # the loop's checkpoint is the fine-tuned ACT: it loads back and its weights moved
    tuned = load_finetuned(tmp_path / "run" / "checkpoint")
    before = load_file(str(tmp_path / "start" / "model.safetensors"))
    after = tuned.state_dict()
    moved = [k for k in before if k.startswith("lerobot.") and not torch.equal(before[k], after[k])]
    assert moved and not torch.equal(before["raw_log_std"], after["raw_log_std"])
