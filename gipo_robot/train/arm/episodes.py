"""Stored robot episodes -> what the learner trains on.

Legend: ``L`` steps of an episode, ``H`` the policy's chunk, ``A`` action size.

The actor stores every step with the features of :func:`~gipo_robot.datasets.schema.sampled_step_schema`:
besides the one step schema, the raw Gaussian ``sample`` the policy drew (what its behaviour log-prob
scores; ``action`` is the command the guard let through), ``logp_per_dim`` (the behaviour log-prob of
``sample`` per action dimension; ``logp`` is their sum) and ``intervention`` (the operator had taken over:
the step is a demonstration, not a sample).

An episode becomes one ``(L, 1)`` :class:`~gipo_robot.train.replay.RolloutBatch`:

- the reward is the episode's success *label* (1 at its last step), whatever produced it (the simulator,
  the operator, a classifier): relabelling an episode changes what the learner learns from it;
- a successful episode ends ``terminated``, any other ``truncated`` (bootstrapped with the critic);
- the policy executes the first step of each chunk (receding horizon, as in the vector path): ``actions``
  and ``logp_behavior`` hold the sample at chunk step 0, and ``exec_mask`` is True there for the steps the
  policy sampled; intervention steps (and logged steps with no behaviour log-prob) are masked out of the
  importance-sampled objective and feed the BC term instead (:func:`intervention_data`);
- camera frames stay uint8, channels first as the policy reads them (:func:`step_obs`), and are held once:
  the frame after a step is the next step's own, and the episode's last frame stands in for the one after
  it (``final_images``), as the last low-dim observation does in ``next_obs``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
import torch

from gipo_robot.policies.bc import BCData
from gipo_robot.train.replay import RolloutBatch

__all__ = [
    "episode_batch", "episode_keys", "intervention_data", "mc_returns", "policy_steps", "step_obs",
]  # fmt: skip


STEP_KEYS = ("action", "sample", "logp_per_dim", "policy_version", "intervention")
"""The step features an episode batch and the BC data read, where the store has them."""


def episode_keys(schema: object, features: Sequence[str]) -> list[str]:
    """The features to read of each stored episode: ``obs.<k>`` per policy input (low-dim and cameras), and
    :data:`STEP_KEYS` that ``schema`` has."""
    return [f"obs.{k}" for k in features] + [k for k in STEP_KEYS if k in schema]  # type: ignore[operator]


def step_obs(steps: Mapping[str, np.ndarray], feature: str, images: Collection[str] = ()) -> torch.Tensor:
    """An episode's ``obs.<feature>`` as the policy reads it: ``(L, *shape)`` float32, or for a camera in
    ``images`` the stored ``(L, h, w, C)`` uint8 frames as ``(L, C, h, w)`` uint8."""
    x = np.asarray(steps[f"obs.{feature}"])
    if feature in images:
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))
    return torch.from_numpy(x.astype(np.float32))


def policy_steps(steps: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(L,)`` bool: the steps a policy sampled with a recorded behaviour log-prob (not an operator's)."""
    n = len(steps["action"])
    if "sample" not in steps or "logp_per_dim" not in steps or "policy_version" not in steps:
        return np.zeros(n, dtype=bool)
    sampled = np.asarray(steps["policy_version"]) >= 0
    if "intervention" in steps:
        sampled &= ~np.asarray(steps["intervention"], dtype=bool)
    return sampled


def episode_batch(
    steps: Mapping[str, np.ndarray],
    *,
    success: bool,
    version: int,
    low_dim: Sequence[str],
    chunk: int,
    images: Sequence[str] = (),
) -> RolloutBatch:
    """One stored episode as a ``(L, 1)`` rollout batch (see the module docstring).

    Args:
        steps: the episode's features (``EpisodeStore.episode``): ``obs.<k>`` for each ``k`` in ``low_dim``
            and ``images``, ``action``, and where a policy sampled ``sample``, ``logp_per_dim``,
            ``policy_version``.
        success: the episode's label.
        version: the batch's policy version (the learner's lag accounting uses it).
        low_dim: the low-dim observation features the policy reads.
        chunk: H, the policy's chunk length.
        images: the camera features the policy reads.
    """
    n, a = steps["action"].shape
    obs = {k: step_obs(steps, k, images)[:, None] for k in [*low_dim, *images]}
    next_obs = {k: torch.cat([v[1:], v[-1:]]) for k, v in obs.items() if k not in images}
    final_images = {k: obs[k][-1:, 0] for k in images}  # the one step that ends: the episode's last
    mask = torch.from_numpy(policy_steps(steps))
    actions = torch.zeros(n, 1, chunk, a)
    logp = torch.zeros(n, 1, chunk, a)
    if mask.any():
        actions[:, 0, 0] = torch.from_numpy(np.asarray(steps["sample"], dtype=np.float32))
        logp[:, 0, 0] = torch.from_numpy(np.asarray(steps["logp_per_dim"], dtype=np.float32))
    exec_mask = torch.zeros(n, 1, chunk, dtype=torch.bool)
    exec_mask[:, 0, 0] = mask
    rewards = torch.zeros(n, 1)
    terminated = torch.zeros(n, 1, dtype=torch.bool)
    truncated = torch.zeros(n, 1, dtype=torch.bool)
    rewards[-1, 0] = float(success)
    terminated[-1, 0] = bool(success)
    truncated[-1, 0] = not success
    return RolloutBatch(
        obs, next_obs, actions, logp, exec_mask, rewards, terminated, truncated, version, final_images
    )


def mc_returns(length: int, success: bool, gamma: float) -> np.ndarray:
    """``(L,)`` discounted returns of an episode whose only reward is its success label at the end."""
    return float(success) * gamma ** np.arange(length - 1, -1, -1, dtype=np.float64)


def intervention_data(
    episodes: Sequence[tuple[int, Mapping[str, np.ndarray], np.ndarray]],
    low_dim: Sequence[str],
    chunk: int,
    images: Sequence[str] = (),
) -> BCData | None:
    """The BC term's demonstrations: the chosen steps of each episode, their sent ``action`` at chunk step 0.

    Args:
        episodes: ``(episode index, its features, (L,) bool steps to use)``; e.g. intervention steps, or
            every step of a teleoperated episode.
        low_dim: the low-dim observation features the policy reads.
        chunk: H.
        images: the camera features the policy reads (``(N, C, h, w)`` uint8 in the result).

    Returns:
        :class:`~gipo_robot.policies.bc.BCData` with one sample per chosen step, or None when there are none.
    """
    obs: dict[str, list[torch.Tensor]] = {k: [] for k in [*low_dim, *images]}
    actions, index = [], []
    for episode, steps, use in episodes:
        if not np.any(use):
            continue
        for k in obs:
            obs[k].append(step_obs(steps, k, images)[torch.from_numpy(np.asarray(use, dtype=bool))])
        actions.append(np.asarray(steps["action"], dtype=np.float32)[use])
        index.append(np.full(int(np.sum(use)), episode))
    if not actions:
        return None
    sent = torch.from_numpy(np.concatenate(actions))
    chunks = torch.zeros(len(sent), chunk, sent.shape[1])
    chunks[:, 0] = sent
    mask = torch.zeros(len(sent), chunk, dtype=torch.bool)
    mask[:, 0] = True
    return BCData(
        {k: torch.cat(v) for k, v in obs.items()},
        chunks,
        mask,
        torch.from_numpy(np.concatenate(index)),
        tuple(images),
    )
