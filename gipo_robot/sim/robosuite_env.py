"""robosuite manipulation tasks as gymnasium environments with one observation/action contract.

Legend: ``A`` action size (7 for a Panda with OSC deltas: dx, dy, dz, drx, dry, drz, gripper), ``D`` size of
one low-dim feature, ``H``/``W`` image height/width (``image_size``).

Observations are a ``gymnasium.spaces.Dict`` of named features, the names the Zarr store records as
``obs.<name>``:

- proprioception, float64: ``robot0_joint_pos`` (7,) rad, ``robot0_joint_pos_cos``/``_sin`` (7,),
  ``robot0_joint_vel`` (7,) rad/s, ``robot0_eef_pos`` (3,) m in the world frame, ``robot0_eef_quat`` (4,)
  xyzw, ``robot0_gripper_qpos`` (2,) m, ``robot0_gripper_qvel`` (2,) m/s;
- ``object``, float64 (D,): the task's object state (robosuite's ``object-state``: object poses and
  gripper-to-object vectors; D is 10 for Lift, 14 for Can and Square, 23 for Stack);
- ``<camera>_image``, uint8 (H, W, 3), upright (robosuite renders bottom-up; we flip), one per camera.

Actions are normalised to [-1, 1] and speak the robot contract of :mod:`gipo_robot.hardware.robot`:
``action_mode`` is ``ee_delta`` (robosuite's OSC_POSE controller, the default) or ``joint_delta``
(robosuite's JOINT_POSITION controller, whose targets are per-step deltas). ``env.robot_spec``, a
:class:`~gipo_robot.hardware.robot.RobotSpec` (built in :mod:`gipo_robot.sim.spec`), records what +-1
means in physical units (``action_low``/``action_high``: metres and radians per control step for
``ee_delta``, radians per step for ``joint_delta``; the gripper's -1 opens, +1 closes), the joints and
their limits, the control rate and the observation shapes, exactly as a real arm's spec does. What only a
simulator has (task, robot model, horizon, image size) is in ``env.config``, the
:class:`~gipo_robot.sim.config.EnvConfig` it was built from; the physics substeps per control step in
``env.substeps``. Tasks are registered in :mod:`gipo_robot.sim.tasks`.

robosuite's own INFO/WARNING log lines (a missing private macro file, optional robot models, the
controller file it loads) are dropped when this module imports robosuite; its errors still show.

Values follow robosuite exactly, including one robosuite quirk worth knowing: an observable samples on
the first physics substep after its sampling period elapses, so the observation returned by ``step`` is
the state one substep (2 ms) into that control step, not the state at its end.

Speed. ``fast=True`` (the default) steps robosuite's physics with a lean loop
(:mod:`gipo_robot.sim.fast_step`) that runs the same OSC controller arithmetic, the same observable
sampling and the same reward code, but skips robosuite's per-substep bookkeeping; the trajectories equal
stock ``robosuite.env.step`` to the bit (tests/sim/test_fast_step.py compares them).
"""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from gipo_robot.extras import install_hint
from gipo_robot.hardware.robot import RobotSpec
from gipo_robot.sim.config import ACTION_MODES, SCENE_CAMERAS, EnvConfig
from gipo_robot.sim.spec import robot_spec
from gipo_robot.sim.tasks import TASKS

#: Proprioceptive features, in the order the observation dict lists them.
PROPRIO_FEATURES: tuple[str, ...] = (
    "robot0_joint_pos",
    "robot0_joint_pos_cos",
    "robot0_joint_pos_sin",
    "robot0_joint_vel",
    "robot0_eef_pos",
    "robot0_eef_quat",
    "robot0_gripper_qpos",
    "robot0_gripper_qvel",
)
OBJECT_FEATURE = "object"


class SimError(RuntimeError):
    """A simulation could not be built or stepped; the message says what to do."""


class SimUnavailableError(SimError):
    """The simulator is not installed (the ``[sim]`` extra); the message says how to install it."""


class RendererUnavailableError(SimError):
    """Offscreen rendering (cameras, videos) is not available with the current ``MUJOCO_GL``."""


RENDERER_HELP = (
    "Offscreen MuJoCo rendering failed with MUJOCO_GL={gl!r}: {err}. "
    "Use MUJOCO_GL=egl (Mesa EGL: apt-get install libegl1 libgl1) or MUJOCO_GL=osmesa "
    "(software: apt-get install libosmesa6), set before Python starts; or build the env without "
    "cameras (cameras=()) for state-only observations."
)


