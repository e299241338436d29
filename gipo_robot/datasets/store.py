"""The Zarr episode store: every recorded step of demos, teleop, rollouts and deployments.

:class:`EpisodeStore` is the one entry point: :meth:`~EpisodeStore.create` and :meth:`~EpisodeStore.open`
a store, then read it (this module: sizes, per-episode metadata and filters, rows and episodes,
normalisation statistics, a summary) and write it (:mod:`gipo_robot.datasets.writer`, mixed in: appends,
the streaming :class:`~gipo_robot.datasets.writer.EpisodeWriter`, relabel, drop, merge). The folder
layout, array codecs and chunking are in :mod:`gipo_robot.datasets.layout`; the commit protocol in
:mod:`gipo_robot.datasets.writer`. Datasets of other formats open or convert through
:mod:`gipo_robot.datasets.importers`.

Legend: ``E`` episodes, ``T`` steps of one episode, ``T_total`` steps of all episodes, ``N`` rows read,
``H``/``W``/``C`` image height/width/channels, ``D`` low-dim size.

Reading. Local stores are read through :class:`~gipo_robot.datasets.chunks.ChunkReader`, which reads
chunk files directly (zarr-python's ~0.3 ms per chunk made a 256-frame minibatch cost ~100 ms), decodes
frames in a small thread pool and caches decoded low-dim chunks; any other store, or an array whose
codecs it does not know, is read through zarr. Both give the same bytes.

What survives what (local stores; the commit protocol is in :mod:`gipo_robot.datasets.writer`):

- ``kill -9`` of a writer (any death of the process, the machine staying up): every episode whose
  commit returned is kept, the episode in flight is lost (its rows past the committed end stay invisible
  and the next append overwrites them), the store opens and validates, the kernel drops the writer lock,
  and the next writer removes the killed one's ``*.partial`` temp files. No ``fsync`` is needed for this:
  what was written is in the kernel's page cache. An interrupted ``drop_episode`` or ``convert`` swap is
  finished by the next ``open(path, "a")``.
- Two writers: the second process that opens the store for writing (append, overwrite, convert into it)
  gets a :class:`DatasetError` naming the first one's pid (:mod:`gipo_robot.datasets.lock`); readers are
  never blocked and see only committed episodes (:meth:`~EpisodeStore.refresh` for new ones).
- Power loss or a kernel crash (a local filesystem that honours ``fsync``, such as ext4, xfs or btrfs, on
  a disk that honours cache flushes): a commit returns only after ``fsync`` of the episode's chunk files,
  its metadata row, the ``zarr.json`` of every array it grew and their folders, and then of the new
  ``meta/episode_ends`` entry; the end is written after the rest is on disk, so it never points at rows
  that are not. An episode whose commit returned survives; the one in flight is lost. One window remains:
  an episode being written rewrites the chunk files that hold the last committed rows (a low-dim chunk
  holds hundreds or thousands of rows; zarr writes a temporary file and renames it over the old one),
  and these are flushed at that episode's commit, not at every flush of its steps (too slow for a
  control loop that writes in line). ext4 (default ``auto_da_alloc``) writes a file's data before it
  commits a rename that replaces another file, so a power cut leaves the old or the new chunk, both
  holding the committed rows; on a filesystem without that rule a power cut before the commit can leave
  that chunk empty and its committed rows lost, which ``gipo-robot validate --deep`` names (CRC32C).
  Creating a store, root attributes, relabels and the renames of a swap are fsynced too.
  ``store.durable = False`` turns every ``fsync`` off; ``scripts/bench_store_fsync.py`` measures the cost.
- Lost chunk files (deleted, or lost by the filesystem): in a store with ``every_chunk_written`` (every
  store created since it exists), reading one raises a :class:`DatasetError` instead of returning zeros,
  ``gipo-robot validate`` names each and ``info`` refuses to summarise (older stores may lack all-zero
  chunks legitimately and are not checked, :mod:`gipo_robot.datasets.validate`). A lost
  ``meta/episode_ends`` chunk that held only the last entry (a store of 1, 4097, ... episodes) cannot be
  told from a commit cut short, and reads as one: the last episode is dropped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from gipo_robot.datasets.chunkfiles import first_missing, fsync_paths, fsync_tree
from gipo_robot.datasets.chunks import ChunkReader
from gipo_robot.datasets.layout import (
    EVERY_CHUNK_WRITTEN,
    FORMAT_NAME,
    FORMAT_VERSION,
    create_layout,
    directory_size,
    guard,
    open_array,
    read_episode_ends,
    recover_interrupted_swap,
    to_json,
)
from gipo_robot.datasets.lock import WriterLock, acquire
from gipo_robot.datasets.schema import (
    ALREADY_EXISTS,
    EPISODE_META_FIELDS,
    SOURCES,
    DatasetError,
    EpisodeMeta,
    Schema,
)
from gipo_robot.datasets.writer import EpisodeWriter, StoreWriting

STAT_QUANTILES = (0.01, 0.5, 0.99)
READ_THREADS = min(4, os.cpu_count() or 1)
"""Threads that read and decode chunks for one store (file reads, Blosc and image decoding release
the GIL)."""


class EpisodeStore(StoreWriting):
    """A Zarr episode store; build one with :meth:`create` or :meth:`open`, not the constructor.

    Reading never sees rows past the last committed episode end. Indices are episode numbers
    ``0..E-1`` in commit order (negative indices count from the end).
    """

    def __init__(
        self, path: str | Path, group: zarr.Group, mode: str, lock: WriterLock | None = None
    ) -> None:
        self.path = str(path)
        self.mode = mode
        self.durable = True
        """Whether commits ``fsync`` what they wrote (see the module docstring); off only to measure it."""
        self._lock = lock
        self._strict = False  # every_chunk_written (set by _load): a missing chunk file is lost, not zeros
        self._group = group
        self._writer: EpisodeWriter | None = None
        self._stats_memo: tuple[list, dict] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None
        self._load()

    # ------------------------------------------------------------------ creation and opening

    @classmethod
    def create(
        cls,
        path: str | Path,
        schema: Schema,
        *,
        fps: float,
        robot: Any = None,
        attrs: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> EpisodeStore:
        """Create an empty store at ``path`` (a local folder, conventionally ``*.zarr``).

        Args:
            path: folder to create.
            schema: the store's features.
            fps: recording rate, steps per second.
            robot: the robot spec, a JSON-serialisable dict or dataclass (``None`` if unknown).
            attrs: free user attributes kept in the root (e.g. robomimic ``env_args``).
            overwrite: replace an existing store at ``path``.

        Raises:
            DatasetError: ``path`` exists (without ``overwrite``), another process is writing it (also
                with ``overwrite``: a live writer's store is never replaced), or fps/robot/attrs are invalid.
        """
        target = Path(path)
        if not isinstance(schema, Schema):
            raise DatasetError(f"schema must be a Schema, got {type(schema).__name__}", path=path)
        if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise DatasetError(f"fps must be a positive number, got {fps!r}", path=path)
        root_attrs = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "schema": schema.to_json(),
            "fps": float(fps),
            "robot": to_json(robot, "robot", path),
            "user": to_json(dict(attrs or {}), "attrs", path),
            "generation": 0,
            EVERY_CHUNK_WRITTEN: True,
        }
        lock = acquire(target)
        try:
            if target.exists():
                if not overwrite:
                    raise DatasetError(ALREADY_EXISTS, path=path)
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            with guard(path):
                root = create_layout(target, schema, root_attrs)
                fsync_tree(target)
            return cls(path, root, "a", lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> EpisodeStore:
        """Open an existing store (datasets of other formats open with
        :func:`gipo_robot.datasets.importers.open_dataset`).

        Args:
            path: local folder or any Zarr store URL (read mode).
            mode: ``"r"`` read-only or ``"a"`` read and append (local folders only; takes the writer
                lock, see :mod:`gipo_robot.datasets.lock`, until :meth:`close`).

        Raises:
            DatasetError: the path is missing, not a Zarr group, not an episode store, of a newer
                format version, or inconsistent (naming the feature or array at fault); or, with mode
                ``"a"``, another process is writing it (naming that process).
        """
        if mode not in ("r", "a"):
            raise DatasetError(f"mode must be 'r' or 'a', got {mode!r}", path=path)
        local = "://" not in str(path)
        if not local and mode == "a":
            raise DatasetError("only local stores can be opened for appending", path=path)
        if local and not Path(path).absolute().parent.is_dir():
            raise DatasetError("no such store", path=path)
        lock = acquire(path) if mode == "a" else None  # before any repair: no other writer is alive then
        try:
            if local:
                recover_interrupted_swap(Path(path), repair=(mode == "a"))
                if not Path(path).exists():
                    raise DatasetError("no such store", path=path)
                if mode == "a":
                    for orphan in Path(path).rglob("*.partial"):  # temp files of a killed writer
                        orphan.unlink(missing_ok=True)
            with guard(path):
                group = zarr.open_group(str(path), mode="r" if mode == "r" else "r+")
            return cls(path, group, mode, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    def _load(self) -> None:
        """Read the root attributes, open the arrays and find the committed episode count."""
        path = self.path
        with guard(path):
            attrs = dict(self._group.attrs)
        if attrs.get("format") != FORMAT_NAME:
            raise DatasetError(f"not a gipo-robot episode store (format={attrs.get('format')!r})", path=path)
        version = attrs.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise DatasetError(
                f"format_version {version!r} is not supported (this code reads <= {FORMAT_VERSION})",
                path=path,
            )
        try:
            self.schema = Schema.from_json(attrs.get("schema"))
        except DatasetError as err:
            raise DatasetError(f"bad schema attribute: {err}", path=path) from err
        fps = attrs.get("fps")
        if not isinstance(fps, int | float) or not fps > 0:
            raise DatasetError(f"bad fps attribute {fps!r}", path=path)
        self.fps = float(fps)
        self.robot = attrs.get("robot")
        self._attrs = attrs
        self._strict = attrs.get(EVERY_CHUNK_WRITTEN) is True
        # The commit point first, then the arrays: a writer grows the arrays before it appends an episode's
        # end, so arrays opened after reading the ends are at least that long, however a concurrent commit
        # falls (the other order saw "0 rows but the committed episodes end at 30" mid-append).
        self._ends_array = self._open_array("meta/episode_ends", "episode_ends", "int64")
        self._ends = read_episode_ends(self._ends_array, strict=self._strict, path=path)
        self._data: dict[str, zarr.Array] = {}
        self._data_keys = {name: name for name in self.schema.names}  # feature -> array under data/
        for f in self.schema.features:
            self._data[f.name] = self._open_array(f"data/{f.name}", f.name, f.dtype, f.shape)
        # direct chunk-file readers where the store is local and the codecs known; None: read with zarr
        self._readers = {
            name: ChunkReader.for_array(arr, lost_is_error=self._strict) for name, arr in self._data.items()
        }
        self._meta: dict[str, zarr.Array] = {}
        for name, dtype in {**EPISODE_META_FIELDS, "extra": "str"}.items():
            self._meta[name] = self._open_array(f"meta/episodes/{name}", name, dtype)
        for f in self.schema.episode_features:
            self._meta[f.name] = self._open_array(f"meta/episodes/{f.name}", f.name, f.dtype, f.shape)
        # Consistency the readers rely on; validate() checks the rest.
        for name, arr in self._data.items():
            if arr.shape[0] < self.n_steps:
                raise DatasetError(
                    f"array has {arr.shape[0]} rows but the committed episodes end at {self.n_steps}",
                    path=path,
                    feature=name,
                )
        for name, arr in self._meta.items():
            if arr.shape[0] < self.n_episodes:
                raise DatasetError(
                    f"per-episode array has {arr.shape[0]} rows for {self.n_episodes} episodes",
                    path=path,
                    feature=f"meta/episodes/{name}",
                )

    def _open_array(self, key: str, name: str, dtype: str, shape: tuple[int, ...] = ()) -> zarr.Array:
        return open_array(self._group, key, name, dtype, shape, path=self.path, writing=self.mode == "a")

    def refresh(self) -> None:
        """Re-read the store from disk (to see episodes another process committed since opening)."""
        with guard(self.path):
            self._group = zarr.open_group(self.path, mode="r" if self.mode == "r" else "r+")
        self._stats_memo = None
        self._load()

    # ------------------------------------------------------------------ sizes and metadata

    @property
    def n_episodes(self) -> int:
        """Committed episodes ``E``."""
        return int(self._ends.size)

    @property
    def n_steps(self) -> int:
        """Committed steps ``T_total``."""
        return int(self._ends[-1]) if self._ends.size else 0

    def __len__(self) -> int:
        return self.n_episodes

    @property
    def store_format(self) -> str:
        """``gipo-robot/episode-store``, or the format of the dataset a read-only view of another format
        reads in place (e.g. ``diffusion_policy/replay_buffer``)."""
        return str(self._attrs["format"])

    @property
    def episode_ends(self) -> np.ndarray:
        """``(E,)`` int64 cumulative step counts (a copy)."""
        return self._ends.copy()

    @property
    def attrs(self) -> dict[str, Any]:
        """The user attributes given at creation or with :meth:`set_attrs` (a copy)."""
        return json.loads(json.dumps(self._attrs.get("user", {})))

    def set_attrs(self, **values: Any) -> None:
        """Add or replace user attributes (JSON-serialisable)."""
        self._require_writable()
        user = {**self._attrs.get("user", {}), **to_json(values, "attrs", self.path)}
        self._update_root_attrs(user=user)

    def _update_root_attrs(self, **values: Any) -> None:
        with guard(self.path):
            self._group.attrs.update(values)
            if self.durable and "://" not in self.path:
                fsync_paths([os.path.join(self.path, "zarr.json")], self.path)
        self._attrs.update(values)

    def _index(self, episode: int) -> int:
        if not isinstance(episode, int | np.integer) or isinstance(episode, bool):
            raise self._error(f"episode index must be an int, got {episode!r}")
        i = int(episode) + (self.n_episodes if episode < 0 else 0)
        if not 0 <= i < self.n_episodes:
            raise self._error(f"no such episode (the store has {self.n_episodes})", episode=i)
        return i

    def episode_bounds(self, episode: int) -> tuple[int, int]:
        """``(start, stop)`` rows of ``episode`` in the ``data/`` arrays."""
        i = self._index(episode)
        return (int(self._ends[i - 1]) if i else 0), int(self._ends[i])

    def episode_meta(self, episode: int) -> EpisodeMeta:
        """Metadata of one episode."""
        i = self._index(episode)
        table = self._read_meta(slice(i, i + 1))
        extra = table["extra"][0]
        return EpisodeMeta(
            source=str(table["source"][0]),
            success=bool(table["success"][0]),
            task=str(table["task"][0]),
            length=int(table["length"][0]),
            start_time=float(table["start_time"][0]),
            policy_version=int(table["policy_version"][0]),
            extra=extra,
        )

    def meta_table(self) -> dict[str, np.ndarray]:
        """Every episode's metadata as columns of length ``E`` (``extra`` as a list of dicts)."""
        return self._read_meta(slice(0, self.n_episodes))

    def _read_meta(self, rows: slice) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in EPISODE_META_FIELDS:
            self._require_chunks(name, rows)
            with guard(self.path, feature=f"meta/episodes/{name}"):
                out[name] = np.asarray(self._meta[name][rows])
        for key in ("source", "task"):
            out[key] = np.array([str(v) for v in out[key]], dtype=str)  # zarr 3.4 on numpy 2: StringDType
        self._require_chunks("extra", rows)
        with guard(self.path, feature="meta/episodes/extra"):
            texts = self._meta["extra"][rows]
        extras = []
        for offset, text in enumerate(texts):
            try:
                extras.append(json.loads(str(text)) if text else {})
            except json.JSONDecodeError as err:
                raise self._error(
                    "meta/episodes/extra is not JSON", episode=(rows.start or 0) + offset
                ) from err
        out["extra"] = extras
        return out

    def episodes(
        self,
        *,
        source: str | Sequence[str] | None = None,
        success: bool | None = None,
        task: str | None = None,
    ) -> np.ndarray:
        """Indices ``(K,)`` of the episodes whose metadata matches every given filter.

        Args:
            source: one source or several (``"rollout"``, ``("demo", "teleop")``).
            success: keep only successful (True) or failed (False) episodes.
            task: keep only this task.
        """
        table = self.meta_table()
        keep = np.ones(self.n_episodes, dtype=bool)
        if source is not None:
            sources = [source] if isinstance(source, str) else list(source)
            unknown = sorted(set(sources) - set(SOURCES))
            if unknown:
                raise self._error(f"unknown source(s) {unknown}; known: {SOURCES}")
            keep &= np.isin(table["source"], sources)
        if success is not None:
            keep &= table["success"] == bool(success)
        if task is not None:
            keep &= table["task"] == task
        return np.flatnonzero(keep)

    # ------------------------------------------------------------------ reading

    def _keys(self, keys: Sequence[str] | None) -> list[str]:
        if keys is None:
            return self.schema.names
        for k in keys:
            if k not in self.schema:
                raise self._error(f"no such feature; the schema has {self.schema.names}", feature=k)
        return list(keys)

    def read_steps(self, start: int, stop: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Rows ``start:stop`` of the committed steps (global row numbers), ``{name: (stop-start, ...)}``."""
        if not 0 <= start <= stop <= self.n_steps:
            raise self._error(f"rows {start}:{stop} outside the committed 0:{self.n_steps}")
        out = {}
        for k in self._keys(keys):
            reader = self._readers[k]
            with guard(self.path, feature=k):
                if reader is not None:
                    out[k] = reader.read(np.arange(start, stop), self._thread_pool())
                else:
                    out[k] = np.asarray(self._data[k][start:stop])
        return out

    def read_rows(self, rows: np.ndarray, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Arbitrary committed rows (any order, repeats allowed): ``{name: (N, *shape)}``.

        Reads each needed chunk once: directly from the chunk files for local stores (decoding in a
        thread pool, low-dim chunks cached), else with a zarr orthogonal selection on the sorted rows.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_steps):
            raise self._error(f"rows outside the committed 0:{self.n_steps}")
        unique, inverse = np.unique(rows, return_inverse=True)
        out = {}
        for k in self._keys(keys):
            reader = self._readers[k]
            with guard(self.path, feature=k):
                if not unique.size:
                    values = self._empty(k)
                elif reader is not None:
                    values = reader.read(unique, self._thread_pool())
                else:
                    values = np.asarray(self._data[k].oindex[unique])
            out[k] = values[inverse.reshape(-1)]
        return out

    def _thread_pool(self) -> ThreadPoolExecutor:
        """This process's read threads (a pool inherited through ``fork`` has no threads: make a new one)."""
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="gipo-store-read")
            self._pool_pid = os.getpid()
        return self._pool

    def _empty(self, key: str) -> np.ndarray:
        f = self.schema[key]
        return np.zeros((0, *f.shape), f.np_dtype)

    def episode(self, episode: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All steps of one episode: ``{name: (T, *shape)}``."""
        i = self._index(episode)
        start, stop = self.episode_bounds(i)
        try:
            return self.read_steps(start, stop, keys)
        except DatasetError as err:
            raise self._error(str(err).split(": ", 1)[-1], feature=err.feature, episode=i) from err

    def episode_data(self, episode: int) -> dict[str, np.ndarray]:
        """The per-episode arrays (``schema.episode_features``) of one episode: ``{name: shape}``."""
        i = self._index(episode)
        out = {}
        for f in self.schema.episode_features:
            self._require_chunks(f.name, slice(i, i + 1))
            with guard(self.path, feature=f.name, episode=i):
                out[f.name] = np.asarray(self._meta[f.name][i])
        return out

    def _require_chunks(self, name: str, rows: slice) -> None:
        """Raise if a chunk file of ``meta/episodes/<name>`` holding ``rows`` is lost (zarr would read it as
        fill values: False, 0, ""); stores without ``every_chunk_written`` are not checked."""
        start, stop, _ = rows.indices(self.n_episodes)
        lost = self._strict and first_missing(self._meta[name], start, stop)
        if lost:
            last = min(lost[2], self.n_episodes) - 1
            raise self._error(
                f"chunk file {lost[0]} is lost: episodes {lost[1]}..{last} would read as fill values "
                f"(gipo-robot validate lists every lost file)",
                feature=f"meta/episodes/{name}",
                episode=max(lost[1], start),
            )

    def array(self, name: str) -> zarr.Array:
        """The raw zarr array ``data/<name>``; rows at or past :attr:`n_steps` are not committed."""
        self._keys([name])
        return self._data[name]

    # ------------------------------------------------------------------ errors and modes

    def _error(self, message: str, feature: str | None = None, episode: int | None = None) -> DatasetError:
        """A DatasetError naming this store."""
        return DatasetError(message, path=self.path, feature=feature, episode=episode)

    def _require_writable(self) -> None:
        if self.mode != "a":
            raise self._error("store is open read-only (open it with mode='a' to write)")

    def close(self) -> None:
        """Stop writing: discard an open :class:`EpisodeWriter`, give back the writer lock; reading still
        works (the store is read-only from now on). Idempotent; leaving a ``with`` block calls it."""
        if self._writer is not None:
            self._writer.discard()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.mode = "r"

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ statistics and summary

    def stats(self, keys: Sequence[str] | None = None) -> dict[str, dict[str, list]]:
        """Per-feature normalisation statistics over every committed step (non-image features).

        Returns:
            ``{feature: {"mean", "std", "min", "max", "q01", "q50", "q99": per-dimension values}}``,
            each a nested list of the feature's shape (a float for scalars). Cached in the root
            attributes (write mode) and recomputed after any append, drop or merge.
        """
        names = [k for k in self._keys(keys) if self.schema[k].kind != "image"]
        key = [int(self._attrs.get("generation", 0)), self.n_episodes, self.n_steps]
        cached = self._stats_memo
        if cached is None:
            stored = self._attrs.get("stats_cache")
            if isinstance(stored, dict) and isinstance(stored.get("stats"), dict):
                cached = (stored.get("key"), stored["stats"])
        table = dict(cached[1]) if cached is not None and cached[0] == key else {}
        missing = [k for k in names if k not in table]
        for k in missing:
            table[k] = self._feature_stats(k)
        if missing:
            self._stats_memo = (key, table)
            if self.mode == "a" and self._writer is None:
                self._update_root_attrs(stats_cache={"key": key, "stats": table})
        return {k: table[k] for k in names}

    def _feature_stats(self, name: str) -> dict[str, Any]:
        if self.n_steps == 0:
            raise self._error("no committed steps to compute statistics from", feature=name)
        x = self.read_steps(0, self.n_steps, [name])[name].astype(np.float64)
        qs = np.quantile(x, STAT_QUANTILES, axis=0)
        return {
            "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(),
            "min": x.min(0).tolist(),
            "max": x.max(0).tolist(),
            "q01": qs[0].tolist(),
            "q50": qs[1].tolist(),
            "q99": qs[2].tolist(),
        }

    def info(self) -> dict[str, Any]:
        """A JSON-ready summary: episodes, steps, success_rate, sources, tasks, features, size_bytes, fps."""
        table = self.meta_table()
        sources = {s: int((table["source"] == s).sum()) for s in SOURCES if (table["source"] == s).any()}
        local = Path(self.path)
        return {
            "path": self.path,
            "format": self.store_format,
            "format_version": int(self._attrs["format_version"]),
            "episodes": self.n_episodes,
            "steps": self.n_steps,
            "success_rate": float(table["success"].mean()) if self.n_episodes else None,
            "sources": sources,
            "tasks": sorted({str(t) for t in table["task"]}),
            "features": {
                f.name: {"dtype": f.dtype, "shape": list(f.shape), "kind": f.kind}
                for f in self.schema.features
            },
            "fps": self.fps,
            "robot": self.robot,
            "size_bytes": directory_size(local) if local.exists() else None,
        }
