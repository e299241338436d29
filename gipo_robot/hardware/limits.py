"""The safety limits, as pure functions of arrays: no robot, no state, no I/O.

Legend: ``A`` action size, ``J`` number of joints.

Each limit can be read and tested alone (LeRobot's ``ensure_safe_goal_position`` style);
:class:`~gipo_robot.hardware.safety.SafetyGuard` applies them, in order, to every action that reaches an
arm. :func:`motion_mask` and :func:`action_joints` read from a :class:`RobotSpec` which action dimensions
move the arm and which joint each drives.
"""

from __future__ import annotations

import numpy as np

from gipo_robot.hardware.robot import RobotSpec

__all__ = [
    "action_joints",
    "clamp_into_box",
    "clamp_step",
    "clamp_to_limits",
    "motion_mask",
    "soft_start_scale",
]


def clamp_to_limits(target: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Clamp (A,) targets into ``[low, high]`` per dimension (``-inf``/``inf`` bounds leave it free)."""
    return np.minimum(np.maximum(target, low), high)


def clamp_step(target: np.ndarray, reference: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """Move each (A,) target no further than ``max_step`` from ``reference`` (LeRobot's
    ``ensure_safe_goal_position``): ``reference + clip(target - reference, -max_step, max_step)``.

    A NaN reference (unknown position) leaves that dimension unchanged, and so does a step within
    ``max_step``: the target itself comes back, not ``reference + (target - reference)``, which differs
    from it in the last bits and would read as a change.
    """
    known = np.isfinite(reference)
    safe_ref = np.where(known, reference, 0.0)
    step = target - safe_ref
    clamped = safe_ref + np.clip(step, -max_step, max_step)
    return np.where(known & (np.abs(step) > max_step), clamped, target)


def clamp_into_box(position: np.ndarray, delta: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The largest part of a (3,) ``delta`` that keeps ``position + delta`` inside the box ``[low, high]``.

    Each component is clipped so the new position stays in the box. A position already outside the box on
    one side may only move back towards it (a step further out is cut to zero). A component that stays
    inside comes back exactly as given (not ``(position + delta) - position``, which differs in the last
    bits).
    """
    lo = np.minimum(low, position)
    hi = np.maximum(high, position)
    target = position + delta
    inside = (target >= lo) & (target <= hi)
    return np.where(inside, delta, np.clip(target, lo, hi) - position)


def soft_start_scale(step: int, steps: int, fraction: float) -> float:
    """Factor on the per-step limit ``step`` actions after connect: ``fraction`` at step 0, rising linearly
    to 1 at step ``steps`` (1 throughout when ``steps`` is 0)."""
    if steps <= 0 or step >= steps:
        return 1.0
    return fraction + (1.0 - fraction) * step / steps


def motion_mask(spec: RobotSpec) -> np.ndarray:
    """(A,) bool: the action dimensions that move the arm.

    All of them in ``joint_position`` mode (the gripper is a joint target like the others); in delta modes
    every dimension except the gripper's open/close command (a dimension whose name contains ``gripper``),
    which is a level, not a displacement.
    """
    if spec.action_mode == "joint_position":
        return np.ones(spec.action_dim, dtype=bool)
    return np.array(["gripper" not in name for name in spec.action_names])


def action_joints(spec: RobotSpec) -> np.ndarray:
    """(A,) int: the joint each action dimension drives in joint modes, -1 for none.

    By name when every motion dimension is named after a joint, else by order (the i-th motion dimension
    drives joint i), as robosuite's ``dq0..dq6`` do.
    """
    index = np.full(spec.action_dim, -1)
    if spec.action_mode == "ee_delta":
        return index
    motion = np.flatnonzero(motion_mask(spec))
    names = [spec.action_names[i] for i in motion]
    if all(n in spec.joint_names for n in names):
        index[motion] = [spec.joint_names.index(n) for n in names]
    else:
        k = min(len(motion), spec.n_joints)
        index[motion[:k]] = np.arange(k)
    return index
