"""Bias, variance and MSE of each objective's minibatch policy gradient on stale data (no training).

The robot counterpart of the GridWorld study (:mod:`gipo_robot.bias_variance`): a *target* policy π and
samples collected by a *behaviour* policy μ (an older version of π). An *estimator* is an objective of
:mod:`gipo_robot.objectives` at a ratio level; its draw is the gradient, with respect to every trainable
parameter of π, of its loss on a minibatch of ``B`` samples, computed exactly as the learner computes it
(:meth:`gipo_robot.train.learner.Learner._loss`: log-probs per dimension, advantages normalised per
minibatch, :func:`~gipo_robot.objectives.at_level`), before the learner's gradient-norm clip.

The quantity every estimator aims at is the on-policy gradient ``g*``: the expected draw of the on-policy
policy gradient ``-mean(Â · log π)`` (ρ ≡ 1, :func:`on_policy` at the estimator's ratio level) on minibatches
of π's own samples. With K ≥ 2 independent pairs of pools (A_k of μ's samples, R_k of π's), ``ḡ`` the mean
of many draws on one pool and ``d_k = ḡ_A_k − ḡ*_R_k``::

    bias²    = mean over i ≠ j of ⟨d_i, d_j⟩     unbiased for ‖E g − g*‖² (the pools' noise cancels in
                                                 expectation; it can come out negative when the bias is
                                                 below the noise); a jackknife over the K pairs gives its
                                                 standard error
    ‖g*‖²    = mean over i ≠ j of ⟨ḡ*_R_i, ḡ*_R_j⟩
    variance = E‖g − E g‖²                       per minibatch, the draws' sample variance within a pool
                                                 (averaged over the K pools)
    MSE      = bias² + variance

Each is reported raw and relative to ``‖g*‖²``. Within a pair the pools may share their random numbers (the
same env seeds, action noise and minibatch draws: *common random numbers*): the difference ``d_k`` is then
less noisy, and bias² stays unbiased. The bias holds everything that separates μ's data from π's, as the
learner meets it: the states μ visits, the advantages (GAE on μ's trajectories under the current critic)
and the objective's weighting of the actions. A minibatch is ``B`` samples drawn uniformly
without replacement from a pool much larger than ``B``, so the variance is that of samples drawn
independently of each other, less the correlation of consecutive steps that a learner's small batch has.

Shapes: ``M`` samples in a pool, ``B`` minibatch, ``H`` chunk, ``A`` action size, ``P`` policy parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gipo_robot.advantages import normalize
from gipo_robot.objectives import at_level, check_objective_params, get_objective

__all__ = [
    "ON_POLICY",
    "Estimator",
    "Moments",
    "Samples",
    "bias_variance",
    "gradient_moments",
    "minibatch_gradients",
    "on_policy",
    "samples_from_batches",
    "staleness",
]


@dataclass(frozen=True)
class Estimator:
    """One gradient estimator: an objective, its parameters and the ratio level it runs at.

    Attributes:
        name: how results name it (e.g. ``gipo_dim``).
        objective: a key of :data:`gipo_robot.objectives.OBJECTIVES`.
        params: the objective's keyword parameters; {} = its defaults.
        ratio_level: ``chunk``, ``step`` or ``dim`` (:func:`~gipo_robot.objectives.at_level`).
        on_policy: score every sample as if π had collected it (behaviour log-prob := sg[log π], so ρ ≡ 1):
            the reference estimator.
    """

    name: str
    objective: str
    params: dict[str, Any] = field(default_factory=dict)
    ratio_level: str = "step"
    on_policy: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", check_objective_params(self.objective, self.params))
        if self.ratio_level not in ("chunk", "step", "dim"):
            raise ValueError(f"Estimator {self.name!r}: unknown ratio_level {self.ratio_level!r}")


def on_policy(ratio_level: str = "step") -> Estimator:
    """The on-policy policy gradient at ``ratio_level`` (No-Clip at ρ ≡ 1): the reference ``g*`` of every
    estimator at that level, each of which equals it at ρ ≡ 1.

    The level sets the gradient's scale: ``step`` is ``-mean_B(Â · log π(a|s))``, ``dim`` averages over the
    A action dimensions too, ``-mean_{B,A}(Â · log π(a_i|s))``, so its gradient is the per-step one / A.
    """
    name = "on_policy" if ratio_level == "step" else f"on_policy_{ratio_level}"
    return Estimator(name, "no_clip", ratio_level=ratio_level, on_policy=True)


ON_POLICY = on_policy("step")
"""The on-policy policy gradient ``-mean(Â · log π)`` at one ratio per step: the reference ``g*``."""


@dataclass
class Samples:
    """A pool of flat samples with their advantages.

    Attributes:
        obs: feature name -> ``(M, ...)``.
        actions: raw actions, ``(M, H, A)``.
        logp_behavior: the behaviour policy's log-probs per dimension, ``(M, H, A)``.
        mask: executed chunk steps, ``(M, H)`` bool.
        advantages: ``(M,)``, not normalised.
    """

    obs: dict[str, Tensor]
    actions: Tensor
    logp_behavior: Tensor
    mask: Tensor
    advantages: Tensor

    def __len__(self) -> int:
        return len(self.actions)

    def subset(self, idx: Tensor) -> Samples:
        """The samples at ``idx``."""
        return Samples({k: v[idx] for k, v in self.obs.items()}, self.actions[idx], self.logp_behavior[idx],
                       self.mask[idx], self.advantages[idx])  # fmt: skip

    @classmethod
    def cat(cls, pools: Sequence[Samples]) -> Samples:
        """One pool of all of ``pools``' samples."""
        return cls(
            {k: torch.cat([p.obs[k] for p in pools]) for k in pools[0].obs},
            *(torch.cat([getattr(p, n) for p in pools]) for n in ("actions", "logp_behavior", "mask")),
            torch.cat([p.advantages for p in pools]),
        )


