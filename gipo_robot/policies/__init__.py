"""Policies: Gaussian action-chunk policy with exact log-probs, critic, behaviour cloning, checkpoints."""

from gipo_robot.policies.checkpoint import CheckpointError, load_policy, save_policy
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy, ObsEncoder, PolicyConfig

__all__ = [
    "CheckpointError",
    "Critic",
    "GaussianPolicy",
    "ObsEncoder",
    "PolicyConfig",
    "load_policy",
    "save_policy",
]
