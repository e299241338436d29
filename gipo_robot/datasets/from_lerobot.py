"""LeRobot datasets (format v3.0) <-> episode store, through the ``lerobot`` package (``[lerobot]`` extra).

A LeRobot v3.0 dataset is a folder::

    meta/info.json              fps, robot_type, features {key: {dtype, shape, names}}
    meta/stats.json             per-feature normalisation statistics (LeRobot computes them)
    meta/tasks.parquet          task strings
    meta/episodes/chunk-*/...   per-episode rows: length, tasks, data/video file ranges
    data/chunk-*/file-*.parquet one row per frame (images embedded as PNG when dtype is "image")
    videos/<key>/chunk-*/...    mp4 files (dtype "video")
    meta/gipo_robot.json        written here only: what LeRobot cannot hold (see below)

Everything is read and written with ``lerobot.datasets.lerobot_dataset.LeRobotDataset`` (``create``,
``add_frame``, ``save_episode``, ``finalize``; reading with a local ``root``, never the hub).

Feature mapping (store -> LeRobot; the reverse on import)::

    obs.<name>  float low-dim/scalar   -> observation.state (concatenated, names "<name>.<i>"), or
                                          observation.environment_state for ``env_state`` features
                                          (default ``obs.object``: the task's object state)
    obs.<name>  other low-dim/scalar   -> observation.<name>
    obs.<cam>   image (H, W, C) uint8  -> observation.images.<cam>, dtype "image" (PNG) or "video" (mp4)
    action -> action, reward -> next.reward, terminated -> next.done, truncated -> next.truncated,
    success -> next.success, timestamp -> recorded_timestamp (float64); anything else keeps its name.

LeRobot's own ``timestamp`` is ``frame_index / fps`` (its video look-ups depend on that), so the store's
recorded timestamps travel in ``recorded_timestamp``. Scalars (shape ``()``) are LeRobot shape ``(1,)``.

What LeRobot cannot hold goes into ``meta/gipo_robot.json``: the store's schema (feature names, dtypes,
image codecs), how each concatenated LeRobot feature splits back into store features, per-episode source,
success, start time, policy version, ``extra`` and per-episode arrays, the robot spec and user attributes.
So store -> LeRobot -> store gives back every low-dim value bit for bit (float32/float64 dtypes are kept;
mixed float dtypes concatenate to float64, which holds float32 exactly), the episode boundaries, fps and
tasks. A dataset recorded with LeRobot (no sidecar) imports with one store feature per LeRobot feature,
dtypes unchanged; its LeRobot feature specs (names, shapes) are kept in the store's ``lerobot`` attribute,
so LeRobot -> store -> LeRobot restores ``meta/info.json``'s features and every frame value.

Images: ``video=False`` (default) stores frames as PNG inside the parquet files: lossless, the round trip
is exact. ``video=True`` uses LeRobot's mp4 encoding (AV1 by default, ``yuv420p``): much smaller but
lossy; on smooth rendered frames the error is a few grey levels on average (the tests bound it).

Legend: ``E`` episodes, ``T`` steps of one episode, ``H``/``W``/``C`` image height/width/channels.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.datasets.importers import open_dataset
from gipo_robot.datasets.schema import ALREADY_EXISTS, DatasetError, Feature, Schema
from gipo_robot.datasets.store import EpisodeStore

SIDECAR = "meta/gipo_robot.json"
SIDECAR_FORMAT = "gipo-robot/lerobot-sidecar"
SIDECAR_VERSION = 1
STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
IMAGE_PREFIX = "observation.images."
DEFAULT_ENV_STATE = ("obs.object",)
RENAMES = {
    "action": "action",
    "reward": "next.reward",
    "terminated": "next.done",
    "truncated": "next.truncated",
    "success": "next.success",
    "timestamp": "recorded_timestamp",
}
"""Store feature -> LeRobot feature for the non-observation features with a LeRobot convention."""
LEROBOT_DERIVED = ("frame_index", "episode_index", "index", "task_index")
"""LeRobot columns it derives itself on writing; they are never store features."""
LEROBOT_RESERVED = (*LEROBOT_DERIVED, "timestamp", "task")
CHANNEL_NAMES = ("channel", "channels", "c")
IMAGE_WRITER_THREADS = 2
"""Threads LeRobot encodes PNG frames with while frames are added (0: in the calling thread)."""
INSTALL_HINT = (
    "the LeRobot dataset converter needs the `lerobot` package: pip install gipo-robot[lerobot]. "
    "LeRobot 0.4 needs torch < 2.11, so keep it in a second venv: python3.11 -m venv .venv-lerobot && "
    ".venv-lerobot/bin/pip install torch==2.9.1 torchvision==0.24.1 && "
    ".venv-lerobot/bin/pip install lerobot==0.4.4 'pandas<3' 'pyarrow<22' && "
    ".venv-lerobot/bin/pip install -e '.[dev]'"
)


def _lerobot_dataset_class() -> Any:
    """``LeRobotDataset``, imported lazily; DatasetError with the install recipe when it is missing."""
    try:
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
    except ImportError as err:
        raise DatasetError(f"{INSTALL_HINT} ({type(err).__name__}: {err})") from err
    return LeRobotDataset


def is_lerobot_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a LeRobot dataset folder (it has ``meta/info.json``)."""
    return (Path(path) / "meta" / "info.json").is_file()


