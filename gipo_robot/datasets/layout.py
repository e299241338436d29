"""The on-disk layout of an episode store: format constants, array creation, and the small helpers every
part of the store shares (JSON attributes, the error guard, the ``drop_episode`` swap paths).

Layout (Zarr v3, on local disk for writing; any Zarr store URL reads)::

    store.zarr/
      zarr.json                 root attributes: format, format_version, schema, fps, robot, user, ...
      data/<feature>            (T_total, *shape)   time-first, every committed episode back to back
      meta/episode_ends         (E,) int64          cumulative step counts: THE commit point
      meta/episodes/<field>     (E, ...)            source, success, task, length, start_time,
                                                    policy_version, extra (JSON text), episode features

Chunking and codecs. Image features are chunked one frame per chunk and encoded with QOI (default,
lossless, the fastest to decode), PNG, lossless WebP or JPEG through ``imagecodecs``
(:mod:`gipo_robot.datasets.codecs`), or with Blosc/Zstd on raw frames (``codec="none"``); chunk files
are named ``c.<i>.0.0.0`` in the array's folder (:data:`CHUNK_KEY_ENCODING`). Low-dim and scalar
features use Blosc/Zstd with byte shuffle in chunks of about 64 KiB (a power-of-two number of rows),
small enough that a random minibatch decodes little it does not need. Every chunk carries a CRC32C
checksum, so a damaged chunk reads as a :class:`DatasetError` instead of as wrong numbers.

Every chunk is written. zarr skips a chunk whose values all equal the fill value (``write_empty_chunks``
is off by default) and reads a missing chunk file as fill values, so a lost file and a chunk of zeros
would look the same. The store writes through :func:`writing_handle` (``write_empty_chunks`` on), and a
store created that way carries the root attribute ``every_chunk_written: true``
(:data:`EVERY_CHUNK_WRITTEN`): in such a store every chunk that holds a committed row has a file, and a
missing one is lost (:func:`~gipo_robot.datasets.chunkfiles.missing_chunks`, ``gipo-robot validate``).
Stores created before this attribute existed may lack all-fill chunks legitimately, so their chunk files
are not checked for existence (appending to them does not add the attribute).

Legend: ``E`` episodes, ``T_total`` steps of all episodes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec
from zarr.core.array import AsyncArray

from gipo_robot.datasets.chunkfiles import first_missing
from gipo_robot.datasets.codecs import ImageCodec
from gipo_robot.datasets.schema import EPISODE_META_FIELDS, DatasetError, Feature, Schema

FORMAT_NAME = "gipo-robot/episode-store"
FORMAT_VERSION = 1
LOW_DIM_CHUNK_BYTES = 64 * 1024
META_CHUNK = 4096
TEXT_CHUNK = 64
ENDS_FILL = -1
EVERY_CHUNK_WRITTEN = "every_chunk_written"
"""Root attribute of stores in which every chunk holding a committed row has a file (module docstring)."""
CHUNK_KEY_ENCODING = {"name": "default", "configuration": {"separator": "."}}
"""Chunk files of ``data/<feature>`` are named ``c.<i>.0.0.0``, side by side in the array's folder: the
default ``/`` separator makes three nested folders per image frame, each taking a 4 KiB block on
ext4, which cost more disk than the frames themselves (stores written that way still read)."""


def _low_dim_chunk_rows(feature: Feature) -> int:
    """Rows per chunk for a low-dim/scalar feature: a power of two near 64 KiB, within [256, 16384]."""
    row_bytes = feature.np_dtype.itemsize * max(1, math.prod(feature.shape))
    rows = 2 ** math.floor(math.log2(max(1, LOW_DIM_CHUNK_BYTES // row_bytes)))
    return int(min(16384, max(256, rows)))


def _blosc(feature: Feature | None = None) -> BloscCodec:
    itemsize = 1 if feature is None else feature.np_dtype.itemsize
    return BloscCodec(cname="zstd", clevel=3, shuffle="shuffle" if itemsize > 1 else "bitshuffle")


def create_feature_array(group: zarr.Group, feature: Feature, rows: int = 0) -> zarr.Array:
    """Create ``group/<feature.name>`` with shape ``(rows, *feature.shape)`` and the feature's codecs."""
    shape = (rows, *feature.shape)
    if feature.kind == "image":
        chunks = (1, *feature.shape)
        if feature.codec == "none":
            serializer: Any = BytesCodec()
            compressors: list[Any] = [_blosc(feature), Crc32cCodec()]
        else:
            serializer = ImageCodec(format=feature.codec, quality=feature.quality)
            compressors = [Crc32cCodec()]
    else:
        chunks = (_low_dim_chunk_rows(feature), *feature.shape)
        serializer = BytesCodec()
        compressors = [_blosc(feature), Crc32cCodec()]
    return group.create_array(
        feature.name,
        shape=shape,
        chunks=chunks,
        dtype=feature.np_dtype,
        serializer=serializer,
        compressors=compressors,
        fill_value=np.zeros((), feature.np_dtype).item(),
        chunk_key_encoding=CHUNK_KEY_ENCODING,
    )


