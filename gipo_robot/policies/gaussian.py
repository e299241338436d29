"""Gaussian action-chunk policy with exact, cheap log-probabilities.

Shapes: ``B`` batch, ``H`` chunk length (H = 1 allowed), ``A`` action dimension; low-dim observation features
are ``(B, *shape)`` and camera features ``(B, C, h, w)`` uint8 or float in [0, 255] (channels first).

The policy is a diagonal Gaussian over the whole chunk in the *environment's* action units::

    a ~ N(μ(o), diag(σ(o)²)),   μ, σ: (B, H, A),   log π(a|o) = Σ_{h,a} log N(a_{h,a}; μ, σ)

Actions are **not squashed**. The environment receives ``clip(a, low, high)`` (:meth:`GaussianPolicy.clip`),
but every log-prob is that of the raw, unclipped sample, which is what a rollout stores. This keeps
``log_prob`` exact and equal for the learner and the actor (both see the same raw ``a``), at the cost that
the density ignores the clipping (mass beyond the bounds is not folded onto them). A tanh squash would fold
it, but its Jacobian diverges at the ±1 gripper commands that scripted and teleoperated demos are full of.

The distribution math (log-std, log-probs, sampling, entropy, mode, clipping) is the shared
:class:`~gipo_robot.policies.head.GaussianHead`; this module supplies the trunk and the mean.

Normalisation: observations are standardised with per-feature mean/std and actions are modelled in a
normalised space ``(a - offset) / scale`` (scale and offset from the dataset's min/max); both statistics are
buffers inside the policy, so a checkpoint is self-contained. The log-prob includes the ``-Σ log scale`` term
of that affine map, so it is the exact density in environment units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gipo_robot.policies.head import GaussianHead

__all__ = ["IMAGE_POOLS", "GaussianPolicy", "ObsEncoder", "PolicyConfig", "SpatialSoftmax"]


@dataclass
class PolicyConfig:
    """Architecture of a :class:`GaussianPolicy` (and of a :class:`Critic`). Saved as JSON in checkpoints.

    Attributes:
        low_dim: low-dim observation features, name -> shape (e.g. ``{"robot0_eef_pos": [3]}``).
        images: camera features, name -> ``[C, h, w]``; empty for state-only policies.
        action_dim: A, the action dimension.
        chunk: H, the number of future actions predicted per observation (1 = single-step policy).
        hidden: hidden sizes of the MLP trunk.
        cnn_channels: channels of the per-camera CNN's conv layers.
        image_feature_dim: size of each camera's embedding.
        image_pool: how a camera's conv feature map becomes a vector: ``spatial_softmax`` (the default:
            ``image_keypoints`` soft-argmax keypoints, their expected x and y, as in robomimic and Levine et
            al. 2016: *where* things are survives) or ``mean`` (global average pooling, which keeps what
            is in the image but not where; checkpoints saved before this field read as ``mean``).
        image_keypoints: keypoints of the spatial softmax (its output is 2 x this).
        state_dependent_std: log-std from a head on the trunk (True) or one learned vector per chunk step
            and dimension (False, the default: more stable for fine-tuning).
        log_std_init: initial log-std, in normalised action units.
        log_std_min: lower bound on the log-std (normalised units), enforced smoothly.
        log_std_max: upper bound on the log-std (normalised units), enforced smoothly.
        action_names: optional names of the A action dimensions, for display and spec checks.
        obs_clip: standardised low-dim observations are clipped to ±obs_clip (None: no clip). Features that
            barely vary in the demonstrations have a tiny std; without the clip, states a fine-tuning rollout
            reaches map to inputs in the hundreds and make every gradient step huge.
    """

    low_dim: dict[str, list[int]]
    action_dim: int
    images: dict[str, list[int]] = field(default_factory=dict)
    chunk: int = 1
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    image_feature_dim: int = 64
    image_pool: str = "spatial_softmax"
    image_keypoints: int = 32
    state_dependent_std: bool = False
    log_std_init: float = -1.0
    log_std_min: float = -5.0
    log_std_max: float = 1.0
    action_names: list[str] | None = None
    obs_clip: float | None = 5.0

    def __post_init__(self) -> None:
        if not self.low_dim and not self.images:
            raise ValueError("PolicyConfig needs at least one observation feature (low_dim or images)")
        if self.action_dim < 1:
            raise ValueError(f"PolicyConfig.action_dim must be >= 1, got {self.action_dim}")
        if self.chunk < 1:
            raise ValueError(f"PolicyConfig.chunk must be >= 1, got {self.chunk}")
        if not self.log_std_min < self.log_std_init < self.log_std_max:
            raise ValueError(
                "PolicyConfig needs log_std_min < log_std_init < log_std_max, got "
                f"{self.log_std_min}, {self.log_std_init}, {self.log_std_max}"
            )
        if self.image_pool not in IMAGE_POOLS:
            raise ValueError(f"PolicyConfig.image_pool must be one of {IMAGE_POOLS}, got {self.image_pool!r}")
        if self.image_keypoints < 1:
            raise ValueError(f"PolicyConfig.image_keypoints must be >= 1, got {self.image_keypoints}")
        for name, shape in self.images.items():
            if len(shape) != 3:
                raise ValueError(f"PolicyConfig.images[{name!r}] must be [C, h, w], got {shape}")
        if self.action_names is not None and len(self.action_names) != self.action_dim:
            raise ValueError(
                f"PolicyConfig.action_names has {len(self.action_names)} names for {self.action_dim} actions"
            )
        self.low_dim = {k: [int(d) for d in v] for k, v in self.low_dim.items()}
        self.images = {k: [int(d) for d in v] for k, v in self.images.items()}


IMAGE_POOLS = ("spatial_softmax", "mean")


class SpatialSoftmax(nn.Module):
    """Feature map -> keypoints: ``(B, C, h, w) -> (B, 2K)``, the expected (x, y) in [-1, 1] of each of K
    softmax attention maps (a 1x1 conv makes the K maps; a learned temperature sharpens them)."""

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.maps = nn.Conv2d(channels, keypoints, kernel_size=1)
        self.log_temperature = nn.Parameter(torch.zeros(1))

    def forward(self, features: Tensor) -> Tensor:
        h, w = features.shape[-2:]
        attention = torch.softmax(self.maps(features).flatten(2) / self.log_temperature.exp(), dim=-1)
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=features.device),
            torch.linspace(-1, 1, w, device=features.device),
            indexing="ij",
        )
        x = (attention * xs.reshape(-1)).sum(-1)  # (B, K)
        y = (attention * ys.reshape(-1)).sum(-1)
        return torch.cat([x, y], dim=-1)


class _CameraEncoder(nn.Module):
    """Small CNN: strided convs, ReLU, a pool (spatial softmax or mean), linear embedding.
    ``(B, C, h, w) -> (B, D)``."""

    def __init__(self, in_channels: int, config: PolicyConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for i, c_out in enumerate(config.cnn_channels):
            layers += [nn.Conv2d(c, c_out, kernel_size=5 if i == 0 else 3, stride=2, padding=1), nn.ReLU()]
            c = c_out
        self.convs = nn.Sequential(*layers)
        if config.image_pool == "spatial_softmax":
            self.pool: nn.Module | None = SpatialSoftmax(c, config.image_keypoints)
            c = 2 * config.image_keypoints
        else:
            self.pool = None
        self.proj = nn.Linear(c, config.image_feature_dim)

    def forward(self, image: Tensor) -> Tensor:
        x = self.convs(image.float() / 255.0 - 0.5)
        return self.proj(self.pool(x) if self.pool is not None else x.mean(dim=(2, 3)))


class ObsEncoder(nn.Module):
    """Normalise low-dim features, embed cameras, concatenate, MLP trunk: ``obs dict -> (B, hidden[-1])``.

    A camera's entry is its frames ``(B, C, h, w)`` (uint8), or their embeddings ``(B, D)`` already computed
    by this encoder's CNN for that camera (a frozen encoder's cache: :mod:`gipo_robot.train.frozen_features`).

    The per-feature mean/std used for normalisation are buffers (saved with the weights); set them with
    :meth:`set_obs_stats` from a dataset's statistics.
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.low_dim_names = sorted(config.low_dim)
        self.image_names = sorted(config.images)
        low_dim_size = sum(math.prod(config.low_dim[n]) for n in self.low_dim_names)
        self.register_buffer("obs_mean", torch.zeros(low_dim_size))
        self.register_buffer("obs_std", torch.ones(low_dim_size))
        self.cameras = nn.ModuleDict(
            {n: _CameraEncoder(config.images[n][0], config) for n in self.image_names}
        )
        width = low_dim_size + config.image_feature_dim * len(self.image_names)
        layers: list[nn.Module] = []
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.Mish()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.out_dim = width
        self._shapes = config.low_dim
        self._obs_clip = config.obs_clip

    def set_obs_stats(self, mean: dict[str, Tensor], std: dict[str, Tensor], min_std: float = 1e-3) -> None:
        """Set normalisation from per-feature statistics (std floored at ``min_std``: constant features)."""
        self.obs_mean.copy_(
            torch.cat([torch.as_tensor(mean[n]).float().flatten() for n in self.low_dim_names])
        )
        stds = torch.cat([torch.as_tensor(std[n]).float().flatten() for n in self.low_dim_names])
        self.obs_std.copy_(stds.clamp(min=min_std))

    def flat_low_dim(self, obs: dict[str, Tensor]) -> Tensor:
        """Concatenate the low-dim features in a fixed (sorted) order: ``(B, sum of feature sizes)``."""
        missing = [n for n in self.low_dim_names + self.image_names if n not in obs]
        if missing:
            raise KeyError(f"observation is missing features {missing}; got {sorted(obs)}")
        parts = []
        for n in self.low_dim_names:
            x = obs[n]
            expected = tuple(self._shapes[n])
            if tuple(x.shape[1:]) != expected:
                raise ValueError(
                    f"observation feature {n!r} has shape {tuple(x.shape[1:])}, expected {expected}"
                )
            parts.append(x.reshape(x.shape[0], -1).float())
        return torch.cat(parts, dim=-1) if parts else torch.zeros(0)

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        feats = []
        if self.low_dim_names:
            x = (self.flat_low_dim(obs) - self.obs_mean) / self.obs_std
            if self._obs_clip is not None:
                x = x.clamp(-self._obs_clip, self._obs_clip)
            feats.append(x)
        for n in self.image_names:  # frames (B, C, h, w), or their embeddings (B, D) from a frozen encoder
            x = obs[n]
            feats.append(x if x.ndim == 2 else self.cameras[n](x))
        return self.trunk(torch.cat(feats, dim=-1))


