"""Scripted experts that make demonstrations without a human, from privileged (ground-truth) object state.

Legend: ``T`` steps of an episode, ``A`` action size (7: dx, dy, dz, drx, dry, drz, gripper).

Each expert is a small state machine over end-effector waypoints (approach above the object, descend,
close the gripper, lift, carry, lower, release, retreat) that emits normalised OSC-delta actions: the
position part is a proportional step towards the current waypoint, ``clip(gain * (target - eef) / 0.05)``
(robosuite maps +-1 to +-5 cm per control step), the rotation part is zero, and the gripper is -1 (open)
or +1 (closed).

The ``noise`` knob in [0, 1] makes demonstrations of mixed quality, like robomimic's "MH" datasets:

- action noise: Gaussian with std ``0.3 * noise`` on the position dims;
- pauses: with probability ``0.05 * noise`` per step the expert freezes for 2-10 steps;
- imprecise grasps: a per-episode grasp offset, uniform within ``+-1.5 cm * noise`` horizontally and
  ``+-1 cm * noise`` vertically, so some grasps slip or miss.

All randomness comes from the episode seed, so ``collect_demos(..., seed=s)`` is reproducible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from gipo_robot.sim.robosuite_env import OBJECT_FEATURE, RobosuiteEnv, make_env
from gipo_robot.sim.tasks import resolve_task

OSC_STEP_M = 0.05
"""Metres per control step that an action of +-1 asks robosuite's default OSC controller for."""
OSC_STEP_RAD = 0.5
"""Radians per control step that a rotation action of +-1 asks for."""
HOLD_DISTANCE_M = 0.05
"""A held object farther than this from the gripper site has been dropped (the plan restarts)."""
MAX_RETRIES = 3
"""Restarts of the plan after a dropped or missed object before the expert gives up."""


@dataclasses.dataclass(frozen=True)
class Waypoint:
    """One phase of a scripted plan."""

    name: str
    target: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]
    """(privileged state, grasp offset (3,) m) -> (3,) world target position of the gripper site, m."""
    gripper: float
    """-1 open, +1 closed, during this phase."""
    tol: float = 0.01
    """The phase ends when the gripper site is within ``tol`` metres of the target..."""
    min_steps: int = 0
    """...and at least ``min_steps`` steps were spent in it (e.g. to let the fingers close)."""
    max_steps: int = 60
    """The phase ends after ``max_steps`` steps regardless (so a failed demo still ends)."""
    gain: float = 1.0
    """Proportional gain on the position error (1.0 asks for the whole error in one step)."""
    speed: float = 1.0
    """Largest |action| on a position dim (1.0 = 5 cm per step)."""
    yaw: Callable[[dict[str, np.ndarray]], float] | None = None
    """Desired finger-closing direction about world z (rad), or None to leave the wrist alone."""
    holding: str | None = None
    """Object that must stay in the hand during this phase; if it falls out, the plan restarts."""


def _above(key: str, height: float) -> Callable[[dict, np.ndarray], np.ndarray]:
    def target(state: dict[str, np.ndarray], offset: np.ndarray) -> np.ndarray:
        return state[key] + np.array([offset[0], offset[1], height])

    return target


def _at(key: str, z: float) -> Callable[[dict, np.ndarray], np.ndarray]:
    def target(state: dict[str, np.ndarray], offset: np.ndarray) -> np.ndarray:
        return state[key] + np.array([offset[0], offset[1], z + offset[2]])

    return target


def _carried(key: str, place_key: str, height: float) -> Callable[[dict, np.ndarray], np.ndarray]:
    """Above ``place_key`` at ``height``, correcting for where the held object sits in the hand."""

    def target(state: dict[str, np.ndarray], offset: np.ndarray) -> np.ndarray:
        hold = state["eef_pos"] - state[key]
        return state[place_key] + np.array([0.0, 0.0, height]) + hold

    return target


def _hold(state: dict[str, np.ndarray], offset: np.ndarray) -> np.ndarray:
    return state["eef_pos"]


def _lift_from(height: float) -> Callable[[dict, np.ndarray], np.ndarray]:
    def target(state: dict[str, np.ndarray], offset: np.ndarray) -> np.ndarray:
        return np.array([state["eef_pos"][0], state["eef_pos"][1], state["grasp_z"] + height])

    return target


