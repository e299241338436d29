"""Rollout collection on the vector env (the simulator's fast path): one iteration's batch, in memory.

:func:`collect` runs ``T`` decision steps in each of ``N`` lockstep envs with the current policy and
returns the replay batch plus the episodes that ended (or were cut at the iteration's end), which the
caller appends to the store only once the whole batch exists (:func:`store_episodes`): a collection that
fails half-way (a lost Ray worker) leaves no trace, and :func:`collect_iteration` collects it again.

Shapes: ``T`` decision steps per iteration, ``N`` envs, ``H`` chunk, ``A`` action size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gipo_robot.loops.actor import policy_input
from gipo_robot.policies.gaussian import GaussianPolicy
from gipo_robot.train.config import FinetuneConfig
from gipo_robot.train.replay import RolloutBatch

__all__ = [
    "Collected",
    "backend_options",
    "collect",
    "collect_iteration",
    "one_intra_op_thread",
    "store_episodes",
]

LOGGER = logging.getLogger(__name__)


@dataclass
class Collected:
    """What one :func:`collect` call gathered.

    Attributes:
        batch: the iteration's ``(T, N)`` rollout batch for the replay buffer.
        episodes: every episode that ended or was cut, in the order they ended: ``{"steps": {key: (L, ...)
            array}, "success": bool, "cut_by_iteration": bool}``; written to the store by
            :func:`store_episodes` once the whole batch exists.
        stats: rollout statistics (episodes finished, their success rate and mean return).
    """

    batch: RolloutBatch
    episodes: list[dict[str, Any]]
    stats: dict[str, float]


def store_episodes(store: Any, episodes: list[dict[str, Any]], *, task: str, version: int) -> None:
    """Append collected episodes to an EpisodeStore (source ``rollout``, tagged with the policy version)."""
    for episode in episodes:
        store.append_episode(
            episode["steps"],
            source="rollout",
            success=episode["success"],
            task=task,
            policy_version=version,
            extra={"cut_by_iteration": episode["cut_by_iteration"]},
        )


class _EpisodeTracker:
    """The episodes in flight in each of N envs, kept in memory until they end or are cut."""

    def __init__(self, n: int) -> None:
        self.pending: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        self.returns = np.zeros(n)
        self.success = np.zeros(n, dtype=bool)
        self.episodes: list[dict[str, Any]] = []  # ended or cut, in the order they ended
        self.finished: list[tuple[bool, float]] = []  # (success, return) of episodes that really ended

    def add(self, i: int, step: dict[str, Any], reward: float, *, ended: bool, cut: bool) -> None:
        """Append env ``i``'s step; close its episode when it ``ended`` or was ``cut`` by the iteration."""
        self.returns[i] += reward
        self.pending[i].append(step)
        if not (ended or cut):
            return
        if not cut:
            self.finished.append((bool(self.success[i]), float(self.returns[i])))
        self.episodes.append({
            "steps": {key: np.stack([row[key] for row in self.pending[i]]) for key in step},
            "success": bool(self.success[i]),
            "cut_by_iteration": bool(cut),
        })  # fmt: skip
        self.pending[i] = []
        self.returns[i], self.success[i] = 0.0, False

    def stats(self) -> dict[str, float]:
        """Episodes finished in the iteration, their success rate and mean return (NaN when none)."""
        done = self.finished
        return {
            "rollout_episodes": len(done),
            "rollout_success": float(np.mean([s for s, _ in done])) if done else float("nan"),
            "rollout_return": float(np.mean([r for _, r in done])) if done else float("nan"),
        }


