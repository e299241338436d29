"""What defines a simulated environment: :class:`EnvConfig` and the names it accepts.

Plain data with no robosuite import, so a worker process (subprocess or Ray actor) rebuilds its env from
the config alone, and a config saved beside a store (its ``env`` attribute) or a run loads back with
:meth:`EnvConfig.from_dict`. Every field is checked on construction; an unknown name raises an error that
lists the known ones.

Action modes are the robot vocabulary's (:data:`gipo_robot.hardware.robot.ACTION_MODES`), the ones the
simulator can offer: ``ee_delta`` and ``joint_delta``. Configs written before that vocabulary used the
simulator's own words; :data:`LEGACY_ACTION_MODES` maps them, on loading only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gipo_robot.sim.tasks import TASKS, resolve_task

__all__ = [
    "ACTION_MODES",
    "LEGACY_ACTION_MODES",
    "RENDER_QUALITIES",
    "REWARDS",
    "ROBOTS",
    "SCENE_CAMERAS",
    "EnvConfig",
]

#: Single-arm robots that robosuite 1.5 ships with a default controller and gripper.
ROBOTS: dict[str, str] = {
    "Panda": "Franka Emika Panda, 7 DoF, parallel gripper",
    "Sawyer": "Rethink Sawyer, 7 DoF, parallel gripper",
    "IIWA": "KUKA LBR iiwa, 7 DoF, Robotiq 140 gripper",
    "Jaco": "Kinova Jaco, 7 DoF, three-finger gripper",
    "Kinova3": "Kinova Gen3, 7 DoF, Robotiq 85 gripper",
    "UR5e": "Universal Robots UR5e, 6 DoF, Robotiq 85 gripper",
}

#: Cameras in robosuite's manipulation scenes with a single robot (robot0_* are on the robot).
SCENE_CAMERAS: tuple[str, ...] = (
    "agentview",
    "frontview",
    "birdview",
    "sideview",
    "robot0_robotview",
    "robot0_eye_in_hand",
)

#: Action modes the simulator offers (the robot vocabulary's, :data:`gipo_robot.hardware.robot.ACTION_MODES`)
#: -> robosuite part-controller type for the arm. Absolute ``joint_position`` is not offered.
ACTION_MODES: dict[str, str] = {"ee_delta": "OSC_POSE", "joint_delta": "JOINT_POSITION"}

#: Action-mode names that configs saved before the robot vocabulary (store attribute ``env``, a run's
#: ``config.json``) carry -> today's name. Only :meth:`EnvConfig.from_dict` reads them; a user typing one
#: gets an error that names the new word (:data:`_OLD_NAME_HINTS`).
LEGACY_ACTION_MODES: dict[str, str] = {"osc_delta": "ee_delta", "joint_position": "joint_delta"}
_OLD_NAME_HINTS: dict[str, str] = {
    "osc_delta": "end-effector pose deltas are called 'ee_delta'",
    "joint_position": "absolute joint targets are not offered by the simulator (robosuite's joint "
    "controller takes per-step deltas); use 'joint_delta'",
}
REWARDS: tuple[str, ...] = ("sparse", "shaped")
RENDER_QUALITIES: tuple[str, ...] = ("exact", "fast")


def _lookup(registry: dict, name: str, what: str) -> Any:
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


@dataclasses.dataclass
class EnvConfig:
    """Everything that defines an environment; plain data, so worker processes can rebuild it."""

    task: str = "Lift"
    """Task name from :data:`gipo_robot.sim.tasks.TASKS` (or robosuite's name for it)."""
    robot: str = "Panda"
    """Robot name from :data:`ROBOTS`."""
    action_mode: str = "ee_delta"
    """``ee_delta`` (end-effector pose deltas, robosuite's default) or ``joint_delta`` (joint target
    deltas per step); see :data:`ACTION_MODES`."""
    reward: str = "sparse"
    """``sparse``: 1.0 on a success step, else 0.0. ``shaped``: robosuite's dense reward, max 1.0."""
    horizon: int | None = None
    """Control steps before ``truncated``; None: the task's ``TaskInfo.default_horizon``."""
    cameras: tuple[str, ...] = ()
    """Cameras rendered as ``<name>_image`` observations, e.g. ``("agentview", "robot0_eye_in_hand")``."""
    image_size: int = 84
    """Camera images are ``image_size`` x ``image_size`` pixels."""
    seed: int | None = None
    """Seed of the first episode when ``reset()`` gets none; later episodes draw seeds from it."""
    end_on_success: bool = True
    """``terminated=True`` on the first success step (else the episode runs to the horizon)."""
    model_seed: int = 0
    """Seed of the scene's build-time randomness (e.g. Lift's cube size, 20-22 mm). The scene is built once
    and reset in place (robosuite ``hard_reset=False``: a rebuild costs ~0.1 s per episode), so an
    episode is a pure function of (config, reset seed, actions)."""
    control_freq: float = 20.0
    """Policy steps per second (Hz); robosuite runs physics at 500 Hz underneath."""
    fast: bool = True
    """Step with the lean loop (:mod:`gipo_robot.sim.fast_step`) where the controller supports it."""
    render_quality: str = "exact"
    """Camera rendering: ``exact`` renders as robosuite does; ``fast`` turns off MuJoCo's planar reflections
    (the table and floor), multisampling and shadows, sizes the framebuffer to the image, leaves geoms
    outside the camera's view out of each frame and draws simplified visual meshes
    (:mod:`gipo_robot.sim.fast_render`): 4-7x cheaper per camera step under software rendering (llvmpipe)
    for a mean pixel change of under 2/255, deterministic, with the same physics. What every camera path
    of the toolkit uses (recording, training, evaluation)."""
    randomization: Any = None
    """A :class:`gipo_robot.sim.randomize.Randomization` applied at every reset, or None."""

    def __post_init__(self) -> None:
        self.task = resolve_task(self.task)
        _lookup(ROBOTS, self.robot, "robot")
        if self.action_mode in _OLD_NAME_HINTS:
            raise ValueError(
                f"action_mode {self.action_mode!r}: {_OLD_NAME_HINTS[self.action_mode]}; "
                f"known: {', '.join(sorted(ACTION_MODES))}"
            )
        _lookup(ACTION_MODES, self.action_mode, "action_mode")
        if self.reward not in REWARDS:
            raise ValueError(f"unknown reward {self.reward!r}; known: {', '.join(REWARDS)}")
        if self.horizon is not None and self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8 pixels, got {self.image_size}")
        if self.control_freq <= 0:
            raise ValueError(f"control_freq must be > 0 Hz, got {self.control_freq}")
        if self.render_quality not in RENDER_QUALITIES:
            raise ValueError(
                f"render_quality must be one of {', '.join(RENDER_QUALITIES)}, got {self.render_quality!r}"
            )
        self.cameras = tuple(self.cameras)

    @property
    def max_steps(self) -> int:
        """The horizon in control steps."""
        return self.horizon if self.horizon is not None else TASKS[self.task].default_horizon

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the randomization as its own dict)."""
        out = dataclasses.asdict(dataclasses.replace(self, randomization=None))
        out["cameras"] = list(self.cameras)
        out["randomization"] = None if self.randomization is None else self.randomization.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> EnvConfig:
        """Inverse of :meth:`to_dict`; also reads configs saved with a :data:`LEGACY_ACTION_MODES` name.

        Args:
            data: a dict written by :meth:`to_dict` (e.g. a store's ``attrs["env"]``).
            source: where ``data`` came from, for error messages.

        Raises:
            ValueError: unknown keys or a bad value; the message names ``source`` and the key.
        """
        from gipo_robot.sim.randomize import Randomization

        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{source}: unknown env config keys {unknown}; known: {sorted(names)}")
        values = dict(data)
        mode = values.get("action_mode")
        if isinstance(mode, str):
            values["action_mode"] = LEGACY_ACTION_MODES.get(mode, mode)
        if values.get("randomization") is not None:
            values["randomization"] = Randomization.from_dict(values["randomization"])
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from err
