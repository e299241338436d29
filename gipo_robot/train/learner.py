"""The learner step: advantages under the current critic, then the critic and the policy updates.

One call of :meth:`Learner.update` per iteration, over every batch in the replay buffer::

    advantages   V and GAE (or V-trace) for every batch, recomputed with the current critic
    critic       U minibatch steps of the value regression toward the returns
    policy       U minibatch steps of the objective (GIPO, PPO-Clip, ...) at the configured ratio level,
                 plus an optional BC term toward demonstrations; non-finite steps are skipped and counted

``U`` (``config.updates_per_iter``) fixes the update-to-data ratio: it depends on the fresh samples per
iteration, not on the replay size K. Minibatches are drawn with the run's generator, after collection's
draws, so a resumed run repeats the same draws.

Shapes: ``T`` decision steps, ``N`` envs, ``M`` samples in the buffer, ``B`` minibatch, ``H`` chunk,
``A`` action size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from gipo_robot.advantages import gae, normalize, vtrace
from gipo_robot.objectives import at_level, get_objective
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.replay import ReplayBuffer, RolloutBatch

__all__ = ["FinetuneError", "Learner", "advantages"]


class FinetuneError(RuntimeError):
    """Fine-tuning cannot go on (repeated non-finite updates, a checkpoint that does not fit, ...)."""


def advantages(
    batch: RolloutBatch, policy: GaussianPolicy, critic: Critic, config: FinetuneConfig
) -> tuple[Tensor, Tensor]:
    """``(advantages, value_targets)``, each ``(T, N)``, of one batch under the current critic (and, for
    V-trace, the current policy's importance ratios over the executed steps: in the value targets only; the
    objective applies the ratio to the advantage itself)."""
    t, n = batch.shape
    with torch.no_grad():
        values = critic(batch.flat("obs")).view(t, n)
        next_values = critic(batch.flat("next_obs")).view(t, n)
        if config.advantage == "gae":
            return gae(
                batch.rewards, values, next_values, batch.terminated, batch.truncated,
                gamma=config.gamma, lam=config.gae_lambda,
            )  # fmt: skip
        logp = policy.log_prob_per_dim(batch.flat("obs"), batch.flat("actions")).view_as(batch.logp_behavior)
        log_rhos = ((logp - batch.logp_behavior) * batch.exec_mask[..., None]).sum(dim=(2, 3))
        return vtrace(
            log_rhos, batch.rewards, values, next_values, batch.terminated, batch.truncated,
            gamma=config.gamma, lam=config.gae_lambda, weight_advantages=False,
        )  # fmt: skip


class Learner:
    """Owns the optimisers and updates the policy and the critic from the replay buffer.

    Args:
        policy: the policy being fine-tuned.
        critic: its value network.
        config: the run's settings (objective and its parameters, learning rates, update counts, ...).
        demo_data: demonstrations for the BC term (``config.bc_coef > 0``), as
            :func:`gipo_robot.policies.bc.load_bc_data` returns them; None: no BC term.
    """

    def __init__(
        self, policy: GaussianPolicy, critic: Critic, config: FinetuneConfig, demo_data: Any = None
    ) -> None:
        self.policy, self.critic, self.config, self.demo_data = policy, critic, config, demo_data
        self.objective = get_objective(config.objective)
        self.optimizers = {
            "policy": torch.optim.Adam(policy.parameters(), lr=config.policy_lr),
            "critic": torch.optim.Adam(critic.parameters(), lr=config.critic_lr),
        }
        self.bc_coef = config.bc_coef  # the robot loop turns the BC term on once interventions arrive
        self.bad_updates = 0  # consecutive non-finite updates (policy or critic)

    def update(
        self, replay: ReplayBuffer, iteration: int, generator: torch.Generator, n_updates: int | None = None
    ) -> dict[str, Any]:
        """One iteration's updates (the policy's only after ``critic_warmup_iters``); returns their stats.

        Args:
            replay: the batches to learn from.
            iteration: the update round (0-based; the policy moves from ``critic_warmup_iters`` on).
            generator: draws the minibatches.
            n_updates: gradient steps of the critic and of the policy; None: ``config.updates_per_iter``
                (the robot loop passes its own, from the steps that arrived since the last round).

        Raises:
            FinetuneError: ``max_bad_updates`` non-finite updates in a row (of the policy or the critic:
                each is skipped and counted, never stepped).
        """
        n_updates = self.config.updates_per_iter if n_updates is None else n_updates
        data = self._gather(replay)
        record: dict[str, Any] = {
            "value_loss": self._update_critic(data, replay, generator, iteration, n_updates)
        }
        if iteration >= self.config.critic_warmup_iters:
            record.update(self._update_policy(data, replay, generator, iteration, n_updates))
        else:
            record["skipped_updates"] = 0
        with torch.no_grad():
            obs = {k: v[:1] for k, v in data["obs"].items()}
            record["log_std_mean"] = float(self.policy.distribution_params(obs)[1].mean())
        return record

    def _gather(self, replay: ReplayBuffer) -> dict[str, Any]:
        """The whole buffer as flat ``(M, ...)`` tensors, with advantages and value targets."""
        advs, rets = zip(
            *(advantages(b, self.policy, self.critic, self.config) for b in replay.batches), strict=True
        )
        return {
            "obs": {
                k: torch.cat([b.flat("obs")[k] for b in replay.batches]) for k in self.policy.config.low_dim
            },
            "actions": torch.cat([b.flat("actions") for b in replay.batches]),
            "logp_b": torch.cat([b.flat("logp_behavior") for b in replay.batches]),
            "mask": torch.cat([b.flat("exec_mask") for b in replay.batches]),
            "adv": torch.cat([a.reshape(-1) for a in advs]),
            "ret": torch.cat([r.reshape(-1) for r in rets]),
        }

    def _update_critic(
        self,
        data: dict[str, Any],
        replay: ReplayBuffer,
        generator: torch.Generator,
        iteration: int,
        n_updates: int,
    ) -> float:
        """``U`` steps of the value regression; returns the mean loss (NaN if every step was skipped)."""
        config, optim = self.config, self.optimizers["critic"]
        losses = []
        for idx in replay.minibatches(config.minibatch_size, n_updates, generator):
            obs = {k: v[idx] for k, v in data["obs"].items()}
            loss = torch.nn.functional.mse_loss(self.critic(obs), data["ret"][idx])
            if self._step(loss, self.critic, optim, iteration, "critic") is not None:
                losses.append(loss.item())
        return float(np.mean(losses)) if losses else float("nan")

    def _update_policy(
        self,
        data: dict[str, Any],
        replay: ReplayBuffer,
        generator: torch.Generator,
        iteration: int,
        n_updates: int,
    ) -> dict[str, Any]:
        """``U`` steps of the objective (stopping early past ``target_kl``); returns the mean stats."""
        config, policy, optim = self.config, self.policy, self.optimizers["policy"]
        stats_acc: dict[str, list[float]] = {}
        record: dict[str, Any] = {}
        skipped = 0
        for idx in replay.minibatches(config.minibatch_size, n_updates, generator):
            loss, stats = self._loss(data, idx, generator)
            grad_norm = self._step(loss, policy, optim, iteration, "policy")
            if grad_norm is None:
                skipped += 1
                continue
            if config.log_std_floor is not None and not policy.config.state_dependent_std:
                policy.floor_log_std(config.log_std_floor)
            stats["loss"], stats["grad_norm"] = loss.detach(), grad_norm
            for k, v in stats.items():
                stats_acc.setdefault(k, []).append(float(v))
            if config.target_kl is not None and float(stats["approx_kl"]) > config.target_kl:
                record["kl_early_stop"] = True
                break
        return {**record, **{k: float(np.mean(v)) for k, v in stats_acc.items()}, "skipped_updates": skipped}

    def _loss(self, data: dict[str, Any], idx: Tensor, generator: torch.Generator) -> tuple[Tensor, dict]:
        """The objective on minibatch ``idx`` (advantages normalised per minibatch), plus the BC term."""
        config, policy = self.config, self.policy
        obs = {k: v[idx] for k, v in data["obs"].items()}
        logp = policy.log_prob_per_dim(obs, data["actions"][idx])
        adv = normalize(data["adv"][idx])
        loss, stats = self.objective(
            *at_level(logp, data["logp_b"][idx], adv, data["mask"][idx], config.ratio_level),
            **config.objective_params,
        )
        if self.demo_data is not None and len(self.demo_data) and self.bc_coef > 0:
            rows = torch.randint(0, len(self.demo_data), (config.minibatch_size,), generator=generator)
            demo = self.demo_data.subset(rows)
            bc = -(policy.log_prob_per_dim(demo.obs, demo.actions).sum(-1) * demo.mask).sum()
            bc = bc / demo.mask.sum().clamp(min=1)
            loss = loss + self.bc_coef * bc
            stats["bc_nll"] = bc.detach()
        return loss, stats

    def _step(
        self, loss: Tensor, module: torch.nn.Module, optim: torch.optim.Optimizer, iteration: int, what: str
    ) -> Tensor | None:
        """One gradient step of ``module`` on ``loss`` (gradient norm clipped); the NaN guard: a non-finite
        loss or gradient is skipped and counted (:meth:`_count_bad_update`). Returns the gradient norm, or
        None for a skipped step."""
        optim.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), self.config.grad_clip)
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            optim.zero_grad(set_to_none=True)
            self._count_bad_update(iteration, loss, grad_norm, what=what)
            return None
        self.bad_updates = 0
        optim.step()
        return grad_norm

    def _count_bad_update(
        self, iteration: int, loss: Tensor, grad_norm: Tensor, what: str = "policy"
    ) -> None:
        self.bad_updates += 1
        if self.bad_updates >= self.config.max_bad_updates:
            hint = (
                "lower policy_lr or check the behaviour log-probs in the replay"
                if what == "policy"
                else "lower critic_lr or check the rewards and value targets in the replay"
            )
            raise FinetuneError(
                f"{self.bad_updates} non-finite {what} updates in a row at iteration {iteration + 1} "
                f"(loss {loss.item()}, grad norm {grad_norm.item()}); {hint}"
            )
