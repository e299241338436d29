"""Check an episode store end to end: layout, schema agreement, lengths, dtypes, finite values.

:func:`find_problems` returns every problem found as a :class:`DatasetError` (naming the store, the
feature and, where it applies, the episode); :func:`validate` raises the first one. Opening the store
already checks the root attributes, array dtypes/shapes and that ``meta/episode_ends`` is strictly
increasing; a store that cannot be opened is reported as that one problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.datasets.importers import open_dataset
from gipo_robot.datasets.layout import FORMAT_NAME
from gipo_robot.datasets.schema import SOURCES, DatasetError
from gipo_robot.datasets.store import EpisodeStore

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
    return store if isinstance(store, EpisodeStore) else open_dataset(store)


def find_problems(store: EpisodeStore | str | Path, *, deep: bool = True) -> list[DatasetError]:
    """Every problem of a store.

    Args:
        store: an open store or a path to open read-only (an episode store, or a dataset that
            :func:`~gipo_robot.datasets.importers.open_dataset` opens in place).
        deep: also read every committed value (decoding every chunk, checking checksums and that
            float features are finite); without it only metadata is read.

    Returns:
        The problems, each a :class:`DatasetError`; empty when the store is sound.
    """
    if not isinstance(store, EpisodeStore):
        try:
            store = open_dataset(store)
        except DatasetError as err:
            return [err]
    problems = _layout_problems(store)
    try:
        table = store.meta_table()
    except DatasetError as err:
        return [*problems, err]
    problems += _metadata_problems(store, table)
    if deep:
        problems += _value_problems(store)
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
    problems = []
    ends = store.episode_ends
    for feature in store.schema.features:
        row_bytes = feature.np_dtype.itemsize * max(1, int(np.prod(feature.shape)))
        block = max(1, BLOCK_BYTES // row_bytes)
        for start in range(0, store.n_steps, block):
            stop = min(store.n_steps, start + block)
            try:
                values = store.read_steps(start, stop, [feature.name])[feature.name]
            except DatasetError:
                problems.extend(_locate_read_failure(store, feature.name, start, stop))
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
                problems.append(err)
                continue
            if feature.is_float and not np.isfinite(value).all():
                problems.append(
                    DatasetError("non-finite value", path=store.path, feature=feature.name, episode=i)
                )
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
