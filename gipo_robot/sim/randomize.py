"""Domain randomization for sim-to-real: physics, control, observation and camera/lighting ranges.

Legend: ``A`` action size. Ranges are ``(low, high)`` pairs sampled uniformly once per episode at reset;
scales multiply the model's nominal value (1.0 = unchanged). The sampled values are returned by
:meth:`Randomizer.apply` and put in ``info["randomization"]`` at reset, so they can be stored as episode
metadata.

Every range defaults to "no change", so ``Randomization()`` is the identity. Physics values are written
into the MuJoCo model before robosuite's reset, from the nominal values saved at construction, so they
never compound across episodes.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import mujoco
import numpy as np

Range = tuple[float, float]


def _check_range(name: str, value: Range, low: float = 0.0) -> None:
    if len(value) != 2 or not value[0] <= value[1] or value[0] < low:
        raise ValueError(f"{name} must be (low, high) with {low} <= low <= high, got {value}")


@dataclasses.dataclass(frozen=True)
class Randomization:
    """Ranges for one env; see the module docstring."""

    object_mass_scale: Range = (1.0, 1.0)
    """Scale of every free object's mass (the task's cubes, cans, nuts)."""
    friction_scale: Range = (1.0, 1.0)
    """Scale of the sliding friction coefficient of every geom."""
    joint_damping_scale: Range = (1.0, 1.0)
    """Scale of the robot arm's joint damping."""
    action_noise_std: float = 0.0
    """Std of Gaussian noise added to the normalised action (then clipped to [-1, 1])."""
    action_latency_steps: tuple[int, int] = (0, 0)
    """Control latency in control steps (50 ms at 20 Hz), drawn per episode: the action applied at step t is
    the one given at step t - latency (zeros with the gripper unchanged before the first arrives)."""
    obs_noise_std: float = 0.0
    """Std of Gaussian noise added to every float observation feature (not to images)."""
    camera_pos_std: float = 0.0
    """Std (m) of a per-episode offset of every camera's position."""
    light_scale: Range = (1.0, 1.0)
    """Scale of every light's diffuse colour (brightness)."""

    def __post_init__(self) -> None:
        _check_range("object_mass_scale", self.object_mass_scale, low=1e-6)
        _check_range("friction_scale", self.friction_scale)
        _check_range("joint_damping_scale", self.joint_damping_scale)
        _check_range("light_scale", self.light_scale)
        _check_range("action_latency_steps", self.action_latency_steps)
        for name in ("action_noise_std", "obs_noise_std", "camera_pos_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Randomization:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown keys (listing the known ones) or a bad range.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown randomization keys {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class Randomizer:
    """Applies a :class:`Randomization` to one robosuite env (built by :class:`RobosuiteEnv`).

    Args:
        config: the ranges.
        rs_env: the robosuite env whose model it edits; nominal values are saved now.
    """

    def __init__(self, config: Randomization, rs_env: Any) -> None:
        self.config = config
        self._rs = rs_env
        model = rs_env.sim.model._model
        self._model = model
        free = [
            int(model.jnt_bodyid[j])
            for j in range(model.njnt)
            if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE
        ]
        self.object_bodies = np.array(sorted(set(free)), dtype=int)
        robot = rs_env.robots[0]
        self.arm_dofs = np.array(robot._ref_joint_vel_indexes, dtype=int)
        self._nominal = {
            "body_mass": model.body_mass.copy(),
            "geom_friction": model.geom_friction.copy(),
            "dof_damping": model.dof_damping.copy(),
            "cam_pos": model.cam_pos.copy(),
            "light_diffuse": model.light_diffuse.copy(),
        }
        self._rng = np.random.default_rng(0)
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._latency = 0

    def apply(self, rng: np.random.Generator) -> dict[str, Any]:
        """Restore the nominal model, sample this episode's values and write them into the model.

        Args:
            rng: the episode's generator (the env derives it from the episode seed).

        Returns:
            The sampled values: ``object_mass_scale``, ``friction_scale``, ``joint_damping_scale``,
            ``light_scale`` (floats), ``action_latency_steps`` (int), ``camera_pos_offset`` (list of
            [x, y, z] per camera, m).
        """
        c, m, nominal = self.config, self._model, self._nominal
        values: dict[str, Any] = {
            "object_mass_scale": float(rng.uniform(*c.object_mass_scale)),
            "friction_scale": float(rng.uniform(*c.friction_scale)),
            "joint_damping_scale": float(rng.uniform(*c.joint_damping_scale)),
            "light_scale": float(rng.uniform(*c.light_scale)),
            "action_latency_steps": int(
                rng.integers(c.action_latency_steps[0], c.action_latency_steps[1] + 1)
            ),
        }
        offsets = rng.normal(0.0, c.camera_pos_std, nominal["cam_pos"].shape) if c.camera_pos_std else None
        values["camera_pos_offset"] = (
            offsets if offsets is not None else np.zeros_like(nominal["cam_pos"])
        ).tolist()
        m.body_mass[:] = nominal["body_mass"]
        m.body_mass[self.object_bodies] *= values["object_mass_scale"]
        m.geom_friction[:] = nominal["geom_friction"]
        m.geom_friction[:, 0] *= values["friction_scale"]
        m.dof_damping[:] = nominal["dof_damping"]
        m.dof_damping[self.arm_dofs] *= values["joint_damping_scale"]
        m.cam_pos[:] = nominal["cam_pos"] + (offsets if offsets is not None else 0.0)
        m.light_diffuse[:] = nominal["light_diffuse"] * values["light_scale"]
        mujoco.mj_setConst(m, self._rs.sim.data._data)
        self._rng = rng
        self._latency = values["action_latency_steps"]
        self._queue.clear()
        return values

    def perturb_action(self, action: np.ndarray) -> np.ndarray:
        """(A,) normalised action -> the action the robot receives: delayed, noised, clipped to [-1, 1]."""
        if self._latency:
            self._queue.append(action.copy())
            if len(self._queue) > self._latency:
                action = self._queue.popleft()
            else:
                action = np.zeros_like(action)
                action[-1] = self._queue[0][-1]
        if self.config.action_noise_std:
            action = action + self._rng.normal(0.0, self.config.action_noise_std, action.shape)
        return np.clip(action, -1.0, 1.0)

    def corrupt_observation(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add observation noise to float features; images pass through."""
        std = self.config.obs_noise_std
        if not std:
            return obs
        return {
            k: v + self._rng.normal(0.0, std, v.shape) if v.dtype.kind == "f" else v for k, v in obs.items()
        }
