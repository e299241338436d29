"""Check an episode store end to end: layout, schema agreement, lengths, dtypes, finite values.

:func:`find_problems` returns every problem found as a :class:`DatasetError` (naming the store, the
feature and, where it applies, the episode); :func:`validate` raises the first one. Opening the store
already checks the root attributes, array dtypes/shapes and that ``meta/episode_ends`` is strictly
increasing; a store that cannot be opened is reported as that one problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gipo_robot.datasets.schema import SOURCES, DatasetError
from gipo_robot.datasets.store import FORMAT_NAME, EpisodeStore

BLOCK_BYTES = 32 * 1024 * 1024
"""Rows are read in blocks of about this many bytes (decoded), so validation needs bounded memory."""


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
    return store if isinstance(store, EpisodeStore) else EpisodeStore.open(store, "r")


def find_problems(store: EpisodeStore | str | Path, *, deep: bool = True) -> list[DatasetError]:
    """Every problem of a store.

    Args:
        store: an open store or a path to open read-only.
        deep: also read every committed value (decoding every chunk, checking checksums and that
            float features are finite); without it only metadata is read.

    Returns:
        The problems, each a :class:`DatasetError`; empty when the store is sound.
    """
    if not isinstance(store, EpisodeStore):
        try:
            store = EpisodeStore.open(store, "r")
        except DatasetError as err:
            return [err]
    problems: list[DatasetError] = []
    path = store.path

    def problem(message: str, feature: str | None = None, episode: int | None = None) -> None:
        problems.append(DatasetError(message, path=path, feature=feature, episode=episode))

    # Layout: the groups are readable, and data/ holds exactly the schema's features.
    native = store.store_format == FORMAT_NAME
    for name in ("meta", "meta/episodes") if native else ("meta",):
        try:
            store._group[name]
        except Exception as err:
            problem(f"group {name}/ is unreadable: {type(err).__name__}: {err}")
    try:
        present = set(store._group["data"].array_keys())
    except Exception as err:
        problem(f"cannot list data/: {type(err).__name__}: {err}")
        present = set(store._data_keys.values())
    for name in sorted(present - set(store._data_keys.values())):
        problem("array data/ not declared in the schema", feature=name)

    # Episode ends and per-episode metadata.
    ends = store.episode_ends
    lengths = np.diff(ends, prepend=0)
    try:
        table = store.meta_table()
    except DatasetError as err:
        problems.append(err)
        return problems
    mismatch = np.flatnonzero(table["length"] != lengths)
    for i in mismatch[:10]:
        problem(
            f"meta/episodes/length says {int(table['length'][i])}, episode_ends give {int(lengths[i])}",
            feature="length",
            episode=int(i),
        )
    for i in np.flatnonzero(~np.isin(table["source"], SOURCES))[:10]:
        problem(f"source {table['source'][i]!r} is not one of {SOURCES}", feature="source", episode=int(i))
    for i in np.flatnonzero(~np.isfinite(table["start_time"]))[:10]:
        problem("start_time is not finite", feature="start_time", episode=int(i))
    for i, extra in enumerate(table["extra"]):
        if not isinstance(extra, dict):
            problem("meta/episodes/extra is not a JSON object", feature="extra", episode=i)
    if not deep:
        return problems

    # Every committed value: decodes (checksums hold) and float features are finite.
    for feature in store.schema.features:
        row_bytes = feature.np_dtype.itemsize * max(1, int(np.prod(feature.shape)))
        block = max(1, BLOCK_BYTES // row_bytes)
        start = 0
        while start < store.n_steps:
            stop = min(store.n_steps, start + block)
            try:
                values = store.read_steps(start, stop, [feature.name])[feature.name]
            except DatasetError:
                problems.extend(_locate_read_failure(store, feature.name, start, stop))
                start = stop
                continue
            if feature.is_float:
                finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
                for row in np.flatnonzero(~finite)[:1]:
                    episode = int(np.searchsorted(ends, start + row, side="right"))
                    step = start + int(row) - (int(ends[episode - 1]) if episode else 0)
                    problem(f"non-finite value at step {step}", feature=feature.name, episode=episode)
            start = stop
    for feature in store.schema.episode_features:
        for i in range(store.n_episodes):
            try:
                value = store.episode_data(i)[feature.name]
            except DatasetError as err:
                problems.append(err)
                continue
            if feature.is_float and not np.isfinite(value).all():
                problem("non-finite value", feature=feature.name, episode=i)
    return problems


def _locate_read_failure(store: EpisodeStore, name: str, start: int, stop: int) -> list[DatasetError]:
    """Re-read rows ``start:stop`` episode by episode to name the episode(s) whose chunks fail."""
    ends = store.episode_ends
    first = int(np.searchsorted(ends, start, side="right"))
    found = []
    for i in range(first, store.n_episodes):
        lo, hi = store.episode_bounds(i)
        if lo >= stop:
            break
        try:
            store.read_steps(max(lo, start), min(hi, stop), [name])
        except DatasetError as err:
            found.append(DatasetError(str(err).split(": ", 1)[-1], path=store.path, feature=name, episode=i))
    if not found:
        found.append(DatasetError(f"rows {start}:{stop} cannot be read", path=store.path, feature=name))
    return found