@torch.no_grad()
def collect(
    policy: GaussianPolicy,
    venv: Any,
    steps: int,
    *,
    seed: int,
    version: int,
    generator: torch.Generator,
    critic_features: Iterable[str] = (),
) -> Collected:
    """Run ``steps`` decision steps in every env of ``venv`` with ``policy``; see the module docstring.

    Args:
        policy: the behaviour policy (version ``version``).
        venv: a :class:`~gipo_robot.sim.vector.VectorEnv` with N envs, reset here with ``seed``.
        steps: T, decision steps per env.
        seed: env ``i`` starts from ``seed + i``.
        version: policy version recorded with every step.
        generator: draws the sampled actions.
        critic_features: low-dim features the batch keeps (in ``obs`` and ``next_obs``) besides those the
            policy reads: a critic's that reads other features (``FinetuneConfig.critic_obs``). The policy
            acts on its own features only.
    """
    keys, images = sorted(policy.config.low_dim), sorted(policy.config.images)
    extra = sorted(set(critic_features) - set(keys))  # kept for the critic, never shown to the policy
    low_dim = sorted(keys + extra)
    n = venv.num_envs
    obs_np, _ = venv.reset(seed=seed)
    rows: dict[str, list] = {
        k: [] for k in ("obs", "next_obs", "actions", "logp", "rewards", "terminated", "truncated", "final")
    }
    tracker = _EpisodeTracker(n)
    for t in range(steps):
        obs = policy_input(obs_np, keys, images, batched=True)
        mean, log_std = policy.distribution_params(obs)  # one forward pass: the sample and its density
        actions, _ = policy.sample_from_params(mean, log_std, generator)
        logp = policy.log_prob_from_params(mean, log_std, actions)
        executed = policy.clip(actions[:, 0]).numpy()
        next_np, reward, terminated, truncated, infos = venv.step(executed)
        real_next = {k: next_np[k].copy() for k in low_dim}
        for i, info in enumerate(infos):
            if "final_obs" in info:  # the episode ended: the real last observation, not the reset's
                for k in low_dim:
                    real_next[k][i] = info["final_obs"][k]
            tracker.success[i] |= bool(info.get("final_info", info).get("success", False))
        cut = (t == steps - 1) & ~(terminated | truncated)
        for i in range(n):
            step = {f"obs.{k}": obs_np[k][i] for k in obs_np}  # every observed feature, cameras included
            step.update(
                action=executed[i],
                reward=reward[i],
                terminated=terminated[i],
                truncated=truncated[i] or cut[i],
                logp=float(logp[i, 0].sum()),
                policy_version=version,
            )
            ended = bool(terminated[i] or truncated[i])
            tracker.add(i, step, reward[i], ended=ended, cut=bool(cut[i]))
            if images and (ended or cut[i]):  # the frame after this step is not the next step's own
                final = infos[i]["final_obs"] if ended else {k: next_np[k][i] for k in images}
                rows["final"].append(policy_input(final, (), images))
        rows["obs"].append({**obs, **policy_input(obs_np, extra, batched=True)} if extra else obs)
        rows["next_obs"].append(policy_input(real_next, low_dim, batched=True))
        rows["actions"].append(actions)
        rows["logp"].append(logp)
        rows["rewards"].append(torch.as_tensor(reward, dtype=torch.float32))
        rows["terminated"].append(torch.as_tensor(terminated))
        rows["truncated"].append(torch.as_tensor(truncated | cut))
        obs_np = next_np
    return Collected(
        _batch(rows, low_dim + images, steps, n, policy.config.chunk, version),
        tracker.episodes,
        tracker.stats(),
    )


def _batch(
    rows: dict[str, list], keys: list[str], steps: int, n: int, chunk: int, version: int
) -> RolloutBatch:
    """Stack the per-step rows into the iteration's ``(T, N, ...)`` batch (each chunk's first step ran);
    camera frames after the steps that ended an episode or the iteration go to ``final_images``."""
    exec_mask = torch.zeros(steps, n, chunk, dtype=torch.bool)
    exec_mask[..., 0] = True
    finals = rows["final"]
    return RolloutBatch(
        obs={k: torch.stack([o[k] for o in rows["obs"]]) for k in keys},
        next_obs={k: torch.stack([o[k] for o in rows["next_obs"]]) for k in rows["next_obs"][0]},
        actions=torch.stack(rows["actions"]),
        logp_behavior=torch.stack(rows["logp"]),
        exec_mask=exec_mask,
        rewards=torch.stack(rows["rewards"]),
        terminated=torch.stack(rows["terminated"]),
        truncated=torch.stack(rows["truncated"]),
        version=version,
        final_images={k: torch.cat([f[k] for f in finals]) for k in finals[0]} if finals else {},
    )


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Act with one torch intra-op thread, restoring the setting after. A forward pass on one observation
    per env gains nothing from more threads, and idle OpenMP threads spin on the cores the env workers need:
    on 2 busy cores a two-camera policy's forward pass (batch 2) took 98 ms with torch's default of 2 threads
    and 7 ms with one (measured; ``bench_vision.py collect`` compares whole collections)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def backend_options(config: FinetuneConfig) -> dict[str, Any]:
    """Keyword arguments of the vector env backend named in ``config``."""
    if config.backend != "ray":
        return {}
    return {
        "workers": config.workers,
        "address": config.ray_address,
        "max_restarts": config.max_worker_restarts,
    }


def collect_iteration(
    policy: GaussianPolicy,
    venv: Any,
    config: FinetuneConfig,
    iteration: int,
    gen: torch.Generator,
    version: int | None = None,
    critic_features: Iterable[str] = (),
) -> Collected:
    """One iteration's batch in lockstep, by ``policy`` of ``version`` (default ``iteration``: on-policy),
    keeping ``critic_features`` too (:func:`collect`). A lost worker (the backend has replaced it) drops the
    partial batch; the iteration is collected again from the same generator state, so it equals a run without
    the failure. The backend gives up (SimError) after ``max_worker_restarts``."""
    from gipo_robot.sim.vector import WorkerLostError

    state = gen.get_state()
    while True:
        try:
            seed = config.seed * 100_003 + iteration * config.num_envs
            with one_intra_op_thread():
                return collect(
                    policy, venv, config.steps_per_env, seed=seed, generator=gen,
                    version=iteration if version is None else version, critic_features=critic_features,
                )  # fmt: skip
        except WorkerLostError as err:
            LOGGER.warning("iteration %d: %s", iteration + 1, err)
            gen.set_state(state)