# ------------------------------------------------------------------------------------------------------------
# The plan: which store features make up each LeRobot feature
# ------------------------------------------------------------------------------------------------------------


def _size(feature: Feature) -> int:
    return int(math.prod(feature.shape)) if feature.shape else 1


def _part_names(feature: Feature) -> list[str]:
    short = feature.name.removeprefix("obs.")
    return [short] if feature.shape == () else [f"{short}.{i}" for i in range(_size(feature))]


def _spec(dtype: str, shape: Sequence[int], names: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": [int(s) for s in shape], "names": names}


def _plan_from_schema(schema: Schema, env_state: Sequence[str], video: bool) -> dict[str, dict[str, Any]]:
    """LeRobot key -> ``{"spec": {dtype, shape, names}, "parts": [store feature names]}`` for a store."""
    plan: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[Feature]] = {STATE_KEY: [], ENV_STATE_KEY: []}
    for f in schema.features:
        if f.kind == "image":
            short = f.name.removeprefix("obs.")
            key = IMAGE_PREFIX + short if f.name.startswith("obs.") else f.name
            spec = _spec("video" if video else "image", f.shape, ["height", "width", "channels"])
            plan[key] = {"spec": spec, "parts": [f.name]}
        elif f.name.startswith("obs.") and f.is_float and len(f.shape) <= 1:
            groups[ENV_STATE_KEY if f.name in env_state else STATE_KEY].append(f)
        else:
            key = f"observation.{f.name[4:]}" if f.name.startswith("obs.") else RENAMES.get(f.name, f.name)
            if key in LEROBOT_RESERVED or key in plan:
                key = f"gipo.{f.name}"
            shape = f.shape if f.shape else (1,)
            names = None if f.shape == () else _part_names(f) if len(f.shape) == 1 else None
            plan[key] = {"spec": _spec(f.dtype, shape, names), "parts": [f.name]}
    for key, members in groups.items():
        if members:
            dtype = np.result_type(*[m.np_dtype for m in members]).name
            names = [n for m in members for n in _part_names(m)]
            plan[key] = {
                "spec": _spec(dtype, (len(names),), names),
                "parts": [m.name for m in members],
            }
    return plan


