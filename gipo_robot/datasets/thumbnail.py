"""A picture of a store at a glance: the first frame of its first episodes, every camera side by side."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gipo_robot.datasets.store import EpisodeStore

__all__ = ["write_thumbnail"]


def write_thumbnail(store: EpisodeStore, target: str | Path, episodes: int = 8) -> str | None:
    """Write a PNG grid of the first frame of up to ``episodes`` episodes (rows) for every camera
    (columns) to ``target``; returns its path, or None when the store has no camera or no episode."""
    import imagecodecs

    cameras = [f for f in store.schema.features if f.kind == "image"]
    if not cameras or store.n_episodes == 0:
        return None
    height = max(f.shape[0] for f in cameras)
    width = sum(f.shape[1] for f in cameras)
    rows = []
    for i in range(min(episodes, store.n_episodes)):
        start, _ = store.episode_bounds(i)
        frames = store.read_steps(start, start + 1, [f.name for f in cameras])
        row = np.zeros((height, width, 3), np.uint8)
        x = 0
        for f in cameras:
            frame = frames[f.name][0]
            frame = np.repeat(frame[..., :1], 3, axis=-1) if frame.shape[-1] != 3 else frame
            row[: f.shape[0], x : x + f.shape[1]] = frame
            x += f.shape[1]
        rows.append(row)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(imagecodecs.png_encode(np.concatenate(rows)))
    return str(target)
