"""The learner step: advantages under the current critic, then the critic and the policy updates.

One call of :meth:`Learner.update` per iteration, over every batch in the replay buffer::

    advantages   V and GAE (or V-trace) for every batch, recomputed with the current critic
    critic       U minibatch steps of the value regression toward the returns
    policy       U minibatch steps of the objective (GIPO, PPO-Clip, ...) at the configured ratio level,
                 plus an optional BC term toward demonstrations; non-finite steps are skipped and counted

``U`` (``config.updates_per_iter``) fixes the update-to-data ratio: it depends on the fresh samples per
iteration, not on the replay size K. Minibatches are drawn with the run's generator, after collection's
draws, so a resumed run repeats the same draws.

Camera policies: minibatches carry the uint8 frames (``(B, C, h, w)``, converted to floats inside the
encoder); the policy's camera encoders learn at ``policy_lr × camera_encoder_lr_scale`` and the critic's own
copy at ``critic_lr``, or neither moves with ``camera_encoder="frozen"`` (:func:`optimizers`); frozen, each
frame is embedded once and every later round reads its embedding (:mod:`gipo_robot.train.frozen_features`).
Values and V-trace log-probs of a batch go through the CNN ``EVAL_CHUNK`` frames at a time.

Device (``config.learner_device``): the learner moves the policy and the critic there (their optimisers
follow); the replay stays on the CPU and each minibatch (and each ``EVAL_CHUNK`` of a batch) goes to the
device as it is drawn, its indices drawn on the CPU by the run's generator, so a CUDA learner draws the same
minibatches. Collection acts with :func:`collection_policy`, a CPU copy that :func:`sync_weights` brings up
to date after each update; on the CPU both are the one policy object and nothing is copied.

Shapes: ``T`` decision steps, ``N`` envs, ``M`` samples in the buffer, ``B`` minibatch, ``H`` chunk,
``A`` action size.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gipo_robot.advantages import gae, normalize, vtrace
from gipo_robot.objectives import at_level, get_objective
from gipo_robot.policies.critic import Critic
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.frozen_features import FrozenFeatures
from gipo_robot.train.replay import ReplayBuffer, RolloutBatch

__all__ = [
    "EVAL_CHUNK",
    "FinetuneError",
    "Learner",
    "advantages",
    "check_demo_store",
    "collection_policy",
    "load_demo_data",
    "optimizers",
    "sync_weights",
    "to_device",
]

#: Samples per forward pass when a whole batch of a camera policy is evaluated (values, V-trace log-probs):
#: the first conv layer of 1,000 84x84 frames alone holds 0.2 GB of activations.
EVAL_CHUNK = 512


class FinetuneError(RuntimeError):
    """Fine-tuning cannot go on (repeated non-finite updates, a checkpoint that does not fit, ...)."""


def to_device(x: Any, device: torch.device) -> Any:
    """A tensor, or a (nested) dict of them, on ``device`` (the very same tensors where they already are)."""
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x.to(device)


def collection_policy(policy: GaussianPolicy, device: torch.device) -> GaussianPolicy:
    """The policy that collection and evaluation act with, for a learner on ``device``: ``policy`` itself on
    the CPU (one object, so a run is the same as before devices existed), else a CPU copy of it that
    :func:`sync_weights` keeps up to date."""
    if torch.device(device).type == "cpu":
        return policy
    return copy.deepcopy(policy).cpu()


@torch.no_grad()
def sync_weights(learner_policy: torch.nn.Module, actor: torch.nn.Module) -> None:
    """Copy the learner's parameters and buffers into the collection copy ``actor`` (across devices); nothing
    to do when they are one module."""
    if actor is not learner_policy:
        actor.load_state_dict(learner_policy.state_dict())


def check_demo_store(config: FinetuneConfig, policy: GaussianPolicy) -> None:
    """Refuse, from its schema alone (nothing is loaded), a BC term's ``demo_store`` that lacks a feature the
    policy reads or holds its camera frames at another resolution; nothing to check when ``bc_coef`` is 0.

    Raises:
        FinetuneError: frames not at the policy's resolution (naming store and feature).
        DatasetError: a feature the policy reads is missing (naming store and feature).
    """
    if config.bc_coef <= 0:
        return
    from gipo_robot.datasets import DatasetError, EpisodeStore

    schema = EpisodeStore.open(config.demo_store).schema
    for k in [*policy.config.low_dim, *policy.config.images]:
        if f"obs.{k}" not in schema:
            raise DatasetError(
                f"no such observation feature; the policy reads it and the schema has {schema.names}",
                path=config.demo_store, feature=f"obs.{k}",
            )  # fmt: skip
    for k, shape in policy.config.images.items():
        h, w, c = schema[f"obs.{k}"].shape  # stored (h, w, C); the policy reads (C, h, w)
        if [c, h, w] != list(shape):
            raise FinetuneError(
                f"{config.demo_store}: obs.{k} frames are {[c, h, w]} (C, h, w), the policy reads {shape}"
            )


def load_demo_data(config: FinetuneConfig, policy: GaussianPolicy) -> Any:
    """The demonstrations of the BC term (``bc_coef > 0``) as flat tensors, or None: every feature the policy
    reads, camera frames as ``(M, C, h, w)`` uint8 (as the replay holds them).

    Raises:
        FinetuneError, DatasetError: as :func:`check_demo_store`; DatasetError also for a store with no
            episodes.
    """
    if config.bc_coef <= 0:
        return None
    check_demo_store(config, policy)
    from gipo_robot.datasets import EpisodeStore
    from gipo_robot.policies.bc import BCConfig, load_bc_data

    features = [*policy.config.low_dim, *policy.config.images]
    bc_config = BCConfig(chunk=policy.config.chunk, obs_keys=[f"obs.{k}" for k in features])
    return load_bc_data(EpisodeStore.open(config.demo_store), bc_config)[0]


def advantages(
    batch: RolloutBatch, policy: GaussianPolicy, critic: Critic, config: FinetuneConfig
) -> tuple[Tensor, Tensor]:
    """``(advantages, value_targets)``, each ``(T, N)``, of one batch under the current critic (and, for
    V-trace, the current policy's importance ratios over the executed steps: in the value targets only; the
    objective applies the ratio to the advantage itself). The batch's tensors go to the critic's device as
    they are used; the results are on that device."""
    t, n = batch.shape
    device = next(critic.parameters()).device
    with torch.no_grad():
        obs, chunked = batch.flat("obs"), bool(policy.config.images)
        values = _chunked(critic, obs, chunked, device).view(t, n)
        held_once = set(policy.config.images) <= set(batch.final_images)  # frames after each cut, too
        if chunked and held_once and bool((batch.terminated | batch.truncated)[-1].all()):
            next_values = _next_values(batch, critic, values)
        else:
            next_values = _chunked(critic, batch.flat("next_obs"), chunked, device).view(t, n)
        rewards, terminated, truncated = (to_device(x, device) for x in
                                          (batch.rewards, batch.terminated, batch.truncated))  # fmt: skip
        if config.advantage == "gae":
            return gae(
                rewards, values, next_values, terminated, truncated, gamma=config.gamma, lam=config.gae_lambda
            )
        logp = _chunked(
            lambda d: policy.log_prob_per_dim(d["obs"], d["actions"]),
            {"obs": obs, "actions": batch.flat("actions")}, chunked, device,
        ).view_as(batch.logp_behavior)  # fmt: skip
        logp_b, mask = to_device(batch.logp_behavior, device), to_device(batch.exec_mask, device)
        log_rhos = ((logp - logp_b) * mask[..., None]).sum(dim=(2, 3))
        return vtrace(
            log_rhos, rewards, values, next_values, terminated, truncated,
            gamma=config.gamma, lam=config.gae_lambda, weight_advantages=False,
        )  # fmt: skip


def _chunked(fn: Any, inputs: Any, chunked: bool, device: torch.device) -> Tensor:
    """``fn(inputs)``, or (``chunked``) the concatenation of ``fn`` over ``EVAL_CHUNK`` rows at a time of
    ``inputs`` (a tensor, or a dict of them, nested once), each part moved to ``device`` first. State-only
    policies take one pass, as they always did (so their runs stay bit-identical)."""

    if not chunked:
        return fn(to_device(inputs, device))

    def rows(x: Any, r: slice) -> Any:
        return {k: rows(v, r) for k, v in x.items()} if isinstance(x, dict) else x[r].to(device)

    def length(x: Any) -> int:
        return length(next(iter(x.values()))) if isinstance(x, dict) else len(x)

    return torch.cat(
        [fn(rows(inputs, slice(i, i + EVAL_CHUNK))) for i in range(0, length(inputs), EVAL_CHUNK)]
    )


def _next_values(batch: RolloutBatch, critic: Critic, values: Tensor) -> Tensor:
    """``V(next_obs)`` ``(T, N)`` of a camera batch whose next frames are held once: where the episode went
    on, the next observation is the next step's own and so is its value (``values[t + 1]``); the critic runs
    only on the observations after the steps that ended an episode or the iteration. Half the CNN passes of
    ``critic(next_obs)``, the same values up to float rounding."""
    ended = batch.terminated | batch.truncated
    next_values = torch.empty_like(values)
    next_values[:-1] = values[1:]
    final = {k: v[ended] for k, v in batch.next_obs.items()}  # low-dim features: held for every step
    final.update(batch.final_images)
    next_values[ended.to(values.device)] = _chunked(critic, final, True, values.device)
    return next_values


def optimizers(policy: GaussianPolicy, critic: Critic, config: FinetuneConfig) -> dict[str, Any]:
    """The policy's and the critic's Adam, with the camera encoders as ``config.camera_encoder`` says.

    ``finetune``: the policy's camera encoders (``encoder.cameras``) form a second parameter group at
    ``policy_lr × camera_encoder_lr_scale``; the critic learns all its weights at ``critic_lr``. ``frozen``:
    neither module's camera encoders take gradients (``requires_grad`` off) or appear in an optimiser. A
    state-only policy gets one group of all its parameters, as before camera policies existed.
    """
    cameras = list(policy.encoder.cameras.parameters()) if policy.config.images else []
    if not cameras:
        return {
            "policy": torch.optim.Adam(policy.parameters(), lr=config.policy_lr),
            "critic": torch.optim.Adam(critic.parameters(), lr=config.critic_lr),
        }
    if config.camera_encoder == "frozen":
        for p in [*cameras, *critic.encoder.cameras.parameters()]:
            p.requires_grad_(False)
        trainable = [p for p in policy.parameters() if p.requires_grad]
        return {
            "policy": torch.optim.Adam(trainable, lr=config.policy_lr),
            "critic": torch.optim.Adam(
                [p for p in critic.parameters() if p.requires_grad], lr=config.critic_lr
            ),
        }
    ids = {id(p) for p in cameras}
    groups = [
        {"params": [p for p in policy.parameters() if id(p) not in ids], "lr": config.policy_lr},
        {"params": cameras, "lr": config.policy_lr * config.camera_encoder_lr_scale},
    ]
    return {
        "policy": torch.optim.Adam(groups, lr=config.policy_lr),
        "critic": torch.optim.Adam(critic.parameters(), lr=config.critic_lr),
    }


class Learner:
    """Owns the optimisers and updates the policy and the critic from the replay buffer.

    Args:
        policy: the policy being fine-tuned; moved (in place) to ``config.learner_device``.
        critic: its value network; moved there too.
        config: the run's settings (objective and its parameters, learning rates, update counts, device, ...).
        demo_data: demonstrations for the BC term (``config.bc_coef > 0``), as
            :func:`gipo_robot.policies.bc.load_bc_data` returns them (on the CPU, like the replay); None: no
            BC term.
    """

    def __init__(
        self, policy: GaussianPolicy, critic: Critic, config: FinetuneConfig, demo_data: Any = None
    ) -> None:
        self.device = torch.device(config.learner_device)
        policy.to(self.device)  # in place, before the optimisers are built: their state follows
        critic.to(self.device)
        self.policy, self.critic, self.config, self.demo_data = policy, critic, config, demo_data
        self.objective = get_objective(config.objective)
        self.optimizers = optimizers(policy, critic, config)
        self.bc_coef = config.bc_coef  # the robot loop turns the BC term on once interventions arrive
        # frozen camera encoders: each frame is embedded once, the rounds read the embeddings
        self.frozen_features = (
            FrozenFeatures(policy) if FrozenFeatures.applies(policy, critic, config) else None
        )
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
        if self.frozen_features is not None:
            replay = self.frozen_features.view(replay)
        data = self._gather(replay)
        record: dict[str, Any] = {
            "value_loss": self._update_critic(data, replay, generator, iteration, n_updates)
        }
        if iteration >= self.config.critic_warmup_iters:
            record.update(self._update_policy(data, replay, generator, iteration, n_updates))
        else:
            record["skipped_updates"] = 0
        with torch.no_grad():
            obs = self._rows(data, self.policy, slice(0, 1))
            record["log_std_mean"] = float(self.policy.distribution_params(obs)[1].mean())
        return record

    def _gather(self, replay: ReplayBuffer) -> dict[str, Any]:
        """The whole buffer as flat ``(M, ...)`` tensors on the CPU, with advantages and value targets."""
        advs, rets = zip(
            *(advantages(b, self.policy, self.critic, self.config) for b in replay.batches), strict=True
        )
        return {
            "obs": {  # camera frames stay uint8: the encoder converts each minibatch's
                k: torch.cat([b.flat("obs")[k] for b in replay.batches])
                for k in dict.fromkeys(  # the policy's features, and a state critic's (critic_obs="state")
                    [*self.policy.config.low_dim, *self.policy.config.images, *self.critic.config.low_dim]
                )
            },
            "actions": torch.cat([b.flat("actions") for b in replay.batches]),
            "logp_b": torch.cat([b.flat("logp_behavior") for b in replay.batches]),
            "mask": torch.cat([b.flat("exec_mask") for b in replay.batches]),
            "adv": torch.cat([a.reshape(-1) for a in advs]).cpu(),
            "ret": torch.cat([r.reshape(-1) for r in rets]).cpu(),
        }

    def _rows(self, data: dict[str, Any], net: GaussianPolicy | Critic, idx: Tensor | slice) -> dict:
        """Rows ``idx`` of the features ``net`` reads, on the learner's device: a state critic's minibatch
        carries no frames, and the policy's no privileged state."""
        return {k: data["obs"][k][idx].to(self.device) for k in [*net.config.low_dim, *net.config.images]}

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
            obs = self._rows(data, self.critic, idx)
            loss = torch.nn.functional.mse_loss(self.critic(obs), data["ret"][idx].to(self.device))
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
        mb = to_device({k: data[k][idx] for k in ("actions", "logp_b", "mask", "adv")}, self.device)
        obs = self._rows(data, policy, idx)
        logp = policy.log_prob_per_dim(obs, mb["actions"])
        adv = normalize(mb["adv"])
        loss, stats = self.objective(
            *at_level(logp, mb["logp_b"], adv, mb["mask"], config.ratio_level), **config.objective_params
        )
        if self.demo_data is not None and len(self.demo_data) and self.bc_coef > 0:
            demos = self.demo_data
            if self.frozen_features is not None:  # frames embedded once
                demos = self.frozen_features.demos(demos)
            rows = torch.randint(0, len(demos), (config.minibatch_size,), generator=generator)
            demo = demos.subset(rows)
            demo_obs, mask = to_device(demo.obs, self.device), demo.mask.to(self.device)
            bc = -(policy.log_prob_per_dim(demo_obs, demo.actions.to(self.device)).sum(-1) * mask).sum()
            bc = bc / mask.sum().clamp(min=1)
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
