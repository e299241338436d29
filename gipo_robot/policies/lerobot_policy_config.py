"""The config of a LeRobot policy wrapped as a Gaussian (:class:`LeRobotPolicyConfig`) and how it is built
from LeRobot's own config and an observation layout (:func:`policy_config`); see
:mod:`gipo_robot.policies.from_lerobot`. Imports nothing of LeRobot itself.

Shapes: ``H`` chunk length, ``A`` action dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from gipo_robot.policies.checkpoint import CheckpointError
from gipo_robot.policies.gaussian import PolicyConfig

__all__ = ["IMAGE_PREFIX", "PIPELINES", "SUPPORTED_TYPES", "LeRobotPolicyConfig", "policy_config"]

SUPPORTED_TYPES = ("act",)
"""LeRobot policy types whose ``predict_action_chunk`` is deterministic, so it can be a Gaussian's mean."""
IMAGE_PREFIX = "observation.images."
PIPELINES = ("preprocessor", "postprocessor")
"""The two processor pipelines of a LeRobot policy checkpoint, ``policy_<name>.json`` each."""


@dataclass
class LeRobotPolicyConfig(PolicyConfig):
    """A :class:`PolicyConfig` (observation features, action size, chunk, log-std bounds: what the critic and
    the fine-tuning loop read) plus what rebuilds the LeRobot policy. Saved as JSON in checkpoints.

    Attributes:
        lerobot_type: LeRobot policy type (``act``).
        lerobot_config: the policy's config exactly as LeRobot writes it to ``config.json``.
        lerobot_version: the LeRobot version that loaded the checkpoint.
        inputs: LeRobot input key -> the observation features concatenated (in order) to form it, e.g.
            ``{"observation.state": ["robot0_eef_pos", "robot0_gripper_qpos"], "observation.images.front":
            ["agentview_image"]}``.
        processors: ``"preprocessor"`` / ``"postprocessor"`` -> the pipeline's config as LeRobot writes it
            to ``policy_<name>.json`` (its steps and their settings; state tensors are buffers).
        processor_state: ``"<pipeline>/<state key>/<tensor>"`` (e.g. ``"preprocessor/
            policy_preprocessor_step_3_normalizer_processor/action.std"``) -> the tensor's shape; the values
            are buffers, in this order.
        robot_action_low, robot_action_high: (A,) the robot's action range in LeRobot's units (its spec's
            ``action_low``/``action_high``, units ``"lerobot"``), or None. Set, the policy's actions are
            LeRobot's normalised onto it: ``2 (post(z) - low) / (high - low) - 1``, the robot's normalised
            action; None: LeRobot's post-processed values are the actions.
    """

    lerobot_type: str = "act"
    lerobot_config: dict[str, Any] = field(default_factory=dict)
    lerobot_version: str = ""
    inputs: dict[str, list[str]] = field(default_factory=dict)
    processors: dict[str, dict[str, Any]] = field(default_factory=dict)
    processor_state: dict[str, list[int]] = field(default_factory=dict)
    robot_action_low: list[float] | None = None
    robot_action_high: list[float] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lerobot_type not in SUPPORTED_TYPES:
            raise ValueError(
                f"LeRobotPolicyConfig.lerobot_type {self.lerobot_type!r} is not one of {SUPPORTED_TYPES}"
            )
        if self.state_dependent_std:
            raise ValueError(
                "LeRobotPolicyConfig.state_dependent_std must be False (the log-std is a vector)"
            )
        known = set(self.low_dim) | set(self.images)
        for key, names in self.inputs.items():
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"LeRobotPolicyConfig.inputs[{key!r}] names unknown features {unknown}")
        if sorted(self.processors) != sorted(PIPELINES):
            raise ValueError(
                f"LeRobotPolicyConfig.processors has {sorted(self.processors)}, expected {list(PIPELINES)}"
            )
        self._check_robot_range()
        bad = [n for n in self.processor_state if n.split("/", 1)[0] not in PIPELINES or n.count("/") < 2]
        if bad:
            raise ValueError(
                f"LeRobotPolicyConfig.processor_state names {bad} are not '<pipeline>/<state key>/<tensor>'"
            )

    def _check_robot_range(self) -> None:
        low, high = self.robot_action_low, self.robot_action_high
        if low is None and high is None:
            return
        if low is None or high is None or len(low) != self.action_dim or len(high) != self.action_dim:
            raise ValueError(
                f"LeRobotPolicyConfig.robot_action_low/high must both be {self.action_dim} numbers, got "
                f"{low!r} and {high!r}"
            )
        pairs = zip(low, high, strict=True)
        if not all(math.isfinite(lo) and math.isfinite(hi) and lo < hi for lo, hi in pairs):
            raise ValueError("LeRobotPolicyConfig.robot_action_high must exceed a finite robot_action_low")