def writing_handle(array: zarr.Array) -> zarr.Array:
    """A handle on ``array`` that writes every chunk, also one of fill values (``write_empty_chunks``: a
    runtime setting of zarr, not stored in the array's metadata)."""
    return zarr.Array(AsyncArray(array.metadata, array.store_path, config={"write_empty_chunks": True}))


def _json_default(value: Any) -> Any:
    """``json.dumps`` fallback: dataclasses as dicts, numpy values as Python values, paths as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def to_json(value: Any, what: str, path: object) -> Any:
    """``value`` as plain JSON data (dataclasses become dicts); DatasetError if it cannot be."""
    try:
        return json.loads(json.dumps(value, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{what} is not JSON-serialisable: {err}", path=path) from err


@contextlib.contextmanager
def guard(path: object, feature: str | None = None, episode: int | None = None) -> Iterator[None]:
    """Turn any error from zarr/numcodecs/the filesystem into a DatasetError naming where it happened."""
    try:
        yield
    except DatasetError:
        raise
    except Exception as err:
        raise DatasetError(
            f"cannot read or write: {type(err).__name__}: {err}", path=path, feature=feature, episode=episode
        ) from err


def open_array(
    group: zarr.Group, key: str, name: str, dtype: str, shape: tuple[int, ...], *, path: object, writing: bool
) -> zarr.Array:
    """The array ``key`` of a store, checked: an array (not a group) of ``dtype`` (``"str"``: text) and
    shape ``(rows, *shape)``; a :func:`writing_handle` when ``writing``.

    Raises:
        DatasetError: missing, a group, or of another dtype or shape (naming ``name``).
    """
    with guard(path, feature=name):
        try:
            arr = group[key]
        except KeyError as err:
            raise DatasetError(f"missing array {key}", path=path, feature=name) from err
    if not isinstance(arr, zarr.Array):
        raise DatasetError(f"{key} is a group, expected an array", path=path, feature=name)
    if dtype == "str":
        if arr.dtype.kind not in "OTU":
            raise DatasetError(f"{key} has dtype {arr.dtype}, expected text", path=path, feature=name)
    elif np.dtype(arr.dtype) != np.dtype(dtype):
        raise DatasetError(
            f"{key} has dtype {np.dtype(arr.dtype)}, expected {np.dtype(dtype)}", path=path, feature=name
        )
    if arr.ndim != 1 + len(shape) or tuple(arr.shape[1:]) != tuple(shape):
        raise DatasetError(
            f"{key} has shape {arr.shape}, expected (rows, *{tuple(shape)})", path=path, feature=name
        )
    return writing_handle(arr) if writing else arr


def read_episode_ends(array: zarr.Array, *, strict: bool, path: object) -> np.ndarray:
    """The committed episode ends: ``meta/episode_ends`` less a last entry that a cut-short commit left at
    the fill value -1.

    Args:
        array: ``meta/episode_ends``.
        strict: the store has :data:`EVERY_CHUNK_WRITTEN`: a missing chunk file is lost, not -1s (except
            the one of a cut-short commit that grew the array into a new chunk).

    Raises:
        DatasetError: not 1-D, a lost chunk file, -1 before the last entry, or not strictly increasing.
    """
    with guard(path, feature="episode_ends"):
        ends = np.asarray(array[:], dtype=np.int64)
    if ends.ndim != 1:
        raise DatasetError(f"meta/episode_ends must be 1-D, got shape {ends.shape}", path=path)
    lost = first_missing(array, 0, ends.size) if strict and ends.size else None
    if lost and not (lost[1] == ends.size - 1 and ends[-1] == ENDS_FILL):
        raise DatasetError(
            f"chunk file {lost[0]} of meta/episode_ends is lost (entries {lost[1]}..{lost[2] - 1})",
            path=path,
            feature="episode_ends",
            episode=lost[1],
        )
    torn = np.flatnonzero(ends == ENDS_FILL)
    if torn.size:
        if torn[0] != ends.size - 1:
            raise DatasetError(
                f"meta/episode_ends has the fill value -1 at entry {int(torn[0])}, before the last",
                path=path,
                feature="episode_ends",
                episode=int(torn[0]),
            )
        ends = ends[:-1]  # grown but never written: a commit that was cut short
    check_episode_ends(ends, path)
    return ends


def check_episode_ends(ends: np.ndarray, path: object) -> None:
    """Raise :class:`DatasetError` unless the cumulative episode ends are strictly increasing."""
    lengths = np.diff(ends, prepend=0)
    if lengths.size and lengths.min() <= 0:
        bad = int(np.argmax(lengths <= 0))
        raise DatasetError(
            f"meta/episode_ends is not strictly increasing (entry {bad}: {int(ends[bad])})",
            path=path,
            feature="episode_ends",
            episode=bad,
        )


def directory_size(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def create_layout(path: Path, schema: Schema, attributes: Mapping[str, Any]) -> zarr.Group:
    """Create the empty groups and arrays of a store at ``path`` with the root ``attributes``.

    Returns:
        The root group, open for writing.
    """
    root = zarr.open_group(str(path), mode="w", attributes=dict(attributes))
    data = root.create_group("data")
    for feature in schema.features:
        create_feature_array(data, feature)
    meta = root.create_group("meta")
    checked = [ZstdCodec(level=3), Crc32cCodec()]
    meta.create_array(
        "episode_ends",
        shape=(0,),
        chunks=(META_CHUNK,),
        dtype="int64",
        fill_value=ENDS_FILL,
        compressors=checked,
    )
    episodes = meta.create_group("episodes")
    for name, dtype in {**EPISODE_META_FIELDS, "extra": "str"}.items():
        chunks = (TEXT_CHUNK,) if dtype == "str" else (META_CHUNK,)
        episodes.create_array(
            name, shape=(0,), chunks=chunks, dtype=str if dtype == "str" else dtype, compressors=checked
        )
    for feature in schema.episode_features:
        create_feature_array(episodes, feature)
    return root


def swap_paths(path: Path) -> tuple[Path, Path]:
    """``(<path>.rewrite, <path>.replaced)``: the rewritten copy and the old store during a swap."""
    return path.with_name(path.name + ".rewrite"), path.with_name(path.name + ".replaced")


def recover_interrupted_swap(path: Path, *, repair: bool) -> None:
    """Finish a ``drop_episode`` swap that a kill interrupted (the rewritten copy is complete by then)."""
    tmp, old = swap_paths(path)
    if path.exists():
        if repair and old.exists():
            shutil.rmtree(old)  # killed after the swap, before removing the old copy
        return
    if old.exists() and tmp.exists():
        if not repair:
            raise DatasetError(
                f"a rewrite was interrupted; open it with mode='a' to finish it ({tmp} -> {path})", path=path
            )
        os.rename(tmp, path)
        shutil.rmtree(old)
