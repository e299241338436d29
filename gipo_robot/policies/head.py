"""The Gaussian head every policy type shares: a diagonal Gaussian over an action chunk.

Shapes: ``B`` batch, ``H`` chunk length (H = 1 allowed), ``A`` action dimension.

A policy type subclasses :class:`GaussianHead` and supplies the mean: :meth:`GaussianHead.distribution_params`
(mean and log-std in *normalised* action units, each ``(B, H, A)``) and, when its mean does not reach
environment units through the head's affine map ``a = z · action_scale + action_offset``, its own
:meth:`GaussianHead.env_mean`. The head owns the rest::

    a ~ N(env_mean(μ), diag(σ²)),   σ = exp(log_std) · action_scale,   log π(a|o) = Σ_{h,a} log N(a_{h,a})

- the log-std: one learned ``raw_log_std`` per chunk step and dimension ``(H, A)``, or a ``log_std_head`` on
  the trunk (state-dependent), mapped smoothly (tanh) into ``[log_std_min, log_std_max]``;
- the action buffers ``action_scale``/``action_offset`` (the affine map between normalised and environment
  units) and ``action_low``/``action_high`` (what :meth:`GaussianHead.clip` sends to the robot);
- exact log-probs per dimension, per chunk step and per chunk, sampling with the sample's exact log-prob,
  entropy, the deterministic mode, and the public way to set or floor the log-std
  (:meth:`GaussianHead.set_log_std`, :meth:`GaussianHead.floor_log_std`).

Actions are not squashed: every log-prob is that of the raw, unclipped sample, which is what a rollout stores.

Where the density is evaluated (:attr:`GaussianHead.density_units`): ``"normalized"`` evaluates it in
normalised units ``z = (a - offset) / scale`` plus the ``-Σ log scale`` Jacobian term (a policy whose mean
is affine in normalised units); ``"env"`` evaluates it in environment units around ``env_mean(μ)`` (a
policy whose environment-unit mean comes from its own un-normalisation, so the density is centred on
exactly that output). The two are the same density and differ only in float rounding.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from gipo_robot.policies.gaussian import PolicyConfig

__all__ = ["GaussianHead"]

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _soft_bound(raw: Tensor, low: float, high: float) -> Tensor:
    """Map any real to (low, high) smoothly (tanh), so the bound never kills the gradient."""
    return low + 0.5 * (high - low) * (torch.tanh(raw) + 1.0)


def _soft_bound_inverse(value: float, low: float, high: float) -> float:
    """The raw value :func:`_soft_bound` maps to ``value`` (``low < value < high``)."""
    return math.atanh(2.0 * (value - low) / (high - low) - 1.0)


class GaussianHead(nn.Module):
    """Diagonal Gaussian over an action chunk; the distribution math shared by every policy type.

    Subclasses set ``self.config`` (a :class:`~gipo_robot.policies.gaussian.PolicyConfig`), call
    :meth:`_init_head` in their ``__init__``, implement :meth:`distribution_params` and name their
    ``policy_type``.

    Attributes:
        policy_type: the name a checkpoint records, a key of
            :data:`gipo_robot.policies.checkpoint.POLICY_TYPES` (which maps it to the loader).
        density_units: ``"normalized"`` or ``"env"``, where the density is evaluated (module docstring).
    """

    config: PolicyConfig
    policy_type: ClassVar[str]
    density_units: ClassVar[Literal["normalized", "env"]] = "normalized"

    def _init_head(self, features: int | None = None) -> None:
        """Create the log-std (``raw_log_std``, or ``log_std_head`` on ``features`` trunk outputs when the
        config's std is state-dependent) and the action buffers (identity map, bounds ``[-1, 1]``)."""
        h, a = self.config.chunk, self.config.action_dim
        low, high = self.config.log_std_min, self.config.log_std_max
        raw_init = _soft_bound_inverse(self.config.log_std_init, low, high)
        if self.config.state_dependent_std:
            if features is None:
                raise ValueError("a state-dependent log-std needs the trunk's output size (features)")
            self.log_std_head = nn.Linear(features, h * a)
            nn.init.zeros_(self.log_std_head.weight)
            nn.init.constant_(self.log_std_head.bias, raw_init)
        else:
            self.raw_log_std = nn.Parameter(torch.full((h, a), raw_init))
        # Affine map between normalised and environment action units: a_env = a_norm * scale + offset.
        self.register_buffer("action_scale", torch.ones(a))
        self.register_buffer("action_offset", torch.zeros(a))
        self.register_buffer("action_low", -torch.ones(a))
        self.register_buffer("action_high", torch.ones(a))

    # --- what a policy type supplies -----------------------------------------------------------------------

    def distribution_params(self, obs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Mean and log-std in *normalised* action units, each ``(B, H, A)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement distribution_params")

    def env_mean(self, mean: Tensor) -> Tensor:
        """A normalised mean ``(B, H, A)`` in environment units: ``mean · action_scale + action_offset``."""
        return mean * self.action_scale + self.action_offset

    # --- log-std -------------------------------------------------------------------------------------------

    def bounded_log_std(self, features: Tensor | None, batch: int) -> Tensor:
        """The soft-bounded log-std, ``(B, H, A)`` normalised units; ``features`` (the trunk's output) is
        read only by a state-dependent std."""
        h, a = self.config.chunk, self.config.action_dim
        if self.config.state_dependent_std:
            raw = self.log_std_head(features).view(batch, h, a)
        else:
            raw = self.raw_log_std
        return _soft_bound(raw, self.config.log_std_min, self.config.log_std_max).expand(batch, h, a)

    @torch.no_grad()
    def set_log_std(self, value: float) -> None:
        """Set the (state-independent) log-std of every chunk step and dimension to ``value``.

        Args:
            value: log-std in normalised action units, strictly inside ``(log_std_min, log_std_max)``.

        Raises:
            ValueError: the std is state-dependent, or ``value`` is outside the bounds (naming them).
        """
        low, high = self._state_independent_bounds("set_log_std")
        if not low < value < high:
            raise ValueError(
                f"log-std {value} is outside the policy's bounds: it must lie strictly between "
                f"log_std_min={low} and log_std_max={high}"
            )
        self.raw_log_std.fill_(_soft_bound_inverse(value, low, high))

    @torch.no_grad()
    def floor_log_std(self, floor: float) -> None:
        """Raise every (state-independent) log-std below ``floor`` to ``floor``.

        A floor at or below ``log_std_min`` changes nothing; one at or above ``log_std_max`` holds the log-std
        just below that bound (``log_std_max - 1e-6``).

        Raises:
            ValueError: the std is state-dependent (a head on the trunk has no single value to floor).
        """
        low, high = self._state_independent_bounds("floor_log_std")
        if floor <= low:
            return
        self.raw_log_std.clamp_(min=_soft_bound_inverse(min(floor, high - 1e-6), low, high))

    def _state_independent_bounds(self, what: str) -> tuple[float, float]:
        if self.config.state_dependent_std:
            raise ValueError(
                f"{what} needs a state-independent log-std, but this policy's log-std comes from a head on "
                "its trunk (PolicyConfig.state_dependent_std=True)"
            )
        return self.config.log_std_min, self.config.log_std_max

    # --- distribution --------------------------------------------------------------------------------------

    def _frame(self, mean: Tensor, log_std: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """The Gaussian in the units its density is evaluated in (:attr:`density_units`): its location, its
        log-std and the log-Jacobian of the map from environment units (None: the map is the identity)."""
        if self.density_units == "normalized":
            return mean, log_std, torch.log(self.action_scale)
        return self.env_mean(mean), log_std + torch.log(self.action_scale), None

    def distribution(self, obs: dict[str, Tensor]) -> torch.distributions.Normal:
        """The policy's Normal distribution in environment action units, batch shape ``(B, H, A)``."""
        mean, log_std = self.distribution_params(obs)
        return torch.distributions.Normal(self.env_mean(mean), log_std.exp() * self.action_scale)

    def log_prob_from_params(self, mean: Tensor, log_std: Tensor, actions: Tensor) -> Tensor:
        """Exact log-density of raw actions per chunk step and dimension from already computed
        :meth:`distribution_params` (one forward pass when a loss also needs the mean), ``(B, H, A)``.

        Equals ``Normal(env_mean(mean), exp(log_std) · action_scale).log_prob(actions)`` without building the
        distribution.
        """
        self._check_actions(actions, mean.shape[0])
        loc, log_sigma, log_jacobian = self._frame(mean, log_std)
        u = actions if log_jacobian is None else (actions - self.action_offset) / self.action_scale
        logp = -0.5 * ((u - loc) / log_sigma.exp()) ** 2 - log_sigma - HALF_LOG_2PI
        return logp if log_jacobian is None else logp - log_jacobian

    def log_prob_per_dim(self, obs: dict[str, Tensor], actions: Tensor) -> Tensor:
        """Exact log-density of raw actions per chunk step and dimension, ``(B, H, A)``."""
        return self.log_prob_from_params(*self.distribution_params(obs), actions)

    def log_prob(self, obs: dict[str, Tensor], actions: Tensor) -> Tensor:
        """Exact log-density of raw action chunks, summed over steps and dimensions: ``(B,)``."""
        return self.log_prob_per_dim(obs, actions).sum(dim=(1, 2))

    def entropy(self, obs: dict[str, Tensor]) -> Tensor:
        """Differential entropy of the chunk distribution (environment units), ``(B,)``."""
        _, log_std = self.distribution_params(obs)
        per_dim = 0.5 + HALF_LOG_2PI + log_std + torch.log(self.action_scale)
        return per_dim.sum(dim=(1, 2))

    @torch.no_grad()
    def sample(
        self, obs: dict[str, Tensor], generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw raw action chunks and their exact log-probs: ``((B, H, A), (B,))``.

        Store the raw sample (it is what :meth:`log_prob` scores); send :meth:`clip` of it to the robot.
        """
        return self.sample_from_params(*self.distribution_params(obs), generator)

    @torch.no_grad()
    def sample_from_params(
        self, mean: Tensor, log_std: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """:meth:`sample` from already computed :meth:`distribution_params` (one forward pass when the
        caller also scores the sample with :meth:`log_prob_from_params`)."""
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        loc, log_sigma, log_jacobian = self._frame(mean, log_std)
        u = loc + log_sigma.exp() * noise
        actions = u if log_jacobian is None else self.env_mean(u)
        logp = -0.5 * noise**2 - log_sigma - HALF_LOG_2PI
        if log_jacobian is not None:
            logp = logp - log_jacobian
        return actions, logp.sum(dim=(1, 2))

    @torch.no_grad()
    def mode(self, obs: dict[str, Tensor]) -> Tensor:
        """Deterministic action chunk for deployment: the mean, clipped to the bounds. ``(B, H, A)``."""
        mean, _ = self.distribution_params(obs)
        return self.clip(self.env_mean(mean))

    # --- action bounds -------------------------------------------------------------------------------------

    def set_action_bounds(self, low: Tensor, high: Tensor) -> None:
        """Clip actions sent to the robot to ``[low, high]`` per dimension (the density is unchanged).

        Raises:
            ValueError: the bounds are not two ``(A,)`` tensors with ``high > low``.
        """
        low, high = torch.as_tensor(low).float(), torch.as_tensor(high).float()
        if low.shape != (self.config.action_dim,) or high.shape != low.shape or not (high > low).all():
            raise ValueError(f"action bounds must be two ({self.config.action_dim},) tensors with high > low")
        self.action_low.copy_(low)
        self.action_high.copy_(high)

    def clip(self, actions: Tensor) -> Tensor:
        """What the robot receives for a raw action: clipped to the action bounds."""
        return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)

    def _check_actions(self, actions: Tensor, batch: int) -> None:
        expected = (batch, self.config.chunk, self.config.action_dim)
        if tuple(actions.shape) != expected:
            raise ValueError(f"actions must have shape (B, H, A) = {expected}, got {tuple(actions.shape)}")
