"""Diffusion Policy / UMI ``replay_buffer.zarr`` stores, read-only through the :class:`EpisodeStore` API.

Diffusion Policy's ``ReplayBuffer`` (and UMI, which reuses it) writes a Zarr v2 group::

    replay_buffer.zarr/
      data/<key>            (T_total, *shape)   time-first, every episode back to back, any chunking and
                                                numcodecs compressor (UMI: ``camera0_rgb`` one frame per
                                                chunk with ``imagecodecs_jpegxl``)
      meta/episode_ends     (E,) int64          cumulative step counts

:func:`open_replay_buffer` opens one as a read-only :class:`ReplayBufferStore` (registered as the
``diffusion_policy`` importer, so :func:`~gipo_robot.datasets.importers.open_dataset` returns one and the
sampler, :func:`~gipo_robot.datasets.validate`, ``gipo-robot info`` and ``gipo-robot convert`` work on it
unchanged); :func:`replay_buffer_to_store` copies one into a new episode store. Feature names: ``action``
stays ``action``, every other ``data/<key>`` becomes the observation ``obs.<key>`` (keys already named
``obs.*`` are kept). Kinds: uint8 ``(H, W, C)`` with ``C`` in 1/3/4 is an image, ``()`` a scalar, the
rest low-dim.

A replay buffer records no per-episode metadata and no rate: its episodes read as successful
demonstrations (``source="demo"``, ``success=True``: what Diffusion Policy trains on), with an empty
task, ``start_time`` 0 and ``policy_version`` -1; ``fps`` is the root attribute ``fps`` where there is
one, else :data:`DEFAULT_FPS`.

Legend: ``E`` episodes, ``T_total`` steps of all episodes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from gipo_robot.datasets.layout import FORMAT_NAME as STORE_FORMAT_NAME
from gipo_robot.datasets.layout import check_episode_ends, guard
from gipo_robot.datasets.schema import DatasetError, Feature, Schema
from gipo_robot.datasets.store import EpisodeStore

FORMAT_NAME = "diffusion_policy/replay_buffer"
DEFAULT_FPS = 10.0
"""Rate assumed when a replay buffer has no ``fps`` attribute (Diffusion Policy's PushT and real-robot
datasets are recorded at 10 Hz)."""


def register_image_codecs() -> None:
    """Register ``imagecodecs``' numcodecs codecs (``imagecodecs_jpegxl``, ``imagecodecs_jpeg``, ...), which
    Zarr v2 arrays written by UMI name in their ``.zarray``; idempotent."""
    from imagecodecs.numcodecs import register_codecs

    register_codecs(verbose=False)


def _has_replay_buffer_layout(group: zarr.Group) -> bool:
    """Whether ``group`` is a Zarr v2 group with the replay-buffer layout (``data/`` and
    ``meta/episode_ends``). Episode stores are Zarr v3, so a damaged one is never mistaken for a buffer."""
    if group.metadata.zarr_format != 2:
        return False
    with contextlib.suppress(Exception):
        return isinstance(group["data"], zarr.Group) and isinstance(group["meta/episode_ends"], zarr.Array)
    return False


def is_replay_buffer(path: str | Path) -> bool:
    """Whether ``path`` (a local folder or a Zarr store URL) holds a replay buffer; never raises."""
    if "://" not in str(path) and not (Path(path) / ".zgroup").is_file():
        return False  # a local Zarr v2 group has a .zgroup file
    with contextlib.suppress(Exception):
        register_image_codecs()
        return _has_replay_buffer_layout(zarr.open_group(str(path), mode="r"))
    return False


def open_replay_buffer(path: str | Path, mode: str = "r") -> ReplayBufferStore:
    """Open a replay buffer as a read-only episode store.

    Args:
        path: local folder or any Zarr store URL.
        mode: ``"r"``; ``"a"`` raises (a replay buffer cannot be appended to: convert it first).

    Raises:
        DatasetError: ``mode`` is not ``"r"``, or the path is missing, unreadable or not a replay buffer.
    """
    if mode == "a":
        raise DatasetError(
            "a Diffusion Policy replay buffer opens read-only (convert it to append)", path=path
        )
    if mode != "r":
        raise DatasetError(f"mode must be 'r' or 'a', got {mode!r}", path=path)
    if "://" not in str(path) and not Path(path).exists():
        raise DatasetError("no such store", path=path)
    register_image_codecs()
    with guard(path):
        group = zarr.open_group(str(path), mode="r")
    if not _has_replay_buffer_layout(group):
        ours = group.attrs.get("format") == STORE_FORMAT_NAME
        raise DatasetError(
            "not a Diffusion Policy replay buffer" + (" (it is an episode store)" if ours else ""), path=path
        )
    return ReplayBufferStore(path, group)


def feature_name(key: str) -> str:
    """Our feature name for the replay-buffer array ``data/<key>``."""
    return key if key == "action" or key.startswith("obs.") else f"obs.{key}"


def _feature_for(name: str, arr: zarr.Array, path: object) -> Feature:
    dtype, shape = np.dtype(arr.dtype), tuple(int(s) for s in arr.shape[1:])
    if dtype.kind not in "biuf" or arr.ndim == 0:
        raise DatasetError(
            f"array of dtype {dtype} and shape {arr.shape} is not a per-step feature", path=path, feature=name
        )
    if dtype == np.uint8 and len(shape) == 3 and shape[2] in (1, 3, 4):
        return Feature(name, "uint8", shape, "image")
    return Feature(name, dtype.name, shape, "scalar" if shape == () else "low_dim")


class ReplayBufferStore(EpisodeStore):
    """A Diffusion Policy / UMI replay buffer seen as a read-only episode store (see the module docstring).

    Open it with :func:`open_replay_buffer`; every reading method of :class:`EpisodeStore` works, every
    writing one raises a :class:`DatasetError`.
    """

    def __init__(self, path: str | Path, group: zarr.Group) -> None:
        super().__init__(path, group, "r")

    def _load(self) -> None:
        path = self.path
        with guard(path):
            attrs = dict(self._group.attrs)
            arrays = dict(self._group["data"].arrays())
        fps = attrs.get("fps", DEFAULT_FPS)
        if not isinstance(fps, int | float) or isinstance(fps, bool) or not fps > 0:
            raise DatasetError(f"bad fps attribute {fps!r}", path=path)
        self.fps = float(fps)
        self.robot = None
        self._attrs = {"format": FORMAT_NAME, "format_version": 0, "user": {}}
        names: dict[str, str] = {}
        for key in sorted(arrays):
            name = feature_name(key)
            if name in names:
                raise DatasetError(
                    f"data/{key} and data/{names[name]} both map to {name!r}", path=path, feature=name
                )
            names[name] = key
        if not names:
            raise DatasetError("data/ holds no arrays", path=path)
        self.schema = Schema(tuple(_feature_for(name, arrays[key], path) for name, key in names.items()))
        self._data = {name: arrays[key] for name, key in names.items()}
        self._data_keys = names
        self._readers = {name: None for name in names}
        self._meta = {}
        self._ends_array = self._group["meta/episode_ends"]
        with guard(path, feature="episode_ends"):
            ends = np.asarray(self._ends_array[:])
        if ends.ndim != 1 or ends.dtype.kind not in "iu":
            raise DatasetError(
                f"meta/episode_ends must be 1-D integers, got {ends.dtype} {ends.shape}",
                path=path,
                feature="episode_ends",
            )
        ends = ends.astype(np.int64)
        check_episode_ends(ends, path)
        self._ends = ends
        for name, arr in self._data.items():
            if arr.shape[0] < self.n_steps:
                raise DatasetError(
                    f"array has {arr.shape[0]} rows but the episodes end at {self.n_steps}",
                    path=path,
                    feature=name,
                )

    def _read_meta(self, rows: slice) -> dict[str, Any]:
        n = len(range(*rows.indices(self.n_episodes)))
        lengths = np.diff(self._ends, prepend=0)[rows]
        return {
            "source": np.full(n, "demo"),
            "success": np.ones(n, dtype=bool),
            "task": np.full(n, ""),
            "length": lengths.astype(np.int64),
            "start_time": np.zeros(n),
            "policy_version": np.full(n, -1, dtype=np.int64),
            "extra": [{} for _ in range(n)],
        }

    def _require_writable(self) -> None:
        raise self._error(
            "a Diffusion Policy replay buffer is read-only (convert it to write: gipo-robot convert)"
        )


def replay_buffer_to_store(
    src: str | Path | ReplayBufferStore, dst: str | Path, *, overwrite: bool = False
) -> EpisodeStore:
    """Copy a replay buffer into a new episode store (images re-encoded with the default codec).

    Args:
        src: the replay buffer (a path, or one already open).
        dst: the store folder to create.
        overwrite: replace an existing store at ``dst``.

    Raises:
        DatasetError: ``src`` is not a replay buffer, or is damaged (naming the feature/episode).
    """
    if not isinstance(src, ReplayBufferStore):
        src = open_replay_buffer(src)
    attrs = {"converted_from": {"format": FORMAT_NAME, "path": str(src.path)}}
    out = EpisodeStore.create(dst, src.schema, fps=src.fps, attrs=attrs, overwrite=overwrite)
    for i in range(src.n_episodes):
        out._copy_episode_from(src, i)
    return out
