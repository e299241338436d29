"""Vision behaviour cloning: random-shift augmentation, observation sets over a camera store, a camera policy
that trains, saves and reloads, and the robot check that refuses it where its camera is missing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from gipo_robot.datasets import DatasetError, EpisodeStore, Feature, Schema
from gipo_robot.loops.actor import check_policy_fits
from gipo_robot.policies import bc as bc_module
from gipo_robot.policies import load_policy
from gipo_robot.policies.augment import random_shift, shift_images
from gipo_robot.policies.bc import BCConfig, load_bc_data, train_bc

os.environ.setdefault("MUJOCO_GL", "egl")

CAMERA = "agentview_image"
PROPRIO = [
    "robot0_eef_pos",
    "robot0_eef_quat",
    "robot0_gripper_qpos",
    "robot0_gripper_qvel",
    "robot0_joint_pos",
    "robot0_joint_pos_cos",
    "robot0_joint_pos_sin",
    "robot0_joint_vel",
]
SMALL = {"chunk": 2, "hidden": [32], "batch_size": 16, "eval_every": 5, "patience": 0}


def test_shift_images_by_hand():
    image = torch.arange(9, dtype=torch.uint8).reshape(1, 1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    images = torch.cat([image, image, image.expand(1, 2, 3, 3)[:, 1:]])  # three images, one channel
    out = shift_images(images, torch.tensor([[1, -1], [0, 0], [-2, 2]]))
    assert out.dtype == torch.uint8 and out.shape == (3, 1, 3, 3)
    # (dy, dx) = (1, -1): pixel (i, j) reads (clamp(i + 1), clamp(j - 1)): rows 1 2 2, columns 0 0 1.
    assert out[0, 0].tolist() == [[3, 3, 4], [6, 6, 7], [6, 6, 7]]
    assert out[1, 0].tolist() == image[0, 0].tolist()  # no shift
    # (-2, 2): rows 0 0 0, columns 2 2 2: the top-right pixel everywhere.
    assert out[2, 0].tolist() == [[2, 2, 2]] * 3


def test_random_shift_is_pad_and_crop_seeded_and_within_the_pad():
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    assert random_shift(images, 0) is images
    a = random_shift(images, 2, torch.Generator().manual_seed(1))
    b = random_shift(images, 2, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.uint8
    # Each output is a crop of the replicate-padded image at an offset in 0..2*pad along each axis.
    padded = torch.nn.functional.pad(images.float(), (2, 2, 2, 2), mode="replicate")
    for k in range(6):
        crops = [padded[k, :, y : y + 8, x : x + 8] for y in range(5) for x in range(5)]
        assert any(torch.equal(a[k].float(), c) for c in crops)
    assert not torch.equal(a, images)  # six images at 25 offsets: not all left in place
    with pytest.raises(ValueError, match="image shift"):
        random_shift(images, -1)


@pytest.fixture(scope="module")
def camera_store(tmp_path_factory):
    """Three scripted Lift demos with a 32x32 agentview camera rendered with the fast settings."""
    from gipo_robot.sim.experts import record_demos

    path = tmp_path_factory.mktemp("vision") / "demos.zarr"
    options = {"cameras": ("agentview",), "image_size": 32, "render_quality": "fast", "horizon": 60}
    return record_demos(path, "Lift", 3, seed=0, **options)


def test_obs_sets_select_features_from_a_camera_store(camera_store):
    data, _ = load_bc_data(camera_store, BCConfig(chunk=2))  # auto: proprio + cameras
    assert sorted(data.obs) == sorted([*PROPRIO, CAMERA]) and "object" not in data.obs
    assert data.images == (CAMERA,)
    frames = data.obs[CAMERA]
    assert frames.dtype == torch.uint8 and frames.shape == (len(data), 3, 32, 32)
    stored = camera_store.episode(0, [f"obs.{CAMERA}"])[f"obs.{CAMERA}"]  # (T, h, w, 3)
    np.testing.assert_array_equal(frames[: len(stored)].permute(0, 2, 3, 1).numpy(), stored)
    state, _ = load_bc_data(camera_store, BCConfig(chunk=2, obs_set="state"))
    assert sorted(state.obs) == sorted([*PROPRIO, "object"]) and state.images == ()
    cameras, _ = load_bc_data(camera_store, BCConfig(chunk=2, obs_set="cameras"))
    assert list(cameras.obs) == [CAMERA]
    explicit, _ = load_bc_data(
        camera_store, BCConfig(chunk=2, obs_keys=[f"obs.{CAMERA}", "obs.robot0_eef_pos"])
    )
    assert explicit.images == (CAMERA,) and explicit.obs[CAMERA].dtype == torch.uint8


def test_cameras_on_a_store_without_a_camera_names_the_store(tmp_path):
    schema = Schema((Feature("obs.robot0_eef_pos", "float32", (3,)), Feature("action", "float32", (2,))))
    store = EpisodeStore.create(tmp_path / "state.zarr", schema, fps=20)
    store.append_episode({"obs.robot0_eef_pos": np.zeros((5, 3), "f4"), "action": np.zeros((5, 2), "f4")})
    for obs_set in ("cameras", "proprio+cameras"):
        with pytest.raises(DatasetError, match="needs a camera") as err:
            load_bc_data(store, BCConfig(obs_set=obs_set))
        assert str(tmp_path / "state.zarr") in str(err.value)
    with pytest.raises(ValueError, match=r"BCConfig\.obs_set"):
        BCConfig(obs_set="pixels")
    with pytest.raises(ValueError, match=r"BCConfig\.image_shift"):
        BCConfig(image_shift=-1)


def test_a_vision_policy_trains_saves_reloads_and_augments_only_training_batches(
    camera_store, tmp_path, monkeypatch
):
    shifted = []

    def spy(images, pad, generator=None):
        shifted.append((images.shape[0], pad))
        return random_shift(images, pad, generator)

    monkeypatch.setattr(bc_module, "random_shift", spy)
    config = BCConfig(steps=10, image_shift=3, **SMALL)
    result = train_bc(camera_store, config, out=tmp_path / "bc", progress=False)
    policy = result.policy
    assert policy.config.images == {CAMERA: [3, 32, 32]}
    assert sorted(policy.config.low_dim) == PROPRIO  # no privileged object state
    assert policy.encoder.obs_mean.numel() == 7 * 4 + 3 + 4 + 2 + 2  # statistics for low-dim only
    # Every gradient step shifted its minibatch's frames; the two validation passes did not.
    assert shifted == [(16, 3)] * 10 and len(result.history) == 2
    # The camera encoder learned: its weights moved from a fresh policy's (same seed, same init).
    torch.manual_seed(config.seed)
    fresh = bc_module.GaussianPolicy(policy.config)
    conv = "encoder.cameras.agentview_image.convs.0.weight"
    assert not torch.equal(policy.state_dict()[conv], fresh.state_dict()[conv])
    # Saved as safetensors + JSON; reloaded, it acts the same on a stored frame.
    assert (tmp_path / "bc" / "model.safetensors").exists()
    loaded = load_policy(tmp_path / "bc")
    assert loaded.config.images == {CAMERA: [3, 32, 32]}
    data, _ = load_bc_data(camera_store, BCConfig(chunk=2))
    batch = {k: v[:4] for k, v in data.obs.items()}
    torch.testing.assert_close(loaded.mode(batch), policy.mode(batch))
    shifted.clear()
    train_bc(camera_store, BCConfig(steps=3, image_shift=0, **SMALL), progress=False)
    assert shifted == []  # image_shift=0 disables the augmentation


def test_a_robot_without_the_camera_refuses_the_vision_policy(camera_store, tmp_path):
    from gipo_robot.sim.robot import SimRobot

    policy = train_bc(camera_store, BCConfig(steps=2, **SMALL), progress=False).policy
    robot = SimRobot("Lift", horizon=10)
    try:
        with pytest.raises(ValueError, match=f"image feature '{CAMERA}' is not provided"):
            check_policy_fits(policy.config, robot.spec, where="vision policy")
    finally:
        robot.close()
    with_camera = SimRobot("Lift", horizon=10, cameras=("agentview",), image_size=32)
    try:
        check_policy_fits(policy.config, with_camera.spec)  # fits: nothing raised
    finally:
        with_camera.close()
