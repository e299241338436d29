"""An asymmetric critic (``critic_obs="state"``): a camera policy's critic reads the simulator's low-dim state
(object pose included, no camera), the batch keeps those features without showing them to the policy, the
checkpoint records the critic so a resume and a reload rebuild it; the default (``policy``) is unchanged and a
robot run refuses ``state``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gipo_robot.configs import save_config
from gipo_robot.policies import load_policy, save_policy
from gipo_robot.policies.checkpoint import load_critic, read_config
from gipo_robot.policies.critic import Critic
from gipo_robot.sim import make_vector_env
from gipo_robot.train.arm.config import ArmConfig
from gipo_robot.train.collect import collect
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.critic_obs import build_critic
from gipo_robot.train.finetune import FinetuneError, finetune

CAMERA = "agentview_image"
PROPRIO = {"robot0_eef_pos": [3], "robot0_gripper_qpos": [2]}  # no obs.object: what a real arm senses
TINY = dict(
    task="Lift", num_envs=2, backend="sync", steps_per_env=10, env_steps=40, horizon=30, minibatch_size=8,
    epochs=2, eval_every=2, eval_episodes=1, eval_workers=1, critic_warmup_iters=1, replay_size=2,
    policy_lr=1e-3, critic_obs="state",
)  # fmt: skip


@pytest.fixture(scope="module")
def lift_low_dim():
    """Every low-dim feature the Lift env observes, name -> shape."""
    venv = make_vector_env("Lift", 1, backend="sync")
    try:
        spec = venv.robot_spec
        return {k: list(v) for k, v in spec.obs_shapes.items() if spec.obs_dtypes[k] != "uint8"}
    finally:
        venv.close()


def test_state_critic_reads_every_low_dim_feature_and_no_camera(vision_policy, lift_low_dim):
    policy = load_policy(vision_policy)
    critic = build_critic(FinetuneConfig(critic_obs="state"), policy, lift_low_dim, where="Lift")
    assert sorted(critic.config.low_dim) == sorted(lift_low_dim) and "object" in critic.config.low_dim
    assert critic.config.images == {} and len(critic.encoder.cameras) == 0  # an MLP: no CNN
    assert critic.config.hidden == policy.config.hidden  # the policy's trunk sizes
    assert "object" not in policy.config.low_dim  # the policy is unchanged: it still reads no object
    # The default reads what the policy reads, its encoder copied from the policy's.
    default = build_critic(FinetuneConfig(), policy, lift_low_dim, where="Lift")
    assert default.config == policy.config and len(default.encoder.cameras) == 1
    for k, v in policy.encoder.state_dict().items():
        assert torch.equal(default.encoder.state_dict()[k], v), k


def test_state_critic_is_refused_where_the_env_has_no_privileged_state(vision_policy, lift_low_dim):
    proprio_only = {k: v for k, v in lift_low_dim.items() if k != "object"}
    with pytest.raises(FinetuneError, match=r"critic_obs='state'.*does not provide object"):
        build_critic(FinetuneConfig(critic_obs="state"), load_policy(vision_policy), proprio_only, where="x")


def test_bad_values_name_the_field_and_a_robot_run_refuses_state():
    with pytest.raises(ValueError, match=r"FinetuneConfig.critic_obs must be one of policy, state"):
        FinetuneConfig(critic_obs="pixels")
    with pytest.raises(ValueError, match=r"ArmConfig.critic_obs='state': a robot run has no privileged"):
        ArmConfig(critic_obs="state")
    assert FinetuneConfig().critic_obs == "policy" and ArmConfig().critic_obs == "policy"


def test_collection_keeps_the_critic_features_without_changing_what_the_policy_does(vision_policy):
    """Collecting with the critic's extra features gives the very same actions and log-probs as without, the
    policy's inputs unchanged, and ``object`` in obs and next_obs (with the ended episodes' real last one)."""
    policy = load_policy(vision_policy)
    batches = []
    for keep in ((), ("object", *PROPRIO)):
        venv = make_vector_env("Lift", 2, backend="sync", horizon=7, cameras=("agentview",), image_size=32,
                               render_quality="fast")  # fmt: skip
        try:
            got = collect(policy, venv, 10, seed=0, version=0, generator=torch.Generator().manual_seed(1),
                          critic_features=keep)  # fmt: skip
        finally:
            venv.close()
        batches.append(got.batch)
    plain, kept = batches
    assert torch.equal(plain.actions, kept.actions) and torch.equal(plain.logp_behavior, kept.logp_behavior)
    for k, v in plain.obs.items():
        assert torch.equal(v, kept.obs[k]), k
    assert set(kept.obs) == set(plain.obs) | {"object"} and "object" not in plain.obs
    assert kept.obs["object"].shape == (10, 2, 10) and kept.next_obs["object"].shape == (10, 2, 10)
    assert CAMERA not in kept.next_obs  # frames are still held once
    went_on = ~(kept.terminated | kept.truncated)[:-1]  # next_obs is the next step's own where it went on
    assert torch.equal(kept.next_obs["object"][:-1][went_on], kept.obs["object"][1:][went_on])
    ended = kept.terminated | kept.truncated
    assert ended[:-1].any()  # an episode ended inside the iteration: its real last pose, not the reset's
    assert not torch.equal(kept.next_obs["object"][:-1][ended[:-1]], kept.obs["object"][1:][ended[:-1]])


def test_camera_policy_with_state_critic_finetunes_resumes_and_reloads_it(tmp_path, vision_policy):
    config = FinetuneConfig(**TINY)
    history = finetune(config, vision_policy, tmp_path / "straight", progress=False)
    assert [r["iteration"] for r in history] == [1, 2] and all(r["value_loss"] >= 0 for r in history)
    checkpoint = tmp_path / "straight" / "checkpoint"

    # The checkpoint records the critic's own features; load_critic rebuilds exactly that critic.
    section = read_config(checkpoint)["critic"]
    assert "object" in section["low_dim"] and section["images"] == {}
    critic = load_critic(checkpoint)
    assert isinstance(critic, Critic) and "object" in critic.config.low_dim and not critic.config.images
    assert not any(k.startswith("encoder.cameras.") for k in critic.state_dict())
    assert not torch.equal(critic.encoder.obs_std, torch.ones_like(critic.encoder.obs_std))  # fitted
    policy = load_policy(checkpoint)
    assert policy.config.low_dim == PROPRIO and list(policy.config.images) == [CAMERA]

    # The replay keeps object beside the frames (held once), for the critic only.
    tensors = load_file(str(checkpoint / "trainer_state.safetensors"))
    assert {"replay.batch0.obs/object", "replay.batch0.next_obs/object"} <= set(tensors)
    assert f"replay.batch0.next_obs/{CAMERA}" not in tensors

    # The policy never reads object: its log-probs do not move when the object pose does.
    prefix = "replay.batch0.obs/"
    obs = {k[len(prefix) :]: v[0] for k, v in tensors.items() if k.startswith(prefix)}
    actions = tensors["replay.batch0.actions"][0]
    moved = {**obs, "object": obs["object"] + 10.0}
    assert torch.equal(policy.log_prob_per_dim(obs, actions), policy.log_prob_per_dim(moved, actions))
    assert not torch.equal(critic(obs), critic(moved))  # ... while the critic's values do

    # Stopped after one iteration and resumed: the same run, policy and critic bit for bit.
    finetune(config, vision_policy, tmp_path / "resumed", stop_after=1, progress=False)
    finetune(config, vision_policy, tmp_path / "resumed", resume=True, progress=False)
    for load in (load_policy, load_critic):
        a, b = (load(tmp_path / d / "checkpoint").state_dict() for d in ("straight", "resumed"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_default_critic_checkpoint_has_no_critic_section(tmp_path, vision_policy):
    """A critic that reads the policy's features leaves the checkpoint format as it was."""
    policy = load_policy(vision_policy)
    save_policy(tmp_path / "ckpt", policy, critic=Critic(policy.config))
    assert "critic" not in read_config(tmp_path / "ckpt")
    assert load_critic(tmp_path / "ckpt").config == policy.config