def samples_from_batches(batches: Sequence[Any], policy: Any, critic: Any, config: Any) -> Samples:
    """Flat samples of rollout batches with the advantages the learner would give them.

    Args:
        batches: :class:`~gipo_robot.train.replay.RolloutBatch` es (any behaviour policy).
        policy: the target policy π (V-trace only: its ratios enter the value targets, not the advantages).
        critic: the critic that scores them (the learner's at π's version).
        config: the run's :class:`~gipo_robot.train.config.FinetuneConfig` (``advantage``, γ, λ).
    """
    from gipo_robot.train.learner import advantages

    pools = []
    for b in batches:
        adv, _ = advantages(b, policy, critic, config)
        obs = b.flat("obs")
        pools.append(Samples({k: obs[k] for k in [*policy.config.low_dim, *policy.config.images]},
                             b.flat("actions"), b.flat("logp_behavior"), b.flat("exec_mask").bool(),
                             adv.reshape(-1)))  # fmt: skip
    return Samples.cat(pools)


def _parameters(policy: torch.nn.Module) -> list[Tensor]:
    return [p for p in policy.parameters() if p.requires_grad]


def minibatch_gradients(
    policy: Any, minibatch: Samples, estimators: Sequence[Estimator], *, normalize_advantages: bool = True
) -> dict[str, tuple[Tensor, dict[str, float]]]:
    """Each estimator's gradient on one minibatch (one forward pass of π shared by all).

    Args:
        policy: π, a :class:`~gipo_robot.policies.gaussian.GaussianPolicy` (or any module with
            ``log_prob_per_dim(obs, actions) -> (B, H, A)``).
        minibatch: the ``B`` samples.
        estimators: what to compute.
        normalize_advantages: zero-mean, unit-std advantages over the minibatch, as the learner does.

    Returns:
        name -> (flat float64 gradient of the loss ``(P,)``, the objective's stats as floats).
    """
    params = _parameters(policy)
    logp = policy.log_prob_per_dim(minibatch.obs, minibatch.actions)
    adv = normalize(minibatch.advantages) if normalize_advantages else minibatch.advantages
    out = {}
    for i, est in enumerate(estimators):
        behaviour = logp.detach() if est.on_policy else minibatch.logp_behavior
        arranged = at_level(logp, behaviour, adv, minibatch.mask, est.ratio_level)
        loss, stats = get_objective(est.objective)(*arranged, **est.params)
        grads = torch.autograd.grad(loss, params, retain_graph=i < len(estimators) - 1, allow_unused=True)
        flat = torch.cat([
            (torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)
        ]).double()  # fmt: skip
        out[est.name] = (flat, {k: float(v) for k, v in stats.items()})
    return out


