"""Policies: the shared Gaussian head, the Gaussian action-chunk policy with exact log-probs, critic,
behaviour cloning, checkpoints (policy types registered in :data:`checkpoint.POLICY_TYPES`)."""

from gipo_robot.policies.checkpoint import CheckpointError, load_policy, save_policy
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy, ObsEncoder, PolicyConfig
from gipo_robot.policies.head import GaussianHead

__all__ = [
    "CheckpointError",
    "Critic",
    "GaussianHead",
    "GaussianPolicy",
    "ObsEncoder",
    "PolicyConfig",
    "load_policy",
    "save_policy",
]
