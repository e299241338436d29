"""Diffusion Policy / UMI replay buffers (Zarr v2) open read-only through the importer registry
(``open_dataset``), sample, validate, convert to an episode store and show in ``gipo-robot info``/``convert``.

The buffers are written by ``helpers.write_replay_buffer`` with zarr's own v2 format, laid out as
Diffusion Policy's ``ReplayBuffer`` and UMI write them: ``data/<key>`` time-first arrays (UMI's camera one
frame per chunk with the ``imagecodecs_jpegxl`` numcodecs codec, lossless here so values compare exactly)
and ``meta/episode_ends``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from gipo_robot.datasets import DatasetError, EpisodeStore, detect_format, open_dataset, validate
from gipo_robot.datasets.from_diffusion_policy import (
    DEFAULT_FPS,
    ReplayBufferStore,
    replay_buffer_to_store,
)
from gipo_robot.datasets.sampler import EpisodeSampler, SamplerConfig
from tests.datasets.helpers import one_json_object, run, write_replay_buffer


def test_opens_read_only_with_mapped_features_and_demo_metadata(tmp_path):
    path = tmp_path / "replay_buffer.zarr"
    values = write_replay_buffer(path, extra_rows=2)
    assert detect_format(path) == "diffusion_policy"
    store = open_dataset(path)
    assert isinstance(store, ReplayBufferStore)
    with pytest.raises(DatasetError, match="not a gipo-robot episode store"):
        EpisodeStore.open(path)  # the store itself knows no foreign format
    assert store.schema.names == [
        "action",
        "obs.camera0_rgb",
        "obs.n_contacts",
        "obs.robot0_eef_pos",
        "obs.robot0_gripper_width",
    ]
    kinds = {f.name: (f.kind, f.dtype, f.shape) for f in store.schema.features}
    assert kinds["obs.camera0_rgb"] == ("image", "uint8", (12, 10, 3))
    assert kinds["obs.n_contacts"] == ("scalar", "int64", ())
    assert kinds["obs.robot0_eef_pos"] == ("low_dim", "float32", (3,))
    assert (store.n_episodes, store.n_steps, store.fps) == (3, 15, DEFAULT_FPS)
    np.testing.assert_array_equal(store.episode_ends, [5, 8, 15])
    # episode 1 is rows 5..7 of every array
    ep = store.episode(1)
    np.testing.assert_array_equal(ep["obs.camera0_rgb"], values["camera0_rgb"][5:8])  # lossless JPEG XL
    np.testing.assert_array_equal(ep["action"], values["action"][5:8])
    rows = store.read_rows(np.array([14, 0, 14]), ["obs.robot0_eef_pos"])["obs.robot0_eef_pos"]
    np.testing.assert_array_equal(rows, values["robot0_eef_pos"][[14, 0, 14]])
    with pytest.raises(DatasetError, match="outside the committed 0:15"):
        store.read_rows(np.array([15]))  # the 2 extra rows are past the last end: invisible
    meta = store.episode_meta(2)
    assert (meta.source, meta.success, meta.length, meta.policy_version) == ("demo", True, 7, -1)
    np.testing.assert_array_equal(store.episodes(source="demo", success=True), [0, 1, 2])
    assert validate(store).n_episodes == 3 and validate(path).n_episodes == 3
    assert store.stats(["action"])["action"]["mean"] == pytest.approx(
        values["action"].mean(0).tolist(), rel=1e-5
    )
    with pytest.raises(DatasetError, match="read-only"):
        store.append_episode({"action": np.zeros((2, 7))})
    with pytest.raises(DatasetError, match="read-only"):
        open_dataset(path, "a")


def test_sampler_draws_action_chunks_padded_at_episode_ends(tmp_path):
    path = tmp_path / "replay_buffer.zarr"
    values = write_replay_buffer(path, attrs={"fps": 20})
    store = open_dataset(path)
    assert store.fps == 20.0
    sampler = EpisodeSampler(store, SamplerConfig(horizon=4, obs_history=2))
    # anchor 6 is step 1 of episode 1 (rows 5..7): obs rows 5, 6; actions rows 6, 7, then 7 repeated twice
    batch = sampler.sample([6])
    np.testing.assert_array_equal(batch["obs.camera0_rgb"][0], values["camera0_rgb"][[5, 6]])
    np.testing.assert_array_equal(batch["action"][0], values["action"][[6, 7, 7, 7]])
    np.testing.assert_array_equal(batch["action_mask"][0], [True, True, False, False])
    assert sampler.step_keys == ("action",)


def test_convert_to_an_episode_store_keeps_every_value(tmp_path):
    path = tmp_path / "replay_buffer.zarr"
    values = write_replay_buffer(path)
    out = replay_buffer_to_store(path, tmp_path / "out.zarr")
    reopened = validate(tmp_path / "out.zarr")
    assert reopened.store_format == "gipo-robot/episode-store" and reopened.n_episodes == 3
    assert reopened.attrs["converted_from"]["format"] == "diffusion_policy/replay_buffer"
    for key, v in values.items():
        name = "action" if key == "action" else f"obs.{key}"
        np.testing.assert_array_equal(reopened.read_steps(0, 15, [name])[name], v, err_msg=key)
    assert out.episode_meta(0).success
    with pytest.raises(DatasetError, match="not a Diffusion Policy replay buffer"):
        replay_buffer_to_store(tmp_path / "out.zarr", tmp_path / "again.zarr")


def test_malformed_replay_buffers_raise_dataset_errors(tmp_path):
    path = tmp_path / "replay_buffer.zarr"
    write_replay_buffer(path)
    ends = zarr.open_array(str(path / "meta" / "episode_ends"), mode="r+")
    ends[:] = [5, 5, 15]
    with pytest.raises(DatasetError, match=r"episode_ends.*not strictly increasing"):
        open_dataset(path)
    ends[:] = [5, 8, 16]
    with pytest.raises(DatasetError, match=r"feature 'action'.*15 rows but the episodes end at 16"):
        open_dataset(path)
    ends[:] = [5, 8, 15]
    chunk = path / "data" / "camera0_rgb" / "3.0.0.0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(DatasetError, match=r"feature 'obs\.camera0_rgb'"):
        open_dataset(path).read_rows(np.array([3]))


def test_cli_info_and_convert(tmp_path):
    write_replay_buffer(tmp_path / "replay_buffer.zarr")
    out = run("info", "replay_buffer.zarr", "--json", "--thumbnail", "thumb.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    info = one_json_object(out)
    assert (info["format"], info["episodes"], info["steps"], info["success_rate"]) == (
        "diffusion_policy/replay_buffer",
        3,
        15,
        1.0,
    )
    assert info["features"]["obs.camera0_rgb"] == {"dtype": "uint8", "shape": [12, 10, 3], "kind": "image"}
    assert (tmp_path / "thumb.png").is_file()
    out = run("convert", "replay_buffer.zarr", "out.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = one_json_object(out)
    assert (result["direction"], result["episodes"], result["steps"]) == ("diffusion_policy->zarr", 3, 15)
    out = run("convert", "out.zarr", "again.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 1 and "already an episode store" in one_json_object(out)["error"]
    out = run("convert", "replay_buffer.zarr", "demo.hdf5", "--json", cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["direction"] == "zarr->robomimic"
