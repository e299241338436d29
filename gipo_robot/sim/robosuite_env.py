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

Actions are normalised to [-1, 1]; :class:`SimSpec` records what +-1 means in physical units
(``action_low``/``action_high``: metres and radians per control step for OSC deltas, radians per step
for joint-position deltas; the gripper's -1 opens, +1 closes).

Values follow robosuite exactly, including one robosuite quirk worth knowing: an observable samples on
the first physics substep after its sampling period elapses, so the observation returned by ``step`` is
the state one substep (2 ms) into that control step, not the state at its end.

Speed. ``fast=True`` (the default) steps robosuite's physics with a lean loop
(:mod:`gipo_robot.sim.fast_step`) that runs the same OSC controller arithmetic, the same observable
sampling and the same reward code, but skips robosuite's per-substep bookkeeping; the trajectories equal
stock ``robosuite.env.step`` to the bit (tests/sim/test_fast_step.py compares them).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

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


class RendererUnavailableError(SimError):
    """Offscreen rendering (cameras, videos) is not available with the current ``MUJOCO_GL``."""


RENDERER_HELP = (
    "Offscreen MuJoCo rendering failed with MUJOCO_GL={gl!r}: {err}. "
    "Use MUJOCO_GL=egl (Mesa EGL: apt-get install libegl1 libgl1) or MUJOCO_GL=osmesa "
    "(software: apt-get install libosmesa6), set before Python starts; or build the env without "
    "cameras (cameras=()) for state-only observations."
)


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


#: Registry of tasks: our name -> robosuite environment. robomimic's short names, as in its datasets.
TASKS: dict[str, TaskInfo] = {
    "Lift": TaskInfo("Lift", {}, 200, _privileged_lift),
    "Can": TaskInfo("PickPlaceCan", {}, 300, _privileged_can),
    "Square": TaskInfo("NutAssemblySquare", {}, 400, _privileged_square),
    "Stack": TaskInfo("Stack", {}, 300, _privileged_stack),
}
#: robosuite's own names, accepted as aliases.
TASK_ALIASES: dict[str, str] = {"PickPlaceCan": "Can", "NutAssemblySquare": "Square"}

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

#: Action modes: our name -> robosuite part-controller type for the arm.
ACTION_MODES: dict[str, str] = {"osc_delta": "OSC_POSE", "joint_position": "JOINT_POSITION"}
REWARDS: tuple[str, ...] = ("sparse", "shaped")
RENDER_QUALITIES: tuple[str, ...] = ("exact", "fast")


def _lookup(registry: dict, name: str, what: str) -> Any:
    if name not in registry:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


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


@dataclasses.dataclass
class EnvConfig:
    """Everything that defines an environment; plain data, so worker processes can rebuild it."""

    task: str = "Lift"
    """Task name from :data:`TASKS` (or a robosuite alias from :data:`TASK_ALIASES`)."""
    robot: str = "Panda"
    """Robot name from :data:`ROBOTS`."""
    action_mode: str = "osc_delta"
    """``osc_delta`` (end-effector pose deltas, robosuite's default) or ``joint_position`` (joint deltas)."""
    reward: str = "sparse"
    """``sparse``: 1.0 on a success step, else 0.0. ``shaped``: robosuite's dense reward, max 1.0."""
    horizon: int | None = None
    """Control steps before ``truncated``; None: the task's :attr:`TaskInfo.default_horizon`."""
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
    (the table and floor) and multisampling, about 2x cheaper under software rendering (llvmpipe) for a mean
    pixel change of about 1/255. What real-time recording with cameras on a CPU needs."""
    randomization: Any = None
    """A :class:`gipo_robot.sim.randomize.Randomization` applied at every reset, or None."""

    def __post_init__(self) -> None:
        self.task = resolve_task(self.task)
        _lookup(ROBOTS, self.robot, "robot")
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


@dataclasses.dataclass(frozen=True)
class SimSpec:
    """What an environment's observations and actions mean; readable without stepping.

    Exposed as ``env.sim_spec`` (gymnasium reserves ``env.spec`` for its registry's ``EnvSpec``).
    """

    task: str
    robot: str
    action_mode: str
    action_names: tuple[str, ...]
    """Name of each action dimension, e.g. ``("dx", "dy", "dz", "drx", "dry", "drz", "gripper")``."""
    action_low: np.ndarray
    """(A,) physical command at action -1 (m or rad per control step; gripper: -1 = open)."""
    action_high: np.ndarray
    """(A,) physical command at action +1."""
    control_hz: float
    """Control steps per second."""
    substeps: int
    """Physics steps (2 ms each) per control step."""
    horizon: int
    """Control steps per episode before truncation."""
    obs_shapes: dict[str, tuple[int, ...]]
    """Feature name -> shape (see the module docstring for units)."""
    obs_dtypes: dict[str, str]
    """Feature name -> numpy dtype name."""
    cameras: tuple[str, ...]
    image_size: int

    @property
    def action_dim(self) -> int:
        """A, the action size."""
        return len(self.action_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["action_low"] = self.action_low.tolist()
        out["action_high"] = self.action_high.tolist()
        out["obs_shapes"] = {k: list(v) for k, v in self.obs_shapes.items()}
        out["action_names"] = list(self.action_names)
        out["cameras"] = list(self.cameras)
        return out


def _import_robosuite() -> Any:
    """Import robosuite with offscreen rendering defaulting to EGL; import failures name the fix."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault(
        "PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"] if os.environ["MUJOCO_GL"] != "glfw" else ""
    )
    try:
        import robosuite
    except (ImportError, AttributeError, RuntimeError, OSError) as err:
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


