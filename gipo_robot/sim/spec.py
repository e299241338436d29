"""The :class:`~gipo_robot.hardware.robot.RobotSpec` of a simulated arm: what its actions and joints mean.

Legend: ``A`` action size, ``J`` arm joints.

Every simulated env exposes ``env.robot_spec``, built here from the robosuite env, so the simulator speaks
the same contract as a real arm: the action mode is one of the robot vocabulary's (``ee_delta`` for
robosuite's OSC_POSE controller, ``joint_delta`` for its JOINT_POSITION controller, whose targets are
per-step deltas), ``action_low``/``action_high`` say what +-1 means physically (the controller's output
range; the gripper's -1 opens, +1 closes), and the joint limits are the model's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gipo_robot.hardware.robot import RobotSpec

if TYPE_CHECKING:
    from gipo_robot.sim.robosuite_env import EnvConfig

__all__ = [
    "PANDA_MAX_JOINT_VELOCITY",
    "UNLIMITED_JOINT_RANGE",
    "WORKSPACE_HEIGHT",
    "action_meaning",
    "robot_spec",
    "workspace_box",
]

#: Panda joint velocity limits, rad/s (Franka datasheet), used for every simulated arm (the models carry
#: none); arms with more than 7 joints get 2 rad/s.
PANDA_MAX_JOINT_VELOCITY = np.array([2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61])

#: Position range, rad, given to a joint the model leaves unlimited (Kinova3's continuous joints): one
#: turn either way, since a RobotSpec's limits are finite.
UNLIMITED_JOINT_RANGE = (-2 * np.pi, 2 * np.pi)

#: Height of a simulated task's workspace box above its work surface, m.
WORKSPACE_HEIGHT = 0.5


def action_meaning(rs_env: Any) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Names and physical ranges of robosuite's [-1, 1] action vector for one single-arm robot.

    Returns:
        ``(names, low, high)``: (A,) names such as ``dx ... drz, gripper`` (OSC) or ``dq0 ... dq6,
        gripper`` (joint deltas), and the (A,) physical command at -1 and at +1.
    """
    robot = rs_env.robots[0]
    names: list[str] = []
    low: list[float] = []
    high: list[float] = []
    for part_name, controller in robot.composite_controller.part_controllers.items():
        start, end = robot.composite_controller._action_split_indexes[part_name]
        if end == start:
            continue
        if part_name in robot.composite_controller.grippers:
            dof = end - start
            names += ["gripper"] if dof == 1 else [f"gripper{i}" for i in range(dof)]
            low += [-1.0] * dof
            high += [1.0] * dof
        elif type(controller).__name__ == "OperationalSpaceController":
            names += ["dx", "dy", "dz", "drx", "dry", "drz"][: end - start]
            low += list(np.asarray(controller.output_min, dtype=float))
            high += list(np.asarray(controller.output_max, dtype=float))
        else:
            names += [f"dq{i}" for i in range(end - start)]
            low += list(np.broadcast_to(np.asarray(controller.output_min, dtype=float), (end - start,)))
            high += list(np.broadcast_to(np.asarray(controller.output_max, dtype=float), (end - start,)))
    return tuple(names), np.array(low), np.array(high)


def workspace_box(rs_env: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (3,) low and high corners, m, of the box the end effector of a robosuite task may work in.

    The footprint of the surfaces the task uses, from the lowest of them to :data:`WORKSPACE_HEIGHT` above
    it: for bin tasks (PickPlace: ``bin1_pos``, ``bin2_pos``, ``bin_size``) both bins, since the object
    goes from one to the other; otherwise the table top (``table_offset``, ``table_full_size``). PickPlace
    also sets ``table_full_size`` (to one bin's size), but it has no table: a box from it, centred on the
    origin, cut through the second bin and clipped most steps of a pick-and-place.
    """
    if all(hasattr(rs_env, name) for name in ("bin1_pos", "bin2_pos", "bin_size")):
        centres = np.array([rs_env.bin1_pos, rs_env.bin2_pos], dtype=np.float64)
        half = np.asarray(rs_env.bin_size, dtype=np.float64)[:2] / 2
        low = np.append(centres[:, :2].min(0) - half, centres[:, 2].min())
        high = np.append(centres[:, :2].max(0) + half, low[2] + WORKSPACE_HEIGHT)
        return low, high
    table = np.asarray(getattr(rs_env, "table_offset", (0.0, 0.0, 0.8)), dtype=np.float64)
    size = np.asarray(getattr(rs_env, "table_full_size", (0.8, 0.8, 0.05)), dtype=np.float64)
    low = np.array([table[0] - size[0] / 2, table[1] - size[1] / 2, table[2]])
    high = np.array([table[0] + size[0] / 2, table[1] + size[1] / 2, table[2] + WORKSPACE_HEIGHT])
    return low, high


def robot_spec(
    rs_env: Any,
    config: EnvConfig,
    obs_shapes: dict[str, tuple[int, ...]],
    obs_dtypes: dict[str, str],
) -> RobotSpec:
    """The :class:`RobotSpec` of a robosuite env built from ``config``.

    The name is ``sim:<task>``; the action mode, control rate and cameras are the config's; the workspace
    box is :func:`workspace_box`'s, checked on ``robot0_eef_pos``.

    Args:
        rs_env: the robosuite environment (single arm).
        config: the config it was built from.
        obs_shapes: observation feature -> shape, in observation order.
        obs_dtypes: observation feature -> numpy dtype name.
    """
    names, low, high = action_meaning(rs_env)
    robot = rs_env.robots[0]
    model = rs_env.sim.model
    limited = np.asarray(model.jnt_limited[robot.joint_indexes], dtype=bool)[:, None]
    joint_range = np.where(
        limited, np.asarray(model.jnt_range[robot.joint_indexes], dtype=np.float64), UNLIMITED_JOINT_RANGE
    )
    n = len(robot.joint_indexes)
    vmax = PANDA_MAX_JOINT_VELOCITY[:n] if n <= 7 else np.full(n, 2.0)
    box_low, box_high = workspace_box(rs_env)
    return RobotSpec(
        name=f"sim:{config.task}",
        action_mode=config.action_mode,
        action_names=names,
        action_low=low,
        action_high=high,
        joint_names=tuple(robot.robot_joints),
        joint_low=joint_range[:, 0],
        joint_high=joint_range[:, 1],
        max_joint_velocity=vmax,
        control_hz=float(config.control_freq),
        obs_shapes=dict(obs_shapes),
        obs_dtypes=dict(obs_dtypes),
        cameras=config.cameras,
        workspace_low=box_low,
        workspace_high=box_high,
        eef_feature="robot0_eef_pos",
    )
