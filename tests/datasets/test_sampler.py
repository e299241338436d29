"""Sampling: action chunks and observation history with edge padding, checked by hand on tiny episodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gipo_robot.datasets import DatasetError, EpisodeStore, Feature, Schema
from gipo_robot.datasets.sampler import ChunkDataset, EpisodeSampler, SamplerConfig
from tests.datasets.helpers import make_store


@pytest.fixture
def tiny(tmp_path):
    """Episode A: 3 steps with obs 10, 11, 12 and actions 0, 1, 2; episode B: 2 steps, obs 20, 21,
    actions 100, 101. Rewards equal the actions."""
    schema = Schema(
        (
            Feature("obs.state", "float32", (1,)),
            Feature("action", "float32", (1,)),
            Feature("reward", "float32", (), "scalar"),
        )
    )
    store = EpisodeStore.create(tmp_path / "tiny.zarr", schema, fps=10)
    store.append_episode({"obs.state": [[10], [11], [12]], "action": [[0], [1], [2]], "reward": [0, 1, 2]})
    store.append_episode({"obs.state": [[20], [21]], "action": [[100], [101]], "reward": [100, 101]})
    return store


def test_chunks_and_history_are_edge_padded_with_masks(tiny):
    sampler = EpisodeSampler(tiny, SamplerConfig(horizon=3, obs_history=2, next_obs=True))
    assert len(sampler) == 5  # every step is an anchor: 3 + 2
    s = sampler.sample(np.arange(5))
    # Anchor t: history = steps t-1, t (before the start: repeat step 0); chunk = t, t+1, t+2 (past the
    # end: repeat the last step). Episode A (obs 10..12, actions 0..2):
    #   t=0: obs [10, 10] mask [F, T]; actions [0, 1, 2] mask [T, T, T]
    #   t=1: obs [10, 11] mask [T, T]; actions [1, 2, 2] mask [T, T, F]
    #   t=2: obs [11, 12] mask [T, T]; actions [2, 2, 2] mask [T, F, F]
    # Episode B (obs 20, 21, actions 100, 101) never borrows from A:
    #   t=0: obs [20, 20] mask [F, T]; actions [100, 101, 101] mask [T, T, F]
    #   t=1: obs [20, 21] mask [T, T]; actions [101, 101, 101] mask [T, F, F]
    np.testing.assert_array_equal(s["obs.state"][..., 0], [[10, 10], [10, 11], [11, 12], [20, 20], [20, 21]])
    np.testing.assert_array_equal(
        s["obs_mask"], [[False, True], [True, True], [True, True], [False, True], [True, True]]
    )
    np.testing.assert_array_equal(
        s["action"][..., 0], [[0, 1, 2], [1, 2, 2], [2, 2, 2], [100, 101, 101], [101, 101, 101]]
    )
    np.testing.assert_array_equal(s["reward"], s["action"][..., 0])  # step keys chunk with the actions
    np.testing.assert_array_equal(
        s["action_mask"],
        [[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]],
    )
    np.testing.assert_array_equal(s["episode"], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(s["step"], [0, 1, 2, 0, 1])
    # next observation = step t + H = t + 3, clamped to the last step: only past the end here.
    np.testing.assert_array_equal(s["next_obs.state"][:, 0], [12, 12, 12, 21, 21])
    np.testing.assert_array_equal(s["next_valid"], [False] * 5)


def test_single_transitions_and_episode_subset(tiny):
    sampler = EpisodeSampler(tiny, SamplerConfig(next_obs=True), episodes=[1])
    s = sampler.sample([0, 1])
    assert s["action"].shape == (2, 1, 1) and s["obs.state"].shape == (2, 1, 1)
    np.testing.assert_array_equal(s["action"][:, 0, 0], [100, 101])
    np.testing.assert_array_equal(s["next_obs.state"][:, 0], [21, 21])  # t+1, clamped at the end
    np.testing.assert_array_equal(s["next_valid"], [True, False])
    np.testing.assert_array_equal(sampler.episode(0)["action"][:, 0], [100, 101])
    batch = sampler.random_batch(64, np.random.default_rng(0))
    assert set(np.unique(batch["episode"])) == {1}
    with pytest.raises(DatasetError, match="sample index outside"):
        sampler.sample([2])
    with pytest.raises(DatasetError, match="horizon must be an int >= 1"):
        SamplerConfig(horizon=0)
    with pytest.raises(DatasetError, match=r"feature 'obs\.depth'"):
        EpisodeSampler(tiny, SamplerConfig(obs_keys=("obs.depth",)))


def test_dataloader_with_workers_matches_direct_sampling(tmp_path):
    store = make_store(tmp_path / "s.zarr", n=3)
    config = SamplerConfig(horizon=4, obs_history=2)
    dataset = ChunkDataset(store.path, config)
    assert isinstance(dataset, torch.utils.data.Dataset) and len(dataset) == 4 + 5 + 6
    loader = DataLoader(dataset, batch_size=5, shuffle=False, num_workers=2)
    batches = list(loader)
    want = EpisodeSampler(EpisodeStore.open(store.path), config).sample(np.arange(len(dataset)))
    for key, value in want.items():
        got = torch.cat([b[key] for b in batches]).numpy()
        np.testing.assert_array_equal(got, value, err_msg=key)
    assert batches[0]["obs.cam"].shape == (5, 2, 8, 8, 3) and batches[0]["action"].dtype == torch.float32
    direct = dataset.batch([0, 1])
    np.testing.assert_array_equal(direct["action"].numpy(), want["action"][:2])
