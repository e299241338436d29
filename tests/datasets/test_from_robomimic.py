"""robomimic HDF5 -> store -> HDF5 keeps every dataset value, env_args, filter keys and model XML."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from gipo_robot.datasets import DatasetError, EpisodeStore, import_dataset, validate
from gipo_robot.datasets.from_robomimic import robomimic_to_store, store_to_robomimic
from gipo_robot.datasets.sampler import EpisodeSampler, SamplerConfig
from tests.datasets.helpers import ENV_ARGS, make_episode, make_store, one_json_object, run, write_robomimic


def h5_contents(path) -> dict:
    """Every dataset (as an array) and attribute (as JSON-comparable data) in a file, by path."""
    out = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            out[name] = item[:]
        for key, value in item.attrs.items():
            out[f"{name}@{key}"] = value.decode() if isinstance(value, bytes) else value

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        for key, value in f["data"].attrs.items():
            out[f"data@{key}"] = value
    return out


@pytest.mark.parametrize("shifted", [True, False])
def test_round_trip_keeps_every_value(tmp_path, shifted):
    src, dst = tmp_path / "demo.hdf5", tmp_path / "back.hdf5"
    write_robomimic(src, shifted=shifted)
    store = robomimic_to_store(src, tmp_path / "demo.zarr")
    validate(store.path)
    store_to_robomimic(store.path, dst)
    want, got = h5_contents(src), h5_contents(dst)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype, key
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            assert got[key] == value, key
    assert json.loads(want["data@env_args"]) == ENV_ARGS


def test_store_view_of_a_robomimic_file(tmp_path):
    src = tmp_path / "demo.hdf5"
    write_robomimic(src)
    store = robomimic_to_store(src, tmp_path / "demo.zarr")
    assert store.n_episodes == 3 and store.n_steps == 15 and store.fps == 20.0
    assert store.schema["obs.agentview_image"].kind == "image"
    assert store.schema["action"].dtype == "float64" and store.schema["done"].dtype == "int64"
    assert [f.name for f in store.schema.episode_features] == [
        "next_obs.agentview_image",
        "next_obs.object",
        "next_obs.robot0_eef_pos",
    ]
    meta = store.episode_meta(2)
    assert (meta.source, meta.task, meta.success) == ("demo", "Lift", True)
    assert meta.extra["attrs"]["model_file"] == "<mujoco model='lift_2'><worldbody/></mujoco>"
    assert store.attrs["robomimic"]["mask"] == {"train": ["demo_0", "demo_2"], "valid": ["demo_1"]}
    with h5py.File(src, "r") as f:
        np.testing.assert_array_equal(store.episode(1)["action"], f["data/demo_1/actions"][:])
    chunks = EpisodeSampler(store, SamplerConfig(horizon=4)).sample([0])
    assert chunks["action"].shape == (1, 4, 7)


def test_bad_robomimic_files_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        robomimic_to_store(tmp_path / "missing.hdf5", tmp_path / "a.zarr")
    (tmp_path / "text.hdf5").write_text("hello")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        robomimic_to_store(tmp_path / "text.hdf5", tmp_path / "b.zarr")
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("other")
    with pytest.raises(DatasetError, match="no data/ group"):
        robomimic_to_store(tmp_path / "empty.hdf5", tmp_path / "c.zarr")
    write_robomimic(tmp_path / "broken.hdf5")
    with h5py.File(tmp_path / "broken.hdf5", "a") as f:
        del f["data/demo_1/states"]
    with pytest.raises(DatasetError, match=r"data/demo_1.*episode 1.*missing \['states'\]"):
        robomimic_to_store(tmp_path / "broken.hdf5", tmp_path / "d.zarr")
    write_robomimic(tmp_path / "nan.hdf5")
    with h5py.File(tmp_path / "nan.hdf5", "a") as f:
        f["data/demo_2/actions"][1, 3] = np.nan
    with pytest.raises(
        DatasetError, match=r"nan\.hdf5, feature 'action', episode 2: data/demo_2: non-finite"
    ):
        robomimic_to_store(tmp_path / "nan.hdf5", tmp_path / "e.zarr")


def test_a_conversion_that_fails_half_way_leaves_no_store_and_names_the_demo(tmp_path):
    write_robomimic(tmp_path / "short.hdf5")  # demos of 5, 3, 7 steps
    with h5py.File(tmp_path / "short.hdf5", "a") as f:
        actions = f["data/demo_2/actions"][:]
        del f["data/demo_2/actions"]
        f["data/demo_2/actions"] = actions[:-2]  # two actions short of the observations
    out = run("convert", "short.hdf5", "out.zarr", "--json", cwd=tmp_path)
    error = one_json_object(out)["error"]
    assert out.returncode == 1 and "short.hdf5" in error and "data/demo_2" in error, error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.hdf5"]  # no store, no temp folder, no lock
    # Over an existing store: the failure leaves it as it was, a success replaces it.
    write_robomimic(tmp_path / "demo.hdf5", lengths=(4, 4))
    assert run("convert", "demo.hdf5", "out.zarr", cwd=tmp_path).returncode == 0
    out = run("convert", "short.hdf5", "out.zarr", "--overwrite", "--json", cwd=tmp_path)
    assert out.returncode == 1 and "out.zarr.rewrite" not in one_json_object(out)["error"]
    assert EpisodeStore.open(tmp_path / "out.zarr").n_episodes == 2
    write_robomimic(tmp_path / "demo.hdf5")
    assert run("convert", "demo.hdf5", "out.zarr", "--overwrite", cwd=tmp_path).returncode == 0
    assert EpisodeStore.open(tmp_path / "out.zarr").episode_ends.tolist() == [5, 8, 15]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.hdf5", "out.zarr", "short.hdf5"]


def test_a_group_not_named_demo_n_is_an_error_not_skipped(tmp_path):
    write_robomimic(tmp_path / "odd.hdf5")  # with filter keys under mask/: those are not demos, and fine
    with h5py.File(tmp_path / "odd.hdf5", "a") as f:
        f.copy(f["data/demo_1"], "data/demo_extra")
    with pytest.raises(DatasetError, match=r"odd\.hdf5: data/demo_extra is not a demo_<n> group"):
        import_dataset(tmp_path / "odd.hdf5", tmp_path / "odd.zarr")
    assert not (tmp_path / "odd.zarr").exists()


def test_export_of_a_recorded_store(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=2)
    store_to_robomimic(store, tmp_path / "out.hdf5")
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        demo = f["data/demo_1"]
        ep = make_episode(1)
        np.testing.assert_array_equal(demo["actions"][:], ep["action"])
        np.testing.assert_array_equal(demo["dones"][:], ep["terminated"].astype(np.int64))
        np.testing.assert_array_equal(demo["next_obs/state"][:-1], ep["obs.state"][1:])
        np.testing.assert_array_equal(demo["logp"][:], ep["logp"])
        assert json.loads(f["data"].attrs["env_args"])["env_kwargs"]["control_freq"] == 20.0
    back = robomimic_to_store(tmp_path / "out.hdf5", tmp_path / "back.zarr")
    assert isinstance(back, EpisodeStore) and back.n_episodes == 2
