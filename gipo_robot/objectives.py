"""Policy-gradient objectives on importance-sampled (possibly stale) data. Pure tensor math, no I/O.

Every objective has the same contract::

    loss, stats = objective(logp, logp_behavior, advantages, mask=None, **params)

Shapes: ``logp``, ``logp_behavior`` and ``advantages`` share one shape ``S``: ``(B,)`` for one ratio per
sample (the log-prob summed over the whole action chunk), ``(B, H)`` for one ratio per chunk step, or
``(B, H, A)`` for one ratio per action dimension (see :func:`at_level`). ``B`` batch, ``H`` chunk length,
``A`` action dimension. ``mask`` (bool or float, shape ``S``) marks the entries that count; padded entries
contribute neither to the loss nor to the gradient, even if their inputs are inf or NaN.

``loss`` is a scalar to *minimise*: the negative surrogate, averaged over unmasked entries. ``stats`` is a
dict of detached scalar tensors (no ``.item()`` here: the caller decides when to synchronise).

Notation: ``r = log ρ = logp - logp_behavior`` (the log importance ratio of the current policy π_θ against the
behaviour policy μ that produced the data), ``Â`` the advantage, ``sg[·]`` stop-gradient. Each docstring
states the per-sample gradient as a multiple of the on-policy gradient ``Â ∇log π_θ``; that multiple is the
objective's *effective weight*, reported in ``stats`` as ``weight_mean`` and ``frac_weight_below_1e-3``.
At ρ = 1 every objective here has weight 1, i.e. reduces to the on-policy policy gradient.

Numerics: :func:`gipo` evaluates ``ρ·ω(ρ)`` in log space and is finite for any log-ratio. The others
evaluate ``ρ = exp(r)`` directly, which is finite in float32 for ``|r| < 88`` (float64: ``< 709``).

References:
    GIPO: Lu et al., "GIPO: Gaussian Importance Sampling Policy Optimization", arXiv 2603.03955 (2026).
    PPO-Clip: Schulman et al., arXiv 1707.06347, eq. (7).
    SAPO: Gao et al., "Soft Adaptive Policy Optimization", arXiv 2511.20347 (soft sigmoid gate).
    CISPO: MiniMax-M1 technical report, arXiv 2506.13585, eq. (4)-(5).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "OBJECTIVES",
    "at_level",
    "check_objective_params",
    "cispo",
    "get_objective",
    "gipo",
    "gipo_peak_weight",
    "gipo_trust_weight",
    "no_clip",
    "objective_params",
    "ppo_clip",
    "sapo",
]

Objective = Callable[..., tuple[Tensor, dict[str, Tensor]]]
Level = Literal["chunk", "step", "dim"]

NEAR_ZERO = 1e-3
"""Threshold below which an effective weight counts as 'near zero' (a dead or almost-dead sample)."""


# ----------------------------------------------------------------------------------------------------------
# Helpers shared by every objective
# ----------------------------------------------------------------------------------------------------------


def _prepare(
    logp: Tensor, logp_behavior: Tensor, advantages: Tensor, mask: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Check shapes and return ``(log_ratio, advantages, mask)`` with masked entries zeroed.

    Zeroing happens with ``torch.where`` *before* any ``exp``, so inf/NaN in padded entries never reaches
    the loss or the gradient. The behaviour log-prob and the advantages are constants (no gradient).
    """
    if logp.shape != logp_behavior.shape or logp.shape != advantages.shape:
        raise ValueError(
            "logp, logp_behavior and advantages must have the same shape, got "
            f"logp {tuple(logp.shape)}, logp_behavior {tuple(logp_behavior.shape)}, "
            f"advantages {tuple(advantages.shape)}"
        )
    if mask is None:
        m = torch.ones_like(logp, dtype=torch.bool)
    else:
        m = torch.as_tensor(mask, device=logp.device)
        if m.shape != logp.shape:
            raise ValueError(f"mask must have the shape of logp {tuple(logp.shape)}, got {tuple(m.shape)}")
        m = m.bool()
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    log_ratio = torch.where(m, logp - logp_behavior.detach(), zero)
    adv = torch.where(m, advantages.detach().to(logp.dtype), zero)
    return log_ratio, adv, m


