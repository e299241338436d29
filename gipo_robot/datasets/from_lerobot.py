"""LeRobot datasets (format v3.0, as LeRobot 0.6 writes them) <-> episode store, through the ``lerobot``
package (``[lerobot]`` extra: ``lerobot[dataset]>=0.6,<0.7``, Python >= 3.12).

A LeRobot v3.0 dataset is a folder::

    meta/info.json              fps, robot_type, features {key: {dtype, shape, names, info}}
    meta/stats.json             per-feature normalisation statistics (LeRobot computes them)
    meta/tasks.parquet          task strings
    meta/episodes/chunk-*/...   per-episode rows: length, tasks, data/video file ranges
    data/chunk-*/file-*.parquet one row per frame (images embedded as PNG when dtype is "image")
    videos/<key>/chunk-*/...    mp4 files (dtype "video"; several episodes per file)
    meta/gipo_robot.json        written here only: what LeRobot cannot hold (see below)

Everything is written with LeRobot's own ``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` /
``finalize`` and read with ``LeRobotDataset(repo_id, root=...)`` (a local folder, never the hub); the reading
half lives in :mod:`gipo_robot.datasets.lerobot_reader`.

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
so LeRobot -> store -> LeRobot restores ``meta/info.json``'s features and every frame value. Depth-map
cameras (12-bit video) and string columns are refused, naming the feature.

A robot to replay on (``robot_spec``, a :class:`~gipo_robot.hardware.robot.RobotSpec` in LeRobot's units,
``gipo-robot convert --robot``): ``observation.state`` and ``action`` must name the robot's motors
(``<motor>.pos`` in bus order), ``action`` is written normalised by the spec (``spec.to_normalized``, float32)
and the spec is the store's robot, so a policy trained on the store drives that robot.

Images: ``video=False`` (default) stores frames as PNG inside the parquet files: lossless, the round trip
is exact. ``video=True`` uses LeRobot 0.6's default mp4 encoding (AV1 through libsvtav1, ``yuv420p``, CRF 30,
a keyframe every 2 frames): 0.6x the size of PNG but lossy; on smooth rendered frames the error is 1.4 grey
levels on average (BENCHMARKS.md *lerobot*; the tests bound it). Frames decode with torchcodec
where its FFmpeg libraries load, else PyAV.

An export is all or nothing: the dataset is written beside ``dst`` and renamed into place, so a failure
(a frame LeRobot rejects, a full disk) leaves ``dst`` as it was.

Legend: ``E`` episodes, ``T`` steps of one episode, ``H``/``W``/``C`` image height/width/channels.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.datasets.importers import open_dataset
from gipo_robot.datasets.lerobot_reader import EpisodeReader, pick_video_backend
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
    "the LeRobot dataset converter needs the `lerobot` package (0.6): pip install gipo-robot[lerobot] in a "
    "Python >= 3.12 environment, e.g. your LeRobot one; `make setup-lerobot` builds one in .venv-lerobot"
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
        dst: the dataset folder to create; written beside it first and renamed into place.
        video: store cameras as mp4 (lossy, small) instead of PNG frames (lossless).
        env_state: float ``obs.*`` features that form ``observation.environment_state``.
        repo_id: LeRobot repo id recorded in memory only (default ``local/<dst name>``).
        overwrite: replace an existing folder at ``dst`` (once the new one is complete).

    Returns:
        ``dst``.

    Raises:
        DatasetError: ``dst`` exists, the fps is not a whole number (LeRobot's fps is an int), lerobot is
            not installed, or LeRobot rejects a feature or frame (naming the store, feature and episode).
    """
    dataset_cls = _lerobot_dataset_class()
    store = src if isinstance(src, EpisodeStore) else open_dataset(src)
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise DatasetError(ALREADY_EXISTS, path=dst)
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
    partial = dst.with_name(f".{dst.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)  # left by a killed export of this pid
    try:
        dataset = dataset_cls.create(
            repo_id or f"local/{dst.name}",
            fps=round(store.fps),
            features=features,
            root=partial,
            robot_type=robot_type if isinstance(robot_type, str) else None,
            use_videos=any(v["dtype"] == "video" for v in features.values()),
            image_writer_threads=IMAGE_WRITER_THREADS,
            video_backend=pick_video_backend(None),
        )
    except (ValueError, TypeError, KeyError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise DatasetError(f"LeRobot rejected the features: {err}", path=dst) from err
    table = store.meta_table()
    try:
        for i in range(store.n_episodes):
            _write_episode(dataset, store, written, table, i, dst)
        dataset.finalize()
        (partial / SIDECAR).write_text(json.dumps(_sidecar(store, plan, table), allow_nan=False))
    except BaseException:
        with contextlib.suppress(Exception):
            dataset.finalize()  # stops LeRobot's image-writer threads
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if dst.is_dir():
        shutil.rmtree(dst)
    elif dst.exists():
        dst.unlink()
    partial.rename(dst)
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


def lerobot_to_store(
    src: str | Path,
    dst: str | Path,
    *,
    repo_id: str | None = None,
    image_codec: str | None = None,
    video_backend: str | None = None,
    overwrite: bool = False,
    robot_spec: Any = None,
) -> EpisodeStore:
    """Convert a local LeRobot v3.0 dataset folder into a new episode store (no hub access).

    Args:
        src: the dataset folder (with ``meta/info.json``).
        dst: the store folder to create.
        repo_id: LeRobot repo id to open it under (default ``local/<src name>``; only a label here).
        image_codec: frame codec for cameras of a LeRobot-recorded dataset (default: the store's default,
            lossless); a dataset written by :func:`store_to_lerobot` keeps the codecs of its store.
        video_backend: LeRobot video decoder (``torchcodec``, ``pyav``); default LeRobot's: torchcodec where
            its FFmpeg libraries load, else PyAV.
        overwrite: replace an existing store at ``dst``.
        robot_spec: the :class:`~gipo_robot.hardware.robot.RobotSpec` (units ``"lerobot"``) of the robot the
            dataset was recorded on: actions are stored normalised by it and it becomes the store's robot.

    Raises:
        DatasetError: not a LeRobot dataset, unreadable, a feature the store cannot hold (strings, depth
            maps), episode rows that are not contiguous, a video LeRobot cannot decode, a stale
            ``meta/gipo_robot.json``, lerobot missing, or a dataset whose motors are not ``robot_spec``'s.
    """
    dataset_cls = _lerobot_dataset_class()
    src = Path(src)
    if not is_lerobot_dataset(src):
        raise DatasetError("not a LeRobot dataset folder (meta/info.json is missing)", path=src)
    backend = pick_video_backend(video_backend)
    try:
        dataset = dataset_cls(repo_id or f"local/{src.name}", root=src, video_backend=backend)
    except Exception as err:  # LeRobot raises many kinds; name the folder whatever it is
        raise DatasetError(f"LeRobot cannot open it: {type(err).__name__}: {err}", path=src) from err
    meta = dataset.meta
    sidecar = _read_sidecar(src, meta.total_episodes)
    schema, plan, fps, robot, attrs = _import_plan(dataset, sidecar, src, image_codec)
    if robot_spec is not None:
        _check_robot(meta.features, sidecar, robot_spec, src)
        robot = robot_spec.to_dict()
    reader = EpisodeReader(dataset, plan, schema, backend, src)
    store = EpisodeStore.create(dst, schema, fps=fps, robot=robot, attrs=attrs, overwrite=overwrite)
    for i in range(meta.total_episodes):
        steps, frame_tasks = reader.read(i)
        if robot_spec is not None:
            steps["action"] = robot_spec.to_normalized(steps["action"]).astype(steps["action"].dtype)
        try:
            store.append_episode(steps, **_episode_meta(sidecar, i, steps, frame_tasks))
        except DatasetError as err:
            raise DatasetError(f"{src}: {err}", path=dst, feature=err.feature, episode=i) from err
    return store


def _check_robot(features: dict[str, Any], sidecar: Any, spec: Any, src: Path) -> None:
    """DatasetError unless the dataset holds ``spec``'s motors in LeRobot's units (``observation.state``
    and ``action`` named ``<motor>.pos`` in the spec's order)."""
    if sidecar is not None:
        raise DatasetError(
            f"written by gipo-robot ({SIDECAR}): its actions are a store's already; convert without --robot",
            path=src,
        )
    if spec.units != "lerobot":
        raise DatasetError(
            f"robot {spec.name} takes units {spec.units!r}, but a LeRobot dataset holds LeRobot's own "
            'values: set units = "lerobot" in its robot config',
            path=src,
        )
    motors = [f"{n}.pos" for n in spec.action_names]
    for key in ("observation.state", "action"):
        names = features.get(key, {}).get("names")
        if names != motors:
            raise DatasetError(
                f"meta/info.json: feature {key!r} names {names}, but robot {spec.name} has motors {motors}",
                path=src,
                feature=key,
            )


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
                "codebase_version": meta.info.codebase_version,
                "plan": plan,
            }
        }
    missing = sorted(set(plan) - set(lerobot_features) - {"timestamp"})
    if missing:
        raise DatasetError(f"features {missing} of {SIDECAR} are not in meta/info.json", path=src)
    return schema, plan, fps, robot, attrs
