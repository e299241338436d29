"""Value network for fine-tuning: the policy's encoder design with its own weights.

By default a critic reads what its policy reads (``Critic(policy.config)``). An *asymmetric* critic reads
other features (:func:`low_dim_critic_config`: low-dim features only, e.g. the simulator's privileged object
pose beside a camera policy); its :class:`~gipo_robot.policies.gaussian.PolicyConfig` is then its own, and a
checkpoint records it (:func:`~gipo_robot.policies.checkpoint.load_critic`).

Shapes: ``B`` batch; observations as in :mod:`gipo_robot.policies.gaussian`.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import Tensor, nn

from gipo_robot.policies.gaussian import ObsEncoder, PolicyConfig

__all__ = ["Critic", "low_dim_critic_config"]


class Critic(nn.Module):
    """State-value network ``V(o)``: same encoder design as the policy, its own weights. ``obs -> (B,)``.

    It reads the features of its own ``config`` from the observation dict and ignores the others.
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ObsEncoder(config)
        self.head = nn.Linear(self.encoder.out_dim, 1)

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        return self.head(self.encoder(obs)).squeeze(-1)

    @torch.no_grad()
    def fit_obs_stats(self, obs: dict[str, Tensor]) -> None:
        """Normalise the low-dim features by their mean and std over ``obs`` (feature -> ``(M, *shape)``,
        every feature the critic reads among them; std floored as :meth:`ObsEncoder.set_obs_stats` does)."""
        names = self.encoder.low_dim_names
        data = {n: obs[n].reshape(len(obs[n]), -1).double() for n in names}
        self.encoder.set_obs_stats(
            {n: x.mean(0) for n, x in data.items()}, {n: x.std(0, correction=0) for n, x in data.items()}
        )


def low_dim_critic_config(policy_config: PolicyConfig, low_dim: dict[str, list[int]]) -> PolicyConfig:
    """The architecture of a critic that reads ``low_dim`` (feature -> shape) and no camera: the policy's
    trunk sizes and observation clip (the :class:`PolicyConfig` fields of ``policy_config``, whatever its
    class), its features replaced.

    Raises:
        ValueError: ``low_dim`` is empty.
    """
    if not low_dim:
        raise ValueError("a low-dim critic needs at least one low-dim feature")
    base = {f.name: getattr(policy_config, f.name) for f in fields(PolicyConfig)}
    return PolicyConfig(**{**base, "low_dim": {k: list(v) for k, v in low_dim.items()}, "images": {}})
