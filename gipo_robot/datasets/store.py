"""The Zarr episode store: every recorded step of demos, teleop, rollouts and deployments.

Layout (Zarr v3, on local disk for writing; any Zarr store URL reads)::

    store.zarr/
      zarr.json                 root attributes: format, format_version, schema, fps, robot, user, ...
      data/<feature>            (T_total, *shape)   time-first, every committed episode back to back
      meta/episode_ends         (E,) int64          cumulative step counts: THE commit point
      meta/episodes/<field>     (E, ...)            source, success, task, length, start_time,
                                                    policy_version, extra (JSON text), episode features

Legend: ``E`` episodes, ``T`` steps of one episode, ``T_total`` steps of all episodes, ``N`` rows read,
``H``/``W``/``C`` image height/width/channels, ``D`` low-dim size.

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
One writer at a time: the store takes no lock, so two processes must not append to one store at once.

Chunking and codecs. Image features are chunked one frame per chunk and encoded with QOI (default,
lossless, the fastest to decode), PNG, lossless WebP or JPEG through ``imagecodecs``
(:mod:`gipo_robot.datasets.codecs`), or with Blosc/Zstd on raw frames (``codec="none"``); chunk files
are named ``c.<i>.0.0.0`` in the array's folder (:data:`CHUNK_KEY_ENCODING`). Low-dim and scalar
features use Blosc/Zstd with byte shuffle in chunks of about 64 KiB (a power-of-two number of rows),
small enough that a random minibatch decodes little it does not need. Every chunk carries a CRC32C
checksum, so a damaged chunk reads as a :class:`DatasetError` instead of as wrong numbers.

Reading. Local stores are read through :class:`~gipo_robot.datasets.chunks.ChunkReader`, which reads
chunk files directly (zarr-python's ~0.3 ms per chunk made a 256-frame minibatch cost ~100 ms), decodes
frames in a small thread pool and caches decoded low-dim chunks; any other store, or an array whose
codecs it does not know, is read through zarr. Both give the same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ZstdCodec

from gipo_robot.datasets.chunks import ChunkReader
from gipo_robot.datasets.codecs import ImageCodec
from gipo_robot.datasets.schema import EPISODE_META_FIELDS, SOURCES, DatasetError, Feature, Schema

FORMAT_NAME = "gipo-robot/episode-store"
FORMAT_VERSION = 1
LOW_DIM_CHUNK_BYTES = 64 * 1024
META_CHUNK = 4096
TEXT_CHUNK = 64
ENDS_FILL = -1
STAT_QUANTILES = (0.01, 0.5, 0.99)
CHUNK_KEY_ENCODING = {"name": "default", "configuration": {"separator": "."}}
"""Chunk files of ``data/<feature>`` are named ``c.<i>.0.0.0``, side by side in the array's folder: the
default ``/`` separator makes three nested folders per image frame, each taking a 4 KiB block on
ext4, which cost more disk than the frames themselves (stores written that way still read)."""
READ_THREADS = min(4, os.cpu_count() or 1)
"""Threads that read and decode chunks for one store (file reads, Blosc and image decoding release
the GIL)."""


def _low_dim_chunk_rows(feature: Feature) -> int:
    """Rows per chunk for a low-dim/scalar feature: a power of two near 64 KiB, within [256, 16384]."""
    row_bytes = feature.np_dtype.itemsize * max(1, math.prod(feature.shape))
    rows = 2 ** math.floor(math.log2(max(1, LOW_DIM_CHUNK_BYTES // row_bytes)))
    return int(min(16384, max(256, rows)))


def _blosc(feature: Feature | None = None) -> BloscCodec:
    itemsize = 1 if feature is None else feature.np_dtype.itemsize
    return BloscCodec(cname="zstd", clevel=3, shuffle="shuffle" if itemsize > 1 else "bitshuffle")


def _create_feature_array(group: zarr.Group, feature: Feature, rows: int = 0) -> zarr.Array:
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


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _to_json(value: Any, what: str, path: object) -> Any:
    """``value`` as plain JSON data (dataclasses become dicts); DatasetError if it cannot be."""
    try:
        return json.loads(json.dumps(value, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{what} is not JSON-serialisable: {err}", path=path) from err


@contextlib.contextmanager
def _guard(path: object, feature: str | None = None, episode: int | None = None) -> Iterator[None]:
    """Turn any error from zarr/numcodecs/the filesystem into a DatasetError naming where it happened."""
    try:
        yield
    except DatasetError:
        raise
    except Exception as err:
        raise DatasetError(
            f"cannot read or write: {type(err).__name__}: {err}", path=path, feature=feature, episode=episode
        ) from err


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


def _directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _check_values(
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


@dataclasses.dataclass(frozen=True)
class EpisodeMeta:
    """Per-episode metadata, one row of ``meta/episodes/``.

    Attributes:
        source: where the episode came from, one of ``demo``, ``teleop``, ``rollout``, ``deploy``.
        success: whether the task was achieved.
        task: free-text task name or instruction.
        length: number of steps ``T``.
        start_time: Unix time of the first step, seconds.
        policy_version: behaviour policy version that produced a rollout; -1 otherwise.
        extra: any other JSON-serialisable metadata (a robomimic demo's ``model_file``, ...).
    """

    source: str = "demo"
    success: bool = False
    task: str = ""
    length: int = 0
    start_time: float = 0.0
    policy_version: int = -1
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class EpisodeStore:
    """A Zarr episode store; build one with :meth:`create` or :meth:`open`, not the constructor.

    Reading never sees rows past the last committed episode end. Indices are episode numbers
    ``0..E-1`` in commit order (negative indices count from the end).
    """

    def __init__(self, path: str | Path, group: zarr.Group, mode: str) -> None:
        self.path = str(path)
        self.mode = mode
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
            DatasetError: ``path`` exists (without ``overwrite``), or fps/robot/attrs are invalid.
        """
        target = Path(path)
        if not isinstance(schema, Schema):
            raise DatasetError(f"schema must be a Schema, got {type(schema).__name__}", path=path)
        if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
            raise DatasetError(f"fps must be a positive number, got {fps!r}", path=path)
        if target.exists():
            if not overwrite:
                raise DatasetError("already exists (pass overwrite=True to replace it)", path=path)
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        root_attrs = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "schema": schema.to_json(),
            "fps": float(fps),
            "robot": _to_json(robot, "robot", path),
            "user": _to_json(dict(attrs or {}), "attrs", path),
            "generation": 0,
        }
        with _guard(path):
            root = zarr.open_group(str(target), mode="w", attributes=root_attrs)
            data = root.create_group("data")
            for feature in schema.features:
                _create_feature_array(data, feature)
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
                    name,
                    shape=(0,),
                    chunks=chunks,
                    dtype=str if dtype == "str" else dtype,
                    compressors=checked,
                )
            for feature in schema.episode_features:
                _create_feature_array(episodes, feature)
        return cls(path, root, "a")

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> EpisodeStore:
        """Open an existing store, or a Diffusion Policy / UMI replay buffer read-only
        (:mod:`gipo_robot.datasets.from_diffusion_policy`).

        Args:
            path: local folder or any Zarr store URL (read mode).
            mode: ``"r"`` read-only or ``"a"`` read and append (local folders only).

        Raises:
            DatasetError: the path is missing, not a Zarr group, not an episode store, of a newer
                format version, or inconsistent (naming the feature or array at fault).
        """
        if mode not in ("r", "a"):
            raise DatasetError(f"mode must be 'r' or 'a', got {mode!r}", path=path)
        local = "://" not in str(path)
        if local:
            _recover_interrupted_swap(Path(path), repair=(mode == "a"))
            if not Path(path).exists():
                raise DatasetError("no such store", path=path)
            if mode == "a":
                for orphan in Path(path).rglob("*.partial"):  # temp files of a killed writer
                    orphan.unlink(missing_ok=True)
        elif mode == "a":
            raise DatasetError("only local stores can be opened for appending", path=path)
        from gipo_robot.datasets import from_diffusion_policy as dp

        if not local or (Path(path) / ".zgroup").exists():  # Zarr v2: maybe a replay buffer
            dp.register_image_codecs()
        with _guard(path):
            group = zarr.open_group(str(path), mode="r" if mode == "r" else "r+")
        if group.attrs.get("format") != FORMAT_NAME and dp.is_replay_buffer(group):
            if mode == "a":
                raise DatasetError(
                    "a Diffusion Policy replay buffer opens read-only (convert it to append)", path=path
                )
            return dp.ReplayBufferStore(path, group)
        return cls(path, group, mode)

    def _load(self) -> None:
        """Read the root attributes, open the arrays and find the committed episode count."""
        path = self.path
        with _guard(path):
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
        self._data: dict[str, zarr.Array] = {}
        self._data_keys = {name: name for name in self.schema.names}  # feature -> array under data/
        for feature in self.schema.features:
            self._data[feature.name] = self._open_array(f"data/{feature.name}", feature)
        # direct chunk-file readers where the store is local and the codecs known; None: read with zarr
        self._readers = {name: ChunkReader.for_array(arr) for name, arr in self._data.items()}
        self._meta: dict[str, zarr.Array] = {}
        for name, dtype in {**EPISODE_META_FIELDS, "extra": "str"}.items():
            self._meta[name] = self._open_array(f"meta/episodes/{name}", None, dtype=dtype, field=name)
        for feature in self.schema.episode_features:
            self._meta[feature.name] = self._open_array(f"meta/episodes/{feature.name}", feature)
        self._ends_array = self._open_array("meta/episode_ends", None, dtype="int64", field="episode_ends")
        with _guard(path, feature="episode_ends"):
            ends = np.asarray(self._ends_array[:], dtype=np.int64)
        if ends.ndim != 1:
            raise DatasetError(f"meta/episode_ends must be 1-D, got shape {ends.shape}", path=path)
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
        self._ends = ends
        # Consistency the readers rely on; validate() checks the rest.
        check_episode_ends(ends, path)
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

    def _open_array(
        self, key: str, feature: Feature | None, *, dtype: str | None = None, field: str | None = None
    ) -> zarr.Array:
        name = feature.name if feature is not None else field
        with _guard(self.path, feature=name):
            try:
                arr = self._group[key]
            except KeyError as err:
                raise self._error(f"missing array {key}", feature=name) from err
        if not isinstance(arr, zarr.Array):
            raise self._error(f"{key} is a group, expected an array", feature=name)
        want = np.dtype(feature.dtype if feature is not None else (dtype if dtype != "str" else "O"))
        got = np.dtype(arr.dtype) if dtype != "str" else np.dtype("O")
        if dtype == "str":
            if arr.dtype.kind not in "OTU":
                raise self._error(f"{key} has dtype {arr.dtype}, expected text", feature=name)
        elif got != want:
            raise self._error(f"{key} has dtype {got}, expected {want}", feature=name)
        trailing = feature.shape if feature is not None else ()
        if arr.ndim != 1 + len(trailing) or tuple(arr.shape[1:]) != trailing:
            raise self._error(f"{key} has shape {arr.shape}, expected (rows, *{trailing})", feature=name)
        return arr

    def refresh(self) -> None:
        """Re-read the store from disk (to see episodes another process committed since opening)."""
        with _guard(self.path):
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
        """``gipo-robot/episode-store``, or the foreign format this store is read from
        (``diffusion_policy/replay_buffer``)."""
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
        user = {**self._attrs.get("user", {}), **_to_json(values, "attrs", self.path)}
        self._update_root_attrs(user=user)

    def _update_root_attrs(self, **values: Any) -> None:
        with _guard(self.path):
            self._group.attrs.update(values)
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
            with _guard(self.path, feature=f"meta/episodes/{name}"):
                out[name] = np.asarray(self._meta[name][rows])
        for key in ("source", "task"):
            out[key] = out[key].astype(str)
        with _guard(self.path, feature="meta/episodes/extra"):
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
            with _guard(self.path, feature=k):
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
            with _guard(self.path, feature=k):
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
            with _guard(self.path, feature=f.name, episode=i):
                out[f.name] = np.asarray(self._meta[f.name][i])
        return out

    def array(self, name: str) -> zarr.Array:
        """The raw zarr array ``data/<name>``; rows at or past :attr:`n_steps` are not committed."""
        self._keys([name])
        return self._data[name]

    # ------------------------------------------------------------------ writing

    def _error(self, message: str, feature: str | None = None, episode: int | None = None) -> DatasetError:
        """A DatasetError naming this store."""
        return DatasetError(message, path=self.path, feature=feature, episode=episode)

    def _require_writable(self) -> None:
        if self.mode != "a":
            raise self._error("store is open read-only (open it with mode='a' to write)")

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
            rows[f.name] = _check_values(f, steps[f.name], steps=t, path=self.path, episode=episode)
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
        extra_json = _to_json(dict(extra or {}), f"episode {episode} extra", p)
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
                arrays[f.name] = _check_values(f, given[f.name], steps=None, path=p, episode=episode)
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
        """Write rows ``start:start+T`` of every feature (past the committed end: invisible until commit)."""
        for name, values in rows.items():
            arr = self._data[name]
            stop = start + values.shape[0]
            reader = self._readers[name]
            try:
                with _guard(self.path, feature=name, episode=self.n_episodes):
                    if arr.shape[0] != stop:
                        arr.resize((stop, *arr.shape[1:]))
                    arr[start:stop] = values
            finally:
                if reader is not None:
                    reader.clear_cache()

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
            with _guard(self.path, feature=f"meta/episodes/{name}", episode=i):
                if arr.shape[0] != i + 1:
                    arr.resize((i + 1, *arr.shape[1:]))
                arr[i : i + 1] = value
        new_end = self.n_steps + length
        with _guard(self.path, feature="episode_ends", episode=i):
            self._ends_array.resize((i + 1,))  # a kill here leaves the fill value -1: not committed
            self._ends_array[i] = new_end  # the commit
        self._ends = np.append(self._ends, np.int64(new_end))
        return i

    # ------------------------------------------------------------------ editing

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
        src = Path(self.path)
        tmp, old = _swap_paths(src)
        if tmp.exists():
            shutil.rmtree(tmp)
        new = EpisodeStore.create(tmp, self.schema, fps=self.fps, robot=self.robot, attrs=self.attrs)
        new._update_root_attrs(generation=int(self._attrs.get("generation", 0)) + 1)
        for j in keep:
            new._copy_episode_from(self, j)
        del new
        os.rename(src, old)
        os.rename(tmp, src)
        shutil.rmtree(old)
        self.refresh()

    def _copy_episode_from(self, other: EpisodeStore, j: int) -> int:
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
        if not isinstance(other, EpisodeStore):
            other = EpisodeStore.open(other, "r")
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
            "size_bytes": _directory_size(local) if local.exists() else None,
        }


def _swap_paths(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + ".rewrite"), path.with_name(path.name + ".replaced")


def _recover_interrupted_swap(path: Path, *, repair: bool) -> None:
    """Finish a ``drop_episode`` swap that a kill interrupted (the rewritten copy is complete by then)."""
    tmp, old = _swap_paths(path)
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
                row[f.name] = _check_values(
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
