"""Learning from logged episodes of earlier sessions (``finetune --robot --from-store STORE...``).

What a logged episode contributes depends on what it recorded:

- steps a policy *sampled* with their behaviour log-prob (``deploy --sample``, earlier ``finetune --robot``
  runs): replayed under the objective as stale data. Their behaviour policy is not this run's, so they
  enter as version 0 (the run's start): their lag grows with every update, the objective's trust weight
  decides how much they still count, and with ``stale="drop"`` they leave after ``max_lag`` versions;
- teleoperated or demonstrated steps (source ``teleop``/``demo``, and intervention steps): the BC term;
- every episode with a success label: critic pretraining, a regression of V toward the label's discounted
  return (:func:`~gipo_robot.train.arm.episodes.mc_returns`) before the first round.

Deterministic deployment logs (no log-prob) therefore only teach the critic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gipo_robot.datasets import DatasetError
from gipo_robot.datasets.importers import open_dataset
from gipo_robot.policies.bc import BCData
from gipo_robot.train.arm.episodes import (
    episode_batch,
    episode_keys,
    intervention_data,
    mc_returns,
    policy_steps,
    step_obs,
)
from gipo_robot.train.replay import RolloutBatch

__all__ = ["LoggedData"]


@dataclass
class LoggedData:
    """What ``--from-store`` stores hold, in memory.

    Attributes:
        batches: one version-0 rollout batch per episode with sampled steps.
        bc: the BC term's demonstrations (teleop/demo episodes, intervention steps), or None.
        obs: feature -> ``(M, *shape)`` observations of every logged step (critic pretraining; camera frames
            ``(M, C, h, w)`` uint8).
        returns: ``(M,)`` their discounted label returns.
        n_episodes: episodes read.
    """

    batches: list[RolloutBatch] = field(default_factory=list)
    bc: BCData | None = None
    obs: dict[str, torch.Tensor] = field(default_factory=dict)
    returns: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    n_episodes: int = 0
    gamma: float = 0.99

    @classmethod
    def load(
        cls,
        paths: Sequence[str],
        low_dim: Sequence[str],
        chunk: int,
        gamma: float = 0.99,
        images: Mapping[str, Sequence[int]] | None = None,
    ) -> LoggedData:
        """Read every episode of the stores at ``paths`` (any format ``gipo-robot convert`` reads).

        Args:
            paths: the stores.
            low_dim: the low-dim features the policy reads.
            chunk: H, the policy's chunk.
            gamma: the discount of the critic's label returns.
            images: the cameras the policy reads, name -> ``[C, h, w]``.

        Raises:
            DatasetError: a store lacks an observation feature the policy reads, or holds a camera at another
                resolution (naming store and feature).
        """
        data = cls(gamma=gamma)
        images = dict(images or {})
        obs: dict[str, list[torch.Tensor]] = {k: [] for k in [*low_dim, *images]}
        returns, demos = [], []
        for path in paths:
            store = open_dataset(path)
            _check_features(store, path, low_dim, images)
            table = store.meta_table()
            keys = episode_keys(store.schema, list(obs))
            for i in range(store.n_episodes):
                steps = store.episode(i, keys)
                success = bool(table["success"][i])
                sampled = policy_steps(steps)
                if sampled.any():
                    data.batches.append(episode_batch(
                        steps, success=success, version=0, low_dim=low_dim, chunk=chunk, images=list(images)
                    ))  # fmt: skip
                demo = str(table["source"][i]) in ("teleop", "demo")
                use = np.ones(len(steps["action"]), bool) if demo else ~sampled & _intervened(steps)
                demos.append((i, steps, use))
                for k in obs:
                    obs[k].append(step_obs(steps, k, images))
                returns.append(mc_returns(len(steps["action"]), success, gamma))
                data.n_episodes += 1
        if data.n_episodes:
            data.obs = {k: torch.cat(v) for k, v in obs.items()}
            data.returns = torch.from_numpy(np.concatenate(returns)).float()
        data.bc = intervention_data(demos, low_dim, chunk, list(images))
        return data

    def pretrain_critic(
        self, critic: Any, optim: torch.optim.Optimizer, config: Any, gen: torch.Generator
    ) -> float:
        """``config.critic_pretrain_steps`` regression steps of ``critic`` toward the label returns (each
        minibatch drawn on the CPU, then moved to the critic's device); the last loss."""
        loss = torch.zeros(())
        n, device = len(self.returns), next(critic.parameters()).device
        for _ in range(config.critic_pretrain_steps):
            idx = torch.randint(0, n, (min(config.minibatch_size, n),), generator=gen)
            loss = torch.nn.functional.mse_loss(
                critic({k: v[idx].to(device) for k, v in self.obs.items()}), self.returns[idx].to(device)
            )
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(critic.parameters(), config.grad_clip)
            optim.step()
        return float(loss)


def _check_features(
    store: Any, path: str, low_dim: Sequence[str], images: Mapping[str, Sequence[int]]
) -> None:
    """Refuse a store without a feature the policy reads, or with a camera at another resolution."""
    missing = [f"obs.{k}" for k in [*low_dim, *images] if f"obs.{k}" not in store.schema]
    if missing:
        raise DatasetError(f"lacks {missing}, which the policy reads", path=path, feature=missing[0])
    for k, (c, h, w) in images.items():
        stored = tuple(store.schema[f"obs.{k}"].shape)
        if stored != (h, w, c):
            raise DatasetError(
                f"frames are {list(stored)} (h, w, C); the policy reads {[h, w, c]}", path=path,
                feature=f"obs.{k}",
            )  # fmt: skip


def _intervened(steps: dict[str, np.ndarray]) -> np.ndarray:
    n = len(steps["action"])
    return np.asarray(steps["intervention"], dtype=bool) if "intervention" in steps else np.zeros(n, bool)
