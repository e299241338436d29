"""Evaluate a policy on a gymnasium environment: success rate with a 95% interval, return, length, videos.

The environment is any gymnasium env with dict observations and ``info["success"]`` (the sim layer's
:func:`gipo_robot.sim.make_env`, or a real robot behind the same API). Episode ``i`` is reset with seed
``seed + i``; the default seed offset keeps evaluation episodes apart from the seeds demonstrations and
training rollouts use.

Action chunks are executed open-loop for ``execute_steps`` steps (default: the whole chunk ``H``), then the
policy is queried again, as in ACT and Diffusion Policy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gipo_robot.policies.gaussian import GaussianPolicy

__all__ = ["EVAL_SEED", "EvalResult", "evaluate", "obs_to_torch", "wilson_interval"]

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


def obs_to_torch(obs: dict[str, np.ndarray], keys: list[str]) -> dict[str, torch.Tensor]:
    """One observation dict (unbatched numpy) -> a batch of one for the policy, only ``keys``."""
    missing = [k for k in keys if k not in obs]
    if missing:
        raise KeyError(
            f"the environment does not provide observation features {missing}; it has {sorted(obs)}"
        )
    return {k: torch.as_tensor(np.asarray(obs[k]))[None] for k in keys}


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


@torch.no_grad()
def evaluate(
    policy: GaussianPolicy,
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

    Args:
        policy: the policy (put in eval mode here).
        env: gymnasium env with dict observations and ``info["success"]``; built with
            ``render_mode="rgb_array"`` if videos are wanted.
        episodes: number of episodes.
        seed: episode ``i`` resets with ``seed + i``.
        deterministic: act with the mean (``mode``) instead of sampling.
        execute_steps: actions of each chunk executed before re-planning (1..H); None executes the chunk.
        video_dir: where ``episode_<i>.mp4`` files go; None writes no video.
        video_episodes: how many of the first episodes to record.
        fps: video frame rate.
        progress: show a progress bar (stderr).

    Raises:
        ValueError: bad ``episodes`` or ``execute_steps``.
        KeyError: the environment lacks an observation feature the policy reads.
    """
    from tqdm import tqdm

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    chunk = policy.config.chunk
    n_exec = chunk if execute_steps is None else execute_steps
    if not 1 <= n_exec <= chunk:
        raise ValueError(f"execute_steps must be in 1..{chunk} (the policy's chunk), got {execute_steps}")
    policy.eval()
    keys = sorted(policy.config.low_dim) + sorted(policy.config.images)
    gen = torch.Generator().manual_seed(seed)
    records, videos = [], []
    bar = tqdm(range(episodes), desc="eval", disable=not progress, leave=False)
    for i in bar:
        obs, _ = env.reset(seed=seed + i)
        record_video = video_dir is not None and i < video_episodes
        frames = [env.render()] if record_video else []
        ret, length, success, done = 0.0, 0, False, False
        while not done:
            o = obs_to_torch(obs, keys)
            chunk_actions = policy.mode(o) if deterministic else policy.clip(policy.sample(o, gen)[0])
            for action in chunk_actions[0, :n_exec].numpy():
                obs, reward, terminated, truncated, info = env.step(action)
                ret += float(reward)
                length += 1
                success = success or bool(info.get("success", False))
                if record_video:
                    frames.append(env.render())
                done = terminated or truncated
                if done:
                    break
        records.append({"seed": seed + i, "success": success, "return": ret, "length": length})
        if record_video and frames and frames[0] is not None:
            Path(video_dir).mkdir(parents=True, exist_ok=True)
            path = Path(video_dir) / f"episode_{i}.mp4"
            _write_video(frames, path, fps)
            videos.append(str(path))
        bar.set_postfix(success=f"{np.mean([r['success'] for r in records]):.2f}")
    bar.close()
    k = sum(r["success"] for r in records)
    return EvalResult(
        success_rate=k / episodes,
        success_ci95=wilson_interval(k, episodes),
        mean_return=float(np.mean([r["return"] for r in records])),
        mean_length=float(np.mean([r["length"] for r in records])),
        episodes=records,
        videos=videos,
    )
