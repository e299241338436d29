"""Shared fixtures: no hub access, a tiny ACT checkpoint written with LeRobot's own ``save_pretrained``."""

from __future__ import annotations

import os

import pytest

SKIP_REASON = (
    "lerobot is not installed in this venv; run `make test-lerobot` (builds .venv-lerobot, "
    "see tests/lerobot/__init__.py)"
)
STATE_LAYOUT = {"eef": [3], "gripper": [2]}
ENV_LAYOUT = {"object": [4]}
ACTION_DIM, CHUNK = 3, 6


# Any attempt to reach the Hugging Face hub fails instead of downloading. huggingface_hub reads this when
# it is first imported, so it is set here, before any test module imports lerobot.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_tiny_act(path, *, seed: int = 0, image: tuple[int, int, int] | None = None):
    """A small random ACT (state 5, environment state 4, action 3, chunk 6; optionally one camera) saved
    with ``ACTPolicy.save_pretrained`` and its processors with normalisation statistics. Returns the stats."""
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    inputs = {
        "observation.state": PolicyFeature(FeatureType.STATE, (5,)),
        "observation.environment_state": PolicyFeature(FeatureType.ENV, (4,)),
    }
    if image is not None:
        inputs["observation.images.front"] = PolicyFeature(FeatureType.VISUAL, image)
    config = ACTConfig(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        chunk_size=CHUNK,
        n_action_steps=CHUNK,
        dim_model=16,
        n_heads=2,
        dim_feedforward=32,
        n_encoder_layers=1,
        n_decoder_layers=1,
        latent_dim=4,
        n_vae_encoder_layers=1,
        vision_backbone="resnet18",
        pretrained_backbone_weights=None,
        device="cpu",
    )
    torch.manual_seed(seed)
    policy = ACTPolicy(config)
    g = torch.Generator().manual_seed(seed)
    stats = {
        "observation.state": {"mean": torch.randn(5, generator=g), "std": torch.rand(5, generator=g) + 0.5},
        "observation.environment_state": {"mean": torch.zeros(4), "std": torch.ones(4)},
        "action": {"mean": torch.tensor([0.1, -0.2, 0.0]), "std": torch.tensor([0.5, 2.0, 0.05])},
    }
    if image is not None:
        stats["observation.images.front"] = {
            "mean": torch.full((3, 1, 1), 0.5),
            "std": torch.full((3, 1, 1), 0.25),
        }
    pre, post = make_pre_post_processors(config, dataset_stats=stats)
    policy.save_pretrained(path)
    pre.save_pretrained(path)
    post.save_pretrained(path)
    return stats


@pytest.fixture(scope="session")
def tiny_act(tmp_path_factory):
    """Folder of a state-only tiny ACT checkpoint (LeRobot format)."""
    pytest.importorskip("lerobot", reason=SKIP_REASON)
    path = tmp_path_factory.mktemp("act") / "pretrained_model"
    write_tiny_act(path)
    return path
