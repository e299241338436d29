"""Evaluate a policy on a simulated task or a robot: success rate with a 95% interval, return, length, videos.

Episode ``i`` is reset with seed ``seed + i``; the default seed offset keeps evaluation episodes apart from
the seeds demonstrations and training rollouts use. Episodes run through the loops' one episode runner
(:class:`~gipo_robot.loops.step.EpisodeRunner`) with a :class:`~gipo_robot.loops.actor.PolicyActor`:
action chunks are executed open-loop for ``execute_steps`` steps (default: the whole chunk ``H``), then the
policy is queried again, as in ACT and Diffusion Policy. An episode ends when the task says it is done
(success with ``end_on_success``, or the time limit).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gipo_robot.hardware.robot import Robot
from gipo_robot.loops.actor import PolicyActor
from gipo_robot.loops.step import EpisodeRunner, knows_task

__all__ = ["EVAL_SEED", "EvalResult", "evaluate", "summarize", "wilson_interval"]

EVAL_SEED = 1_000_000
"""Default first evaluation seed: far from the small seeds used to collect demonstrations and rollouts."""


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% for z = 1.96); (0, 1) when n = 0.

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0% and 100% success.
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate`.

    Attributes:
        success_rate: fraction of successful episodes.
        success_ci95: Wilson 95% interval of the success rate.
        mean_return: mean undiscounted return.
        mean_length: mean episode length in control steps.
        episodes: per-episode ``{"seed", "success", "return", "length"}``.
        videos: paths of the MP4 files written.
    """

    success_rate: float
    success_ci95: tuple[float, float]
    mean_return: float
    mean_length: float
    episodes: list[dict[str, Any]] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["success_ci95"] = list(self.success_ci95)
        out["n_episodes"] = len(self.episodes)
        return out


def _write_video(frames: list[np.ndarray], path: Path, fps: float) -> None:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write MP4 video to {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def evaluate(
    policy: Any,
    env: Any,
    episodes: int,
    *,
    seed: int = EVAL_SEED,
    deterministic: bool = True,
    execute_steps: int | None = None,
    video_dir: str | Path | None = None,
    video_episodes: int = 0,
    fps: float = 20.0,
    progress: bool = True,
) -> EvalResult:
    """Run ``episodes`` episodes and summarise them.

    A simulated env is driven as a robot (:class:`~gipo_robot.sim.robot.SimRobot`) *without* a
    :class:`~gipo_robot.hardware.safety.SafetyGuard`: this is training evaluation, and the guard's soft
    start and per-step clamps would change what is measured (the policy's own actions, clipped to [-1, 1]
    as the env does). A :class:`~gipo_robot.hardware.robot.Robot` passed in is driven as it is: wrap it in
    a guard first to evaluate on an arm behind one.

    Args:
        policy: the policy (put in eval mode here).
        env: a simulated task env (:func:`gipo_robot.sim.make_env`, or any gymnasium env with dict
            observations, ``info["success"]`` and a ``robot_spec``), built with ``render_mode="rgb_array"``
            if videos are wanted; or a :class:`~gipo_robot.hardware.robot.Robot` that knows the task
            (:meth:`~gipo_robot.hardware.robot.Robot.task_status`; connected here if it is not, and
            disconnected again afterwards).
        episodes: number of episodes.
        seed: episode ``i`` resets with ``seed + i``.
        deterministic: act with the mean (``mode``) instead of sampling.
        execute_steps: actions of each chunk executed before re-planning (1..H); None executes the chunk.
        video_dir: where ``episode_<i>.mp4`` files go; None writes no video. Frames come from the env's
            ``render()`` (a robot's ``render()``, where it has one; else no video is written).
        video_episodes: how many of the first episodes to record.
        fps: video frame rate.
        progress: show a progress bar (stderr).

    Raises:
        ValueError: bad ``episodes`` or ``execute_steps``, or a robot that does not know the task.
        KeyError: the environment lacks an observation feature the policy reads.
    """
    from tqdm import tqdm

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    generator = torch.Generator().manual_seed(seed)
    actor = PolicyActor(policy, execute_steps=execute_steps, deterministic=deterministic, generator=generator)
    robot, render = _as_robot(env)
    runner = EpisodeRunner(robot, actor)  # unpaced, no step limit: the task ends each episode
    records, videos = [], []
    connected = robot.is_connected
    robot.connect()
    try:
        bar = tqdm(range(episodes), desc="eval", disable=not progress, leave=False)
        for i in bar:
            record_video = video_dir is not None and i < video_episodes and render is not None
            record, frames = _play(runner, seed + i, render if record_video else None)
            records.append(record)
            if frames and frames[0] is not None:
                Path(video_dir).mkdir(parents=True, exist_ok=True)
                path = Path(video_dir) / f"episode_{i}.mp4"
                _write_video(frames, path, fps)
                videos.append(str(path))
            bar.set_postfix(success=f"{np.mean([r['success'] for r in records]):.2f}")
        bar.close()
    finally:
        if not connected:
            robot.disconnect()
    return summarize(records, videos)


def summarize(records: list[dict[str, Any]], videos: list[str] | None = None) -> EvalResult:
    """The :class:`EvalResult` of per-episode records (``{"seed", "success", "return", "length"}``)."""
    k = sum(r["success"] for r in records)
    return EvalResult(
        success_rate=k / len(records),
        success_ci95=wilson_interval(k, len(records)),
        mean_return=float(np.mean([r["return"] for r in records])),
        mean_length=float(np.mean([r["length"] for r in records])),
        episodes=records,
        videos=videos or [],
    )


def _play(runner: EpisodeRunner, seed: int, render: Any) -> tuple[dict[str, Any], list[np.ndarray]]:
    """One episode from scene ``seed``: its record and, with a ``render`` function, its frames (the reset
    frame, then one per step)."""
    runner.reset(seed=seed)
    frames = [render()] if render is not None else []
    for _ in runner.run():
        if render is not None:
            frames.append(render())
    record = {"seed": seed, "success": runner.success, "return": runner.total_reward, "length": runner.steps}
    return record, frames


def _as_robot(env: Any) -> tuple[Robot, Any]:
    """``env`` as a robot (a simulated env wrapped in ``SimRobot``, unguarded) and its frame source."""
    if isinstance(env, Robot):
        if not knows_task(env):
            raise ValueError(
                f"{env.spec.name} does not report success or episode ends: it cannot be evaluated"
            )
        return env, getattr(env, "render", None)
    from gipo_robot.sim.robot import SimRobot

    return SimRobot(env=env), env.render
