"""The task registry: our task names, the robosuite environment behind each, and its privileged state.

A task's rules (reward, success, observation layout of its objects) are robosuite's; what we add per task
is a name, an episode length and the ground-truth state the scripted experts read. :data:`TASKS` is the
one place that lists them, and :func:`resolve_task` the one place that looks a name up.

Adding a task takes one function and one registration line:

1. write ``_privileged_<task>(rs_env) -> dict[str, np.ndarray]`` returning the world-frame positions (m)
   and yaws (rad) an expert needs, read from the robosuite env's ``sim.data``;
2. add ``"<Name>": TaskInfo("<robosuite class>", {<make kwargs>}, <horizon>, _privileged_<task>)`` to
   :data:`TASKS`. robosuite's class name is accepted as an alias automatically (:data:`TASK_ALIASES`).

A scripted expert for it (to record demonstrations without a human) is a separate, optional entry in
:data:`gipo_robot.sim.experts.PLANS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["TASKS", "TASK_ALIASES", "TaskInfo", "resolve_task"]


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """How one of our task names maps onto robosuite."""

    robosuite_name: str
    """The robosuite environment class name passed to ``robosuite.make``."""
    kwargs: dict[str, Any]
    """Extra keyword arguments for ``robosuite.make`` (e.g. the single-object variant of PickPlace)."""
    default_horizon: int
    """Control steps per episode unless ``make_env(horizon=...)`` says otherwise (20 Hz: 10 s = 200)."""
    privileged: Callable[[Any], dict[str, np.ndarray]]
    """Ground-truth object state for scripted experts: name -> world-frame position (m) or yaw (rad)."""


def _yaw(env: Any, body_id: int) -> np.ndarray:
    """Rotation of a body about the world z axis, rad."""
    mat = env.sim.data.body_xmat[body_id].reshape(3, 3)
    return np.array(np.arctan2(mat[1, 0], mat[0, 0]))


def _privileged_lift(env: Any) -> dict[str, np.ndarray]:
    return {
        "cube_pos": np.array(env.sim.data.body_xpos[env.cube_body_id]),
        "cube_yaw": _yaw(env, env.cube_body_id),
    }


def _privileged_can(env: Any) -> dict[str, np.ndarray]:
    obj = env.objects[env.object_id]
    target = np.array(env.target_bin_placements[env.object_id])
    return {
        "can_pos": np.array(env.sim.data.body_xpos[env.obj_body_id[obj.name]]),
        "target_pos": target,
        "bin_top_z": np.array(env.bin2_pos[2]),
    }


def _privileged_square(env: Any) -> dict[str, np.ndarray]:
    nut = env.nuts[env.nut_to_id["square"]]
    return {
        "nut_pos": np.array(env.sim.data.body_xpos[env.obj_body_id[nut.name]]),
        "handle_pos": np.array(
            env.sim.data.site_xpos[env.sim.model.site_name2id(nut.important_sites["handle"])]
        ),
        "peg_pos": np.array(env.sim.data.body_xpos[env.peg1_body_id]),
    }


def _privileged_stack(env: Any) -> dict[str, np.ndarray]:
    return {
        "cubeA_pos": np.array(env.sim.data.body_xpos[env.cubeA_body_id]),
        "cubeA_yaw": _yaw(env, env.cubeA_body_id),
        "cubeB_pos": np.array(env.sim.data.body_xpos[env.cubeB_body_id]),
    }


#: Registry of tasks: our name -> robosuite environment. robomimic's short names, as in its datasets.
TASKS: dict[str, TaskInfo] = {
    "Lift": TaskInfo("Lift", {}, 200, _privileged_lift),
    "Can": TaskInfo("PickPlaceCan", {}, 300, _privileged_can),
    "Square": TaskInfo("NutAssemblySquare", {}, 400, _privileged_square),
    "Stack": TaskInfo("Stack", {}, 300, _privileged_stack),
}

#: robosuite's own names, accepted as aliases (derived from :data:`TASKS`).
TASK_ALIASES: dict[str, str] = {
    info.robosuite_name: name for name, info in TASKS.items() if info.robosuite_name != name
}


def resolve_task(task: str) -> str:
    """Our canonical task name for ``task`` (accepts robosuite's names too).

    Raises:
        ValueError: ``task`` is not registered; the message lists the known tasks.
    """
    name = TASK_ALIASES.get(task, task)
    if name not in TASKS:
        known = sorted(TASKS) + sorted(TASK_ALIASES)
        raise ValueError(f"unknown task {task!r}; known: {', '.join(known)}")
    return name
