"""Fine-tuning a camera policy on the real Lift task: the envs render the policy's camera, frames reach the
replay (uint8), the learner, the BC term and the rollout store, and the camera encoder moves as configured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gipo_robot.configs import save_config
from gipo_robot.datasets import EpisodeStore
from gipo_robot.policies import load_policy
from gipo_robot.policies.checkpoint import load_critic
from gipo_robot.policies.critic import Critic
from gipo_robot.sim import make_vector_env
from gipo_robot.sim.experts import record_demos
from gipo_robot.train.collect import collect
from gipo_robot.train.finetune import FinetuneConfig, FinetuneError, finetune
from gipo_robot.train.learner import _next_values, optimizers
from tests.train.conftest import CAMERA, record_camera_demos

TINY = dict(
    task="Lift",
    num_envs=2,
    backend="sync",
    steps_per_env=10,
    env_steps=40,  # 2 iterations of 2 envs x 10 steps
    horizon=30,
    minibatch_size=8,
    epochs=2,
    eval_every=2,
    eval_episodes=1,
    critic_warmup_iters=0,
    replay_size=2,
    policy_lr=1e-3,
    camera_encoder_lr_scale=1.0,  # large enough that one run moves the tiny CNN visibly
)


@pytest.fixture(scope="module")
def camera_demos(tmp_path_factory):
    """Two scripted Lift demonstrations recorded with the 32x32 agentview camera."""
    return record_camera_demos(tmp_path_factory.mktemp("demos"), 2, horizon=30, image_size=32)


def _cameras(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("encoder.cameras.")}


def _trunk(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("encoder.trunk.")}


def _moved(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys() and a
    return any(not torch.equal(a[k], b[k]) for k in a)


def test_camera_policy_finetunes_with_frames_in_replay_store_and_bc_term(
    tmp_path, vision_policy, camera_demos
):
    config = FinetuneConfig(**TINY, bc_coef=0.5, demo_store=camera_demos)
    history = finetune(config, vision_policy, tmp_path / "run", progress=False)
    assert [r["iteration"] for r in history] == [1, 2]
    assert np.isfinite(history[-1]["bc_nll"]) and "eval_success" in history[-1]

    # The rollout store holds the rendered frames (an image feature with its codec), every step of them.
    store = EpisodeStore.open(tmp_path / "run" / "rollouts.zarr")
    feature = store.schema[f"obs.{CAMERA}"]
    assert feature.kind == "image" and feature.shape == (32, 32, 3) and feature.dtype == "uint8"
    frames = store.read_steps(0, store.n_steps, [f"obs.{CAMERA}"])[f"obs.{CAMERA}"]
    assert frames.shape == (40, 32, 32, 3) and frames.dtype == np.uint8
    assert frames.std() > 5  # a rendered scene, not a blank fill
    assert not np.array_equal(frames[0], frames[9])  # the arm moved in view

    # The checkpoint's replay keeps the frames uint8, channels first; the next frames are held only where
    # they are not the next step's own (here: the cut at the end of each iteration, one per env).
    tensors = load_file(str(tmp_path / "run" / "checkpoint" / "trainer_state.safetensors"))
    obs = [v for k, v in tensors.items() if k.endswith(f"obs/{CAMERA}") and "next_obs" not in k]
    finals = [v for k, v in tensors.items() if k.endswith(f"final_images/{CAMERA}")]
    assert len(obs) == 2 and all(v.dtype == torch.uint8 and v.shape == (10, 2, 3, 32, 32) for v in obs)
    assert len(finals) == 2 and all(v.shape == (2, 3, 32, 32) for v in finals)
    assert not any(k.endswith(f"next_obs/{CAMERA}") for k in tensors)

    # "finetune": the policy's CNN, its trunk and the critic's own CNN all learned.
    base, tuned = (
        load_policy(vision_policy).state_dict(),
        load_policy(tmp_path / "run" / "checkpoint").state_dict(),
    )
    assert _moved(_cameras(base), _cameras(tuned)) and _moved(_trunk(base), _trunk(tuned))
    critic = load_critic(tmp_path / "run" / "checkpoint").state_dict()
    assert _moved(_cameras(base), _cameras(critic))


def test_frozen_camera_encoder_stays_bit_identical_while_the_trunk_learns(tmp_path, vision_policy):
    config = FinetuneConfig(**TINY, camera_encoder="frozen")
    finetune(config, vision_policy, tmp_path / "run", progress=False)
    base, tuned = (
        load_policy(vision_policy).state_dict(),
        load_policy(tmp_path / "run" / "checkpoint").state_dict(),
    )
    for k, v in _cameras(base).items():
        assert torch.equal(v, tuned[k]), k
    assert _moved(_trunk(base), _trunk(tuned))
    critic = load_critic(tmp_path / "run" / "checkpoint").state_dict()
    for k, v in _cameras(base).items():  # the critic's copy: initialised from the policy's, never trained
        assert torch.equal(v, critic[k]), k


def test_camera_encoder_learning_rates_follow_the_config(vision_policy):
    policy = load_policy(vision_policy)
    critic = Critic(policy.config)
    config = FinetuneConfig(policy_lr=1e-4, critic_lr=1e-3, camera_encoder_lr_scale=0.1)
    optims = optimizers(policy, critic, config)
    cnn = {id(p) for p in policy.encoder.cameras.parameters()}
    lrs = {id(p): g["lr"] for g in optims["policy"].param_groups for p in g["params"]}
    assert len(lrs) == len(list(policy.parameters()))  # every policy weight is trained ...
    assert [lrs[i] for i in cnn] == pytest.approx([1e-4 * 0.1] * len(cnn))  # ... the CNN at policy_lr x 0.1
    assert {lr for i, lr in lrs.items() if i not in cnn} == {1e-4}
    assert {g["lr"] for g in optims["critic"].param_groups} == {1e-3}  # the critic's CNN at critic_lr
    assert len(list(optims["critic"].param_groups[0]["params"])) == len(list(critic.parameters()))

    frozen = optimizers(policy, critic, FinetuneConfig(camera_encoder="frozen"))
    held = {id(p) for g in frozen["policy"].param_groups for p in g["params"]}
    held |= {id(p) for g in frozen["critic"].param_groups for p in g["params"]}
    assert not held & (cnn | {id(p) for p in critic.encoder.cameras.parameters()})


def test_resume_with_camera_frames_continues_the_same_run(tmp_path, vision_policy):
    config = FinetuneConfig(**TINY)
    finetune(config, vision_policy, tmp_path / "straight", progress=False)
    finetune(config, vision_policy, tmp_path / "resumed", stop_after=1, progress=False)
    resumed = finetune(config, vision_policy, tmp_path / "resumed", resume=True, progress=False)
    assert [r["iteration"] for r in resumed] == [1, 2]
    a = load_policy(tmp_path / "straight" / "checkpoint").state_dict()
    b = load_policy(tmp_path / "resumed" / "checkpoint").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    stores = [EpisodeStore.open(tmp_path / d / "rollouts.zarr") for d in ("straight", "resumed")]
    key = f"obs.{CAMERA}"
    assert np.array_equal(*(s.read_steps(0, s.n_steps, [key])[key] for s in stores))


def test_collect_rebuilds_every_next_frame_from_frames_held_once(vision_policy):
    """Episodes of 7 steps in an iteration of 10: next frames come from obs[t + 1], from the ended episodes'
    final observations (not the reset's) and from the cut at the end; all equal the frames the envs gave."""
    venv = make_vector_env("Lift", 2, backend="sync", horizon=7, cameras=("agentview",), image_size=32,
                           render_quality="fast")  # fmt: skip
    given = []  # the real frame after each step: the ended episode's last one where it ended
    step = venv.step

    def recording_step(actions):
        out = step(actions)
        frames = out[0][CAMERA].copy()
        for i, info in enumerate(out[4]):
            if "final_obs" in info:
                frames[i] = info["final_obs"][CAMERA]
        given.append(frames)
        return out

    venv.step = recording_step
    try:
        got = collect(load_policy(vision_policy), venv, 10, seed=0, version=0, generator=torch.Generator())
    finally:
        venv.close()
    batch = got.batch
    assert batch.terminated.any() or batch.truncated[:-1].any()  # an episode ended inside the iteration
    expected = torch.from_numpy(np.stack(given)).permute(0, 1, 4, 2, 3)  # (T, N, C, h, w)
    assert batch.obs[CAMERA].dtype == torch.uint8
    assert torch.equal(batch.next_observation()[CAMERA], expected)
    assert len(batch.final_images[CAMERA]) == int((batch.terminated | batch.truncated).sum())
    assert torch.equal(batch.flat("next_obs")[CAMERA], expected.reshape(20, 3, 32, 32))
    # The critic's values of those next observations: from the next step's own value where the episode went
    # on, from the held frames where it ended (advantages), equal to the critic on every rebuilt frame.
    policy = load_policy(vision_policy)
    critic = Critic(policy.config)
    full = critic(batch.flat("next_obs")).view(10, 2)
    values = critic(batch.flat("obs")).view(10, 2)
    assert torch.allclose(_next_values(batch, critic, values), full, atol=1e-6)


@pytest.mark.slow  # ~40 s: a local Ray and two rollout workers that render
def test_async_ray_workers_render_the_policy_camera(tmp_path, vision_policy):
    ray = pytest.importorskip("ray")
    from gipo_robot.sim.ray_backend import connect

    config = FinetuneConfig(
        **{**TINY, "backend": "ray", "env_steps": 30},
        workers=2, async_collection=True, eval_workers=1,
    )  # fmt: skip
    connect(num_cpus=2)  # a local Ray, pinned to 127.0.0.1
    try:
        history = finetune(config, vision_policy, tmp_path / "run", progress=False)
    finally:
        ray.shutdown()
    assert [r["iteration"] for r in history] == [1, 2, 3]  # each consumes one worker's batch (1 env x 10)
    store = EpisodeStore.open(tmp_path / "run" / "rollouts.zarr")
    frames = store.read_steps(0, store.n_steps, [f"obs.{CAMERA}"])[f"obs.{CAMERA}"]
    assert frames.shape == (30, 32, 32, 3) and frames.std() > 5
    base, tuned = (
        load_policy(vision_policy).state_dict(),
        load_policy(tmp_path / "run" / "checkpoint").state_dict(),
    )
    assert _moved(_cameras(base), _cameras(tuned))


def test_cli_flags_set_the_camera_encoder_and_refuse_an_unknown_mode(tmp_path, vision_policy):
    exe = str(Path(sys.executable).parent / "gipo-robot")
    save_config(FinetuneConfig(**{**TINY, "num_envs": 1, "env_steps": 10}), tmp_path / "run.json")

    def run(*flags: str) -> subprocess.CompletedProcess:
        argv = [
            exe,
            "finetune",
            "--policy",
            str(vision_policy),
            "--config",
            str(tmp_path / "run.json"),
            *flags,
        ]
        return subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=300)

    bad = run("--camera-encoder", "thaw", "--out", str(tmp_path / "bad"))
    assert bad.returncode != 0 and "camera_encoder" in json.loads(bad.stdout)["error"]
    done = run("--camera-encoder", "frozen", "--camera-encoder-lr-scale", "0.5", "--out", str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (saved["camera_encoder"], saved["camera_encoder_lr_scale"]) == ("frozen", 0.5)
    base, tuned = (
        load_policy(vision_policy).state_dict(),
        load_policy(tmp_path / "a" / "checkpoint").state_dict(),
    )
    assert not _moved(_cameras(base), _cameras(tuned)) and _moved(_trunk(base), _trunk(tuned))


def test_demonstrations_at_another_resolution_are_refused_naming_the_store(tmp_path, vision_policy):
    demos = tmp_path / "demos16.zarr"
    record_demos(demos, "Lift", 1, seed=0, horizon=5, cameras=("agentview",), image_size=16)
    config = FinetuneConfig(**TINY, bc_coef=0.5, demo_store=str(demos))
    with pytest.raises(FinetuneError, match=r"demos16.zarr: obs.agentview_image frames are \[3, 16, 16\]"):
        finetune(config, vision_policy, tmp_path / "run", progress=False)
