"""What the safety guard enforces: :class:`SafetyConfig`, its defaults and their checks (the guard itself is
:class:`~gipo_robot.hardware.safety.SafetyGuard`; the checks it runs are described there)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["SafetyConfig"]


def _positive(value: float | None, name: str, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"SafetyConfig.{name} must be a positive number, got {value!r}")


@dataclasses.dataclass
class SafetyConfig:
    """What :class:`SafetyGuard` enforces. JSON round trip: :meth:`to_dict` / :meth:`from_dict`.

    Units are the action's physical units (``spec.to_physical``): rad for joint modes; m for
    ``ee_delta``'s (dx, dy, dz) and rad for its (drx, dry, drz).
    """

    max_step: float | list[float] | None = None
    """Largest displacement one step may command, per motion dimension (one number for all, or a list of
    A numbers; non-motion dimensions ignore theirs). None: ``max_joint_velocity * T`` per joint in joint
    modes, the action range's half-width in ``ee_delta`` (then only the soft-start ramp limits it)."""
    velocity_margin: float | None = 1.0
    """Joint modes: targets may be at most ``max_joint_velocity * velocity_margin * T`` from the measured
    position. In (0, 1]; None disables the check."""
    joint_limit_margin: float = 0.0
    """Joint targets keep this far (rad) inside ``[joint_low, joint_high]``; >= 0."""
    workspace: bool = True
    """``ee_delta``: keep the end effector in the workspace box (the spec's, or the override below)."""
    workspace_low: list[float] | None = None
    """(3,) m: overrides ``spec.workspace_low``; give both corners or neither."""
    workspace_high: list[float] | None = None
    """(3,) m: overrides ``spec.workspace_high``."""
    watchdog_periods: float | None = 5.0
    """Hold the arm when no ``act`` arrived for this many control periods; None disables the watchdog."""
    soft_start_steps: int = 20
    """The per-step limit ramps up over this many actions after connect (and after ``clear_estop``);
    0 disables the ramp."""
    soft_start_fraction: float = 0.1
    """Fraction of ``max_step`` allowed on the first step after connect; in (0, 1]."""
    nan_estop_after: int | None = 10
    """E-stop after this many rejected (NaN/inf) actions in a row; None never does."""
    sensor_estop_after: int | None = 3
    """E-stop after this many observations in a row with a NaN/inf measurement; None never does."""
    joint_feature: str | None = None
    """Observation feature with the measured joint positions (J,) rad; None: the first of
    :data:`~gipo_robot.hardware.safety.JOINT_FEATURES` the robot observes."""
    intervention_tolerance: float = 1e-3
    """A limit that changed every dimension of the command by at most this much (m or rad: 1 mm, 1 mrad by
    default) still applies but is not counted as an intervention; >= 0 (0 counts every change)."""

    def __post_init__(self) -> None:
        if isinstance(self.max_step, list | tuple):
            self.max_step = [float(v) for v in self.max_step]
            for v in self.max_step:
                _positive(v, "max_step")
        else:
            _positive(self.max_step, "max_step")
        _positive(self.velocity_margin, "velocity_margin")
        if self.velocity_margin is not None and self.velocity_margin > 1:
            raise ValueError(f"SafetyConfig.velocity_margin must be <= 1, got {self.velocity_margin}")
        if not (isinstance(self.joint_limit_margin, int | float) and self.joint_limit_margin >= 0):
            raise ValueError(f"SafetyConfig.joint_limit_margin must be >= 0, got {self.joint_limit_margin!r}")
        if (self.workspace_low is None) != (self.workspace_high is None):
            raise ValueError("SafetyConfig.workspace_low and workspace_high must be given together")
        for name in ("workspace_low", "workspace_high"):
            value = getattr(self, name)
            if value is not None:
                value = [float(v) for v in value]
                if len(value) != 3 or not all(math.isfinite(v) for v in value):
                    raise ValueError(f"SafetyConfig.{name} must be 3 finite numbers (m), got {value}")
                setattr(self, name, value)
        if self.workspace_low is not None and any(
            h <= lo for lo, h in zip(self.workspace_low, self.workspace_high, strict=True)
        ):
            raise ValueError("SafetyConfig.workspace_high must exceed workspace_low in x, y and z")
        _positive(self.watchdog_periods, "watchdog_periods")
        if not isinstance(self.soft_start_steps, int) or self.soft_start_steps < 0:
            raise ValueError(
                f"SafetyConfig.soft_start_steps must be an int >= 0, got {self.soft_start_steps!r}"
            )
        _positive(self.soft_start_fraction, "soft_start_fraction", allow_none=False)
        if self.soft_start_fraction > 1:
            raise ValueError(f"SafetyConfig.soft_start_fraction must be <= 1, got {self.soft_start_fraction}")
        for name in ("nan_estop_after", "sensor_estop_after"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"SafetyConfig.{name} must be an int >= 1, got {value!r}")
        if self.intervention_tolerance != 0:
            _positive(self.intervention_tolerance, "intervention_tolerance")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> SafetyConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them and ``source``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown safety keys {unknown}; known: {sorted(known)}")
        return cls(**data)