#: The logger robosuite writes its console lines to (:func:`_quiet_robosuite_logs`).
ROBOSUITE_LOGGER = "robosuite_logs"


class _DropRobosuiteChatter(logging.Filter):
    """Lets only robosuite's ERROR and CRITICAL records through (its INFO/WARNING lines are not ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _quiet_robosuite_logs() -> None:
    """Drop robosuite's INFO/WARNING records, from its import on.

    robosuite logs through the ``robosuite_logs`` logger, to which it attaches its own console handler at
    import (at INFO, whatever level the logger had): a filter on the logger itself is what survives that.
    """
    logger = logging.getLogger(ROBOSUITE_LOGGER)
    if not any(isinstance(f, _DropRobosuiteChatter) for f in logger.filters):
        logger.addFilter(_DropRobosuiteChatter())


def _import_robosuite() -> Any:
    """Import robosuite quietly, with offscreen rendering defaulting to EGL; import failures name the fix."""
    _quiet_robosuite_logs()
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault(
        "PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"] if os.environ["MUJOCO_GL"] != "glfw" else ""
    )
    try:
        import robosuite
    except ImportError as err:
        hint = install_hint(err)
        if hint is not None:  # robosuite (or its mink / numba) is not installed: the [sim] extra
            raise SimUnavailableError(hint) from err
        raise RendererUnavailableError(RENDERER_HELP.format(gl=os.environ.get("MUJOCO_GL"), err=err)) from err
    except (AttributeError, RuntimeError, OSError) as err:
        raise RendererUnavailableError(RENDERER_HELP.format(gl=os.environ.get("MUJOCO_GL"), err=err)) from err
    return robosuite


def _controller_config(robosuite: Any, robot: str, action_mode: str) -> dict:
    from robosuite.controllers import load_composite_controller_config, load_part_controller_config

    config = load_composite_controller_config(controller=None, robot=robot)
    part_type = ACTION_MODES[action_mode]
    for name, part in config["body_parts"].items():
        if name in ("right", "left") and part.get("type") != part_type:
            gripper = part.get("gripper")
            new_part = load_part_controller_config(default_controller=part_type)
            if gripper is not None:
                new_part["gripper"] = gripper
            config["body_parts"][name] = new_part
    return config


def _reseed(rs_env: Any, seed: int) -> None:
    """Point robosuite's random streams (robot init noise, object placement) at a fresh seeded generator."""
    rng = np.random.default_rng(seed)
    rs_env.rng = rng
    stack = [rs_env.placement_initializer]
    while stack:
        sampler = stack.pop()
        if sampler is None:
            continue
        sampler.rng = rng
        stack.extend(getattr(sampler, "samplers", {}).values())


def _make_robosuite(config: EnvConfig, offscreen: bool) -> Any:
    """``robosuite.make`` for ``config``; errors name the unknown camera or the renderer fix."""
    robosuite = _import_robosuite()
    task = TASKS[config.task]
    kwargs = dict(
        robots=config.robot,
        controller_configs=_controller_config(robosuite, config.robot, config.action_mode),
        has_renderer=False,
        has_offscreen_renderer=offscreen,
        use_camera_obs=bool(config.cameras),
        use_object_obs=True,
        reward_shaping=config.reward == "shaped",
        reward_scale=1.0,
        control_freq=config.control_freq,
        horizon=config.max_steps,
        ignore_done=True,
        hard_reset=False,
        seed=config.model_seed,
        **task.kwargs,
    )
    if config.cameras:
        kwargs.update(
            camera_names=list(config.cameras),
            camera_heights=config.image_size,
            camera_widths=config.image_size,
        )
    try:
        return robosuite.make(task.robosuite_name, **kwargs)
    except ValueError as err:
        bad = [c for c in config.cameras if c in str(err)]
        if bad:
            raise ValueError(f"unknown camera(s) {bad}; known: {', '.join(SCENE_CAMERAS)}") from err
        raise
    except (ImportError, AttributeError, RuntimeError, OSError) as err:
        if offscreen:
            raise RendererUnavailableError(
                RENDERER_HELP.format(gl=os.environ.get("MUJOCO_GL"), err=err)
            ) from err
        raise


def _observation_layout(
    rs_obs: dict[str, np.ndarray], config: EnvConfig
) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """Feature name -> shape and -> dtype name, in observation order, from robosuite's first observation."""
    shapes = {k: np.shape(rs_obs[k]) for k in PROPRIO_FEATURES}
    shapes[OBJECT_FEATURE] = np.shape(rs_obs["object-state"])
    dtypes = dict.fromkeys(shapes, "float64")
    for cam in config.cameras:
        shapes[f"{cam}_image"] = (config.image_size, config.image_size, 3)
        dtypes[f"{cam}_image"] = "uint8"
    return shapes, dtypes


