"""Advantage estimators: GAE(λ) and V-trace. Pure tensor math, no I/O, nothing else from the package.

All inputs are time-first: ``(T, ...)`` where ``T`` is the number of consecutive steps and ``...`` any batch
shape (e.g. ``N`` parallel environments). Step ``t`` is the transition ``s_t --a_t--> s_{t+1}`` with reward
``r_t``. Episode boundaries may fall anywhere inside the ``T`` steps:

- ``terminated[t]``: ``s_{t+1}`` is terminal (success, failure); its value is 0, nothing is bootstrapped.
- ``truncated[t]``: the episode was cut (time limit) at ``s_{t+1}``, which is *not* terminal: the return
  is bootstrapped with ``V(s_{t+1})``. ``next_values[t]`` must therefore be the value of the real final
  observation, not of the first observation of the next episode (gymnasium's auto-reset hands that one
  out instead; keep the final observation from ``info``).

Either flag ends the recursion: nothing flows back across an episode boundary. ``next_values[T-1]`` of an
unfinished episode bootstraps the last step as usual.

References: Schulman et al., "High-Dimensional Continuous Control Using GAE", arXiv 1506.02438, eq. (16);
Espeholt et al., "IMPALA", arXiv 1802.01561, eq. (1) and Sec. 4.2 (V-trace targets and policy gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gae", "normalize", "vtrace"]


def _check(**tensors: Tensor) -> torch.Size:
    shapes = {k: tuple(v.shape) for k, v in tensors.items()}
    first = next(iter(tensors.values())).shape
    if any(v.shape != first for v in tensors.values()) or len(first) < 1:
        raise ValueError(f"inputs must share one time-first shape (T, ...), got {shapes}")
    return first


@torch.no_grad()
def gae(
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    *,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation.

    ``δ_t = r_t + γ (1 - terminated_t) V(s_{t+1}) - V(s_t)`` and
    ``A_t = δ_t + γ λ (1 - done_t) A_{t+1}`` with ``done_t = terminated_t or truncated_t``.

    Args:
        rewards: ``(T, ...)``.
        values: ``V(s_t)``, ``(T, ...)``.
        next_values: ``V(s_{t+1})`` (the final observation's value at a truncation), ``(T, ...)``.
        terminated: bool ``(T, ...)``.
        truncated: bool ``(T, ...)``.
        gamma: discount.
        lam: GAE λ (0: one-step TD, 1: Monte Carlo with bootstrap).

    Returns:
        ``(advantages, returns)``, each ``(T, ...)``; ``returns = advantages + values`` (the critic's target).
    """
    _check(
        rewards=rewards, values=values, next_values=next_values, terminated=terminated, truncated=truncated
    )
    not_terminal = 1.0 - terminated.to(values.dtype)
    continues = 1.0 - (terminated | truncated).to(values.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values
    advantages = torch.empty_like(values)
    running = torch.zeros_like(values[0])
    for t in range(values.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * lam * continues[t] * running
        advantages[t] = running
    return advantages, advantages + values


@torch.no_grad()
def vtrace(
    log_rhos: Tensor,
    rewards: Tensor,
    values: Tensor,
    next_values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    *,
    gamma: float = 0.99,
    lam: float = 1.0,
    rho_bar: float = 1.0,
    c_bar: float = 1.0,
    weight_advantages: bool = True,
) -> tuple[Tensor, Tensor]:
    """V-trace value targets and policy-gradient advantages for off-policy (stale) data.

    With ``ρ_t = min(ρ̄, π/μ)``, ``c_t = λ min(c̄, π/μ)``::

        δ_t   = ρ_t (r_t + γ (1 - terminated_t) V(s_{t+1}) - V(s_t))
        v_t   = V(s_t) + δ_t + γ c_t (1 - done_t) (v_{t+1} - V(s_{t+1}))
        A_t   = ρ_t (r_t + γ (1 - terminated_t) v̂_{t+1} - V(s_t))     (without ρ_t: weight_advantages=False)

    where ``v̂_{t+1} = v_{t+1}`` inside an episode and ``V(s_{t+1})`` at a truncation or the data's end.
    With ``π = μ``, ``ρ̄ = c̄ = 1`` the targets ``v_t`` equal GAE(λ)'s returns.

    Args:
        log_rhos: ``log π(a_t|s_t) - log μ(a_t|s_t)``, ``(T, ...)``.
        rewards, values, next_values, terminated, truncated: as in :func:`gae`.
        gamma: discount.
        lam: trace-cutting λ (1 in IMPALA).
        rho_bar: truncation of the importance weight in δ and the advantage.
        c_bar: truncation of the trace coefficients.
        weight_advantages: multiply the advantages by ``ρ_t``, as IMPALA's policy gradient
            ``ρ_t ∇log π · A_t`` does. False for a surrogate that applies its own importance ratio
            ``π/μ`` (PPO-Clip, GIPO, ...; every objective in :mod:`gipo_robot.objectives`), which would
            otherwise weight each sample twice.

    Returns:
        ``(advantages, value_targets)``, each ``(T, ...)``: the same order as :func:`gae`.
    """
    _check(
        log_rhos=log_rhos,
        rewards=rewards,
        values=values,
        next_values=next_values,
        terminated=terminated,
        truncated=truncated,
    )
    rhos = torch.exp(log_rhos.to(values.dtype))
    clipped_rhos = rhos.clamp(max=rho_bar)
    cs = lam * rhos.clamp(max=c_bar)
    not_terminal = 1.0 - terminated.to(values.dtype)
    continues = 1.0 - (terminated | truncated).to(values.dtype)
    deltas = clipped_rhos * (rewards + gamma * not_terminal * next_values - values)
    targets = torch.empty_like(values)
    correction = torch.zeros_like(values[0])  # v_{t+1} - V(s_{t+1}) inside the episode
    for t in range(values.shape[0] - 1, -1, -1):
        correction = deltas[t] + gamma * cs[t] * continues[t] * correction
        targets[t] = values[t] + correction
    # v̂_{t+1}: the next target inside an episode, the bootstrap value at a boundary or the data's end.
    next_targets = next_values.clone()
    next_targets[:-1] = torch.where(continues[:-1].bool(), targets[1:], next_values[:-1])
    advantages = rewards + gamma * not_terminal * next_targets - values
    return (clipped_rhos * advantages if weight_advantages else advantages), targets


def normalize(advantages: Tensor, mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """Zero-mean, unit-std advantages over the (unmasked) minibatch; masked entries become 0."""
    if mask is None:
        return (advantages - advantages.mean()) / (advantages.std(unbiased=False) + eps)
    m = mask.to(advantages.dtype)
    n = m.sum().clamp(min=1)
    mean = (advantages * m).sum() / n
    var = (((advantages - mean) ** 2) * m).sum() / n
    return torch.where(mask.bool(), (advantages - mean) / (var.sqrt() + eps), torch.zeros_like(advantages))
