"""Check an episode store end to end: layout, schema agreement, lengths, dtypes, finite values, and that
every chunk file is there and decodes.

:func:`find_problems` returns every problem found as a :class:`DatasetError` (naming the store, the
feature and, where it applies, the episode; a :class:`ChunkProblem` also names the chunk file);
:func:`validate` raises the first one. Opening the store already checks the root attributes, array
dtypes/shapes and that ``meta/episode_ends`` is strictly increasing; a store that cannot be opened is
reported as that one problem.

Lost chunks. zarr reads a missing chunk file as fill values (zeros, False, ""), so a deleted file looks
like data. In a store with the ``every_chunk_written`` attribute (every store created since it exists,
:mod:`gipo_robot.datasets.layout`) each chunk holding a committed row has a file, and
:func:`lost_chunks` lists the missing ones, for every array (``data/``, ``meta/episodes/``,
``meta/episode_ends``) from its shape and chunk grid. Older stores, stores read in place from another
format and remote stores may lack all-fill chunks legitimately: their files are not checked for existence
(:func:`lost_chunks` returns ``None``). Truncated or corrupt chunk files fail their CRC32C or their
decoder: the deep check decodes every chunk holding a committed row and names each one that fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from gipo_robot.datasets.chunkfiles import chunk_keys, missing_chunks
from gipo_robot.datasets.importers import open_dataset
from gipo_robot.datasets.layout import FORMAT_NAME, guard
from gipo_robot.datasets.schema import SOURCES, DatasetError
from gipo_robot.datasets.store import EpisodeStore

BLOCK_BYTES = 32 * 1024 * 1024
"""Rows are read in blocks of about this many bytes (decoded), so validation needs bounded memory."""


class ChunkProblem(DatasetError):
    """A chunk file that is lost (missing) or does not decode (truncated, corrupt).

    Attributes:
        chunk: the file's path inside the store, e.g. ``data/action/c.3.0`` or ``meta/episodes/success/c/0``.
    """

    def __init__(self, message: str, *, path: object, feature: str, episode: int | None, chunk: str) -> None:
        super().__init__(message, path=path, feature=feature, episode=episode)
        self.chunk = chunk


def validate(store: EpisodeStore | str | Path, *, deep: bool = True) -> EpisodeStore:
    """Raise the first problem :func:`find_problems` finds; return the opened store when there is none.

    Raises:
        DatasetError: naming the store, feature and episode (with the count of further problems).
    """
    problems = find_problems(store, deep=deep)
    if problems:
        first = problems[0]
        if len(problems) > 1:
            raise DatasetError(
                f"{first} (and {len(problems) - 1} more problem(s))",
                path=None,
                feature=first.feature,
                episode=first.episode,
            ) from first
        raise first
    return store if isinstance(store, EpisodeStore) else open_dataset(store)


def find_problems(store: EpisodeStore | str | Path, *, deep: bool = True) -> list[DatasetError]:
    """Every problem of a store.

    Args:
        store: an open store or a path to open read-only (an episode store, or a dataset that
            :func:`~gipo_robot.datasets.importers.open_dataset` opens in place).
        deep: also read every committed value (decoding every chunk, checking checksums and that
            float features are finite); without it only metadata is read and chunk files are listed.

    Returns:
        The problems, each a :class:`DatasetError` (a :class:`ChunkProblem` for a chunk file that is lost
        or does not decode); empty when the store is sound.
    """
    if not isinstance(store, EpisodeStore):
        try:
            store = open_dataset(store)
        except DatasetError as err:
            return [err]
    return _find_problems(store, deep, lost_chunks(store))


def report(path: str | Path, *, deep: bool = False) -> dict[str, Any]:
    """What ``gipo-robot validate`` prints: every problem of the store at ``path``, JSON-ready.

    Returns:
        ``{"store", "ok", "deep", "chunk_files_checked", "episodes", "steps", "problems"}``; each problem
        is ``{"message", "feature", "episode", "chunk"}`` (``None`` where it does not apply);
        ``chunk_files_checked`` is False where :func:`lost_chunks` cannot check (the store does not open,
        predates ``every_chunk_written``, or is remote).
    """
    try:
        store = open_dataset(path)
    except DatasetError as err:
        store, problems, lost = None, [err], None
    else:
        lost = lost_chunks(store)
        problems = _find_problems(store, deep, lost)
    return {
        "store": str(path),
        "ok": not problems,
        "deep": deep,
        "chunk_files_checked": lost is not None,
        "episodes": None if store is None else store.n_episodes,
        "steps": None if store is None else store.n_steps,
        "problems": [
            {
                "message": str(p),
                "feature": p.feature,
                "episode": p.episode,
                "chunk": getattr(p, "chunk", None),
            }
            for p in problems
        ],
    }


def _find_problems(store: EpisodeStore, deep: bool, lost: list[ChunkProblem] | None) -> list[DatasetError]:
    problems = _layout_problems(store)
    problems += lost or []
    seen = {p.chunk for p in lost or []}
    try:
        table = store.meta_table()
    except DatasetError as err:
        located = [p for p in _undecodable_chunks(store, _meta_arrays(store)) if p.chunk not in seen]
        problems += located if located or seen else [err]
        table = None
    if table is not None:
        problems += _metadata_problems(store, table)
    if deep:
        problems += [p for p in _value_problems(store) if getattr(p, "chunk", None) not in seen]
    return problems


def _data_arrays(store: EpisodeStore) -> list[tuple[str, str, zarr.Array, int]]:
    """``(feature, array path, array, committed rows)`` of every ``data/`` array."""
    return [(name, f"data/{store._data_keys[name]}", arr, store.n_steps) for name, arr in store._data.items()]


def _meta_arrays(store: EpisodeStore) -> list[tuple[str, str, zarr.Array, int]]:
    """As :func:`_data_arrays`, for ``meta/episodes/*`` and ``meta/episode_ends`` (rows are episodes)."""
    out = [
        (f"meta/episodes/{k}", f"meta/episodes/{k}", arr, store.n_episodes) for k, arr in store._meta.items()
    ]
    return [*out, ("episode_ends", "meta/episode_ends", store._ends_array, store.n_episodes)]


def _episodes_of(store: EpisodeStore, array: str, lo: int, hi: int) -> tuple[int, int]:
    """The first and last episode that rows ``lo:hi`` of ``array`` belong to."""
    if not array.startswith("data/"):
        return lo, hi - 1
    ends = store.episode_ends
    return int(np.searchsorted(ends, lo, side="right")), int(np.searchsorted(ends, hi - 1, side="right"))


def _chunk_problem(
    store: EpisodeStore, feature: str, array: str, key: str, lo: int, hi: int, what: str
) -> ChunkProblem:
    first, last = _episodes_of(store, array, lo, hi)
    rows = f"rows {lo}..{hi - 1}, " if array.startswith("data/") else ""
    span = f"episode {first}" if first == last else f"episodes {first}..{last}"
    return ChunkProblem(
        f"chunk file {array}/{key} ({rows}{span}) {what}",
        path=store.path,
        feature=feature,
        episode=first,
        chunk=f"{array}/{key}",
    )


def lost_chunks(store: EpisodeStore) -> list[ChunkProblem] | None:
    """The chunk files holding committed rows that are missing, one :class:`ChunkProblem` each.

    Lists each array's folder once (cheap: no chunk is read).

    Returns:
        The lost files (empty: none), or ``None`` when the store's chunk files cannot be checked: it
        lacks the ``every_chunk_written`` attribute (see the module docstring) or is not on local disk.
    """
    if not getattr(store, "_strict", False):
        return None
    problems = []
    for feature, array, arr, rows in [*_data_arrays(store), *_meta_arrays(store)]:
        with guard(store.path, feature=feature):
            missing = missing_chunks(arr, rows)
        if missing is None:
            return None
        for key, lo, hi in missing:
            what = "is lost: its values would read as fill values (zeros, False, empty text)"
            problems.append(_chunk_problem(store, feature, array, key, lo, min(hi, rows), what))
    return problems


def _undecodable_chunks(
    store: EpisodeStore, arrays: list, start: int = 0, stop: int | None = None
) -> list[ChunkProblem]:
    """Read rows ``start:stop`` (default: every committed row) of ``arrays`` chunk by chunk; a
    :class:`ChunkProblem` for each chunk that fails (lost files included)."""
    problems = []
    for feature, array, arr, rows in arrays:
        end = rows if stop is None else min(stop, rows)
        for key, lo, hi in chunk_keys(arr, start, end):
            lo, hi = max(lo, start), min(hi, end)
            try:
                with guard(store.path, feature=feature):
                    if array.startswith("data/"):
                        store.read_steps(lo, hi, [feature])
                    else:
                        np.asarray(arr[lo:hi])
            except DatasetError as err:
                cause = str(err).split(": ", 1)[-1].removeprefix("cannot read or write: ")
                problems.append(
                    _chunk_problem(store, feature, array, key, lo, hi, f"does not decode: {cause}")
                )
    return problems


def _layout_problems(store: EpisodeStore) -> list[DatasetError]:
    """The groups are readable, and ``data/`` holds exactly the schema's features."""
    problems = []
    native = store.store_format == FORMAT_NAME
    for name in ("meta", "meta/episodes") if native else ("meta",):
        try:
            store._group[name]
        except Exception as err:
            problems.append(
                DatasetError(f"group {name}/ is unreadable: {type(err).__name__}: {err}", path=store.path)
            )
    try:
        present = set(store._group["data"].array_keys())
    except Exception as err:
        problems.append(DatasetError(f"cannot list data/: {type(err).__name__}: {err}", path=store.path))
        present = set(store._data_keys.values())
    for name in sorted(present - set(store._data_keys.values())):
        problems.append(DatasetError("array data/ not declared in the schema", path=store.path, feature=name))
    return problems


def _metadata_problems(store: EpisodeStore, table: dict[str, Any]) -> list[DatasetError]:
    """Per-episode metadata agrees with the episode ends and holds valid values."""
    problems = []

    def problem(message: str, feature: str, episode: int) -> None:
        problems.append(DatasetError(message, path=store.path, feature=feature, episode=episode))

    lengths = np.diff(store.episode_ends, prepend=0)
    for i in np.flatnonzero(table["length"] != lengths)[:10]:
        problem(
            f"meta/episodes/length says {int(table['length'][i])}, episode_ends give {int(lengths[i])}",
            "length",
            int(i),
        )
    for i in np.flatnonzero(~np.isin(table["source"], SOURCES))[:10]:
        problem(f"source {table['source'][i]!r} is not one of {SOURCES}", "source", int(i))
    for i in np.flatnonzero(~np.isfinite(table["start_time"]))[:10]:
        problem("start_time is not finite", "start_time", int(i))
    for i, extra in enumerate(table["extra"]):
        if not isinstance(extra, dict):
            problem("meta/episodes/extra is not a JSON object", "extra", i)
    return problems


def _value_problems(store: EpisodeStore) -> list[DatasetError]:
    """Every committed value decodes (checksums hold) and float features are finite."""
    problems: list[DatasetError] = []
    ends = store.episode_ends
    arrays = {entry[0]: entry for entry in _data_arrays(store)}
    for feature in store.schema.features:
        row_bytes = feature.np_dtype.itemsize * max(1, int(np.prod(feature.shape)))
        block = max(1, BLOCK_BYTES // row_bytes)
        for start in range(0, store.n_steps, block):
            stop = min(store.n_steps, start + block)
            try:
                values = store.read_steps(start, stop, [feature.name])[feature.name]
            except DatasetError as err:
                problems += _undecodable_chunks(store, [arrays[feature.name]], start, stop) or [err]
                continue
            if feature.is_float:
                finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
                for row in np.flatnonzero(~finite)[:1]:
                    episode = int(np.searchsorted(ends, start + row, side="right"))
                    step = start + int(row) - (int(ends[episode - 1]) if episode else 0)
                    problems.append(
                        DatasetError(
                            f"non-finite value at step {step}",
                            path=store.path,
                            feature=feature.name,
                            episode=episode,
                        )
                    )
    for feature in store.schema.episode_features:
        for i in range(store.n_episodes):
            try:
                value = store.episode_data(i)[feature.name]
            except DatasetError as err:
                entry = (feature.name, f"meta/episodes/{feature.name}", store._meta[feature.name], i + 1)
                problems += _undecodable_chunks(store, [entry], i, i + 1) or [err]
                continue
            if feature.is_float and not np.isfinite(value).all():
                problems.append(
                    DatasetError("non-finite value", path=store.path, feature=feature.name, episode=i)
                )
    return problems