def default_inputs(input_features: dict[str, Any]) -> dict[str, dict[str, list[int]]]:
    """One observation feature per LeRobot input: ``observation.state`` -> ``state``, images -> camera."""
    out = {}
    for key, feature in input_features.items():
        short = key.removeprefix(IMAGE_PREFIX).removeprefix("observation.")
        out[key] = {short: list(feature.shape)}
    return out


def policy_config(
    cfg: Any,
    raw_config: dict[str, Any],
    processors: dict[str, dict[str, Any]],
    processor_state: dict[str, Tensor],
    inputs: dict[str, dict[str, list[int]]] | None,
    chunk: int | None,
    log_std: tuple[float, float, float],
    *,
    where: str,
    robot_range: tuple[list[float], list[float]] | None = None,
) -> LeRobotPolicyConfig:
    """The :class:`LeRobotPolicyConfig` of a LeRobot config and an observation layout (checked), with the
    robot's action range ``(low, high)`` in LeRobot's units if given."""
    from lerobot import __version__ as lerobot_version

    input_features = dict(cfg.input_features)
    layout = inputs if inputs is not None else default_inputs(input_features)
    unknown = sorted(set(layout) - set(input_features))
    if unknown:
        raise CheckpointError(
            f"{where}: inputs {unknown} are not inputs of the policy {sorted(input_features)}"
        )
    low_dim: dict[str, list[int]] = {}
    images: dict[str, list[int]] = {}
    for key, feature in input_features.items():
        if key not in layout:
            raise CheckpointError(f"{where}: the policy reads {key!r} but inputs does not say which features")
        parts = {n: [int(d) for d in s] for n, s in layout[key].items()}
        if key.startswith(IMAGE_PREFIX):
            (name, shape), *rest = parts.items()
            if rest or list(shape) != list(feature.shape):
                raise CheckpointError(
                    f"{where}: input {key!r} is one camera of shape {list(feature.shape)}, got {parts}"
                )
            images[name] = list(shape)
            continue
        total = sum(math.prod(s) for s in parts.values())
        if total != math.prod(feature.shape):
            raise CheckpointError(
                f"{where}: input {key!r} has {math.prod(feature.shape)} values but inputs gives {parts} "
                f"({total} values)"
            )
        low_dim.update(parts)
    if getattr(cfg, "temporal_ensemble_coeff", None) is not None:
        raise CheckpointError(
            f"{where}: temporal_ensemble_coeff is set: LeRobot then averages overlapping chunks at every "
            "step, which no one chunk (the Gaussian's mean) reproduces; set it to null in config.json"
        )
    action_shape = list(cfg.output_features["action"].shape)
    horizon = chunk if chunk is not None else int(getattr(cfg, "n_action_steps", cfg.chunk_size))
    if not 1 <= horizon <= cfg.chunk_size:
        raise CheckpointError(f"{where}: chunk {horizon} is outside 1..{cfg.chunk_size} (ACT's chunk_size)")
    init, low, high = log_std
    try:
        return LeRobotPolicyConfig(
            low_dim=low_dim,
            images=images,
            action_dim=int(action_shape[0]),
            chunk=horizon,
            log_std_init=init,
            log_std_min=low,
            log_std_max=high,
            lerobot_type=cfg.type,
            lerobot_config={**raw_config, "pretrained_backbone_weights": None}
            if "pretrained_backbone_weights" in raw_config
            else raw_config,
            lerobot_version=lerobot_version,
            inputs={k: list(v) for k, v in layout.items()},
            processors=processors,
            processor_state={k: list(v.shape) for k, v in processor_state.items()},
            robot_action_low=None if robot_range is None else [float(v) for v in robot_range[0]],
            robot_action_high=None if robot_range is None else [float(v) for v in robot_range[1]],
        )
    except ValueError as err:
        raise CheckpointError(f"{where}: {err}") from err
