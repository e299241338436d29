"""robomimic HDF5 <-> episode store, with h5py.

robomimic layout (one file)::

    data/                       attrs: env_args (JSON text), total (steps)
      demo_<n>/                 attrs: num_samples, model_file (MJCF XML text), ...
        obs/<key>               (T, ...)
        next_obs/<key>          (T, ...)
        actions                 (T, A)
        rewards, dones          (T,)
        states                  (T, S)   simulator states
        <other>/...             any other dataset (e.g. action_dict/<key>)
    mask/<filter>               (K,) bytes: demo names of a filter key ("train", "valid", ...)

Mapping to store features: ``obs/<key>`` -> ``obs.<key>``, ``actions`` -> ``action``, ``rewards`` ->
``reward``, ``dones`` -> ``done``, ``states`` -> ``state``, any other ``a/b`` -> ``a.b``; dtypes are kept.
``uint8`` ``(H, W, C)`` observations become image features (PNG, lossless). ``next_obs/<key>`` is
stored once: where ``next_obs[t] == obs[t+1]`` in every demo (robomimic's own extraction always does
this) only the final ``next_obs`` row of each demo is kept, as the per-episode array
``next_obs.<key>``; otherwise the whole ``next_obs.<key>`` is a per-step feature.

Kept in the store: ``env_args`` (text, verbatim), the ``mask/`` filter keys, the other ``data`` attributes
(root user attribute ``robomimic``), and each demo's name, ``model_file`` XML and other attributes
(per-episode ``extra``). Episodes: source ``demo``, task ``env_args["env_name"]``, success = the demo's
last ``dones`` flag. So HDF5 -> store -> HDF5 gives back every dataset value and these attributes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from gipo_robot.datasets.importers import open_dataset
from gipo_robot.datasets.schema import ALREADY_EXISTS, DatasetError, Feature, Schema
from gipo_robot.datasets.store import EpisodeStore

SUFFIXES = (".hdf5", ".h5")
"""File suffixes of robomimic files (how :func:`is_robomimic_file` recognises one)."""
NAME_TO_FEATURE = {"actions": "action", "rewards": "reward", "dones": "done", "states": "state"}
FEATURE_TO_NAME = {v: k for k, v in NAME_TO_FEATURE.items()}
DEFAULT_FPS = 20.0


def _h5py():
    import h5py

    return h5py


def is_robomimic_file(path: str | Path) -> bool:
    """Whether ``path`` names a robomimic file: an ``.hdf5``/``.h5`` suffix (the content is checked when
    it is converted)."""
    return Path(path).suffix in SUFFIXES


def _demo_names(data: Any, path: Path) -> list[str]:
    """The demos under ``data/`` in robomimic's order (by number).

    robomimic's own ``SequenceDataset`` takes every key under ``data/`` for a demo and sorts them by
    ``int(name[5:])``, so a key not named ``demo_<n>`` is an error here too, never silently skipped.
    """
    names = list(data)
    others = [k for k in names if not re.fullmatch(r"demo_\d+", k)]
    if others:
        raise DatasetError(
            f"data/{others[0]} is not a demo_<n> group ({len(others)} such key(s) under data/: "
            f"{others[:5]}); robomimic reads every key under data/ as a demo: rename or remove it",
            path=path,
        )
    if not names:
        raise DatasetError("no demo_<n> groups under data/", path=path)
    return sorted(names, key=lambda k: int(k.split("_")[1]))


def _datasets(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every dataset under ``group``, keyed by its relative path (``obs/agentview_image``)."""
    h5py = _h5py()
    out = {}
    for key, item in group.items():
        if isinstance(item, h5py.Dataset):
            out[prefix + key] = item
        else:
            out.update(_datasets(item, prefix + key + "/"))
    return out


def _feature_name(key: str) -> str:
    return NAME_TO_FEATURE.get(key, key.replace("/", "."))


