"""Fine-tuning a camera policy on a robot (``finetune --robot``): the actor stores the frames the policy saw,
the learner trains on them (uint8, channels first, each frame held once) with the camera encoder as
configured, and the BC term takes ``demo_store``'s demonstrations; stores that do not fit the policy are
refused before the robot moves, naming store and feature."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest
import torch

from gipo_robot.datasets import DatasetError, EpisodeStore
from gipo_robot.policies import load_policy
from gipo_robot.train.arm import ArmConfig, finetune_on_robot
from gipo_robot.train.arm.episodes import episode_batch, intervention_data
from gipo_robot.train.arm.logs import LoggedData
from gipo_robot.train.learner import FinetuneError
from gipo_robot.train.state import read_history
from tests.train.conftest import CAMERA, PROPRIO, record_camera_demos

ROBOT = "sim:Lift?horizon=30&cameras=agentview&image_size=32"
FAST = dict(robot=ROBOT, realtime=False, mode="sync", min_new_steps=30, minibatch_size=16, policy_lr=1e-3,
            camera_encoder_lr_scale=1.0, critic_warmup_iters=0)  # fmt: skip


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    part = {k: v for k, v in state.items() if k.startswith(prefix)}
    assert part, prefix
    return part


def _moved(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("encoder", ["finetune", "frozen"])
def test_a_camera_policy_finetunes_on_the_arm_from_the_frames_it_saw(tmp_path, vision_policy, encoder):
    run = tmp_path / "run"
    finetune_on_robot(ArmConfig(episodes=2, camera_encoder=encoder, **FAST), vision_policy, run, status=False)
    store = EpisodeStore.open(run / "episodes.zarr")
    assert list(store.meta_table()["policy_version"]) == [0, 1]  # sync: a round after each episode
    steps = store.episode(0)
    frames = steps[f"obs.{CAMERA}"]
    assert frames.shape == (30, 32, 32, 3) and frames.dtype == np.uint8 and frames.std() > 5
    # The stored behaviour log-prob is version 0's at the stored frame and proprioception: what the learner
    # replays is exactly what the policy saw (frames channels first, uint8).
    v0 = load_policy(run / "weights" / "v000000")
    obs = {k: torch.from_numpy(steps[f"obs.{k}"]).float() for k in PROPRIO}
    obs[CAMERA] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, 1)))
    chunk = torch.zeros(len(frames), v0.config.chunk, v0.config.action_dim)
    chunk[:, 0] = torch.from_numpy(steps["sample"])
    with torch.no_grad():
        expected = v0.log_prob_per_dim(obs, chunk)[:, 0].numpy()
    np.testing.assert_allclose(steps["logp_per_dim"], expected, rtol=1e-4, atol=1e-4)
    # The learner trained on them; the camera CNN moved only where the config says so.
    history = read_history(run / "metrics.csv")
    assert len(history) == 2 and all(np.isfinite(r["approx_kl"]) for r in history)
    base, tuned = load_policy(vision_policy).state_dict(), load_policy(run / "checkpoint").state_dict()
    cameras = _part(base, "encoder.cameras.")
    assert _moved(_part(base, "encoder.trunk."), tuned)
    assert _moved(cameras, tuned) == (encoder == "finetune")


def test_episode_frames_are_held_once_and_feed_the_bc_term_channels_first():
    rng, n = np.random.default_rng(0), 5
    steps = {
        f"obs.{CAMERA}": rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
        "obs.robot0_eef_pos": rng.normal(size=(n, 3)),
        "action": rng.uniform(-1, 1, (n, 7)).astype(np.float32),
    }
    batch = episode_batch(
        steps, success=True, version=3, low_dim=["robot0_eef_pos"], chunk=2, images=[CAMERA]
    )
    chw = torch.from_numpy(np.moveaxis(steps[f"obs.{CAMERA}"], -1, 1).copy())
    assert batch.obs[CAMERA].dtype == torch.uint8 and torch.equal(batch.obs[CAMERA][:, 0], chw)
    assert CAMERA not in batch.next_obs  # held once: the next frame is the next step's own ...
    nxt = batch.next_observation()[CAMERA][:, 0]
    assert torch.equal(nxt[:-1], chw[1:]) and torch.equal(nxt[-1], chw[-1])  # ... and the last stands in
    assert batch.next_obs["robot0_eef_pos"][-1, 0].tolist() == batch.obs["robot0_eef_pos"][-1, 0].tolist()
    use = np.array([False, True, False, True, False])
    bc = intervention_data([(7, steps, use)], ["robot0_eef_pos"], 2, [CAMERA])
    assert bc.images == (CAMERA,) and torch.equal(bc.obs[CAMERA], chw[[1, 3]])
    assert bc.obs["robot0_eef_pos"].dtype == torch.float32 and bc.episode.tolist() == [7, 7]


def test_demo_store_demonstrations_feed_the_arm_runs_bc_term(tmp_path, lift_bc_policy):
    demos = lift_bc_policy.parent / "demos.zarr"
    config = ArmConfig(episodes=1, robot="sim:Lift?horizon=30", realtime=False, min_new_steps=30,
                       minibatch_size=32, critic_warmup_iters=0,
                       bc_coef=0.5, demo_store=str(demos))  # fmt: skip
    finetune_on_robot(config, lift_bc_policy, tmp_path / "run", status=False)
    first = read_history(tmp_path / "run" / "metrics.csv")[0]
    assert first["bc_steps"] == EpisodeStore.open(demos).n_steps and np.isfinite(first["bc_nll"])


@pytest.fixture(scope="module")
def demos_24px(tmp_path_factory):
    """One short Lift demonstration with a 24x24 agentview: not the 32x32 the camera policy reads."""
    return record_camera_demos(tmp_path_factory.mktemp("demos24"), 1, horizon=10, image_size=24)


def test_stores_that_do_not_fit_are_refused_before_the_robot_moves(
    tmp_path, vision_policy, demos_24px, lift_bc_policy
):
    config = ArmConfig(episodes=1, bc_coef=0.5, demo_store=demos_24px, **FAST)
    with pytest.raises(FinetuneError, match=rf"{demos_24px}: obs.{CAMERA} frames are \[3, 24, 24\]"):
        finetune_on_robot(config, vision_policy, tmp_path / "run", status=False)
    assert not (tmp_path / "run" / "episodes.zarr").exists()  # nothing ran
    no_camera = str(lift_bc_policy.parent / "demos.zarr")  # state demonstrations: no frames at all
    config = ArmConfig(episodes=1, bc_coef=0.5, demo_store=no_camera, **FAST)
    with pytest.raises(DatasetError, match="no such observation feature") as err:
        finetune_on_robot(config, vision_policy, tmp_path / "run", status=False)
    assert err.value.feature == f"obs.{CAMERA}" and not (tmp_path / "run" / "episodes.zarr").exists()
    with pytest.raises(DatasetError, match=r"frames are \[24, 24, 3\].*reads \[32, 32, 3\]") as err:
        LoggedData.load([demos_24px], list(PROPRIO), 1, images={CAMERA: [3, 32, 32]})
    assert err.value.feature == f"obs.{CAMERA}" and demos_24px in str(err.value)