def _face_yaw(key: str, avoid: str | None = None) -> Callable[[dict], float]:
    """Close the fingers on a pair of the cube ``key``'s faces; with ``avoid``, on the pair whose closing
    direction is most nearly perpendicular to the line to the ``avoid`` object (so no finger lands on it)."""

    def yaw(state: dict[str, np.ndarray]) -> float:
        candidates = float(state[f"{key}_yaw"]) + np.array([0.0, np.pi / 2])
        if avoid is None:
            errors = np.abs(_wrap_half_turn(candidates - float(state["finger_yaw"])))
            return float(candidates[np.argmin(errors)])
        d = state[avoid][:2] - state[f"{key}_pos"][:2]
        towards = np.arctan2(d[1], d[0])
        return float(candidates[np.argmax(np.abs(np.sin(candidates - towards)))])

    return yaw


def _wrap_half_turn(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle difference modulo pi (the fingers are symmetric), in [-pi/2, pi/2)."""
    return (np.asarray(angle) + np.pi / 2) % np.pi - np.pi / 2


def _pick(key: str, grasp_z: float, hover: float = 0.08, yaw: Callable | None = None) -> list[Waypoint]:
    return [
        Waypoint("approach", _above(key, hover), -1.0, tol=0.01, speed=0.8, yaw=yaw),
        Waypoint("descend", _at(key, grasp_z), -1.0, tol=0.006, speed=0.5, yaw=yaw),
        Waypoint("grasp", _at(key, grasp_z), 1.0, tol=1.0, min_steps=8),
    ]


#: Registry of plans: task -> waypoints. Heights are metres relative to the named object's centre.
PLANS: dict[str, list[Waypoint]] = {
    "Lift": [
        *_pick("cube_pos", 0.0, yaw=_face_yaw("cube")),
        Waypoint("lift", _lift_from(0.15), 1.0, tol=0.01, speed=0.6, max_steps=80, holding="cube_pos"),
    ],
    "Can": [
        *_pick("can_pos", 0.01),
        Waypoint("lift", _lift_from(0.2), 1.0, tol=0.02, speed=0.8, holding="can_pos"),
        Waypoint(
            "carry",
            _carried("can_pos", "target_pos", 0.2),
            1.0,
            tol=0.015,
            speed=0.8,
            max_steps=80,
            holding="can_pos",
        ),
        Waypoint(
            "lower", _carried("can_pos", "target_pos", 0.1), 1.0, tol=0.015, speed=0.5, holding="can_pos"
        ),
        Waypoint("release", _hold, -1.0, tol=1.0, min_steps=6),
        Waypoint("retreat", _lift_from(0.35), -1.0, tol=0.02, max_steps=40),
    ],
    "Stack": [
        *_pick("cubeA_pos", 0.0, yaw=_face_yaw("cubeA", avoid="cubeB_pos")),
        Waypoint("lift", _lift_from(0.1), 1.0, tol=0.015, speed=0.6, holding="cubeA_pos"),
        Waypoint(
            "carry",
            _carried("cubeA_pos", "cubeB_pos", 0.1),
            1.0,
            tol=0.008,
            speed=0.6,
            max_steps=80,
            holding="cubeA_pos",
        ),
        Waypoint(
            "lower", _carried("cubeA_pos", "cubeB_pos", 0.05), 1.0, tol=0.006, speed=0.3, holding="cubeA_pos"
        ),
        Waypoint("release", _hold, -1.0, tol=1.0, min_steps=6),
        Waypoint("retreat", _lift_from(0.25), -1.0, tol=0.02, max_steps=40),
    ],
}


class ScriptedExpert:
    """A waypoint state machine for one task; call :meth:`reset` at each episode start, then :meth:`act`.

    Args:
        task: a task with a plan in :data:`PLANS` (Lift, Can, Stack).
        noise: suboptimality in [0, 1] (see the module docstring); 0 is the clean expert.
        rng: the source of all noise; seed it from the episode seed for reproducible demos.

    Raises:
        ValueError: no plan for ``task`` (lists the tasks that have one), or ``noise`` outside [0, 1].
    """

    def __init__(self, task: str, noise: float = 0.0, rng: np.random.Generator | None = None) -> None:
        task = resolve_task(task)
        if task not in PLANS:
            raise ValueError(f"no scripted expert for task {task!r}; known: {', '.join(sorted(PLANS))}")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.task = task
        self.noise = float(noise)
        self.plan = PLANS[task]
        self.rng = rng if rng is not None else np.random.default_rng()
        self.reset()

    def reset(self) -> None:
        """Start the plan over and draw this episode's grasp offset."""
        self.phase = 0
        self.steps_in_phase = 0
        self.pause_left = 0
        self.retries = 0
        self.grasp_z: float | None = None
        n = self.noise
        self.offset = np.array(
            [
                self.rng.uniform(-0.015, 0.015) * n,
                self.rng.uniform(-0.015, 0.015) * n,
                self.rng.uniform(-0.01, 0.01) * n,
            ]
        )

    @property
    def phase_name(self) -> str:
        """Name of the current phase (``done`` after the last)."""
        return self.plan[self.phase].name if self.phase < len(self.plan) else "done"

    def act(self, state: dict[str, np.ndarray]) -> np.ndarray:
        """The next action.

        Args:
            state: :meth:`RobosuiteEnv.privileged_state` (object positions and ``eef_pos``, metres).

        Returns:
            (7,) float64 action in [-1, 1].
        """
        state = dict(state)
        if self.grasp_z is None:
            self.grasp_z = float(state["eef_pos"][2])
        state["grasp_z"] = np.array(self.grasp_z)
        action = np.zeros(7)
        if self.phase >= len(self.plan):
            action[6] = -1.0 if self.plan[-1].gripper < 0 else 1.0
            return action
        wp = self.plan[self.phase]
        dropped = (
            wp.holding is not None and np.linalg.norm(state[wp.holding] - state["eef_pos"]) > HOLD_DISTANCE_M
        )
        if dropped and self.retries < MAX_RETRIES:
            self.retries += 1
            self.phase, self.steps_in_phase = 0, 0
            wp = self.plan[0]
        target = wp.target(state, self.offset)
        error = target - state["eef_pos"]
        action[:3] = np.clip(wp.gain * error / OSC_STEP_M, -wp.speed, wp.speed)
        if wp.yaw is not None:
            yaw_error = float(_wrap_half_turn(wp.yaw(state) - float(state["finger_yaw"])))
            action[5] = np.clip(wp.gain * yaw_error / OSC_STEP_RAD, -wp.speed, wp.speed)
        action[6] = wp.gripper
        self.steps_in_phase += 1
        if wp.name == "grasp":
            self.grasp_z = float(state["eef_pos"][2])
        done = np.linalg.norm(error) < wp.tol and self.steps_in_phase >= wp.min_steps
        if done or self.steps_in_phase >= wp.max_steps:
            self.phase += 1
            self.steps_in_phase = 0
        return self._perturb(action)

    def _perturb(self, action: np.ndarray) -> np.ndarray:
        if self.noise == 0.0:
            return action
        if self.pause_left == 0 and self.rng.random() < 0.05 * self.noise:
            self.pause_left = int(self.rng.integers(2, 11))
        if self.pause_left > 0:
            self.pause_left -= 1
            action[:6] = 0.0
            self.steps_in_phase = max(0, self.steps_in_phase - 1)
        action[:3] += self.rng.normal(0.0, 0.3 * self.noise, 3)
        return np.clip(action, -1.0, 1.0)


def run_episode(env: RobosuiteEnv, expert: ScriptedExpert, seed: int) -> dict[str, Any]:
    """Roll out one expert episode.

    Returns:
        dict of ``(T, ...)`` arrays: ``obs.<feature>`` (the observation each action was chosen from),
        ``action`` (T, A) float32, ``reward`` (T,) float32, ``terminated``/``truncated``/``success`` (T,)
        bool; plus scalars ``seed`` (int) and ``episode_success`` (bool, success at any step).
    """
    obs, info = env.reset(seed=seed)
    expert.reset()
    rows: dict[str, list] = {f"obs.{k}": [] for k in obs}
    rows.update(action=[], reward=[], terminated=[], truncated=[], success=[])
    while True:
        action = expert.act(env.privileged_state())
        for k, v in obs.items():
            rows[f"obs.{k}"].append(v)
        obs, reward, terminated, truncated, info = env.step(action)
        rows["action"].append(action)
        rows["reward"].append(reward)
        rows["terminated"].append(terminated)
        rows["truncated"].append(truncated)
        rows["success"].append(info["success"])
        if terminated or truncated:
            break
    episode: dict[str, Any] = {k: np.stack(v) for k, v in rows.items()}
    episode["action"] = episode["action"].astype(np.float32)
    episode["reward"] = episode["reward"].astype(np.float32)
    for key in ("terminated", "truncated", "success"):
        episode[key] = episode[key].astype(bool)
    episode["seed"] = int(seed)
    episode["episode_success"] = bool(episode["success"].any())
    if "randomization" in info or env.config.randomization is not None:
        episode["randomization"] = env._randomization_values
    return episode


def collect_demos(
    task: str,
    episodes: int,
    noise: float = 0.0,
    seed: int = 0,
    *,
    env: RobosuiteEnv | None = None,
    **env_kwargs: Any,
) -> Iterator[dict[str, Any]]:
    """Yield ``episodes`` scripted demonstrations (see :func:`run_episode` for the dict layout).

    Episode ``i`` uses seed ``seed + i`` for both the scene and the expert's noise, so any one episode can
    be regenerated alone.

    Args:
        task: Lift, Can or Stack.
        episodes: how many episodes to yield.
        noise: expert suboptimality in [0, 1].
        seed: seed of the first episode.
        env: an env to reuse (its task must be ``task``); else one is built with ``env_kwargs``.
        **env_kwargs: passed to :func:`make_env` (e.g. ``cameras=("agentview",)``).
    """
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    own = env is None
    env = env if env is not None else make_env(task, **env_kwargs)
    try:
        for i in range(episodes):
            expert = ScriptedExpert(task, noise, np.random.default_rng([seed + i, 7]))
            yield run_episode(env, expert, seed + i)
    finally:
        if own:
            env.close()


def record_demos(
    path: Any,
    task: str,
    episodes: int,
    noise: float = 0.0,
    seed: int = 0,
    *,
    env: RobosuiteEnv | None = None,
    overwrite: bool = False,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
    **env_kwargs: Any,
) -> Any:
    """Collect scripted demonstrations straight into a new episode store at ``path``; returns the store.

    The store gets :func:`~gipo_robot.datasets.schema.step_schema`, the env's ``robot_spec`` as its robot,
    the env config and expert settings as attributes, and per episode ``source="demo"``, success, task and
    ``extra={"seed", "noise", "expert"}``.

    Args:
        path: store folder to create.
        task, episodes, noise, seed, env, env_kwargs: as in :func:`collect_demos`.
        overwrite: replace an existing store at ``path``.
        on_episode: called with each episode dict after it is stored (progress bars, summaries).
    """
    from gipo_robot.datasets import EpisodeStore, step_schema

    ScriptedExpert(task, noise)  # no expert for the task, or a bad noise: fail before any store exists
    own = env is None
    env = env if env is not None else make_env(task, **env_kwargs)
    try:
        spec, task = env.robot_spec, env.config.task
        store = EpisodeStore.create(
            path,
            step_schema(spec),
            fps=spec.control_hz,
            robot=spec.to_dict(),
            attrs={"env": env.config.to_dict(), "expert": {"kind": "scripted", "noise": noise, "seed": seed}},
            overwrite=overwrite,
        )
        for ep in collect_demos(task, episodes, noise, seed, env=env):
            steps = {k: v for k, v in ep.items() if isinstance(v, np.ndarray)}
            steps["timestamp"] = np.arange(len(ep["action"])) / spec.control_hz
            extra = {"seed": ep["seed"], "noise": noise, "expert": "scripted"}
            store.append_episode(steps, source="demo", success=ep["episode_success"], task=task, extra=extra)
            if on_episode is not None:
                on_episode(ep)
    finally:
        if own:
            env.close()
    return store


__all__ = [
    "OBJECT_FEATURE",
    "PLANS",
    "ScriptedExpert",
    "Waypoint",
    "collect_demos",
    "record_demos",
    "run_episode",
]