def _store_feature_for(key: str, spec: dict[str, Any], path: Path) -> tuple[str, Feature]:
    """The store feature for one LeRobot feature of a dataset recorded with LeRobot."""
    dtype, shape, names = spec.get("dtype"), tuple(spec.get("shape") or ()), spec.get("names")
    if dtype in ("image", "video"):
        if len(shape) != 3:
            raise DatasetError(
                f"image feature has shape {list(shape)}, expected 3 dims", path=path, feature=key
            )
        chw = isinstance(names, list) and len(names) == 3 and str(names[0]).lower() in CHANNEL_NAMES
        hwc = (shape[1], shape[2], shape[0]) if chw else shape
        name = "obs." + key.removeprefix(IMAGE_PREFIX) if key.startswith(IMAGE_PREFIX) else key
        return name, Feature(name, "uint8", hwc, "image")
    try:
        np_dtype = np.dtype(dtype)
    except TypeError as err:
        raise DatasetError(
            f"dtype {dtype!r} cannot be held by the episode store", path=path, feature=key
        ) from err
    if np_dtype.kind not in "biuf":
        raise DatasetError(f"dtype {dtype!r} is not bool/int/float", path=path, feature=key)
    inverse = {v: k for k, v in RENAMES.items() if k != "timestamp"} | {"timestamp": "timestamp"}
    name = inverse.get(key) or (
        "obs." + key.removeprefix("observation.") if key.startswith("observation.") else key
    )
    scalar = shape == (1,) and names is None
    kind = "scalar" if scalar else "low_dim"
    return name, Feature(name, np_dtype.name, () if scalar else shape, kind)


# ------------------------------------------------------------------------------------------------------------
# Store -> LeRobot
# ------------------------------------------------------------------------------------------------------------


