"""``gipo-robot info`` and ``gipo-robot convert``: --json prints exactly one JSON object on stdout."""

from __future__ import annotations

import h5py
import imagecodecs
import numpy as np

from tests.datasets.helpers import make_store, one_json_object, run, write_robomimic


def test_info_json(tmp_path):
    make_store(tmp_path / "s.zarr", n=4)
    out = run("info", "s.zarr", "--json", "--thumbnail", "thumb.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    info = one_json_object(out)
    # make_store: 4 episodes of 4, 5, 6, 7 steps; odd seeds are successful rollouts
    assert (info["episodes"], info["steps"], info["success_rate"]) == (4, 22, 0.5)
    assert info["sources"] == {"demo": 2, "rollout": 2}
    assert info["features"]["action"] == {"dtype": "float32", "shape": [3], "kind": "low_dim"}
    assert info["size_bytes"] > 0
    thumb = imagecodecs.png_decode((tmp_path / "thumb.png").read_bytes())
    assert thumb.shape == (4 * 8, 8, 3)  # first frame of each episode, one camera


def test_convert_both_ways_and_errors(tmp_path):
    write_robomimic(tmp_path / "demo.hdf5")
    out = run("convert", "demo.hdf5", "demo.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    result = one_json_object(out)
    assert (result["direction"], result["episodes"], result["steps"]) == ("robomimic->zarr", 3, 15)
    out = run("convert", "demo.zarr", "back.hdf5", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert one_json_object(out)["direction"] == "zarr->robomimic"
    with h5py.File(tmp_path / "demo.hdf5") as a, h5py.File(tmp_path / "back.hdf5") as b:
        np.testing.assert_array_equal(
            a["data/demo_2/obs/agentview_image"][:], b["data/demo_2/obs/agentview_image"][:]
        )
    # existing destination, then a missing source: an error object and exit code 1
    out = run("convert", "demo.hdf5", "demo.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 1 and "already exists (--overwrite" in one_json_object(out)["error"]
    out = run("info", "missing.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 1 and "missing.zarr: no such store" in one_json_object(out)["error"]
    out = run("info", "missing.zarr", cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == "" and "no such store" in out.stderr
