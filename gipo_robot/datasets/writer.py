"""Writing an episode store: whole-episode appends, the streaming :class:`EpisodeWriter`, relabel, drop
and merge.

:class:`StoreWriting` holds the writing methods of :class:`~gipo_robot.datasets.store.EpisodeStore`
(which mixes it in; it is not used alone); :class:`EpisodeWriter` streams one episode step by step.

Commit protocol. An append writes the episode's rows past the committed end (``episode_ends[-1]``) and
its per-episode metadata row past the committed count, then grows ``meta/episode_ends`` by one and writes
the new end into it. Zarr's local store replaces every file atomically (write to a temporary file, then
rename), so a process killed at any moment leaves each file either old or new:

- killed before ``episode_ends`` grows: rows past the committed end exist but are invisible; the next
  append overwrites them;
- killed after ``episode_ends`` grew but before its new value was written: the new last entry still
  holds the fill value -1, which :meth:`EpisodeStore.open` reads as "not committed";
- killed after: the episode is committed.

So a kill loses at most the episode being written. ``drop_episode`` rewrites the store into a sibling
folder and swaps it in with renames; :meth:`EpisodeStore.open` finishes or undoes an interrupted swap.
Before the new end is written, the commit ``fsync``s every file the episode wrote (its chunk files, the
metadata row, the arrays' ``zarr.json``, their folders); after it, the ``episode_ends`` files: what this
guarantees on a power cut is in :mod:`gipo_robot.datasets.store`. One writer at a time: every writer
holds the store's writer lock (:mod:`gipo_robot.datasets.lock`), so a second process cannot append.

Legend: ``E`` episodes, ``T`` steps of one episode.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gipo_robot.datasets.chunkfiles import fsync_paths, row_files
from gipo_robot.datasets.layout import guard, swap_paths, to_json
from gipo_robot.datasets.schema import SOURCES, DatasetError, Feature

if TYPE_CHECKING:
    from gipo_robot.datasets.store import EpisodeStore


def check_values(
    feature: Feature, value: Any, *, steps: int | None, path: object, episode: int, step: int | None = None
) -> np.ndarray:
    """``value`` as an array of the feature's dtype and shape ``(steps, *feature.shape)`` (or
    ``feature.shape`` when ``steps`` is None); DatasetError naming the feature and episode otherwise."""
    where = "" if step is None else f" at step {step}"
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise DatasetError(
            f"not an array{where}: {err}", path=path, feature=feature.name, episode=episode
        ) from err
    want = feature.shape if steps is None else (steps, *feature.shape)
    if arr.shape != want:
        raise DatasetError(
            f"shape {arr.shape}{where}, expected {want}", path=path, feature=feature.name, episode=episode
        )
    dst = feature.np_dtype
    if arr.dtype.kind not in "biuf":
        raise DatasetError(
            f"dtype {arr.dtype}{where} is not numeric (expected {dst})",
            path=path,
            feature=feature.name,
            episode=episode,
        )
    if feature.kind == "image" and arr.dtype != np.uint8:
        raise DatasetError(
            f"image dtype {arr.dtype}{where}, expected uint8",
            path=path,
            feature=feature.name,
            episode=episode,
        )
    if arr.dtype != dst:
        if not np.can_cast(arr.dtype, dst, casting="same_kind"):
            raise DatasetError(
                f"dtype {arr.dtype}{where} cannot be stored as {dst}",
                path=path,
                feature=feature.name,
                episode=episode,
            )
        if dst.kind in "iu" and arr.size:
            info = np.iinfo(dst)
            if arr.min() < info.min or arr.max() > info.max:
                raise DatasetError(
                    f"values{where} outside the range of {dst}",
                    path=path,
                    feature=feature.name,
                    episode=episode,
                )
        with np.errstate(over="ignore", invalid="ignore"):
            arr = arr.astype(dst)
    if dst.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            at = where or (f" at step {int(bad[0])}" if steps is not None else "")
            raise DatasetError(
                f"non-finite value (NaN or inf){at}", path=path, feature=feature.name, episode=episode
            )
    return arr


class StoreWriting:
    """The writing half of :class:`~gipo_robot.datasets.store.EpisodeStore`: append, stream, relabel, drop,
    merge.

    Every append writes past the committed end and commits by writing the new episode end (see the
    module docstring), so readers never see a half-written episode. The methods use the store's arrays
    and reading methods, which :class:`~gipo_robot.datasets.store.EpisodeStore` defines.
    """

    def writer(self, *, flush_steps: int = 32, **meta: Any) -> EpisodeWriter:
        """A streaming writer for one new episode; see :class:`EpisodeWriter`."""
        return EpisodeWriter(self, flush_steps=flush_steps, **meta)

    def append_episode(
        self,
        steps: Mapping[str, Any],
        *,
        source: str = "demo",
        success: bool = False,
        task: str = "",
        start_time: float | None = None,
        policy_version: int = -1,
        extra: Mapping[str, Any] | None = None,
        episode_data: Mapping[str, Any] | None = None,
    ) -> int:
        """Validate and commit one whole episode; returns its index.

        Args:
            steps: feature name -> ``(T, *shape)`` array, every feature of the schema (features with a
                ``fill`` may be left out). Values are cast to the feature dtype when numpy's
                ``same_kind`` rule allows it.
            source, success, task, start_time, policy_version, extra: per-episode metadata, see
                :class:`EpisodeMeta` (``start_time`` defaults to now).
            episode_data: per-episode arrays, one per ``schema.episode_features``.

        Raises:
            DatasetError: unknown or missing features, wrong shape or dtype, NaN/inf in a float feature,
                different lengths, empty episode, bad metadata; the committed store is unchanged.
        """
        self._require_writable()
        if self._writer is not None:
            raise self._error("an EpisodeWriter is open on this store; commit or discard it first")
        episode = self.n_episodes
        if not isinstance(steps, Mapping):
            raise self._error(f"steps must be a dict of arrays, got {type(steps).__name__}")
        unknown = sorted(set(steps) - set(self.schema.names))
        if unknown:
            raise self._error(
                f"features {unknown} are not in the schema {self.schema.names}", episode=episode
            )
        lengths = {k: int(np.shape(v)[0]) if np.ndim(v) else -1 for k, v in steps.items()}
        if not lengths:
            raise self._error("no steps given", episode=episode)
        t = max(lengths.values())
        if t <= 0:
            raise self._error("an episode needs at least one step", episode=episode)
        rows: dict[str, np.ndarray] = {}
        for f in self.schema.features:
            if f.name not in steps:
                if f.fill is None:
                    raise self._error("missing (it has no fill value)", feature=f.name, episode=episode)
                rows[f.name] = np.full((t, *f.shape), f.fill, dtype=f.np_dtype)
                continue
            if lengths[f.name] != t:
                raise self._error(
                    f"{lengths[f.name]} steps, other features have {t}", feature=f.name, episode=episode
                )
            rows[f.name] = check_values(f, steps[f.name], steps=t, path=self.path, episode=episode)
        meta = self._check_meta(
            episode, source, success, task, start_time, policy_version, extra, episode_data
        )
        self._write_rows(self.n_steps, rows)
        return self._commit(t, meta)

    def _check_meta(
        self,
        episode: int,
        source: Any,
        success: Any,
        task: Any,
        start_time: Any,
        policy_version: Any,
        extra: Any,
        episode_data: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        p = self.path
        if source not in SOURCES:
            raise DatasetError(f"source {source!r} is not one of {SOURCES}", path=p, episode=episode)
        if not isinstance(success, bool | np.bool_):
            raise DatasetError(f"success must be a bool, got {success!r}", path=p, episode=episode)
        if not isinstance(task, str):
            raise DatasetError(f"task must be a str, got {task!r}", path=p, episode=episode)
        start = time.time() if start_time is None else start_time
        if not isinstance(start, int | float) or not math.isfinite(start):
            raise DatasetError(f"start_time must be a finite number, got {start!r}", path=p, episode=episode)
        if not isinstance(policy_version, int | np.integer) or isinstance(policy_version, bool):
            raise DatasetError(
                f"policy_version must be an int, got {policy_version!r}", path=p, episode=episode
            )
        extra_json = to_json(dict(extra or {}), f"episode {episode} extra", p)
        given = dict(episode_data or {})
        unknown = sorted(set(given) - {f.name for f in self.schema.episode_features})
        if unknown:
            raise DatasetError(
                f"episode_data {unknown} not in the schema's episode features", path=p, episode=episode
            )
        arrays = {}
        for f in self.schema.episode_features:
            if f.name not in given:
                if f.fill is None:
                    raise DatasetError("missing episode_data", path=p, feature=f.name, episode=episode)
                arrays[f.name] = np.full(f.shape, f.fill, f.np_dtype)
            else:
                arrays[f.name] = check_values(f, given[f.name], steps=None, path=p, episode=episode)
        return {
            "source": source,
            "success": bool(success),
            "task": task,
            "start_time": float(start),
            "policy_version": int(policy_version),
            "extra": json.dumps(extra_json) if extra_json else "",
            "episode_data": arrays,
        }

    def _write_rows(self, start: int, rows: Mapping[str, np.ndarray]) -> None:
        """Write rows ``start:start+T`` of every feature (past the committed end: invisible until commit).

        Not fsynced here (the commit is): a control loop writes in line, and flushing the rewritten chunks
        measured 10-35 ms per flush on a busy disk (``scripts/bench_store_fsync.py``).
        """
        for name, values in rows.items():
            arr = self._data[name]
            stop = start + values.shape[0]
            reader = self._readers[name]
            try:
                with guard(self.path, feature=name, episode=self.n_episodes):
                    if arr.shape[0] != stop:
                        arr.resize((stop, *arr.shape[1:]))
                    arr[start:stop] = values
            finally:
                if reader is not None:
                    reader.clear_cache()

    def _sync(self, files: list[str], episode: int, root: str | None = None) -> None:
        """``fsync`` ``files`` and their folders up to ``root`` (the store's by default) when :attr:`durable`,
        naming the episode on failure."""
        if self.durable and files:
            with guard(self.path, episode=episode):
                fsync_paths(files, self.path if root is None else root)

    def _commit(self, length: int, meta: dict[str, Any]) -> int:
        """Write the per-episode row, then the new episode end: the commit point."""
        i = self.n_episodes
        columns: dict[str, Any] = {
            "source": np.array([meta["source"]], dtype=object),
            "success": np.array([meta["success"]]),
            "task": np.array([meta["task"]], dtype=object),
            "length": np.array([length], dtype=np.int64),
            "start_time": np.array([meta["start_time"]], dtype=np.float64),
            "policy_version": np.array([meta["policy_version"]], dtype=np.int64),
            "extra": np.array([meta["extra"]], dtype=object),
        }
        columns.update({k: v[None] for k, v in meta["episode_data"].items()})
        for name, value in columns.items():
            arr = self._meta[name]
            with guard(self.path, feature=f"meta/episodes/{name}", episode=i):
                if arr.shape[0] != i + 1:
                    arr.resize((i + 1, *arr.shape[1:]))
                arr[i : i + 1] = value
        new_end = self.n_steps + length
        written = [f for arr in self._data.values() for f in row_files(arr, self.n_steps, new_end)]
        self._sync(written + [f for arr in self._meta.values() for f in row_files(arr, i, i + 1)], i)
        with guard(self.path, feature="episode_ends", episode=i):
            self._ends_array.resize((i + 1,))  # a kill here leaves the fill value -1: not committed
            self._ends_array[i] = new_end  # the commit
        self._sync(row_files(self._ends_array, i, i + 1), i)
        self._ends = np.append(self._ends, np.int64(new_end))
        return i

    # ------------------------------------------------------------------ editing

    def relabel(self, episode: int, success: bool) -> None:
        """Set one committed episode's ``success`` label, recording the change in its ``extra``.

        ``extra["relabelled"]`` becomes ``{"from": old, "to": success, "time": unix seconds}`` (also when
        the label is unchanged: it then records that someone confirmed it). Two single-element writes,
        each replacing one chunk file atomically: ``meta/episodes/success``, then ``meta/episodes/extra``;
        a kill between them leaves the new label without its note, never a torn store. Both are
        flushed (``fsync``); the writer lock keeps other processes from writing meanwhile.

        Raises:
            DatasetError: the store is read-only, ``episode`` is out of range or ``success`` is not a
                bool (naming the store and the episode).
        """
        self._require_writable()
        i = self._index(episode)
        if not isinstance(success, bool | np.bool_):
            raise self._error(f"success must be a bool, got {success!r}", episode=i)
        meta = self.episode_meta(i)
        note = {"from": meta.success, "to": bool(success), "time": time.time()}
        extra = to_json({**meta.extra, "relabelled": note}, f"episode {i} extra", self.path)
        if meta.success != bool(success):
            with guard(self.path, feature="meta/episodes/success", episode=i):
                self._meta["success"][i : i + 1] = np.array([bool(success)])
        with guard(self.path, feature="meta/episodes/extra", episode=i):
            self._meta["extra"][i : i + 1] = np.array([json.dumps(extra)], dtype=object)
        self._sync([f for k in ("success", "extra") for f in row_files(self._meta[k], i, i + 1)], i)

    def drop_episode(self, episode: int) -> None:
        """Delete one episode; later episodes move down by one index.

        The store is rewritten into ``<path>.rewrite`` and swapped in with two renames, so a kill leaves
        either the old or the new store (:meth:`open` completes an interrupted swap). Costs a full copy.
        """
        self._require_writable()
        if self._writer is not None:
            raise self._error("an EpisodeWriter is open on this store")
        i = self._index(episode)
        keep = [j for j in range(self.n_episodes) if j != i]
        self._rewrite(keep)

    def _rewrite(self, keep: Sequence[int]) -> None:
        """Rewrite the store with only the episodes ``keep`` (in order) and swap it in."""
        src = Path(self.path)
        tmp, old = swap_paths(src)
        if tmp.exists():
            shutil.rmtree(tmp)
        new = type(self).create(tmp, self.schema, fps=self.fps, robot=self.robot, attrs=self.attrs)
        new.durable = self.durable
        new._update_root_attrs(generation=int(self._attrs.get("generation", 0)) + 1)
        for j in keep:
            new._copy_episode_from(self, j)
        new.close()
        os.rename(src, old)  # this store's writer lock (<src>.lock, beside it) stays held throughout
        os.rename(tmp, src)
        self._sync([str(src / "zarr.json")], self.n_episodes, root=str(src.parent))  # and the renames
        shutil.rmtree(old)
        self.refresh()

    def _copy_episode_from(self, other: EpisodeStore, j: int) -> int:
        """Append episode ``j`` of ``other`` (steps, metadata, per-episode arrays); returns its index."""
        m = other.episode_meta(j)
        return self.append_episode(
            other.episode(j),
            source=m.source,
            success=m.success,
            task=m.task,
            start_time=m.start_time,
            policy_version=m.policy_version,
            extra=m.extra,
            episode_data=other.episode_data(j),
        )

    def merge(self, other: EpisodeStore | str | Path) -> list[int]:
        """Append every episode of ``other`` (same schema) to this store; returns their new indices.

        Each episode is its own commit, so a kill mid-merge keeps the episodes merged so far.

        Raises:
            DatasetError: the schemas differ (naming the first differing feature).
        """
        self._require_writable()
        if not isinstance(other, StoreWriting):
            # imported here: the importers module imports the store, which imports this module
            from gipo_robot.datasets.importers import open_dataset

            other = open_dataset(other)
        mine = {f.name: f for f in (*self.schema.features, *self.schema.episode_features)}
        theirs = {f.name: f for f in (*other.schema.features, *other.schema.episode_features)}
        for name in sorted(set(mine) | set(theirs)):
            a, b = mine.get(name), theirs.get(name)
            same = (
                a is not None and b is not None and (a.dtype, a.shape, a.kind) == (b.dtype, b.shape, b.kind)
            )
            if not same:
                raise self._error(
                    f"cannot merge {other.path}: feature differs: {a and a.to_json()} vs {b and b.to_json()}",
                    feature=name,
                )
        return [self._copy_episode_from(other, j) for j in range(other.n_episodes)]


class EpisodeWriter:
    """Streams one episode into a store: :meth:`add` one step at a time, then :meth:`commit` or
    :meth:`discard`. Steps are buffered and written past the committed end every ``flush_steps``
    steps, so memory stays bounded and a kill loses only this episode.

    Used as a context manager, leaving the block without committing discards the episode::

        with store.writer(source="teleop", task="lift") as w:
            for obs, action in loop:
                w.add({"obs.state": obs, "action": action})
            w.commit(success=True)
    """

    def __init__(self, store: EpisodeStore, *, flush_steps: int = 32, **meta: Any) -> None:
        store._require_writable()
        if store._writer is not None:
            raise store._error("another EpisodeWriter is open on this store")
        if not isinstance(flush_steps, int) or flush_steps < 1:
            raise store._error(f"flush_steps must be a positive int, got {flush_steps!r}")
        self.store = store
        self.flush_steps = flush_steps
        self.meta = dict(meta)
        self.meta.setdefault("start_time", time.time())
        self.episode = store.n_episodes
        self._buffer: dict[str, list[np.ndarray]] = {f.name: [] for f in store.schema.features}
        self._flushed = 0
        self._buffered = 0
        self._open = True
        store._writer = self

    @property
    def n_steps(self) -> int:
        """Steps added so far."""
        return self._flushed + self._buffered

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open:
            self.discard()

    def _require_open(self) -> None:
        if not self._open:
            raise self.store._error("writer already committed or discarded", episode=self.episode)

    def add(self, step: Mapping[str, Any]) -> None:
        """Add one step: feature name -> ``feature.shape`` array (features with a fill may be left out).

        Raises:
            DatasetError: unknown/missing feature, wrong shape or dtype, NaN/inf; the step is not added.
        """
        self._require_open()
        store = self.store
        if not isinstance(step, Mapping):
            raise store._error(f"a step must be a dict, got {type(step).__name__}", episode=self.episode)
        unknown = sorted(set(step) - set(store.schema.names))
        if unknown:
            raise store._error(
                f"features {unknown} are not in the schema {store.schema.names}", episode=self.episode
            )
        row = {}
        for f in store.schema.features:
            if f.name in step:
                row[f.name] = check_values(
                    f, step[f.name], steps=None, path=store.path, episode=self.episode, step=self.n_steps
                )
            elif f.fill is not None:
                row[f.name] = np.full(f.shape, f.fill, f.np_dtype)
            else:
                raise store._error(
                    f"missing at step {self.n_steps} (it has no fill value)",
                    feature=f.name,
                    episode=self.episode,
                )
        for name, value in row.items():
            self._buffer[name].append(value)
        self._buffered += 1
        if self._buffered >= self.flush_steps:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        rows = {name: np.stack(values) for name, values in self._buffer.items()}
        self.store._write_rows(self.store.n_steps + self._flushed, rows)
        self._flushed += self._buffered
        self._buffered = 0
        for values in self._buffer.values():
            values.clear()

    def commit(self, **meta: Any) -> int:
        """Write the remaining steps and commit the episode; returns its index.

        Args:
            **meta: per-episode metadata overriding those given to the writer (``success=True``, ...),
                see :meth:`EpisodeStore.append_episode`.
        """
        self._require_open()
        store = self.store
        if self.n_steps == 0:
            raise store._error("an episode needs at least one step", episode=self.episode)
        merged = {**self.meta, **meta}
        allowed = {"source", "success", "task", "start_time", "policy_version", "extra", "episode_data"}
        unknown = sorted(set(merged) - allowed)
        if unknown:
            raise store._error(f"unknown episode metadata {unknown}; known: {sorted(allowed)}")
        checked = store._check_meta(
            self.episode,
            merged.get("source", "demo"),
            merged.get("success", False),
            merged.get("task", ""),
            merged.get("start_time"),
            merged.get("policy_version", -1),
            merged.get("extra"),
            merged.get("episode_data"),
        )
        self._flush()
        index = store._commit(self.n_steps, checked)
        self._close()
        return index

    def discard(self) -> None:
        """Drop the episode; rows already flushed stay invisible and the next append overwrites them."""
        if self._open:
            self._close()

    def _close(self) -> None:
        self._open = False
        self._buffer = {}
        self.store._writer = None
