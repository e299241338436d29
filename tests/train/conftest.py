"""A small BC policy for Lift, trained once per test session from scripted demonstrations; a tiny untrained
camera policy for the camera fine-tuning tests."""

import pytest
import torch

from gipo_robot.policies import GaussianPolicy, PolicyConfig, save_policy
from gipo_robot.policies.bc import BCConfig, train_bc
from gipo_robot.sim.experts import record_demos

CAMERA = "agentview_image"
PROPRIO = {"robot0_eef_pos": [3], "robot0_gripper_qpos": [2]}  # no obs.object: what a real arm senses


def record_camera_demos(root, episodes: int, horizon: int, image_size: int) -> str:
    """Scripted Lift demonstrations with the agentview camera at ``image_size`` (fast rendering) in
    ``root/demos.zarr``; its path."""
    path = root / "demos.zarr"
    record_demos(path, "Lift", episodes, seed=0, horizon=horizon, cameras=("agentview",),
                 image_size=image_size, render_quality="fast")  # fmt: skip
    return str(path)


@pytest.fixture(scope="session")
def lift_bc_policy(tmp_path_factory):
    root = tmp_path_factory.mktemp("lift_bc")
    store = record_demos(root / "demos.zarr", "Lift", 3, noise=0.3, seed=0, horizon=60)
    train_bc(
        store,
        BCConfig(chunk=2, hidden=[32, 32], steps=100, eval_every=50),
        out=root / "policy",
        progress=False,
    )
    return root / "policy"


@pytest.fixture(scope="module")
def vision_policy(tmp_path_factory):
    """A tiny untrained camera policy (32x32 agentview + proprioception), with action bounds."""
    torch.manual_seed(0)
    policy = GaussianPolicy(
        PolicyConfig(
            low_dim=PROPRIO, images={CAMERA: [3, 32, 32]}, action_dim=7, hidden=[32],
            cnn_channels=[8, 8], image_feature_dim=8,
        )
    )  # fmt: skip
    policy.set_action_bounds(-torch.ones(7), torch.ones(7))
    return save_policy(tmp_path_factory.mktemp("vision") / "policy", policy)