def _action_meaning(rs_env: Any) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Names and physical ranges of robosuite's [-1, 1] action vector for one single-arm robot."""
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


def _fast_rendering(rs_env: Any) -> None:
    """Cheaper offscreen rendering: no planar reflections, no multisampling (``render_quality="fast"``)."""
    import mujoco

    sim = rs_env.sim
    context = sim._render_context_offscreen
    sim.model.vis.quality.offsamples = 0
    context.con.free()  # the framebuffer's sample count is fixed when the GPU context is made
    context._set_mujoco_context_and_buffers()
    context.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


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
        robosuite = _import_robosuite()
        task = TASKS[config.task]
        offscreen = bool(config.cameras) or render_mode == "rgb_array"
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
            self._rs = robosuite.make(task.robosuite_name, **kwargs)
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
        self._check_cameras()
        if offscreen and config.render_quality == "fast":
            _fast_rendering(self._rs)
        self._task = task
        self._randomizer = None
        if config.randomization is not None:
            from gipo_robot.sim.randomize import Randomizer

            self._randomizer = Randomizer(config.randomization, self._rs)
        self._stepper = None
        if config.fast:
            from gipo_robot.sim.fast_step import FastStepper

            self._stepper = FastStepper.create(self._rs)

        names, low, high = _action_meaning(self._rs)
        obs = self._rs.reset()
        self._object_names = self._object_observables()
        shapes = {k: np.shape(obs[k]) for k in PROPRIO_FEATURES}
        shapes[OBJECT_FEATURE] = np.shape(obs["object-state"])
        dtypes = dict.fromkeys(shapes, "float64")
        for cam in config.cameras:
            shapes[f"{cam}_image"] = (config.image_size, config.image_size, 3)
            dtypes[f"{cam}_image"] = "uint8"
        self.sim_spec = SimSpec(
            task=config.task,
            robot=config.robot,
            action_mode=config.action_mode,
            action_names=names,
            action_low=low,
            action_high=high,
            control_hz=float(config.control_freq),
            substeps=int(self._rs.control_timestep / self._rs.model_timestep),
            horizon=config.max_steps,
            obs_shapes=shapes,
            obs_dtypes=dtypes,
            cameras=config.cameras,
            image_size=config.image_size,
        )
        spaces = {}
        for key, shape in shapes.items():
            if dtypes[key] == "uint8":
                spaces[key] = gym.spaces.Box(0, 255, shape, np.uint8)
            else:
                spaces[key] = gym.spaces.Box(-np.inf, np.inf, shape, np.float64)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(names),), np.float64)
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
                f"({', '.join(self.sim_spec.action_names)}), got {a.shape}"
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
    action_mode: str = "osc_delta",
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
    """Build a task as a gymnasium env. Arguments are :class:`EnvConfig`'s fields.

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