def store_to_lerobot(
    src: EpisodeStore | str | Path,
    dst: str | Path,
    *,
    video: bool = False,
    env_state: Sequence[str] = DEFAULT_ENV_STATE,
    repo_id: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a store as a LeRobot v3.0 dataset folder (see the module docstring for the mapping).

    Args:
        src: the store (or its path).
        dst: the dataset folder to create.
        video: store cameras as mp4 (lossy, small) instead of PNG frames (lossless).
        env_state: float ``obs.*`` features that form ``observation.environment_state``.
        repo_id: LeRobot repo id recorded in memory only (default ``local/<dst name>``).
        overwrite: replace an existing folder at ``dst``.

    Returns:
        ``dst``.

    Raises:
        DatasetError: ``dst`` exists, the fps is not a whole number (LeRobot's fps is an int), lerobot is
            not installed, or LeRobot rejects a frame (naming the store, feature and episode).
    """
    dataset_cls = _lerobot_dataset_class()
    store = src if isinstance(src, EpisodeStore) else open_dataset(src)
    dst = Path(dst)
    if dst.exists():
        if not overwrite:
            raise DatasetError(ALREADY_EXISTS, path=dst)
        shutil.rmtree(dst)
    if store.fps != round(store.fps):
        raise DatasetError(
            f"fps {store.fps} is not a whole number; LeRobot datasets need one", path=store.path
        )
    origin = store.attrs.get("lerobot", {})
    plan = _export_plan(store, origin, tuple(env_state), video)
    written = {k: v for k, v in plan.items() if k != "timestamp"}  # "timestamp": read from LeRobot's clock
    features = {k: {**v["spec"], "shape": tuple(v["spec"]["shape"])} for k, v in written.items()}
    robot_type = origin.get("robot_type")
    if robot_type is None and isinstance(store.robot, dict):
        robot_type = store.robot.get("name") or store.robot.get("robot_type")
    try:
        dataset = dataset_cls.create(
            repo_id or f"local/{dst.name}",
            fps=round(store.fps),
            features=features,
            root=dst,
            robot_type=robot_type if isinstance(robot_type, str) else None,
            use_videos=any(v["dtype"] == "video" for v in features.values()),
            image_writer_threads=IMAGE_WRITER_THREADS,
        )
    except (ValueError, TypeError, KeyError) as err:
        raise DatasetError(f"LeRobot rejected the features: {err}", path=dst) from err
    table = store.meta_table()
    try:
        for i in range(store.n_episodes):
            _write_episode(dataset, store, written, table, i, dst)
        dataset.finalize()
    finally:
        dataset.stop_image_writer()
    (dst / SIDECAR).write_text(json.dumps(_sidecar(store, plan, table), allow_nan=False))
    return dst


def _export_plan(
    store: EpisodeStore, origin: dict[str, Any], env_state: Sequence[str], video: bool
) -> dict[str, dict[str, Any]]:
    """The LeRobot features to write: those of the dataset the store came from (its ``lerobot``
    attribute ``origin``), else the mapping of the module docstring."""
    if not origin.get("plan"):
        return _plan_from_schema(store.schema, env_state, video)
    # imported from LeRobot: write its features back as they were
    plan = {k: dict(v) for k, v in origin["plan"].items()}
    if video:
        for entry in plan.values():
            if entry["spec"]["dtype"] == "image":
                entry["spec"] = {**entry["spec"], "dtype": "video"}
    # LeRobot writes its own frame_index / fps clock as "timestamp" (add_frame refuses one); a store
    # timestamp that is not that clock travels as "recorded_timestamp".
    if "timestamp" in plan and not _is_frame_clock(store, plan["timestamp"]["parts"][0]):
        plan["recorded_timestamp"] = plan.pop("timestamp")
    return plan


def _write_episode(
    dataset: Any,
    store: EpisodeStore,
    plan: dict[str, dict[str, Any]],
    table: dict[str, Any],
    i: int,
    dst: Path,
) -> None:
    """Add every frame of episode ``i`` to the LeRobot ``dataset`` and save the episode."""
    steps = store.episode(i)
    length = int(table["length"][i])
    frame_tasks = table["extra"][i].get("lerobot_frame_tasks")
    for t in range(length):
        frame = _frame(plan, steps, t)
        frame["task"] = frame_tasks[t] if frame_tasks else str(table["task"][i])
        try:
            dataset.add_frame(frame)
        except (ValueError, TypeError) as err:
            raise DatasetError(f"LeRobot rejected frame {t}: {err}", path=store.path, episode=i) from err
    try:
        dataset.save_episode()
    except (ValueError, TypeError, RuntimeError) as err:
        raise DatasetError(f"LeRobot could not save the episode: {err}", path=dst, episode=i) from err


def _sidecar(store: EpisodeStore, plan: dict[str, dict[str, Any]], table: dict[str, Any]) -> dict[str, Any]:
    """The ``meta/gipo_robot.json`` contents: what LeRobot cannot hold (see the module docstring)."""
    return {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "episodes_total": store.n_episodes,
        "store": {
            "schema": store.schema.to_json(),
            "fps": store.fps,
            "robot": store.robot,
            "attrs": store.attrs,
        },
        "plan": plan,
        "episodes": [
            {
                "source": str(table["source"][i]),
                "success": bool(table["success"][i]),
                "task": str(table["task"][i]),
                "start_time": float(table["start_time"][i]),
                "policy_version": int(table["policy_version"][i]),
                "extra": table["extra"][i],
                "episode_data": {k: v.tolist() for k, v in store.episode_data(i).items()},
            }
            for i in range(store.n_episodes)
        ],
    }


def _frame(plan: dict[str, dict[str, Any]], steps: dict[str, np.ndarray], t: int) -> dict[str, Any]:
    """Step ``t`` of an episode as one LeRobot frame: each LeRobot feature from its store features
    (concatenated and cast to the LeRobot dtype; images as ``(H, W, C)`` uint8)."""
    frame: dict[str, Any] = {}
    for key, entry in plan.items():
        values = [steps[name][t] for name in entry["parts"]]
        spec = entry["spec"]
        if spec["dtype"] in ("image", "video"):
            frame[key] = values[0]
        else:
            flat = np.concatenate([np.asarray(v).reshape(-1) for v in values])
            frame[key] = flat.astype(spec["dtype"]).reshape(spec["shape"])
    return frame


def _is_frame_clock(store: EpisodeStore, name: str) -> bool:
    """Whether feature ``name`` equals LeRobot's own timestamps, ``float32(frame_index / fps)``."""
    for i in range(store.n_episodes):
        stamps = store.episode(i, [name])[name]
        clock = np.array([t / round(store.fps) for t in range(len(stamps))], dtype=np.float32)
        if not np.array_equal(stamps.astype(np.float32), clock) or stamps.dtype != np.float32:
            return False
    return True


# ------------------------------------------------------------------------------------------------------------
# LeRobot -> store
# ------------------------------------------------------------------------------------------------------------


def _read_sidecar(root: Path, n_episodes: int) -> dict[str, Any] | None:
    file = root / SIDECAR
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"not readable JSON: {err}", path=file) from err
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise DatasetError(f"not a {SIDECAR_FORMAT} file", path=file)
    if data.get("format_version") != SIDECAR_VERSION:
        raise DatasetError(
            f"format_version {data.get('format_version')!r} is not {SIDECAR_VERSION}", path=file
        )
    if data.get("episodes_total") != n_episodes or len(data.get("episodes", [])) != n_episodes:
        raise DatasetError(
            f"written for {data.get('episodes_total')} episodes but the dataset has {n_episodes} (edited "
            "with LeRobot since?); delete it to import the dataset as plain LeRobot data",
            path=file,
        )
    return data


def _column(table: Any, key: str, rows: np.ndarray, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Rows of one parquet column as ``(N, *shape)`` in its stored dtype (no float64 -> float32 cast)."""
    import pyarrow as pa

    column = table.column(key).take(pa.array(rows))
    flat = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    while pa.types.is_fixed_size_list(flat.type) or pa.types.is_list(flat.type):
        flat = flat.flatten()
    values = np.asarray(flat.to_numpy(zero_copy_only=False))
    return values.astype(dtype, copy=False).reshape(len(rows), *shape)


def _video_backend(requested: str | None) -> str:
    """LeRobot's video decoder to use: ``requested``, else torchcodec where its FFmpeg libraries load
    (its wheel needs a system FFmpeg), else PyAV (FFmpeg bundled in its wheel)."""
    if requested is not None:
        return requested
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        return "pyav"
    return "torchcodec"


def _decode_frames(dataset: Any, key: str, episode: int, timestamps: np.ndarray, backend: str) -> np.ndarray:
    """One episode's frames of a video feature as ``(T, H, W, C)`` uint8 (LeRobot's decoder)."""
    from lerobot.datasets.video_utils import decode_video_frames

    meta = dataset.meta
    start = float(meta.episodes[episode][f"videos/{key}/from_timestamp"])
    frames = decode_video_frames(
        dataset.root / meta.get_video_file_path(episode, key),
        [start + float(t) for t in timestamps],
        dataset.tolerance_s,
        backend,
    )  # (T, C, H, W) float in [0, 1]
    return np.round(frames.numpy() * 255.0).clip(0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def lerobot_to_store(
    src: str | Path,
    dst: str | Path,
    *,
    repo_id: str | None = None,
    image_codec: str | None = None,
    video_backend: str | None = None,
    overwrite: bool = False,
) -> EpisodeStore:
    """Convert a local LeRobot v3.0 dataset folder into a new episode store (no hub access).

    Args:
        src: the dataset folder (with ``meta/info.json``).
        dst: the store folder to create.
        repo_id: LeRobot repo id to open it under (default ``local/<src name>``; only a label here).
        image_codec: frame codec for cameras of a LeRobot-recorded dataset (default: the store's default,
            lossless); a dataset written by :func:`store_to_lerobot` keeps the codecs of its store.
        video_backend: LeRobot video decoder (``torchcodec``, ``pyav``); default: torchcodec where its
            FFmpeg libraries load, else PyAV.
        overwrite: replace an existing store at ``dst``.

    Raises:
        DatasetError: not a LeRobot dataset, unreadable, a feature the store cannot hold (strings), episode
            rows that are not contiguous, a stale ``meta/gipo_robot.json``, or lerobot missing.
    """
    dataset_cls = _lerobot_dataset_class()
    src = Path(src)
    if not is_lerobot_dataset(src):
        raise DatasetError("not a LeRobot dataset folder (meta/info.json is missing)", path=src)
    try:
        dataset = dataset_cls(repo_id or f"local/{src.name}", root=src)
    except Exception as err:  # LeRobot raises many kinds; name the folder whatever it is
        raise DatasetError(f"LeRobot cannot open it: {type(err).__name__}: {err}", path=src) from err
    meta = dataset.meta
    sidecar = _read_sidecar(src, meta.total_episodes)
    schema, plan, fps, robot, attrs = _import_plan(dataset, sidecar, src, image_codec)
    store = EpisodeStore.create(dst, schema, fps=fps, robot=robot, attrs=attrs, overwrite=overwrite)
    reader = _EpisodeReader(dataset, plan, schema, _video_backend(video_backend), src)
    for i in range(meta.total_episodes):
        steps, frame_tasks = reader.read(i)
        try:
            store.append_episode(steps, **_episode_meta(sidecar, i, steps, frame_tasks))
        except DatasetError as err:
            raise DatasetError(f"{src}: {err}", path=dst, feature=err.feature, episode=i) from err
    return store


def _episode_meta(
    sidecar: dict[str, Any] | None, i: int, steps: dict[str, np.ndarray], frame_tasks: list[str]
) -> dict[str, Any]:
    """The metadata of imported episode ``i`` (``append_episode`` keywords): as the sidecar recorded it,
    else a demo, successful where ``success`` is set at any step, with the first frame's task."""
    if sidecar is not None:
        info = sidecar["episodes"][i]
        keys = ("source", "success", "task", "start_time", "policy_version", "extra", "episode_data")
        return {k: info[k] for k in keys}
    extra: dict[str, Any] = {"lerobot_episode_index": i}
    if len(set(frame_tasks)) > 1:
        extra["lerobot_frame_tasks"] = frame_tasks
    return {
        "source": "demo",
        "success": bool(steps["success"].any()) if "success" in steps else False,
        "task": frame_tasks[0] if frame_tasks else "",
        "start_time": 0.0,
        "policy_version": -1,
        "extra": extra,
        "episode_data": None,
    }


def _import_plan(
    dataset: Any, sidecar: dict[str, Any] | None, src: Path, image_codec: str | None
) -> tuple[Schema, dict[str, dict[str, Any]], float, Any, dict[str, Any]]:
    """``(schema, plan, fps, robot, attrs)`` of the store to create from a LeRobot dataset: as the sidecar
    recorded them, else one store feature per LeRobot feature (see the module docstring)."""
    meta = dataset.meta
    lerobot_features = {k: v for k, v in meta.features.items() if k not in LEROBOT_DERIVED}
    if sidecar is not None:
        schema = Schema.from_json(sidecar["store"]["schema"])
        plan = sidecar["plan"]
        fps, robot, attrs = sidecar["store"]["fps"], sidecar["store"]["robot"], sidecar["store"]["attrs"]
    else:
        plan, features = {}, []
        for key, spec in lerobot_features.items():
            name, feature = _store_feature_for(key, spec, src)
            if feature.kind == "image" and image_codec is not None:
                feature = Feature(name, "uint8", feature.shape, "image", codec=image_codec)
            features.append(feature)
            plan[key] = {"spec": _spec(spec["dtype"], spec["shape"], spec.get("names")), "parts": [name]}
        schema = Schema(tuple(features))
        fps, robot = float(meta.fps), {"robot_type": meta.robot_type}
        attrs = {
            "lerobot": {
                "repo_id": dataset.repo_id,
                "robot_type": meta.robot_type,
                "codebase_version": meta.info.get("codebase_version"),
                "plan": plan,
            }
        }
    missing = sorted(set(plan) - set(lerobot_features) - {"timestamp"})
    if missing:
        raise DatasetError(f"features {missing} of {SIDECAR} are not in meta/info.json", path=src)
    return schema, plan, fps, robot, attrs


class _EpisodeReader:
    """Reads the episodes of an open ``LeRobotDataset`` as store steps, following an import ``plan`` (LeRobot
    key -> ``{"spec", "parts"}``: the store features it splits into), with video ``backend``."""

    def __init__(
        self, dataset: Any, plan: dict[str, dict[str, Any]], schema: Schema, backend: str, src: Path
    ):
        self.dataset, self.plan, self.backend, self.src = dataset, plan, backend, src
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
                size = _size(f)
                steps[name] = values[:, offset : offset + size].reshape(length, *f.shape).astype(f.dtype)
                offset += size
        return steps, [self.tasks[int(t)] for t in self.task_column[rows]]

    def _frames(self, key: str, dtype: str, rows: np.ndarray, i: int) -> np.ndarray:
        """The frames of camera ``key`` at ``rows`` (PNG in the parquet files, or decoded from video)."""
        if dtype == "image":
            return np.stack(
                self.hf.with_format("numpy", columns=[key])[int(rows[0]) : int(rows[-1]) + 1][key]
            )
        stamps = _column(self.table, "timestamp", rows, (), "float64")
        return _decode_frames(self.dataset, key, i, stamps, self.backend)


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
