"""Without lerobot installed, both adapters fail with the extra's name and where to get a LeRobot environment
(runs in every venv: here lerobot's modules are hidden, as if it were not installed)."""

from __future__ import annotations

import sys

import pytest

from gipo_robot.datasets import DatasetError, EpisodeStore, Feature, Schema
from gipo_robot.datasets.from_lerobot import lerobot_to_store, store_to_lerobot
from gipo_robot.policies.from_lerobot import load_lerobot_policy


@pytest.fixture
def no_lerobot(monkeypatch):
    for name in ("lerobot", "lerobot.datasets.lerobot_dataset", "lerobot.configs.policies"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` of a None entry raises ImportError


def test_dataset_converter_names_the_extra(no_lerobot, tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", Schema((Feature("action", "float32", (2,)),)), fps=10)
    with pytest.raises(
        DatasetError, match=r"\(0\.6\): pip install gipo-robot\[lerobot\].*Python >= 3\.12.*\.venv-lerobot"
    ):
        store_to_lerobot(store, tmp_path / "lr")
    assert not (tmp_path / "lr").exists()
    with pytest.raises(DatasetError, match=r"pip install gipo-robot\[lerobot\]"):
        lerobot_to_store(tmp_path / "lr", tmp_path / "back.zarr")


def test_policy_loader_names_the_extra(no_lerobot, tmp_path):
    with pytest.raises(
        ImportError, match=r"\(0\.6\): pip install gipo-robot\[lerobot\].*Python >= 3\.12.*\.venv-lerobot"
    ):
        load_lerobot_policy(tmp_path)