def test_cli_sets_critic_obs_and_refuses_it_on_a_robot(tmp_path, vision_policy):
    exe = str(Path(sys.executable).parent / "gipo-robot")
    tiny = {**TINY, "num_envs": 1, "env_steps": 10, "critic_obs": "policy"}
    save_config(FinetuneConfig(**tiny), tmp_path / "run.json")

    def run(*flags: str) -> subprocess.CompletedProcess:
        argv = [exe, "finetune", "--policy", str(vision_policy), *flags, "--json"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300)

    bad = run("--critic-obs", "pixels", "--config", str(tmp_path / "run.json"), "--out", str(tmp_path / "b"))
    assert bad.returncode != 0 and "critic_obs" in json.loads(bad.stdout)["error"]
    robot = run("--robot", "sim:Lift", "--critic-obs", "state", "--out", str(tmp_path / "arm"))
    error = json.loads(robot.stdout)["error"]
    assert robot.returncode != 0 and "critic_obs" in error and "no privileged state" in error
    done = run("--critic-obs", "state", "--config", str(tmp_path / "run.json"), "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "a" / "config.json").read_text())["critic_obs"] == "state"
    assert "object" in read_config(tmp_path / "a" / "checkpoint")["critic"]["low_dim"]


@pytest.mark.slow  # ~40 s: a local Ray and two rollout workers that render
def test_async_ray_workers_keep_the_critic_features(tmp_path, vision_policy):
    ray = pytest.importorskip("ray")
    from gipo_robot.sim.ray_backend import connect

    config = FinetuneConfig(**{**TINY, "backend": "ray", "env_steps": 20}, workers=2, async_collection=True)
    connect(num_cpus=2)  # a local Ray, pinned to 127.0.0.1
    try:
        history = finetune(config, vision_policy, tmp_path / "run", progress=False)
    finally:
        ray.shutdown()
    assert [r["iteration"] for r in history] == [1, 2]  # each consumes one worker's batch (1 env x 10)
    tensors = load_file(str(tmp_path / "run" / "checkpoint" / "trainer_state.safetensors"))
    assert tensors["replay.batch1.obs/object"].shape == (10, 1, 10)