def _feature_for(name: str, ds: Any, path: Path, demo: str) -> Feature:
    dtype, shape = np.dtype(ds.dtype), tuple(ds.shape[1:])
    if dtype.kind not in "biuf":
        raise DatasetError(f"dataset of dtype {dtype} is not numeric", path=path, feature=f"{demo}/{name}")
    if dtype == np.uint8 and len(shape) == 3 and shape[2] in (1, 3, 4):
        return Feature(name, "uint8", shape, "image")
    return Feature(name, dtype.name, shape, "scalar" if shape == () else "low_dim")


def _attr_json(value: Any) -> Any:
    """An HDF5 attribute as JSON data (bytes -> str, numpy -> Python)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_attr_json(v) for v in value.tolist()] if value.dtype.kind in "OS" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def robomimic_to_store(src: str | Path, dst: str | Path, *, overwrite: bool = False) -> EpisodeStore:
    """Convert a robomimic HDF5 file into a new episode store.

    Args:
        src: the ``.hdf5`` file.
        dst: the store folder to create.
        overwrite: replace an existing store at ``dst``.

    Raises:
        DatasetError: the file is missing or not HDF5, has no ``data/demo_<n>``, or a demo's datasets
            disagree with each other or with the first demo (naming the file, dataset and demo).
    """
    h5py = _h5py()
    src = Path(src)
    if not src.is_file():
        raise DatasetError("no such file", path=src)
    try:
        f = h5py.File(src, "r")
    except OSError as err:
        raise DatasetError(f"not an HDF5 file: {err}", path=src) from err
    with f:
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise DatasetError("no data/ group (not a robomimic file)", path=src)
        data = f["data"]
        demos = _demo_names(data, src)
        env_args_text = _attr_json(data.attrs.get("env_args", "{}"))
        try:
            env_args = json.loads(env_args_text)
        except (TypeError, json.JSONDecodeError) as err:
            raise DatasetError(f"data attribute env_args is not JSON: {err}", path=src) from err
        features, finals = _features(data, demos, src)
        masks = {}
        if "mask" in f:
            for name, ds in f["mask"].items():
                masks[name] = [_attr_json(v) for v in ds[:]]
        other_attrs = {k: _attr_json(v) for k, v in data.attrs.items() if k not in ("env_args", "total")}
        fps = float(env_args.get("env_kwargs", {}).get("control_freq", DEFAULT_FPS) or DEFAULT_FPS)
        store = EpisodeStore.create(
            dst,
            Schema(tuple(features.values()), tuple(finals.values())),
            fps=fps,
            robot={"robots": env_args.get("env_kwargs", {}).get("robots")},
            attrs={"robomimic": {"env_args": env_args_text, "mask": masks, "data_attrs": other_attrs}},
            overwrite=overwrite,
        )
        task = str(env_args.get("env_name", ""))
        for index in range(len(demos)):
            _append_demo(store, data, demos, index, features, finals, task=task, src=src)
    return store


def _features(data: Any, demos: list[str], path: Path) -> tuple[dict[str, Feature], dict[str, Feature]]:
    """The store features of a robomimic file, from its first demo.

    Returns:
        ``(per_step, finals)``: dataset path -> per-step feature (every dataset, and the ``next_obs/<key>``
        that are not ``obs/<key>`` shifted by one step), and ``next_obs/<key>`` -> per-episode feature
        holding only each demo's last row (where ``next_obs[t] == obs[t+1]`` in every demo).
    """
    first = _datasets(data[demos[0]])
    if "actions" not in first:
        raise DatasetError("no actions dataset", path=path, feature=f"data/{demos[0]}/actions")
    features = {}
    for key, ds in first.items():
        if not key.startswith("next_obs/"):
            features[key] = _feature_for(_feature_name(key), ds, path, demos[0])
    next_keys = [k for k in first if k.startswith("next_obs/")]
    shifted = {k: True for k in next_keys}
    for demo in demos:
        group = data[demo]
        for k in next_keys:
            obs_key = "obs/" + k.removeprefix("next_obs/")
            if shifted[k] and (obs_key not in group or k not in group):
                shifted[k] = False
            elif shifted[k]:
                shifted[k] = bool(np.array_equal(group[k][:-1], group[obs_key][1:]))
    finals = {}
    for k in next_keys:
        feat = _feature_for(k.replace("/", "."), first[k], path, demos[0])
        if shifted[k]:
            finals[k] = feat
        else:
            features[k] = feat
    return features, finals


def _append_demo(
    store: EpisodeStore,
    data: Any,
    demos: list[str],
    index: int,
    features: dict[str, Feature],
    finals: dict[str, Feature],
    *,
    task: str,
    src: Path,
) -> None:
    """Append demo ``demos[index]`` as one episode (``features``/``finals`` as :func:`_features` gives)."""
    demo = demos[index]
    group = data[demo]
    present = _datasets(group)
    want = set(features) | set(finals)
    if set(present) != want:
        missing, extra = sorted(want - set(present)), sorted(set(present) - want)
        raise DatasetError(
            f"datasets differ from {demos[0]}'s: missing {missing}, extra {extra}",
            path=src,
            feature=f"data/{demo}",
            episode=index,
        )
    steps = {features[k].name: present[k][:] for k in features}
    final = {finals[k].name: present[k][-1] for k in finals}
    attrs = {k: _attr_json(v) for k, v in group.attrs.items()}
    done = steps.get("done")
    try:
        store.append_episode(
            steps,
            source="demo",
            success=bool(done[-1]) if done is not None and len(done) else False,
            task=task,
            start_time=0.0,
            extra={"robomimic_demo": demo, "attrs": attrs},
            episode_data=final,
        )
    except DatasetError as err:
        problem = str(err).split(": ", 1)[-1]  # without the store's name: the file and the demo are at fault
        raise DatasetError(f"data/{demo}: {problem}", path=src, feature=err.feature, episode=index) from err


def store_to_robomimic(src: EpisodeStore | str | Path, dst: str | Path, *, overwrite: bool = False) -> Path:
    """Write a store as a robomimic HDF5 file (inverse of :func:`robomimic_to_store`).

    Stores not converted from robomimic export too: ``obs.*`` -> ``obs/*``, ``next_obs`` is ``obs``
    shifted by one step with the last step repeated, ``dones`` comes from ``done`` or else
    ``terminated``, and the other features keep their names (``logp``, ``policy_version``, ...).

    Raises:
        DatasetError: ``dst`` exists (without ``overwrite``) or the store cannot be read.
    """
    h5py = _h5py()
    store = src if isinstance(src, EpisodeStore) else open_dataset(src)
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise DatasetError(ALREADY_EXISTS, path=dst)
    info = store.attrs.get("robomimic", {})
    env_args = info.get("env_args") or json.dumps(
        {"env_name": "", "type": 1, "env_kwargs": {"control_freq": store.fps}}
    )
    names = {f.name for f in store.schema.features}
    table = store.meta_table()
    with h5py.File(dst, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = env_args
        data.attrs["total"] = store.n_steps
        for key, value in info.get("data_attrs", {}).items():
            data.attrs[key] = value
        demo_names = []
        for i in range(store.n_episodes):
            extra = table["extra"][i]
            name = extra.get("robomimic_demo", f"demo_{i}")
            demo_names.append(name)
            group = data.create_group(name)
            attrs = extra.get("attrs", {"num_samples": int(table["length"][i])})
            for key, value in attrs.items():
                group.attrs[key] = value
            steps = store.episode(i)
            per_episode = store.episode_data(i)
            for feature, values in steps.items():
                key = FEATURE_TO_NAME.get(feature, feature.replace(".", "/"))
                if feature == "terminated" and "done" not in names:
                    group.create_dataset("dones", data=values.astype(np.int64))
                group.create_dataset(key, data=values)
                obs_key = feature.removeprefix("obs.")
                if feature.startswith("obs.") and f"next_obs.{obs_key}" not in names:
                    final = per_episode.get(f"next_obs.{obs_key}", values[-1])
                    group.create_dataset(
                        f"next_obs/{obs_key}", data=np.concatenate([values[1:], final[None]])
                    )
        masks = info.get("mask", {})
        if masks:
            mask = f.create_group("mask")
            for key, members in masks.items():
                mask.create_dataset(key, data=np.array([m.encode() for m in members], dtype="S"))
    return dst
