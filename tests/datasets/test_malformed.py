"""Property tests: a damaged store opens, validates and reads with a DatasetError, never a raw traceback.

Each example copies a small sound store, applies one drawn corruption and then opens it, validates it
deeply and reads every episode. Corruptions that change bytes or structure must raise a DatasetError
(every chunk carries a CRC32C checksum); a deleted data chunk reads as fill values, which no reader can
tell from real zeros, so for that one only "no raw exception" is required.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gipo_robot.datasets import DatasetError, EpisodeStore, validate
from tests.datasets.helpers import make_store


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "s.zarr"
    store = make_store(path, n=3)
    store.stats()  # a stats cache in the root attributes, to be damaged too
    return path


def _chunk_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "zarr.json")


def _json_files(root: Path) -> list[Path]:
    return sorted(root.rglob("zarr.json"))


def _open_validate_read(path: Path) -> None:
    store = EpisodeStore.open(path, "r")
    validate(store)
    for i in range(store.n_episodes):
        store.episode(i)
        store.episode_meta(i)


def _pick(files: list[Path], index: int) -> Path:
    return files[index % len(files)]


def _truncate_chunk(root, d):
    f = _pick(_chunk_files(root), d.draw(st.integers(0, 10_000)))
    data = f.read_bytes()
    f.write_bytes(data[: d.draw(st.integers(0, len(data) - 1))])


def _flip_chunk_byte(root, d):
    f = _pick(_chunk_files(root), d.draw(st.integers(0, 10_000)))
    data = bytearray(f.read_bytes())
    i = d.draw(st.integers(0, len(data) - 1))
    data[i] ^= d.draw(st.integers(1, 255))
    f.write_bytes(bytes(data))


def _break_json(root, d):
    f = _pick(_json_files(root), d.draw(st.integers(0, 10_000)))
    text = f.read_bytes()
    if d.draw(st.booleans()):
        f.write_bytes(text[: d.draw(st.integers(0, len(text) - 2))])  # cut before the closing brace
    else:
        f.write_bytes(d.draw(st.binary(max_size=40)))


def _delete_array(root, d):
    arrays = sorted(p.parent for p in _json_files(root) if json.loads(p.read_text())["node_type"] == "array")
    target = _pick(arrays, d.draw(st.integers(0, 10_000)))
    if d.draw(st.booleans()):
        (target / "zarr.json").unlink()
    else:
        shutil.rmtree(target)


def _unsorted_ends(root, d):
    ends = zarr.open_array(str(root / "meta" / "episode_ends"), mode="r+")
    values = ends[:]
    i = d.draw(st.integers(0, len(values) - 1))
    values[i] = d.draw(st.sampled_from([0, -5, int(values[i - 1]) if i else 0, int(values[-1]) + 10**6]))
    if i == len(values) - 1 and values[i] > values[i - 1]:
        values[i] = values[i - 1]  # a larger last end is "past the data", covered below; keep it unsorted
    ends[:] = values


def _nan_in_action(root, d):
    action = zarr.open_array(str(root / "data" / "action"), mode="r+")
    row = d.draw(st.integers(0, action.shape[0] - 1))
    action[row, d.draw(st.integers(0, 2))] = d.draw(st.sampled_from([np.nan, np.inf, -np.inf]))


def _shrink_data(root, d):
    name = d.draw(st.sampled_from(["action", "obs.cam", "reward", "obs.state"]))
    arr = zarr.open_array(str(root / "data" / name), mode="r+")
    arr.resize((d.draw(st.integers(0, arr.shape[0] - 1)), *arr.shape[1:]))


def _bad_root_attrs(root, d):
    group = zarr.open_group(str(root), mode="r+")
    attrs = dict(group.attrs)
    choice = d.draw(
        st.sampled_from(["format", "version", "schema_dtype", "schema_drop", "schema_junk", "fps"])
    )
    if choice == "format":
        attrs["format"] = "something-else"
    elif choice == "version":
        attrs["format_version"] = d.draw(st.sampled_from([2, 99, "1", None]))
    elif choice == "schema_dtype":
        attrs["schema"]["features"][d.draw(st.integers(0, 8))]["dtype"] = "complex64"
    elif choice == "schema_drop":
        attrs["schema"]["features"].pop(d.draw(st.integers(0, 8)))
    elif choice == "schema_junk":
        attrs["schema"] = d.draw(
            st.sampled_from([None, [], {"features": "x"}, {"features": [{"name": "a"}]}])
        )
    else:
        attrs["fps"] = d.draw(st.sampled_from([0, -1, "20", None]))
    group.attrs.clear()
    group.attrs.update(attrs)


def _meta_disagrees(root, d):
    name = d.draw(st.sampled_from(["length", "source", "extra", "start_time"]))
    arr = zarr.open_array(str(root / "meta" / "episodes" / name), mode="r+")
    value = {"length": 999, "source": "simulation", "extra": "{not json", "start_time": np.nan}[name]
    i = d.draw(st.integers(0, 2))
    arr[i : i + 1] = np.array([value], dtype=object if isinstance(value, str) else None)


MUST_RAISE = {
    "truncate_chunk": _truncate_chunk,
    "flip_chunk_byte": _flip_chunk_byte,
    "break_json": _break_json,
    "delete_array": _delete_array,
    "unsorted_ends": _unsorted_ends,
    "nan_in_action": _nan_in_action,
    "shrink_data": _shrink_data,
    "bad_root_attrs": _bad_root_attrs,
    "meta_disagrees": _meta_disagrees,
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(MUST_RAISE)), data=st.data())
def test_damaged_store_raises_dataset_error(template, tmp_path_factory, kind, data):
    root = tmp_path_factory.mktemp("damaged") / "s.zarr"
    shutil.copytree(template, root)
    MUST_RAISE[kind](root, data)
    with pytest.raises(DatasetError) as info:
        _open_validate_read(root)
    assert str(root) in str(info.value)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, 10_000))
def test_deleted_chunk_never_raises_a_raw_exception(template, tmp_path_factory, index):
    root = tmp_path_factory.mktemp("damaged") / "s.zarr"
    shutil.copytree(template, root)
    _pick(_chunk_files(root), index).unlink()
    try:
        _open_validate_read(root)
    except DatasetError as err:
        assert str(root) in str(err)