@dataclass
class Moments:
    """What many draws of one estimator on one pool show.

    Attributes:
        mean: the mean gradient over the draws, ``(P,)`` float64.
        variance: ``E‖g − E g‖²`` per draw (the draws' unbiased sample variance, trace of the covariance).
        draws: how many minibatches.
        stats: the objective's stats averaged over the draws.
        norm_mean: mean ``‖g‖`` per draw.
    """

    mean: Tensor
    variance: float
    draws: int
    stats: dict[str, float]
    norm_mean: float


def gradient_moments(
    policy: Any,
    samples: Samples,
    estimators: Sequence[Estimator],
    *,
    batch_size: int,
    draws: int,
    generator: torch.Generator,
    normalize_advantages: bool = True,
) -> dict[str, Moments]:
    """Mean, variance and stats of each estimator's gradient over ``draws`` minibatches of ``samples``.

    Every estimator sees the same minibatches (drawn uniformly without replacement within each).

    Raises:
        ValueError: fewer than 2 draws, or a minibatch larger than the pool.
    """
    if draws < 2 or not 0 < batch_size <= len(samples):
        raise ValueError(f"need draws >= 2 and 0 < batch_size <= {len(samples)}, got {draws}, {batch_size}")
    total: dict[str, Tensor] = {}
    sq: dict[str, float] = {}
    norms: dict[str, float] = {}
    stats: dict[str, dict[str, float]] = {}
    for _ in range(draws):
        idx = torch.randperm(len(samples), generator=generator)[:batch_size]
        grads = minibatch_gradients(policy, samples.subset(idx), estimators,
                                    normalize_advantages=normalize_advantages)  # fmt: skip
        for name, (g, s) in grads.items():
            total[name] = total.get(name, 0) + g
            sq[name] = sq.get(name, 0.0) + float(g @ g)
            norms[name] = norms.get(name, 0.0) + float(g.norm())
            acc = stats.setdefault(name, {})
            for k, v in s.items():
                acc[k] = acc.get(k, 0.0) + v
    out = {}
    for name, t in total.items():
        mean = t / draws
        # Σ‖g − ḡ‖² = Σ‖g‖² − R‖ḡ‖²; clamped at 0 against rounding when every draw is the same
        variance = max(0.0, (sq[name] - draws * float(mean @ mean)) / (draws - 1))
        out[name] = Moments(mean, variance, draws, {k: v / draws for k, v in stats[name].items()},
                            norms[name] / draws)  # fmt: skip
    return out


def _pair_mean(vectors: Sequence[Tensor]) -> float:
    """Mean of ``⟨v_i, v_j⟩`` over the ordered pairs ``i ≠ j`` (a U-statistic: unbiased for ``‖E v‖²`` when
    the vectors are independent draws of the same distribution)."""
    k = len(vectors)
    total = torch.stack(list(vectors)).sum(0)
    return (float(total @ total) - sum(float(v @ v) for v in vectors)) / (k * (k - 1))