def _masked_mean(x: Tensor, m: Tensor) -> Tensor:
    """Mean of ``x`` over ``m``; 0 when nothing is unmasked (no NaN from an empty batch)."""
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    return torch.where(m, x, zero).sum() / m.sum().clamp(min=1).to(x.dtype)


def _masked_max(x: Tensor, m: Tensor) -> Tensor:
    """Max of ``x`` over ``m``; 0 when nothing is unmasked. Branch-free (no host sync on a GPU)."""
    lowest = torch.full((), -torch.inf, dtype=x.dtype, device=x.device)
    return torch.where(
        m.any(), torch.where(m, x, lowest).max(), torch.zeros((), dtype=x.dtype, device=x.device)
    )


def _per_sign(adv: Tensor, pos: float, neg: float) -> Tensor:
    """``pos`` where the advantage is positive, ``neg`` elsewhere, in the advantages' dtype and device."""
    return torch.where(adv > 0, torch.tensor(pos, dtype=adv.dtype, device=adv.device), neg)


def _common_stats(log_ratio: Tensor, weight: Tensor, m: Tensor) -> dict[str, Tensor]:
    """Statistics every objective logs, computed without gradient.

    - ``ratio_mean`` / ``ratio_max``: of ρ over unmasked entries.
    - ``approx_kl``: the k3 estimator ``(ρ - 1) - log ρ`` of KL(μ‖π_θ) (Schulman; cleanrl's ``approx_kl``).
    - ``ess``: normalised effective sample size of the importance weights,
      ``(Σρ)² / (N Σρ²)`` in (0, 1], computed with log-sum-exp so it is finite for any log-ratio.
    - ``weight_mean``: mean effective weight (the multiple of ``Â ∇log π`` each sample contributes).
    - ``frac_weight_below_1e-3``: fraction of samples whose effective weight is below 1e-3.
    """
    r = log_ratio.detach()
    w = weight.detach()
    n = m.sum().clamp(min=1).to(r.dtype)
    ratio = r.exp()
    r_valid = torch.where(m, r, torch.full((), -torch.inf, dtype=r.dtype, device=r.device)).flatten()
    log_ess = 2 * torch.logsumexp(r_valid, dim=0) - torch.logsumexp(2 * r_valid, dim=0)
    ess = torch.where(m.any(), log_ess.exp() / n, torch.zeros((), dtype=r.dtype, device=r.device))
    return {
        "ratio_mean": _masked_mean(ratio, m),
        "ratio_max": _masked_max(ratio, m),
        "approx_kl": _masked_mean(torch.expm1(r) - r, m),
        "ess": ess,
        "weight_mean": _masked_mean(w, m),
        "frac_weight_below_1e-3": _masked_mean((w.abs() < NEAR_ZERO).to(r.dtype), m),
    }