class RobosuiteEnv(gym.Env):
    """One robosuite task behind gymnasium's API; see the module docstring for the contract.

    ``reset(seed=s)`` makes the episode a pure function of ``s`` and the actions: the same seed and action
    sequence give the same trajectory. ``info`` always carries ``success`` (bool) and ``seed`` (the
    episode's seed, which reproduces it), and, with randomization, ``randomization`` (the sampled values).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, config: EnvConfig, render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r}; known: rgb_array")
        self.config = config
        self.render_mode = render_mode
        offscreen = bool(config.cameras) or render_mode == "rgb_array"
        self._rs = _make_robosuite(config, offscreen)
        self._check_cameras()
        self._renderer = None
        if offscreen:
            from gipo_robot.sim.fast_render import OffscreenRenderer

            fast = config.render_quality == "fast"
            self._renderer = OffscreenRenderer(self._rs, config.image_size, fast=fast)
        self._task = TASKS[config.task]
        self._randomizer = None
        if config.randomization is not None:
            from gipo_robot.sim.randomize import Randomizer

            self._randomizer = Randomizer(config.randomization, self._rs)
        self._stepper = None
        if config.fast:
            from gipo_robot.sim.fast_step import FastStepper

            self._stepper = FastStepper.create(self._rs)

        obs = self._rs.reset()
        self._object_names = self._object_observables()
        shapes, dtypes = _observation_layout(obs, config)
        self.robot_spec: RobotSpec = robot_spec(self._rs, config, shapes, dtypes)
        """What the observations and actions mean, as for a real arm (see the module docstring)."""
        self._substeps = int(self._rs.control_timestep / self._rs.model_timestep)
        self.observation_space = gym.spaces.Dict(
            {
                key: gym.spaces.Box(0, 255, shape, np.uint8)
                if dtypes[key] == "uint8"
                else gym.spaces.Box(-np.inf, np.inf, shape, np.float64)
                for key, shape in shapes.items()
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.robot_spec.action_dim,), np.float64)
        self._seeds = np.random.SeedSequence(config.seed)
        self._episode_seed: int | None = None
        self._t = 0
        self._done = True
        self._randomization_values: dict[str, Any] = {}

    # ----------------------------------------------------------------------------------------- helpers
    @property
    def robosuite_env(self) -> Any:
        """The wrapped robosuite environment (for experts, randomization and tests)."""
        return self._rs

    @property
    def substeps(self) -> int:
        """Physics steps (2 ms each) per control step (25 at 20 Hz)."""
        return self._substeps

    @property
    def episode_seed(self) -> int | None:
        """Seed of the current episode (reproduces it), or None before the first reset."""
        return self._episode_seed

    @property
    def elapsed_steps(self) -> int:
        """Control steps taken in the current episode."""
        return self._t

    def privileged_state(self) -> dict[str, np.ndarray]:
        """Ground-truth task state for scripted experts: name -> world position in metres.

        Always has ``eef_pos`` (3,), the gripper site now (not the observation's sampling instant), and
        ``finger_yaw`` (), the direction the fingers close along, as a rotation about world z (rad).
        """
        state = self._task.privileged(self._rs)
        site = self._rs.robots[0].eef_site_id["right"]
        state["eef_pos"] = np.array(self._rs.sim.data.site_xpos[site])
        mat = self._rs.sim.data.site_xmat[site].reshape(3, 3)
        state["finger_yaw"] = np.array(np.arctan2(mat[1, 0], mat[0, 0]))
        return state

    def _check_cameras(self) -> None:
        known = list(self._rs.sim.model.camera_names)
        unknown = [c for c in self.config.cameras if c not in known]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; known: {', '.join(known)}")

    def _object_observables(self) -> list[str]:
        return [
            name
            for name, o in self._rs._observables.items()
            if o.modality == "object" and o.is_enabled() and o.is_active()
        ]

    def _observation(self) -> dict[str, np.ndarray]:
        observables = self._rs._observables
        obs = {k: np.array(observables[k].obs, dtype=np.float64) for k in PROPRIO_FEATURES}
        parts = [np.atleast_1d(np.asarray(observables[k].obs, dtype=np.float64)) for k in self._object_names]
        obs[OBJECT_FEATURE] = np.concatenate(parts)
        for cam in self.config.cameras:
            obs[f"{cam}_image"] = np.ascontiguousarray(observables[f"{cam}_image"].obs[::-1])
        return obs

    def _check_action(self, action: Any) -> np.ndarray:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"action must have shape {self.action_space.shape} "
                f"({', '.join(self.robot_spec.action_names)}), got {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or inf: {a}")
        return np.clip(a, -1.0, 1.0)

    # ------------------------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode.

        Args:
            seed: The episode's seed; None draws the next one from the env's seed sequence.
            options: Unused; accepted for gymnasium compatibility.

        Returns:
            ``(obs, info)`` with ``info = {"seed", "success": False[, "randomization"]}``.
        """
        super().reset(seed=seed)
        if seed is not None:
            self._seeds = np.random.SeedSequence(seed)
            episode_seed = int(seed)
        else:
            episode_seed = int(self._seeds.spawn(1)[0].generate_state(1)[0])
        self._episode_seed = episode_seed
        _reseed(self._rs, episode_seed)
        if self._randomizer is not None:
            self._randomization_values = self._randomizer.apply(np.random.default_rng([episode_seed, 1]))
        self._rs.reset()
        if self._stepper is not None:
            self._stepper.reset()
        self._t = 0
        self._done = False
        info: dict[str, Any] = {"seed": episode_seed, "success": False}
        if self._randomizer is not None:
            info["randomization"] = self._randomization_values
        obs = self._observation()
        if self._randomizer is not None:
            obs = self._randomizer.corrupt_observation(obs)
        return obs, info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply one normalised action for one control step (``substeps`` physics steps).

        Args:
            action: (A,) in [-1, 1] (values outside are clipped).

        Returns:
            ``(obs, reward, terminated, truncated, info)``; ``info["success"]`` is the task's success check.

        Raises:
            ValueError: wrong action shape, or NaN/inf in the action.
            SimError: stepping a finished episode without ``reset()``.
        """
        if self._done:
            raise SimError("step() on a finished episode (or before the first reset); call reset() first")
        a = self._check_action(action)
        if self._randomizer is not None:
            a = self._randomizer.perturb_action(a)
        if self._stepper is not None:
            shaped = self._stepper.step(a)
        else:
            _, shaped, _, _ = self._rs.step(a)
        self._t += 1
        success = bool(self._rs._check_success())
        reward = float(shaped) if self.config.reward == "shaped" else float(success)
        terminated = success and self.config.end_on_success
        truncated = (not terminated) and self._t >= self.config.max_steps
        self._done = terminated or truncated
        obs = self._observation()
        if self._randomizer is not None:
            obs = self._randomizer.corrupt_observation(obs)
        return obs, reward, terminated, truncated, {"success": success, "seed": self._episode_seed}

    def render(self) -> np.ndarray | None:
        """(H, W, 3) uint8 frame from the first configured camera (or ``agentview``), upright."""
        if self.render_mode != "rgb_array":
            return None
        camera = self.config.cameras[0] if self.config.cameras else "agentview"
        size = self.config.image_size
        frame = self._rs.sim.render(camera_name=camera, width=size, height=size)
        return np.ascontiguousarray(frame[::-1])

    def close(self) -> None:
        """Free the simulation and any render context."""
        rs = getattr(self, "_rs", None)
        if rs is not None:
            rs.close()
            self._rs = None


def make_env(
    task: str,
    *,
    robot: str = "Panda",
    action_mode: str = "ee_delta",
    reward: str = "sparse",
    horizon: int | None = None,
    cameras: tuple[str, ...] | list[str] = (),
    image_size: int = 84,
    seed: int | None = None,
    end_on_success: bool = True,
    fast: bool = True,
    randomization: Any = None,
    render_mode: str | None = None,
    render_quality: str = "exact",
) -> RobosuiteEnv:
    """Build a task as a gymnasium env. Arguments are :class:`~gipo_robot.sim.config.EnvConfig`'s fields.

    Raises:
        ValueError: unknown task/robot/action mode/reward/camera (the message lists the known ones).
        RendererUnavailableError: cameras requested but offscreen rendering is unavailable (the message
            names the ``MUJOCO_GL`` value and apt package to use).
    """
    config = EnvConfig(
        task=task,
        robot=robot,
        action_mode=action_mode,
        reward=reward,
        horizon=horizon,
        cameras=tuple(cameras),
        image_size=image_size,
        seed=seed,
        end_on_success=end_on_success,
        fast=fast,
        randomization=randomization,
        render_quality=render_quality,
    )
    return RobosuiteEnv(config, render_mode=render_mode)
