"""Behaviour cloning from an episode store: learns a known expert, splits by episode, writes artifacts."""

import json

import numpy as np
import pytest
import torch

from gipo_robot.datasets import DatasetError, EpisodeStore, Feature, Schema
from gipo_robot.policies import load_policy
from gipo_robot.policies.bc import BCConfig, action_bounds, load_bc_data, split_episodes, train_bc

W = np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6]], dtype=np.float32)  # expert: a = tanh(W @ x), A=2, D=3


def make_store(path, episodes=12, steps=30, seed=0) -> EpisodeStore:
    schema = Schema(
        (
            Feature("obs.x", "float32", (3,), "low_dim"),
            Feature("obs.y", "float32", (1,), "low_dim"),
            Feature("action", "float32", (2,), "low_dim"),
            Feature("reward", "float32", (), "scalar", fill=0.0),
        )
    )
    store = EpisodeStore.create(path, schema, fps=20)
    rng = np.random.default_rng(seed)
    for e in range(episodes):
        x = rng.normal(size=(steps, 3)).astype(np.float32) * 2 + 1
        a = np.tanh(x @ W.T) + 0.01 * rng.normal(size=(steps, 2)).astype(np.float32)
        store.append_episode(
            {
                "obs.x": x,
                "obs.y": rng.normal(size=(steps, 1)).astype(np.float32),
                "action": a.astype(np.float32),
            },
            source="demo",
            success=e % 4 != 0,
        )
    return store


def test_load_bc_data_builds_padded_chunks(tmp_path):
    store = make_store(tmp_path / "d.zarr", episodes=2, steps=5)
    data, episodes = load_bc_data(store, BCConfig(chunk=3))
    assert episodes == [0, 1] and len(data) == 10
    assert data.obs["x"].shape == (10, 3) and data.actions.shape == (10, 3, 2)
    # The last step of episode 0 (row 4) has one real chunk step, then two copies of it (edge padding).
    assert data.mask[4].tolist() == [True, False, False]
    torch.testing.assert_close(data.actions[4, 1], data.actions[4, 0])
    # Row 3: steps 3 and 4 are real, the third is padding.
    assert data.mask[3].tolist() == [True, True, False]


def test_filters_select_episodes(tmp_path):
    store = make_store(tmp_path / "d.zarr", episodes=8, steps=4)
    _, episodes = load_bc_data(store, BCConfig(chunk=1, success_only=True))
    assert episodes == [1, 2, 3, 5, 6, 7]
    with pytest.raises(DatasetError, match="no episodes"):
        load_bc_data(store, BCConfig(sources=["teleop"]))
    with pytest.raises(DatasetError, match=r"obs\.nope"):
        load_bc_data(store, BCConfig(obs_keys=["obs.nope"]))


def test_split_is_by_episode_and_seeded():
    train, val = split_episodes(list(range(20)), 0.1, seed=3)
    assert len(val) == 2 and sorted(train + val) == list(range(20))
    assert split_episodes(list(range(20)), 0.1, seed=3) == (train, val)
    assert split_episodes([0], 0.5, seed=0) == ([0], [])


def test_action_bounds_unit_when_the_data_fits():
    lo, hi = action_bounds(torch.tensor([[[0.5, -1.0]], [[1.0, 0.2]]]))
    assert lo.tolist() == [-1, -1] and hi.tolist() == [1, 1]
    lo, hi = action_bounds(torch.tensor([[[0.0, -3.0]], [[10.0, 3.0]]]))
    torch.testing.assert_close(lo, torch.tensor([-0.5, -3.3]))
    torch.testing.assert_close(hi, torch.tensor([10.5, 3.3]))


def test_bc_learns_the_expert_and_writes_a_checkpoint(tmp_path):
    store = make_store(tmp_path / "d.zarr")
    config = BCConfig(chunk=2, hidden=[64, 64], steps=600, eval_every=100, batch_size=128, lr=3e-3, seed=1)
    result = train_bc(store, config, out=tmp_path / "policy", progress=False)
    history = result.history
    assert history[-1]["val_nll"] < history[0]["val_nll"] - 2.0  # nats per chunk step
    assert result.val_episodes and not set(result.val_episodes) & set(result.train_episodes)

    # The mean action on a held-out episode matches the expert.
    policy = load_policy(tmp_path / "policy", low_dim={"x": [3], "y": [1]}, action_dim=2)
    ep = store.episode(result.val_episodes[0])
    obs = {"x": torch.from_numpy(ep["obs.x"]), "y": torch.from_numpy(ep["obs.y"])}
    expert = np.tanh(ep["obs.x"] @ W.T)
    err = np.abs(policy.mode(obs)[:, 0].numpy() - expert).mean()
    assert err < 0.1, err

    files = {p.name for p in (tmp_path / "policy").iterdir()}
    assert {"config.json", "model.safetensors", "metrics.csv", "loss_curve.png", "tb"} <= files
    provenance = json.loads((tmp_path / "policy" / "config.json").read_text())["provenance"]
    assert provenance["bc_config"]["chunk"] == 2 and provenance["val_episodes"] == result.val_episodes


def test_early_stopping_keeps_the_best_weights(tmp_path):
    store = make_store(tmp_path / "d.zarr", episodes=4, steps=10)
    seen = []
    # A learning rate this high diverges quickly; patience 2 must stop it and keep the best pass.
    config = BCConfig(chunk=1, hidden=[32], steps=2000, eval_every=20, patience=2, lr=5.0, warmup_steps=0)
    result = train_bc(store, config, progress=False, on_eval=seen.append)
    assert result.stopped_early and len(seen) < 2000 // 20
    best = min(seen, key=lambda r: r["val_nll"])
    assert result.best_step == best["step"]


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match=r"BCConfig\.chunk"):
        BCConfig(chunk=0)
    with pytest.raises(ValueError, match="val_fraction"):
        BCConfig(val_fraction=1.0)
