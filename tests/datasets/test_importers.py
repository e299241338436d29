"""The importer registry: format detection, lazy "module:function" entries, open and import by format, and
the datasets package importing no other component."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import gipo_robot.datasets
from gipo_robot.datasets import IMPORTERS, DatasetError, detect_format, import_dataset, open_dataset
from gipo_robot.datasets.importers import EPISODE_STORE, _resolve, known_formats, reads_in_place
from tests.datasets.helpers import make_store, one_json_object, run, write_replay_buffer, write_robomimic


def test_every_registered_function_imports():
    for name, importer in IMPORTERS.items():
        for spec in (importer.detect, importer.convert, importer.open):
            if spec is not None:
                assert callable(_resolve(spec)), (name, spec)
    assert known_formats() == ["lerobot", "robomimic", "diffusion_policy", EPISODE_STORE]


def test_detect_format_of_each_known_layout(tmp_path):
    write_robomimic(tmp_path / "demo.hdf5")
    make_store(tmp_path / "s.zarr", n=1)
    write_replay_buffer(tmp_path / "replay_buffer.zarr")
    (tmp_path / "lr" / "meta").mkdir(parents=True)
    (tmp_path / "lr" / "meta" / "info.json").write_text(json.dumps({"fps": 10}))
    assert detect_format(tmp_path / "demo.hdf5") == "robomimic"
    assert detect_format(tmp_path / "s.zarr") == EPISODE_STORE
    assert detect_format(str(tmp_path / "replay_buffer.zarr")) == "diffusion_policy"
    assert detect_format(tmp_path / "lr") == "lerobot"
    assert [reads_in_place(f) for f in known_formats()] == [False, False, True, True]


def test_unknown_or_missing_sources_name_the_path_and_the_known_formats(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(
        DatasetError, match=r"folder: not a dataset of a known format \(known formats: lerobot, "
    ):
        detect_format(tmp_path / "folder")
    with pytest.raises(
        DatasetError, match=r"missing.zarr: no such file or folder \(known formats: .*episode_store"
    ):
        detect_format(tmp_path / "missing.zarr")
    with pytest.raises(DatasetError, match="unknown dataset format 'parquet'; known: lerobot, robomimic"):
        import_dataset(tmp_path / "folder", tmp_path / "out.zarr", fmt="parquet")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        reads_in_place("parquet")


def test_open_and_import_by_format(tmp_path):
    write_robomimic(tmp_path / "demo.hdf5")
    with pytest.raises(
        DatasetError, match="a robomimic dataset does not open as an episode store; convert it"
    ):
        open_dataset(tmp_path / "demo.hdf5")
    store = import_dataset(tmp_path / "demo.hdf5", tmp_path / "demo.zarr")  # format detected
    assert (store.n_episodes, store.n_steps) == (3, 15)  # write_robomimic: lengths 5, 3, 7
    reopened = open_dataset(tmp_path / "demo.zarr", "a")
    assert reopened.store_format == "gipo-robot/episode-store" and reopened.mode == "a"
    with pytest.raises(DatasetError, match="already an episode store"):
        import_dataset(tmp_path / "demo.zarr", tmp_path / "again.zarr")
    with pytest.raises(DatasetError, match=r"missing\.zarr: no such store"):
        open_dataset(tmp_path / "missing.zarr")  # the episode store's own errors for anything else
    np.testing.assert_array_equal(open_dataset(tmp_path / "demo.zarr").episode_ends, [5, 8, 15])


def test_cli_convert_names_the_known_formats(tmp_path):
    (tmp_path / "folder").mkdir()
    out = run("convert", "folder", "out.zarr", "--json", cwd=tmp_path)
    assert out.returncode == 1
    assert "not a dataset of a known format (known formats: lerobot" in one_json_object(out)["error"]


def test_datasets_import_no_other_component():
    """datasets is a component: it imports nothing from sim, hardware, policies, train or teleop (lazy
    imports inside functions included)."""
    forbidden = ("sim", "hardware", "policies", "train", "teleop")
    package = Path(gipo_robot.datasets.__file__).parent
    found = []
    for file in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [
                (file.name, n) for n in names if n.split(".")[:2] in (["gipo_robot", f] for f in forbidden)
            ]
    assert found == []