class GaussianPolicy(GaussianHead):
    """Diagonal Gaussian over an action chunk from an MLP/CNN trunk; see the module docstring for the exact
    density and :class:`~gipo_robot.policies.head.GaussianHead` for the distribution methods.

    Args:
        config: the architecture.
    """

    policy_type = "gaussian"  # its name in checkpoint.POLICY_TYPES

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        h, a = config.chunk, config.action_dim
        self.encoder = ObsEncoder(config)
        self.mean_head = nn.Linear(self.encoder.out_dim, h * a)
        nn.init.zeros_(self.mean_head.bias)
        nn.init.normal_(self.mean_head.weight, std=1e-2)
        self._init_head(self.encoder.out_dim)

    def set_action_bounds(self, low: Tensor, high: Tensor) -> None:
        """Model actions in ``[low, high]`` (per dimension) as ``[-1, 1]`` internally; clip to the bounds."""
        super().set_action_bounds(low, high)
        low, high = torch.as_tensor(low).float(), torch.as_tensor(high).float()
        self.action_scale.copy_((high - low) / 2)
        self.action_offset.copy_((high + low) / 2)

    def distribution_params(self, obs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Mean and log-std in *normalised* action units, each ``(B, H, A)``."""
        z = self.encoder(obs)
        b, h, a = z.shape[0], self.config.chunk, self.config.action_dim
        mean = self.mean_head(z).view(b, h, a)
        return mean, self.bounded_log_std(z, b)