def at_level(
    logp: Tensor,
    logp_behavior: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    level: Level = "chunk",
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Arrange per-dimension log-probs of an action chunk for a ratio at the chosen level.

    Args:
        logp: current log-probs per action dimension, ``(B, H, A)``.
        logp_behavior: behaviour log-probs, ``(B, H, A)``.
        advantages: one advantage per chunk, ``(B,)``.
        mask: valid chunk steps, ``(B, H)`` (padding at episode ends), or None.
        level: ``"chunk"`` one ratio per chunk (log-probs summed over H and A, the exact chunk likelihood
            ratio); ``"step"`` one ratio per chunk step (summed over A); ``"dim"`` one per action dimension
            (the authors' per-action-token ratio).

    Returns:
        ``(logp, logp_behavior, advantages, mask)`` of one common shape ``(B,)``, ``(B, H)`` or ``(B, H, A)``,
        ready for any objective in this module.

    Raises:
        ValueError: on shapes that do not fit the legend or an unknown level.
    """
    if logp.dim() != 3 or logp.shape != logp_behavior.shape:
        raise ValueError(
            f"at_level expects logp and logp_behavior of shape (B, H, A), got {tuple(logp.shape)} "
            f"and {tuple(logp_behavior.shape)}"
        )
    b, h, a = logp.shape
    if advantages.shape != (b,):
        raise ValueError(f"advantages must have shape (B,) = ({b},), got {tuple(advantages.shape)}")
    if mask is not None and mask.shape != (b, h):
        raise ValueError(f"mask must have shape (B, H) = ({b}, {h}), got {tuple(mask.shape)}")
    step_mask = None if mask is None else mask.bool()
    if step_mask is not None:
        # Padded steps must not leak into the sums below.
        keep = step_mask[..., None]
        logp = torch.where(keep, logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
        logp_behavior = torch.where(
            keep, logp_behavior, torch.zeros((), dtype=logp.dtype, device=logp.device)
        )
    if level == "chunk":
        chunk_mask = None if step_mask is None else step_mask.any(dim=1)
        return logp.sum(dim=(1, 2)), logp_behavior.sum(dim=(1, 2)), advantages, chunk_mask
    if level == "step":
        return logp.sum(dim=2), logp_behavior.sum(dim=2), advantages[:, None].expand(b, h), step_mask
    if level == "dim":
        dim_mask = None if step_mask is None else step_mask[..., None].expand(b, h, a)
        return logp, logp_behavior, advantages[:, None, None].expand(b, h, a), dim_mask
    raise ValueError(f"unknown ratio level {level!r}; known: 'chunk', 'step', 'dim'")


# ----------------------------------------------------------------------------------------------------------
# GIPO
# ----------------------------------------------------------------------------------------------------------


def gipo_trust_weight(log_ratio: Tensor, sigma: float | Tensor = 1.0) -> Tensor:
    """Gaussian trust weight ω(ρ; σ) = exp(-(log ρ)² / (2σ²)) (GIPO, arXiv 2603.03955, Sec. 3).

    Equal to 1 at ρ = 1, symmetric in log space (ω(ρ) = ω(1/ρ)), strictly positive for finite log ρ.
    """
    return torch.exp(-0.5 * (log_ratio / sigma) ** 2)


def gipo_peak_weight(sigma: float) -> float:
    """Largest effective weight ρ·ω(ρ; σ) a sample can carry under GIPO: ``exp(σ²/2)``, at ρ = exp(σ²)."""
    return math.exp(sigma**2 / 2)


def gipo(
    logp: Tensor,
    logp_behavior: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    sigma: float = 1.0,
    sigma_neg: float | None = None,
    kl_coef: float = 0.0,
    one_sided: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """GIPO: truncated importance sampling with a Gaussian trust weight in log-ratio space.

    Per sample, with the trust weight evaluated on the stop-gradient ratio (as in the authors' code)::

        L = -mean( ω(sg[ρ]; σ) · ρ · Â )   →   ∇L = -mean( ω(ρ; σ) · ρ · Â · ∇log π_θ )

    No ``min``, no clip, no hard truncation constant: the truncation is soft, through ω. The effective
    weight ``ρ·ω(ρ) = exp(r - r²/(2σ²))`` peaks at ``exp(σ²/2)`` when ``ρ = exp(σ²)`` — the σ-tunable bound on
    each sample's update the paper derives — and is never exactly zero, so stale samples keep a small
    gradient instead of dying as under PPO's clip. It is computed as one ``exp`` of that exponent, so it is
    finite (and underflows gracefully to 0) for any log-ratio.

    Args:
        logp, logp_behavior, advantages, mask: see the module docstring.
        sigma: width σ of the trust region in log-ratio space (paper: 1.0 for LIBERO, 0.5 in minimal
            examples; sweeps over {0.1, 0.3, 0.5, 1, 2}).
        sigma_neg: optional narrower σ for samples with negative advantage (later versions of the
            authors' code use 0.5σ); None uses ``sigma`` for both signs (the paper's symmetric form).
        kl_coef: weight of an added KL(μ‖π_θ) penalty (k3 estimator ``(ρ-1) - log ρ``); the authors' code
            uses 0.1, off here. The penalty evaluates ρ itself, so with it on the loss is finite only for
            ``|r| < 88`` in float32.
        one_sided: damp only ρ > 1 (ω = 1 for ρ ≤ 1, so those samples keep plain IS weight ρ ≤ 1). Not in
            the paper: our exact bias–variance study (BENCHMARKS.md) traced GIPO's gap to SAPO and
            truncated IS on stale data to the symmetric form also shrinking ρ < 1; off by default.

    Returns:
        ``(loss, stats)``; stats add ``trust_weight_mean`` (mean ω) to the common ones.
    """
    if sigma <= 0 or (sigma_neg is not None and sigma_neg <= 0):
        raise ValueError(f"sigma and sigma_neg must be positive, got sigma={sigma}, sigma_neg={sigma_neg}")
    r, adv, m = _prepare(logp, logp_behavior, advantages, mask)
    s = sigma if sigma_neg is None else _per_sign(adv, sigma, sigma_neg)
    # ρ · ω(sg[ρ]) = exp(r - ½ (sg[r]/σ)²): one exp, finite for any r, gradient ρ·ω·∇r.
    r_trust = r.detach().clamp(min=0.0) if one_sided else r.detach()
    weighted_ratio = torch.exp(r - 0.5 * (r_trust / s) ** 2)
    per_sample = -weighted_ratio * adv
    if kl_coef:
        per_sample = per_sample + kl_coef * (torch.expm1(r) - r)
    loss = _masked_mean(per_sample, m)
    stats = _common_stats(r, weighted_ratio, m)
    stats["trust_weight_mean"] = _masked_mean(gipo_trust_weight(r_trust, s), m)
    return loss, stats


# ----------------------------------------------------------------------------------------------------------
# Baselines
# ----------------------------------------------------------------------------------------------------------


def ppo_clip(
    logp: Tensor,
    logp_behavior: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    eps: float = 0.2,
    eps_high: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO-Clip (Schulman et al. 2017, eq. 7): ``L = -mean(min(ρÂ, clip(ρ, 1-ε, 1+ε_high)Â))``.

    The effective weight is ρ inside the band and exactly 0 outside it on the clipped side (ρ > 1+ε with
    Â > 0, or ρ < 1-ε with Â < 0): those samples are dead. On the other side the unclipped term is the
    minimum, so the gradient stays ρ·Â·∇log π.

    Args:
        eps: clip range ε (paper's baseline: 0.2).
        eps_high: optional separate upper range (DAPO's "clip-higher"); None uses ``eps``.

    Returns:
        ``(loss, stats)``; stats add ``clip_frac``, the fraction of samples on the clipped side.
    """
    hi = eps if eps_high is None else eps_high
    if eps <= 0 or hi <= 0:
        raise ValueError(f"eps and eps_high must be positive, got eps={eps}, eps_high={eps_high}")
    r, adv, m = _prepare(logp, logp_behavior, advantages, mask)
    ratio = torch.exp(r)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + hi) * adv)
    loss = _masked_mean(-surrogate, m)
    with torch.no_grad():
        clipped = ((ratio > 1 + hi) & (adv > 0)) | ((ratio < 1 - eps) & (adv < 0))
        weight = torch.where(clipped, torch.zeros_like(ratio), ratio)
    stats = _common_stats(r, weight, m)
    stats["clip_frac"] = _masked_mean(clipped.to(r.dtype), m)
    return loss, stats


def sapo(
    logp: Tensor,
    logp_behavior: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    tau_pos: float = 1.0,
    tau_neg: float = 2.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """SAPO: a soft sigmoid gate instead of the clip, ``L = -mean((4/τ)·sigmoid(τ(ρ - 1))·Â)``.

    τ is ``tau_pos`` for Â > 0 and ``tau_neg`` otherwise. The gate's slope at ρ = 1 is (4/τ)·τ·¼ = 1, so the
    gradient there is the on-policy one; the effective weight is ``4·s(1-s)·ρ`` with ``s = sigmoid(τ(ρ-1))``,
    which decays smoothly away from ρ = 1 (faster for the larger τ). Defaults are the GIPO paper's baseline
    setting (τ₊ = 1, τ₋ = 2); SAPO's own default is τ₋ = 1.05.
    """
    if tau_pos <= 0 or tau_neg <= 0:
        raise ValueError(f"tau_pos and tau_neg must be positive, got {tau_pos}, {tau_neg}")
    r, adv, m = _prepare(logp, logp_behavior, advantages, mask)
    ratio = torch.exp(r)
    tau = _per_sign(adv, tau_pos, tau_neg)
    gate = torch.sigmoid(tau * (ratio - 1))
    loss = _masked_mean(-(4.0 / tau) * gate * adv, m)
    with torch.no_grad():
        weight = 4 * gate * (1 - gate) * ratio
    stats = _common_stats(r, weight, m)
    stats["gate_mean"] = _masked_mean(gate.detach(), m)
    return loss, stats


def no_clip(
    logp: Tensor,
    logp_behavior: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    truncate: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """No-Clip: plain importance sampling ``L = -mean(ρÂ)`` (unbiased, high variance).

    With ``truncate = c`` it becomes truncated IS (IMPALA/ACER style): ``L = -mean(sg[min(ρ, c)]·log π_θ·Â)``,
    gradient ``min(ρ, c)·Â·∇log π``. The loss *value* of that form is a surrogate (its gradient is the point).

    Args:
        truncate: optional truncation level c > 0 of the importance weight; None is plain IS.
    """
    r, adv, m = _prepare(logp, logp_behavior, advantages, mask)
    if truncate is None:
        ratio = torch.exp(r)
        per_sample = -ratio * adv
        weight = ratio
    else:
        if truncate <= 0:
            raise ValueError(f"truncate must be positive, got {truncate}")
        weight = torch.exp(r.detach()).clamp(max=truncate)
        per_sample = -weight * r * adv
    loss = _masked_mean(per_sample, m)
    return loss, _common_stats(r, weight, m)


def cispo(
    logp: Tensor,
    logp_behavior: Tensor,
    advantages: Tensor,
    mask: Tensor | None = None,
    *,
    eps_low: float | None = None,
    eps_high: float = 0.2,
) -> tuple[Tensor, dict[str, Tensor]]:
    """CISPO (MiniMax-M1): clip the importance *weight*, not the update: ``L = -mean(sg[clip(ρ)]·log π_θ·Â)``.

    Unlike PPO no sample is dead: the gradient is ``clip(ρ, 1-ε_low, 1+ε_high)·Â·∇log π`` everywhere.

    Args:
        eps_low: optional lower range; None means no lower bound (as in the MiniMax-M1 report).
        eps_high: upper range of the weight.
    """
    if eps_high <= 0 or (eps_low is not None and not 0 < eps_low <= 1):
        raise ValueError(
            f"need eps_high > 0 and 0 < eps_low <= 1, got eps_low={eps_low}, eps_high={eps_high}"
        )
    r, adv, m = _prepare(logp, logp_behavior, advantages, mask)
    low = 0.0 if eps_low is None else 1 - eps_low
    weight = torch.exp(r.detach()).clamp(min=low, max=1 + eps_high)
    loss = _masked_mean(-weight * r * adv, m)
    stats = _common_stats(r, weight, m)
    ratio = torch.exp(r.detach())
    stats["clip_frac"] = _masked_mean(((ratio > 1 + eps_high) | (ratio < low)).to(r.dtype), m)
    return loss, stats


# ----------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------

OBJECTIVES: dict[str, Objective] = {
    "gipo": gipo,
    "ppo_clip": ppo_clip,
    "sapo": sapo,
    "no_clip": no_clip,
    "cispo": cispo,
}
"""Objectives by name (the names the CLI and configs use)."""


def get_objective(name: str) -> Objective:
    """Look an objective up by name.

    Raises:
        KeyError: naming the known objectives when ``name`` is unknown.
    """
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise KeyError(f"unknown objective {name!r}; known: {', '.join(sorted(OBJECTIVES))}") from None


# ----------------------------------------------------------------------------------------------------------
# Parameters, checked before anything runs
# ----------------------------------------------------------------------------------------------------------

_TRUE, _FALSE, _NONE = ("true", "yes", "on", "1"), ("false", "no", "off", "0"), ("none", "null")


def objective_params(name: str) -> dict[str, Any]:
    """An objective's keyword parameters and their defaults, read from its signature, in signature order.

    Raises:
        KeyError: naming the known objectives when ``name`` is unknown.
    """
    fn = get_objective(name)
    kw_only = inspect.Parameter.KEYWORD_ONLY
    return {p.name: p.default for p in inspect.signature(fn).parameters.values() if p.kind is kw_only}


def check_objective_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate keyword parameters for objective ``name`` before anything runs.

    Each value is converted to its parameter's type (the signature's annotation): strings such as ``"0.5"``,
    ``"true"``/``"false"`` and ``"none"`` (for a parameter that may be None) become a float, int, bool or
    None, and a ``Literal`` parameter takes one of its choices. The converted parameters are then tried on a
    one-sample batch, so a value the objective itself rejects (``sigma=0``) fails here too.

    Args:
        name: a key of :data:`OBJECTIVES`.
        params: parameter name -> value (or its string form, as a CLI flag gives it).

    Returns:
        The given parameters, converted (parameters not given keep their defaults and are not added).

    Raises:
        KeyError: ``name`` is not a known objective (naming the known ones).
        ValueError: a parameter the objective does not take, or a value of the wrong type or out of range,
            naming the objective, the parameter and (for an unknown one) the parameters it has.
    """
    fn = get_objective(name)
    known = objective_params(name)
    hints = typing.get_type_hints(fn)
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key not in known:
            raise ValueError(
                f"objective {name!r} has no parameter {key!r}; its parameters: {', '.join(known)}"
            )
        expected = hints.get(key, type(known[key]))
        try:
            out[key] = _convert(value, expected)
        except ValueError as err:
            raise ValueError(f"objective {name!r} parameter {key}={value!r}: {err}") from None
    one = torch.zeros(1)
    try:
        fn(one, one, one, None, **out)
    except ValueError as err:
        raise ValueError(f"objective {name!r}: {err}") from None
    return out


def _convert(value: Any, expected: Any) -> Any:
    """``value`` as the type ``expected`` (float, int, bool, a Literal, or any of these ``| None``)."""
    args = typing.get_args(expected)
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        choices = [a for a in args if a is not type(None)]
        if len(choices) != len(args) and (value is None or str(value).strip().lower() in _NONE):
            return None
        if len(choices) != 1:
            raise ValueError(f"cannot check a parameter of type {expected}")
        expected, args = choices[0], typing.get_args(choices[0])
    text = value.strip() if isinstance(value, str) else None
    if typing.get_origin(expected) is Literal:
        for choice in args:
            if value == choice or (text is not None and text == str(choice)):
                return choice
        raise ValueError(f"expected one of {', '.join(repr(c) for c in args)}")
    if expected is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError("expected a bool (true or false)")
    if expected in (int, float):
        return _number(value, text, expected)
    raise ValueError(f"cannot check a parameter of type {expected}")


def _number(value: Any, text: str | None, kind: type) -> int | float:
    """``value`` (a number, or ``text``: its string form) as an int or a (non-NaN) float."""
    number = None
    if isinstance(value, bool):
        pass  # a bool is an int to Python, never a number here
    elif isinstance(value, int) or (kind is float and isinstance(value, float)):
        number = kind(value)
    elif text is not None:
        with contextlib.suppress(ValueError):
            number = kind(text)
    if number is None or (kind is float and math.isnan(number)):
        raise ValueError(f"expected {'an int' if kind is int else 'a float'}")
    return number
