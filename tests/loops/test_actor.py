"""The actor: one observation-to-tensor converter and one chunk executor."""

import numpy as np
import pytest
import torch

from gipo_robot.loops.actor import PolicyActor, check_policy_fits, policy_input
from gipo_robot.policies import GaussianPolicy, PolicyConfig
from tests.hardware.test_safety import RecordingArm


def test_policy_input_casts_low_dim_and_puts_channels_first():
    image = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)  # (h, w, C) = (2, 3, 4)
    obs = {"q": np.array([1.0, 2.0]), "cam_image": image, "unused": np.zeros(5)}
    batch = policy_input(obs, ["q"], ["cam_image"])
    assert set(batch) == {"q", "cam_image"}
    assert batch["q"].dtype == torch.float32 and batch["q"].shape == (1, 2)
    assert batch["cam_image"].dtype == torch.uint8 and batch["cam_image"].shape == (1, 4, 2, 3)
    # pixel (row 1, column 2), channel 3 of the (h, w, C) image is element [3, 1, 2] of (C, h, w).
    assert batch["cam_image"][0, 3, 1, 2] == image[1, 2, 3]
    # Batched: the leading dimension is kept, (B, h, w, C) -> (B, C, h, w).
    batched = policy_input(
        {"q": np.zeros((5, 2)), "cam_image": np.stack([image] * 5)}, ["q"], ["cam_image"], batched=True
    )
    assert batched["q"].shape == (5, 2) and batched["cam_image"].shape == (5, 4, 2, 3)


def test_a_missing_feature_is_named_with_the_ones_there_are():
    with pytest.raises(KeyError, match=r"\['y'\].*\['q'\]"):
        policy_input({"q": np.zeros(2)}, ["q", "y"])


def chunk_policy(chunk: int) -> GaussianPolicy:
    """mode() = the chunk (0.1, 0.2, ..., 0.1·chunk) for every observation (one action dimension)."""
    p = GaussianPolicy(PolicyConfig(low_dim={"joint_pos": [3]}, action_dim=1, chunk=chunk, hidden=[4]))
    with torch.no_grad():
        p.mean_head.weight.zero_()
        p.mean_head.bias.copy_(torch.arange(1, chunk + 1) * 0.1)
    return p


def test_the_actor_executes_the_first_actions_of_each_chunk():
    obs = {"joint_pos": np.zeros(3)}
    actor = PolicyActor(chunk_policy(4), execute_steps=2)
    actions = [actor.act(obs) for _ in range(5)]
    # Chunk (0.1, 0.2, 0.3, 0.4); two executed, then a new chunk: 0.1, 0.2, 0.1, 0.2, 0.1.
    np.testing.assert_allclose(np.concatenate(actions), [0.1, 0.2, 0.1, 0.2, 0.1], atol=1e-6)
    assert actions[0].dtype == np.float64 and actions[0].shape == (1,)
    actor.act(obs)  # 0.2 of the third chunk
    actor.reset()  # forget the rest: the next action is a new chunk's first
    np.testing.assert_allclose(actor.act(obs), [0.1], atol=1e-6)
    whole = PolicyActor(chunk_policy(3))
    np.testing.assert_allclose(
        np.concatenate([whole.act(obs) for _ in range(4)]), [0.1, 0.2, 0.3, 0.1], atol=1e-6
    )
    with pytest.raises(ValueError, match=r"execute_steps must be in 1\.\.4"):
        PolicyActor(chunk_policy(4), execute_steps=5)


def test_a_sampling_actor_draws_from_its_generator():
    obs = {"joint_pos": np.zeros(3)}
    policy = chunk_policy(1)

    def draws(seed):
        actor = PolicyActor(policy, deterministic=False, generator=torch.Generator().manual_seed(seed))
        return np.concatenate([actor.act(obs) for _ in range(3)])

    np.testing.assert_array_equal(draws(0), draws(0))
    assert not np.allclose(draws(0), draws(1))


def test_a_policy_for_another_robot_is_refused():
    arm = RecordingArm()
    with pytest.raises(ValueError, match="action dimension is 3, the policy outputs 1"):
        check_policy_fits(chunk_policy(1).config, arm.spec)