def bias_variance(groups: Sequence[Moments], refs: Sequence[Tensor]) -> dict[str, float]:
    """Bias², variance and MSE of an estimator against the reference, from K ≥ 2 independent pool pairs.

    Args:
        groups: the estimator's moments on K pools of the behaviour policy's samples.
        refs: the reference's mean gradients on K pools of π's samples; pair k (``groups[k]``, ``refs[k]``)
            may share its random numbers, and is independent of every other pair.

    Returns:
        ``bias2`` (U-statistic of ``⟨d_i, d_j⟩``, ``d = ḡ − ḡ*``, over the pairs ``i ≠ j``), ``bias2_se``
        (its jackknife standard error over the K pairs, conservative; NaN for K = 2), ``variance``, ``mse``,
        ``ref_norm2`` (‖g*‖², the same U-statistic of the references), ``cosine`` (of E g and g*; NaN where
        an estimated squared norm is not positive), ``pool_noise`` (``tr Cov(d)``: how much one pair's
        difference alone would have added to bias², the scale of its noise), ``mean_norm2`` (‖E g‖²); each
        of these but the cosine also as ``*_rel`` (divided by ‖g*‖²). Two scale-free numbers (an estimator
        that shrinks its gradient by c has c² its bias-free MSE, but Adam takes the same step):
        ``projection`` = ⟨E g, g*⟩ / ‖g*‖², E g's component along g* in units of g* (1 unbiased, 0 when the
        on-policy direction is lost), and ``snr`` = ⟨E g, g*⟩² / (‖g*‖² · variance), that component's square
        over the noise of one minibatch (on-policy: ‖g*‖² / variance).

    Raises:
        ValueError: fewer than 2 pairs, or ``groups`` and ``refs`` of different lengths.
    """
    k = len(groups)
    if k < 2 or len(refs) != k:
        raise ValueError(f"need K >= 2 pool pairs and one reference per pair, got {k} and {len(refs)}")
    diffs = [g.mean - r for g, r in zip(groups, refs, strict=True)]
    bias2 = _pair_mean(diffs)
    ref_norm2 = _pair_mean(refs)
    variance = sum(g.variance for g in groups) / k
    norm2 = _pair_mean([g.mean for g in groups])
    cross = sum(float(groups[i].mean @ refs[j]) for i in range(k) for j in range(k) if i != j) / (k * (k - 1))
    cosine = cross / math.sqrt(norm2 * ref_norm2) if norm2 > 0 and ref_norm2 > 0 else float("nan")
    mean_diff = torch.stack(diffs).mean(0)
    out = {
        "bias2": bias2,
        "bias2_se": _jackknife_se(diffs),
        "variance": variance,
        "mse": bias2 + variance,
        "ref_norm2": ref_norm2,
        "cosine": cosine,
        "mean_norm2": norm2,
        "projection": cross / ref_norm2 if ref_norm2 > 0 else float("nan"),
        "snr": cross**2 / (ref_norm2 * variance) if ref_norm2 > 0 and variance > 0 else float("nan"),
        "pool_noise": sum(float((d - mean_diff).square().sum()) for d in diffs) / (k - 1),
    }
    for key in ("bias2", "bias2_se", "variance", "mse", "pool_noise", "mean_norm2"):
        out[f"{key}_rel"] = out[key] / ref_norm2 if ref_norm2 > 0 else float("nan")
    return out


def _jackknife_se(diffs: Sequence[Tensor]) -> float:
    """Jackknife standard error of :func:`_pair_mean` over its K vectors (NaN below K = 3). Conservative, as
    the jackknife of a U-statistic is: at K = 4, about 1.6x the true error when the bias is 0, 1x when the
    bias dominates the noise (tests/train/test_gradient_study.py)."""
    k = len(diffs)
    if k < 3:
        return float("nan")
    leave_one_out = [_pair_mean([d for j, d in enumerate(diffs) if j != i]) for i in range(k)]
    mean = sum(leave_one_out) / k
    return math.sqrt((k - 1) / k * sum((u - mean) ** 2 for u in leave_one_out))


@torch.no_grad()
def staleness(policy: Any, samples: Samples, chunk: int = 4096) -> dict[str, float]:
    """How far the behaviour policy is from π on ``samples`` (the executed steps, ratio per step).

    Returns:
        ``kl``: KL(μ‖π) estimated as ``mean(log μ − log π)``; ``approx_kl``: the k3 estimate
        ``mean((ρ − 1) − log ρ)`` (the learner's); ``ess``: normalised effective sample size
        ``(Σρ)² / (M Σρ²)``; ``ratio_max``; ``abs_log_ratio_mean``.
    """
    logp = torch.cat([
        policy.log_prob_per_dim(samples.subset(idx).obs, samples.actions[idx])
        for idx in torch.arange(len(samples)).split(chunk)
    ])  # fmt: skip
    m = samples.mask.to(logp.dtype)[..., None]
    r = ((logp - samples.logp_behavior) * m).sum(dim=(1, 2)).double()  # log ρ of the executed step(s)
    log_ess = 2 * torch.logsumexp(r, 0) - torch.logsumexp(2 * r, 0)
    return {
        "kl": float((-r).mean()),
        "approx_kl": float((torch.expm1(r) - r).mean()),
        "ess": float(log_ess.exp() / len(r)),
        "ratio_max": float(r.max().exp()),
        "abs_log_ratio_mean": float(r.abs().mean()),
    }
