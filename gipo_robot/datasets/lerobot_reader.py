"""Reading the episodes of a LeRobot 0.6 dataset (format v3.0) as episode-store steps.

The import half of :mod:`gipo_robot.datasets.from_lerobot` (which holds the feature mapping and the public
functions): low-dim columns straight from the parquet rows (no dtype cast on the way), PNG frames through
LeRobot's ``datasets`` table, mp4 frames through LeRobot's own decoder
(``lerobot.datasets.video_utils.decode_video_frames``, raw ``uint8``: no float round trip).

A *plan* maps each LeRobot feature key to ``{"spec": {dtype, shape, names}, "parts": [store features]}``:
the store features that were concatenated (in order) to form it.

Legend: ``T`` steps of one episode, ``N`` rows read, ``H``/``W``/``C`` image height/width/channels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.datasets.schema import DatasetError, Feature, Schema

__all__ = ["EpisodeReader", "pick_video_backend"]


def pick_video_backend(requested: str | None) -> str:
    """The video decoder to use: ``requested``, else LeRobot's default choice made quietly: torchcodec where
    its FFmpeg libraries load (its wheel needs a system FFmpeg), else PyAV (FFmpeg bundled in its wheel).
    LeRobot's own probe logs torchcodec's whole loading traceback when it falls back."""
    if requested is not None:
        if requested not in ("torchcodec", "pyav"):
            raise DatasetError(f"video backend {requested!r} is not one of 'torchcodec', 'pyav'")
        return requested
    try:
        import torchcodec  # noqa: F401  (loads its FFmpeg libraries, or raises)
    except (ImportError, RuntimeError, OSError):
        return "pyav"
    return "torchcodec"


def _column(table: Any, key: str, rows: np.ndarray, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Rows of one parquet column as ``(N, *shape)`` in its stored dtype (no float64 -> float32 cast)."""
    import pyarrow as pa

    column = table.column(key).take(pa.array(rows))
    flat = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    while pa.types.is_fixed_size_list(flat.type) or pa.types.is_list(flat.type):
        flat = flat.flatten()
    values = np.asarray(flat.to_numpy(zero_copy_only=False))
    return values.astype(dtype, copy=False).reshape(len(rows), *shape)


def _as_hwc(frames: np.ndarray, feature: Feature, path: Path, key: str, episode: int) -> np.ndarray:
    """Frames as ``(T, H, W, C)`` uint8 in the feature's shape (LeRobot may hand them channels-first)."""
    frames = np.asarray(frames)
    if frames.ndim == 3 and feature.shape[2] == 1:
        frames = frames[..., None]
    height, width, channels = feature.shape
    if (
        frames.ndim == 4
        and frames.shape[1:] != feature.shape
        and frames.shape[1:] == (channels, height, width)
    ):
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[1:] != feature.shape:
        raise DatasetError(
            f"frames of shape {frames.shape[1:]}, expected {feature.shape}",
            path=path,
            feature=key,
            episode=episode,
        )
    return frames.astype(np.uint8, copy=False)


class EpisodeReader:
    """Reads the episodes of an open ``LeRobotDataset`` as store steps, following an import ``plan``.

    Args:
        dataset: the ``LeRobotDataset`` (opened read-only from a local root).
        plan: LeRobot key -> ``{"spec", "parts"}`` (module docstring).
        schema: the store schema the parts belong to.
        backend: the video decoder (:func:`pick_video_backend`).
        src: the dataset folder, for error messages.
    """

    def __init__(
        self, dataset: Any, plan: dict[str, dict[str, Any]], schema: Schema, backend: str, src: Path
    ) -> None:
        self.dataset, self.plan, self.backend, self.src = dataset, plan, backend, src
        depth = sorted(set(dataset.meta.depth_keys) & set(plan))
        if depth:
            raise DatasetError(
                "depth-map cameras (12-bit) cannot be held by the store's uint8 image features",
                path=src,
                feature=depth[0],
            )
        self.by_name = {f.name: f for f in schema.features}
        self.hf = dataset.hf_dataset
        self.table = self.hf.with_format("arrow")[:]
        self.episode_column = np.asarray(self.table.column("episode_index").to_numpy())
        self.frame_column = np.asarray(self.table.column("frame_index").to_numpy())
        self.task_column = np.asarray(self.table.column("task_index").to_numpy())
        self.tasks = list(dataset.meta.tasks.index)

    def read(self, i: int) -> tuple[dict[str, np.ndarray], list[str]]:
        """Episode ``i``: ``({store feature: (T, *shape)}, the task of each frame)``."""
        rows = np.flatnonzero(self.episode_column == i)
        length = int(self.dataset.meta.episodes[i]["length"])
        if rows.size != length or (
            rows.size and (np.any(np.diff(rows) != 1) or np.any(self.frame_column[rows] != np.arange(length)))
        ):
            raise DatasetError(
                f"rows of the episode are not contiguous frames 0..{length - 1} ({rows.size} rows found)",
                path=self.src,
                episode=i,
            )
        steps: dict[str, np.ndarray] = {}
        for key, entry in self.plan.items():
            spec, parts = entry["spec"], entry["parts"]
            if spec["dtype"] in ("image", "video"):
                steps[parts[0]] = _as_hwc(
                    self._frames(key, spec["dtype"], rows, i), self.by_name[parts[0]], self.src, key, i
                )
                continue
            values = _column(self.table, key, rows, spec["shape"], spec["dtype"]).reshape(length, -1)
            offset = 0
            for name in parts:
                f = self.by_name[name]
                size = int(math.prod(f.shape)) if f.shape else 1
                steps[name] = values[:, offset : offset + size].reshape(length, *f.shape).astype(f.dtype)
                offset += size
        return steps, [self.tasks[int(t)] for t in self.task_column[rows]]

    def _frames(self, key: str, dtype: str, rows: np.ndarray, i: int) -> np.ndarray:
        """The frames of camera ``key`` at ``rows`` (PNG in the parquet files, or decoded from video)."""
        if dtype == "image":
            return np.stack(
                self.hf.with_format("numpy", columns=[key])[int(rows[0]) : int(rows[-1]) + 1][key]
            )
        from lerobot.datasets.video_utils import decode_video_frames

        meta = self.dataset.meta
        start = float(meta.episodes[i][f"videos/{key}/from_timestamp"])
        stamps = _column(self.table, "timestamp", rows, (), "float64")
        try:
            frames = decode_video_frames(
                self.dataset.root / meta.get_video_file_path(i, key),
                [start + float(t) for t in stamps],
                self.dataset.tolerance_s,
                self.backend,
                return_uint8=True,
            )  # (T, C, H, W) uint8
        except (ValueError, RuntimeError, OSError) as err:  # FrameTimestampError is a ValueError
            raise DatasetError(
                f"LeRobot cannot decode the video ({self.backend}): {err}",
                path=self.src,
                feature=key,
                episode=i,
            ) from err
        return frames.numpy()
