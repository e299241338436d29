"""Value network for fine-tuning: the policy's encoder design with its own weights.

Shapes: ``B`` batch; observations as in :mod:`gipo_robot.policies.gaussian`.
"""

from __future__ import annotations

from torch import Tensor, nn

from gipo_robot.policies.gaussian import ObsEncoder, PolicyConfig

__all__ = ["Critic"]


class Critic(nn.Module):
    """State-value network ``V(o)``: same encoder design as the policy, its own weights. ``obs -> (B,)``."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ObsEncoder(config)
        self.head = nn.Linear(self.encoder.out_dim, 1)

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        return self.head(self.encoder(obs)).squeeze(-1)
